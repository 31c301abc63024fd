import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from lrlib.errors import LRError
from lrlib.io import atomic_dir, atomic_write_text, load_image, to_pil, to_tensor


def test_rgb_passes_unchanged():
    img = Image.new("RGB", (64, 48), (10, 20, 30))
    out = load_image(img)
    assert out.mode == "RGB" and out.size == (64, 48) and out.getpixel((0, 0)) == (10, 20, 30)


def test_grayscale_becomes_rgb_with_a_warning():
    with pytest.warns(UserWarning, match="converted to RGB"):
        out = load_image(Image.new("L", (40, 40), 77))
    assert out.mode == "RGB" and out.getpixel((3, 3)) == (77, 77, 77)


def test_rgba_is_composited_over_white():
    img = Image.new("RGBA", (40, 40), (255, 0, 0, 0))      # fully transparent red
    img.putpixel((5, 5), (255, 0, 0, 255))
    with pytest.warns(UserWarning, match="transparency"):
        out = load_image(img)
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((5, 5)) == (255, 0, 0)


def test_16bit_is_rescaled_not_clipped(tmp_path):
    a = np.full((40, 40), 32768, dtype=np.uint16)           # mid-grey in 16 bit
    p = tmp_path / "x.png"
    Image.fromarray(a).save(p)
    with pytest.warns(UserWarning, match="16-bit"):
        out = load_image(p)
    assert abs(out.getpixel((0, 0))[0] - 128) <= 1          # PIL's own convert would give 255
    with pytest.warns(UserWarning, match="16-bit"):
        assert abs(load_image(np.full((40, 40, 3), 65535, np.uint16)).getpixel((0, 0))[0] - 255) <= 1


@pytest.mark.parametrize("size,match", [((10, 40), "at least 32"), ((9000, 9000), "at most 8192"),
                                        ((400, 40), "aspect")])
def test_bad_sizes_are_clear_errors(size, match):
    with pytest.raises(LRError, match=match):
        load_image(Image.new("RGB", size))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(LRError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(LRError, match="could not read"):
        load_image(bad)


def test_arrays_and_tensors():
    a = np.random.RandomState(0).rand(40, 50, 3).astype(np.float32)
    img = load_image(a)
    assert img.size == (50, 40)
    t = to_tensor(img)
    assert (t - torch.from_numpy(a).permute(2, 0, 1)).abs().max() <= 0.5 / 255 + 1e-6
    assert load_image(t).size == (50, 40)
    with pytest.raises(LRError, match=r"\[0, 1\]"):
        load_image(a * 3)
    with pytest.raises(LRError):
        load_image(torch.rand(2, 3, 40, 40))
    assert to_pil(t).getpixel((0, 0)) == img.getpixel((0, 0))


def test_atomic_dir_all_or_nothing(tmp_path):
    target = tmp_path / "result"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            (d / "a.txt").write_text("2")
            (d / "b.txt").write_text("half")
            raise RuntimeError("killed mid-write")
    assert (target / "a.txt").read_text() == "1" and not (target / "b.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]   # no temp left behind
    with atomic_dir(target) as d:                                         # replace
        (d / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]
    with pytest.raises(LRError, match="overwrite"):
        with atomic_dir(target, overwrite=False):
            pass


def test_atomic_write_text(tmp_path):
    p = tmp_path / "s" / "x.json"
    atomic_write_text(p, "{}")
    atomic_write_text(p, "[1]")
    assert p.read_text() == "[1]" and len(list(p.parent.iterdir())) == 1
