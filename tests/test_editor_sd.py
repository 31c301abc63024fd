import pytest
import torch

from lrlib.editors.sd import StableDiffusionEditor
from lrlib.errors import LRError
from lrlib.regions import boxes_to_masks


@pytest.fixture(scope="module")
def sd(tiny_dirs):
    return StableDiffusionEditor.from_pretrained(tiny_dirs["sd"], device="cpu", steps=3,
                                                 guidance_scale=3.0)


def test_inpaint_shapes_range_and_determinism(sd, scene):
    x = scene[None].expand(2, -1, -1, -1)
    m = boxes_to_masks(torch.tensor([[8, 8, 40, 40], [20, 10, 60, 50]]), 64, 64)
    a = sd.inpaint(x, m, ["a blue square", "a green star"], torch.Generator().manual_seed(0))
    b = sd.inpaint(x, m, ["a blue square", "a green star"], torch.Generator().manual_seed(0))
    c = sd.inpaint(x, m, ["a blue square", "a green star"], torch.Generator().manual_seed(1))
    assert a.shape == (2, 3, 64, 64) and a.dtype == torch.float32
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    # batch-size independent: the first image alone gives the same result
    one = sd.inpaint(x[:1], m[:1], ["a blue square"], torch.Generator().manual_seed(0))
    torch.testing.assert_close(one, a[:1], atol=1e-4, rtol=0)
    assert sd.resolution == 64


def test_long_prompts_are_encoded_in_chunks(sd):
    long = "a red circle on a grey background, " * 20          # > 77 tokens
    cond, uncond = sd.encode_prompts([long, "a cat"])
    assert cond.shape[1] == 77 * 3 and uncond.shape == cond.shape
    short, _ = sd.encode_prompts(["a cat"])
    torch.testing.assert_close(cond[1, :77], short[0, :77])    # the short prompt, padded after
    first_chunk, _ = sd.encode_prompts([long[:150]])
    assert not torch.allclose(cond[0, 77:154], first_chunk[0, :77])


def test_resizes_to_its_resolution_and_back(sd, scene):
    x = torch.nn.functional.interpolate(scene[None], size=96)
    m = boxes_to_masks(torch.tensor([[10, 10, 50, 50]]), 96, 96)
    out = sd.inpaint(x, m, ["a blue square"], torch.Generator().manual_seed(0))
    assert out.shape == (1, 3, 96, 96)


def test_prompt_template_and_bad_args(sd, scene):
    sd.prompt_template = "a high quality image of {}."
    try:
        out = sd.inpaint(scene[None], boxes_to_masks(torch.tensor([[8, 8, 40, 40]]), 64, 64),
                         ["a cat"], torch.Generator().manual_seed(0))
        assert out.shape == (1, 3, 64, 64)
    finally:
        sd.prompt_template = None
    with pytest.raises(LRError, match="one each"):
        sd.inpaint(scene[None], torch.ones(1, 1, 64, 64), ["a", "b"], torch.Generator())
    with pytest.raises(LRError, match="masks must be"):
        sd.inpaint(scene[None], torch.ones(1, 64, 64), ["a"], torch.Generator())


def test_fast_scheduler_option(sd, scene):
    m = boxes_to_masks(torch.tensor([[8, 8, 40, 40]]), 64, 64)
    base = sd.inpaint(scene[None], m, ["a cat"], torch.Generator().manual_seed(0))
    sd.set_scheduler("dpm++")
    try:
        assert type(sd.pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
        fast = sd.inpaint(scene[None], m, ["a cat"], torch.Generator().manual_seed(0))
        assert fast.shape == base.shape and not torch.equal(fast, base)
    finally:
        sd.set_scheduler("default")
    again = sd.inpaint(scene[None], m, ["a cat"], torch.Generator().manual_seed(0))
    assert torch.equal(again, base)


def test_bfloat16_editor_runs_on_cpu(tiny_dirs, scene):
    from lrlib.config import LRConfig
    from lrlib.models import editor_dtype, load_editor
    cfg = LRConfig.cpu(dtype="bfloat16", steps=2)
    assert editor_dtype(LRConfig.cpu(), "cpu") == torch.float32
    ed = load_editor(cfg, "cpu", tiny_dirs["sd"])
    assert ed.pipe.unet.dtype == torch.bfloat16
    out = ed.inpaint(scene[None], boxes_to_masks(torch.tensor([[8, 8, 40, 40]]), 64, 64), ["a cat"],
                     torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
