"""MaskGIT editor on a tiny random-weight aMUSEd folder, and the offline CLIP tokenizer."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from lrlib.editors.maskgit import MaskGITEditor, default_resolution, mask_schedule
from lrlib.errors import CheckpointUnavailableError, LRError

from lrlib.worlds.random_world import make_tiny_maskgit

RES = 64
GRID = 4


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_tiny_maskgit(str(tmp_path_factory.mktemp("tiny_amused")), size=RES)


@pytest.fixture(scope="module")
def editor(folder):
    return MaskGITEditor.from_pretrained(folder, device="cpu", steps=6)  # 6 of aMUSEd's 12: fast


def box_masks(boxes, size=RES):
    """One (y0, y1, x0, x1) box per image -> (B, 1, size, size)."""
    m = torch.zeros(len(boxes), 1, size, size)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        m[i, :, y0:y1, x0:x1] = 1
    return m


def images(b=2, size=RES, seed=0):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ tokenizer
def test_tokenizer_ids_equal_open_clip(tmp_path):
    import open_clip
    from transformers import CLIPTokenizer

    from lrlib.worlds.tokenizers import build_clip_tokenizer

    tok = build_clip_tokenizer(str(tmp_path))
    ref = open_clip.get_tokenizer("ViT-B-32")
    sentences = ["a photo of a cat", "A RED apple on the table, next to 3 bananas!",
                 "Don't   stop: the naïve café's crème brûlée", "mountains\nat sunset"]
    for s in sentences:
        assert tok(s, add_special_tokens=False)["input_ids"] == ref.encode(s), s
    assert len(tok) == 49408
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (49406, 49407, 49407)
    reloaded = CLIPTokenizer.from_pretrained(str(tmp_path))
    assert reloaded("a cat")["input_ids"] == [49406, 320, 2368, 49407]
    assert reloaded.model_max_length == 77


# ------------------------------------------------------------------ schedule
def test_mask_schedule_is_cosine_and_ends_at_zero():
    for n, steps in [(256, 12), (48, 12), (7, 3), (1, 5), (1024, 1)]:
        sched = mask_schedule(n, steps)
        assert len(sched) == steps and sched[-1] == 0
        assert all(a >= b for a, b in zip(sched, sched[1:]))
        assert all(0 <= s <= n for s in sched)
        prev = n
        for t, s in enumerate(sched[:-1]):   # cosine, clamped to [1, prev - 1] as MaskGIT
            assert s == max(1, min(prev - 1, math.floor(n * math.cos(math.pi / 2 * (t + 1) / steps))))
            prev = s
    assert mask_schedule(256, 12)[0] < 256  # some tokens are revealed at the first step
    assert mask_schedule(0, 4) == [0, 0, 0, 0]
    with pytest.raises(LRError):
        mask_schedule(10, 0)


# ------------------------------------------------------------------ loading
def test_loads_from_folder(editor):
    assert isinstance(editor, MaskGITEditor)
    assert editor.resolution == RES and editor.grid == GRID
    assert editor.token_shape == (RES // GRID, RES // GRID)
    assert editor.mask_id == editor.transformer.config.vocab_size - 1 == 64
    assert editor.device.type == "cpu" and editor.dtype == torch.float32
    assert editor.prompt_template is None
    assert editor.steps == 6 and editor.guidance_scale == 10.0 and editor.temperature == (2.0, 0.0)


def test_resolution_rule():
    class Cfg(dict):
        __getattr__ = dict.__getitem__

    class T:
        def __init__(self, **kw):
            self.config = Cfg(kw)

    assert default_resolution(T(sample_size=16), 16, "amused/amused-256") == 256
    assert default_resolution(T(sample_size=32), 16, "anything") == 512
    missing = dict(sample_size=64, _use_default_values=["sample_size"])
    assert default_resolution(T(**missing), 16, "amused/amused-256") == 256
    assert default_resolution(T(**missing), 16, "/ckpt/amused-512") == 512
    assert default_resolution(T(**missing), 16, "/my/folder") == 512


def test_missing_folder_raises_with_fix(tmp_path):
    path = str(tmp_path / "no_such_amused")
    with pytest.raises(CheckpointUnavailableError) as info:
        MaskGITEditor.from_pretrained(path, device="cpu")
    msg = str(info.value)
    assert path in msg and "To fix it" in msg and "maskgit_model" in msg


def test_missing_subfolder_raises(folder, tmp_path):
    broken = str(tmp_path / "broken")
    shutil.copytree(folder, broken)
    shutil.rmtree(os.path.join(broken, "text_encoder"))
    with pytest.raises(CheckpointUnavailableError, match="broken"):
        MaskGITEditor.from_pretrained(broken, device="cpu")


def test_hub_ids_are_passed_to_the_hub_paths_are_not(monkeypatch, tmp_path):
    import diffusers

    from lrlib.editors.maskgit import looks_like_path

    asked = []

    def fake_from_pretrained(name, **kwargs):
        asked.append((name, kwargs.get("subfolder")))
        raise OSError("sentinel: no hub in this test")

    monkeypatch.setattr(diffusers.VQModel, "from_pretrained", fake_from_pretrained)
    for hub_id in ["amused/amused-256", "amused/amused-512"]:
        with pytest.raises(CheckpointUnavailableError, match="sentinel"):
            MaskGITEditor.from_pretrained(hub_id, device="cpu")
    assert asked == [("amused/amused-256", "vqvae"), ("amused/amused-512", "vqvae")]
    for path in [str(tmp_path / "x"), "./ckpt/amused", "~/amused", "a/b/c"]:
        assert looks_like_path(path)
        with pytest.raises(CheckpointUnavailableError, match="no such folder"):
            MaskGITEditor.from_pretrained(path, device="cpu")
    assert len(asked) == 2  # missing local folders never reach the hub
    assert not looks_like_path("amused/amused-256")


def test_offline_hub_id_raises(tmp_path):
    code = textwrap.dedent("""
        import sys
        from lrlib.editors.maskgit import MaskGITEditor
        from lrlib.errors import CheckpointUnavailableError
        try:
            MaskGITEditor.from_pretrained("amused/amused-256")
        except CheckpointUnavailableError as e:
            print("RAISED", "amused/amused-256" in str(e), "HF_HUB_OFFLINE" in str(e))
        print("DEPRECATED", "diffusers.pipelines.deprecated.amused" in sys.modules)
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert "RAISED True True" in out.stdout, out.stdout + out.stderr
    assert "DEPRECATED False" in out.stdout  # our own loop: the deprecated pipeline is never loaded


# ------------------------------------------------------------------ inpaint
def test_inpaint_shape_range_dtype_device(editor):
    x, m = images(2), box_masks([(8, 30, 16, 50), (0, 64, 0, 20)])
    y = editor.inpaint(x, m, ["a red apple", "a blue sky"], torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.float32 and y.device == x.device
    assert not y.requires_grad and torch.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 1


def test_inpaint_resizes_to_working_resolution_and_back(editor):
    x = torch.rand(1, 3, 48, 80, generator=torch.Generator().manual_seed(1))
    m = torch.zeros(1, 1, 48, 80)
    m[..., 10:30, 20:60] = 1
    y = editor.inpaint(x, m, ["a cat"], torch.Generator().manual_seed(0))
    assert y.shape == (1, 3, 48, 80) and y.min() >= 0 and y.max() <= 1


def test_tokens_outside_mask_unchanged_and_masked_all_filled(editor):
    x, m = images(2), box_masks([(8, 30, 16, 50), (40, 64, 0, 25)])
    z_src, token_mask, z = editor.edit_tokens(x, m, ["a red apple", "grass"],
                                              torch.Generator().manual_seed(0))
    assert z.shape == z_src.shape == token_mask.shape == (2, 16, 16)
    assert torch.equal(token_mask, editor.token_mask(m))
    assert torch.equal(z[~token_mask], z_src[~token_mask])
    assert not (z == editor.mask_id).any()
    assert z.min() >= 0 and z.max() < editor.codebook_size
    assert (z[token_mask] != z_src[token_mask]).float().mean() > 0.5  # the box really is redrawn
    # the two images got their own boxes: 6 x 9 cells (rows 2..7, cols 4..12), 6 x 7 cells
    assert token_mask.sum((1, 2)).tolist() == [6 * 9, 6 * 7]


def test_masked_count_per_step_follows_cosine_schedule(editor):
    x, m = images(2), box_masks([(8, 30, 16, 50), (0, 64, 0, 64)])
    trace = []
    _, token_mask, _ = editor.edit_tokens(x, m, ["a", "b"], torch.Generator().manual_seed(0),
                                          trace=trace)
    assert len(trace) == editor.steps
    for i, n in enumerate(token_mask.sum((1, 2)).tolist()):
        assert [step[i] for step in trace] == mask_schedule(n, editor.steps)


def test_snap_mask_covers_box_and_is_grid_aligned(editor):
    m = box_masks([(9, 30, 17, 51), (0, 5, 62, 64)])
    s = editor.snap_mask(m)
    assert s.shape == m.shape
    assert (s >= m).all()  # covers the box
    cells = s.reshape(2, 1, 16, GRID, 16, GRID)
    assert (cells.amax((3, 5)) == cells.amin((3, 5))).all()  # each token cell all-in or all-out
    # tightest cover: rows 8..32, cols 16..52
    assert s[0, 0].nonzero()[:, 0].min() == 8 and s[0, 0].nonzero()[:, 0].max() == 31
    assert s[0, 0].nonzero()[:, 1].min() == 16 and s[0, 0].nonzero()[:, 1].max() == 51
    # at a size that is not the working resolution it still covers the box
    m2 = torch.zeros(1, 1, 50, 70)
    m2[..., 11:23, 33:47] = 1
    assert (editor.snap_mask(m2) >= m2).all()


def test_same_seed_same_output_other_seed_differs(editor):
    x, m = images(1), box_masks([(8, 40, 8, 40)])
    a = editor.inpaint(x, m, ["a dog"], torch.Generator().manual_seed(3))
    b = editor.inpaint(x, m, ["a dog"], torch.Generator().manual_seed(3))
    c = editor.inpaint(x, m, ["a dog"], torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_prompt_changes_the_edit(editor):
    x, m = images(1), box_masks([(8, 40, 8, 40)])
    _, _, za = editor.edit_tokens(x, m, ["a dog"], torch.Generator().manual_seed(3))
    _, _, zb = editor.edit_tokens(x, m, ["an old red car"], torch.Generator().manual_seed(3))
    assert not torch.equal(za, zb)


def test_long_prompt_is_encoded_in_chunks(editor):
    long = " ".join(["apple"] * 100)  # 100 tokens: 2 chunks
    first = " ".join(["apple"] * 75)  # exactly the first chunk
    h_long, p_long, u_h, u_p = editor.encode_prompts([long])
    h_first, p_first, _, _ = editor.encode_prompts([first])
    assert h_long.shape[:2] == (1, 154) and h_first.shape[:2] == (1, 77)
    assert torch.allclose(h_long[:, :77], h_first)
    assert not torch.allclose(h_long[:, 77:], h_first)
    assert not torch.allclose(p_long, p_first)  # the tail reaches the pooled condition too
    # unconditional branch: the empty prompt's chunk, repeated to the same length
    assert u_h.shape == h_long.shape and torch.equal(u_h[:, :77], u_h[:, 77:])

    # repeating the empty chunk leaves cross-attention unchanged: same logits for 77 or 154
    z = torch.randint(0, editor.codebook_size, (1, 16, 16))
    short = (u_h[:, :77], u_p, u_h[:, :77], u_p)
    assert torch.allclose(editor.logits(z, short), editor.logits(z, (u_h, u_p, u_h, u_p)),
                          atol=1e-4)

    # a batch mixing 1 and 2 chunks: the short one is padded with the empty prompt's chunk
    h, _, uh, _ = editor.encode_prompts(["a cat", long])
    assert h.shape[:2] == (2, 154)
    assert torch.equal(h[0, 77:], uh[0, :77])
    assert torch.equal(h[1], h_long[0])

    x, m = images(2), box_masks([(8, 40, 8, 40)] * 2)
    y = editor.inpaint(x, m, ["a cat", long], torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()
    _, _, z_long = editor.edit_tokens(x[:1], m[:1], [long], torch.Generator().manual_seed(0))
    _, _, z_first = editor.edit_tokens(x[:1], m[:1], [first], torch.Generator().manual_seed(0))
    assert not torch.equal(z_long, z_first)


def test_prompt_template_and_empty_prompt(folder, editor):
    templ = MaskGITEditor.from_pretrained(folder, device="cpu", prompt_template="a photo of {}")
    h_t, p_t, _, _ = templ.encode_prompts(["a cat"])
    h, p, _, _ = editor.encode_prompts(["a photo of a cat"])
    assert torch.equal(h_t, h) and torch.equal(p_t, p)
    x, m = images(1), box_masks([(8, 40, 8, 40)])
    with pytest.raises(LRError, match="empty"):
        editor.inpaint(x, m, ["   "], torch.Generator().manual_seed(0))
    with pytest.raises(LRError):
        editor.inpaint(x, m, ["a", "b"], torch.Generator().manual_seed(0))


def test_tiny_folder_has_amused_layout(folder):
    for sub in ["vqvae", "transformer", "text_encoder", "tokenizer"]:
        assert os.path.isdir(os.path.join(folder, sub))
    cfg = json.load(open(os.path.join(folder, "transformer", "config.json")))
    assert cfg["vocab_size"] == cfg["codebook_size"] + 1


def test_mask_crop_from_folder_defaults(folder, tmp_path):
    """`lrlib_editor.json` turns on the mask crop: each box is edited in a square crop around it
    at the working resolution and pasted back; outside the crop window the source is untouched,
    and the repainted region lrlib composites is the box itself."""
    from lrlib.editors.base import crop_windows

    crop_dir = tmp_path / "amused_crop"
    shutil.copytree(folder, crop_dir)
    (crop_dir / "lrlib_editor.json").write_text(json.dumps({"crop_margin": 1.5}))
    ed = MaskGITEditor.from_pretrained(str(crop_dir), device="cpu", steps=2)
    assert ed.crop_margin == 1.5
    assert MaskGITEditor.from_pretrained(str(crop_dir), device="cpu", crop_margin=2.0).crop_margin == 2.0
    x = torch.rand(2, 3, 128, 128)
    m = box_masks([(10, 30, 70, 90), (60, 100, 20, 50)], size=128)
    y = ed.inpaint(x, m, ["a red circle", "a blue square"], torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert torch.equal(ed.snap_mask(m), m)
    for i, (x0, y0, s) in enumerate(crop_windows(m, 1.5)):
        outside = torch.ones(128, 128, dtype=torch.bool)
        outside[y0:y0 + s, x0:x0 + s] = False
        assert torch.equal(y[i][:, outside], x[i][:, outside])
        assert not torch.equal(y[i][:, ~outside], x[i][:, ~outside])
