
import numpy as np
import pytest
import torch
from PIL import Image

from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.outputs import atomic_dir, atomic_write_text, write_result
from lrlib.images import load_image, to_pil, to_tensor


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
        write_result(d, {})                    # marks it lrlib's own: it may be replaced
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
    with pytest.raises(LRError, match="did not write"):                  # not marked: kept
        with atomic_dir(target):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]
    with pytest.raises(LRError, match="overwrite"):
        with atomic_dir(target, overwrite=False):
            pass


def test_atomic_write_text(tmp_path):
    p = tmp_path / "s" / "x.json"
    atomic_write_text(p, "{}")
    atomic_write_text(p, "[1]")
    assert p.read_text() == "[1]" and len(list(p.parent.iterdir())) == 1


# --- inputs that are easy to read wrong, silently ---------------------------------------------

def _marked(w=64, h=40):
    """An image whose top-left corner is red, the rest grey: where the red lands tells the turn."""
    img = Image.new("RGB", (w, h), (128, 128, 128))
    img.paste((255, 0, 0), (0, 0, 8, 8))
    return img


def test_exif_orientation_is_applied(tmp_path):
    """Bug: EXIF orientation was ignored, so a phone photo was edited (and saved) sideways.
    Orientation 6 means: turn 90 degrees clockwise to view; the top-left corner goes top-right."""
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "phone.png"
    _marked().save(p, exif=exif)
    out = load_image(p)
    assert out.size == (40, 64)
    assert out.getpixel((36, 3)) == (255, 0, 0) and out.getpixel((3, 3)) == (128, 128, 128)
    assert load_image(Image.open(p)).size == (40, 64)          # an opened PIL image too


def test_animated_gif_warns_which_frame(tmp_path):
    """Bug: an animated GIF was edited as its first frame with no word about it."""
    frames = [Image.new("RGB", (48, 48), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.warns(UserWarning, match="3 frames.*only frame 0"):
        out = load_image(p)
    assert out.getpixel((5, 5)) == (255, 0, 0)
    im = Image.open(p)
    im.seek(2)
    with pytest.warns(UserWarning, match="only frame 2"):
        assert load_image(im).getpixel((5, 5)) == (0, 0, 255)


def test_uint8_tensor_is_read_as_0_to_255(tmp_path):
    """Bug: a uint8 (3, H, W) tensor (what torchvision.io.read_image returns) became white."""
    from torchvision.io import read_image
    p = tmp_path / "x.png"
    _marked().save(p)
    t = read_image(str(p))
    assert t.dtype == torch.uint8 and t.shape == (3, 40, 64)
    out = load_image(t)
    assert out.getpixel((3, 3)) == (255, 0, 0) and out.getpixel((30, 30)) == (128, 128, 128)
    assert load_image(t[None]).getpixel((30, 30)) == (128, 128, 128)


def test_float_tensor_in_0_255_is_refused_like_numpy():
    """Bug: a 0..255 float tensor was clamped to white; the numpy path already said what to do."""
    for a in (torch.full((3, 40, 40), 128.0), np.full((40, 40, 3), 128.0)):
        with pytest.raises(LRError, match="divide by 255"):
            load_image(a)
    assert load_image(torch.full((3, 40, 40), 128.0) / 255).getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize("bad", [np.float32("nan"), np.float32("inf")])
def test_nan_and_inf_are_refused(bad):
    """Bug: NaN arrays were accepted (and became black pixels)."""
    a = np.full((40, 40, 3), 0.5, np.float32)
    a[3, 4, 1] = bad
    for x in (a, torch.from_numpy(a).permute(2, 0, 1)):
        with pytest.raises(LRError, match="1 NaN or infinite"):
            load_image(x)


def test_empty_array_is_a_clear_error():
    """Bug: an empty array raised a bare ValueError from numpy (zero-size array)."""
    for a in (np.zeros((0, 0, 3), np.float32), np.zeros((0, 40, 3), np.uint8), torch.zeros(3, 0, 0)):
        with pytest.raises(LRError, match="empty"):
            load_image(a)


def test_decompression_bomb_refusal_names_the_limit(tmp_path, monkeypatch):
    """Bug: PIL's decompression-bomb refusal came out as "use a PNG or JPEG file" for a PNG."""
    p = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(LRError, match=r"MAX_IMAGE_PIXELS = 2,000 pixels") as e:
        load_image(p)
    assert "use a PNG" not in str(e.value)


def test_huge_image_is_refused_before_decoding(tmp_path, monkeypatch):
    """A file over 8192 px a side is refused from its header, without decoding its pixels."""
    p = tmp_path / "wide.png"
    Image.new("1", (9000, 3000)).save(p)
    from PIL import ImageFile

    def no_decode(self):
        raise AssertionError("decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    with pytest.raises(LRError, match="at most 8192"):
        load_image(p)


# --- every knob of LRConfig is checked, values and types -------------------------------------

@pytest.mark.parametrize("changes,match", [
    (dict(steps=0), "steps=0"), (dict(maskgit_steps=0), "maskgit_steps"), (dict(lr=-0.1), "lr=-0.1"),
    (dict(lr=0), "lr=0"), (dict(guidance_scale=-1), "guidance_scale"),
    (dict(guidance_scale=float("nan")), "finite"), (dict(maskgit_guidance=float("inf")), "finite"),
    (dict(n_aug=0), "n_aug"), (dict(K=2.5), "integer"), (dict(K=True), "integer"),
    (dict(M="5"), "integer"), (dict(epochs=-1), "epochs"), (dict(iters_per_epoch=1.5), "integer"),
    (dict(seed=-1), "seed"), (dict(alpha=-2), "alpha"), (dict(beta="1"), "beta"),
    (dict(gamma=float("nan")), "gamma"), (dict(lambda_dir=-1), "lambda_dir"), (dict(tau="1"), "tau"),
    (dict(roi_size=0), "roi_size"), (dict(rgn_hidden=0), "rgn_hidden"), (dict(rank_top=0), "rank_top"),
    (dict(editor_batch_size=0), "editor_batch_size"), (dict(anchor_spacing=-1), "anchor_spacing"),
    (dict(box_min=0), "box_min"), (dict(size="64"), "size"), (dict(progress="yes"), "True or False"),
    (dict(hard=1), "True or False"), (dict(device="gpu0"), "not a device"), (dict(dino=""), "dino"),
    (dict(default_caption=None), "default_caption"), (dict(prompt_template=3), "prompt_template")])
def test_every_knob_is_validated(changes, match):
    """Bug: steps=0 raised ZeroDivisionError deep in the editor, negative lr, NaN guidance or a
    float K were accepted; now each is an LRError naming the knob, before any model loads."""
    with pytest.raises(LRError, match=match):
        LRConfig.cpu(world="random").replace(**changes).validate()


def test_steps_zero_fails_before_any_model(monkeypatch):
    """`edit` with steps=0 is refused up front (not a ZeroDivisionError deep in the sampler)."""
    import lrlib
    import lrlib.pipeline

    def no_models(cfg):
        raise AssertionError("models loaded")
    monkeypatch.setattr(lrlib.pipeline, "load_models", no_models)
    with pytest.raises(LRError, match="steps=0"):
        lrlib.edit(Image.new("RGB", (64, 64)), "a cat", config=LRConfig.cpu(world="random", steps=0))
    assert LRConfig.cpu(world="random").validate() and LRConfig().validate()


def test_float_tensor_reads_the_same_pixels_as_its_to_pil_image():
    """Bug caught: load_image rounding a float tensor in float64 while to_pil (every lrlib output)
    rounds in float32, so pixels outside the box came back 1 level off (192 of 4,096 on a
    gradient): 'outside the box, the output equals the input' broke for tensor inputs."""
    from lrlib.images import load_image, to_pil
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    img = torch.stack([0.3 + 0.2 * x / 63, 0.4 + 0.0 * x, 0.5 + 0.2 * y / 63])
    assert np.array_equal(np.asarray(load_image(img)), np.asarray(to_pil(img)))
    assert np.array_equal(np.asarray(load_image(img.permute(1, 2, 0).numpy())), np.asarray(to_pil(img)))
