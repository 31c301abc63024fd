"""The real editors' paths, proved on small models of the same classes (no weights, no hub):
lrlib's SD / SDXL editors give what diffusers' own pipelines give, SDXL checkpoints are
recognised, removed hub ids are named with their replacements, and the MaskGIT decoder reveals
tokens as diffusers' `AmusedScheduler` does."""
import math

import pytest
import torch

from lrlib.editors.load import load_sd_editor
from lrlib.editors.sd import StableDiffusionEditor, image_generators
from lrlib.errors import CheckpointUnavailableError, LRError, checkpoint_error


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory):
    from lrlib.worlds.random_world import make_tiny_sdxl
    return make_tiny_sdxl(tmp_path_factory.mktemp("sdxl") / "sdxl")


def _inputs():
    torch.manual_seed(1)
    x = torch.rand(2, 3, 64, 64)
    m = torch.zeros(2, 1, 64, 64)
    m[0, :, 16:40, 8:48] = 1
    m[1, :, 30:60, 30:60] = 1
    return x, m


def _diffusers_own(ed, x, m, prompt, seed):
    """The checkpoint's diffusers pipeline called as its documentation does: prompt=...; with
    strength=1.0, pure noise in the box (SD's default; SDXL's is 0.9999, see lrlib.editors.sdxl)."""
    return ed.pipe(prompt=[prompt] * len(x), image=x, mask_image=m, height=ed.resolution,
                   width=ed.resolution, num_inference_steps=ed.steps,
                   guidance_scale=ed.guidance_scale, strength=1.0,
                   generator=image_generators(torch.Generator().manual_seed(seed), len(x)),
                   output_type="pt").images.clamp(0, 1)


@pytest.mark.parametrize("kind", ["sd", "sdxl"])
def test_editor_equals_diffusers_pipeline_for_a_short_prompt(kind, tiny_dirs, sdxl_dir):
    """Catches lrlib's own prompt encoding drifting from the pipeline's (wrong hidden layer,
    missing pooled embedding, wrong pad token, wrong unconditional branch, SDXL's zeroed negative
    prompt) or the call passing different images, masks, sizes or noise."""
    ed = load_sd_editor(tiny_dirs["sd"] if kind == "sd" else sdxl_dir, device="cpu", steps=3,
                        guidance_scale=5.0)
    assert type(ed).__name__ == ("StableDiffusionEditor" if kind == "sd" else "StableDiffusionXLEditor")
    x, m = _inputs()
    prompt = "a small red cube on a wooden table"
    ours = ed.inpaint(x, m, [prompt] * 2, torch.Generator().manual_seed(7))
    theirs = _diffusers_own(ed, x, m, prompt, 7)
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=0)
    other = ed.inpaint(x, m, ["a blue sphere"] * 2, torch.Generator().manual_seed(7))
    assert (other - ours).abs().max() > 1e-3        # the prompt matters: the check can fail


def test_sdxl_long_prompt_is_chunked_not_cut(sdxl_dir):
    """Catches a long prompt being cut at 77 tokens (its end would change nothing) or the
    pooled embedding ignoring the later chunks."""
    ed = load_sd_editor(sdxl_dir, device="cpu")
    head = "a photo of a red cube on a wooden table in a bright kitchen, " * 6   # > 75 tokens
    cond_a, pooled_a, uncond, _ = ed.encode_prompts([head + "painted green", "short"])
    cond_b, pooled_b, _, _ = ed.encode_prompts([head + "made of glass"])
    assert cond_a.shape == (2, 154, 64) and uncond.shape == cond_a.shape
    assert (cond_a[0, 77:] - cond_b[0, 77:]).abs().max() > 1e-4      # the second chunk is read
    assert not torch.allclose(pooled_a[0], pooled_b[0])
    assert float(uncond.abs().max()) == 0.0         # force_zeros_for_empty_prompt, as diffusers
    short, _, _, _ = ed.encode_prompts(["short"])
    torch.testing.assert_close(cond_a[1, :77], short[0, :77])          # padding leaves it alone


def test_text_to_image_checkpoint_is_refused_with_the_fix(tmp_path):
    """Catches a 4-channel (non-inpainting) UNet being run as an inpainter."""
    from diffusers import StableDiffusionPipeline
    from lrlib.worlds.random_world import make_tiny_sd
    from diffusers import UNet2DConditionModel

    path = make_tiny_sd(tmp_path / "sd")
    src = StableDiffusionEditor.from_pretrained(path, device="cpu").pipe
    cfg = dict(src.unet.config)
    cfg["in_channels"] = 4
    unet = UNet2DConditionModel.from_config(cfg)
    t2i = StableDiffusionPipeline(vae=src.vae, text_encoder=src.text_encoder, tokenizer=src.tokenizer,
                                  unet=unet, scheduler=src.scheduler, safety_checker=None,
                                  feature_extractor=None, requires_safety_checker=False)
    t2i.save_pretrained(tmp_path / "t2i")
    with pytest.raises(LRError, match="not an inpainting checkpoint"):
        load_sd_editor(str(tmp_path / "t2i"), device="cpu")


def test_removed_hub_id_error_names_the_replacement():
    """Catches the 404 of a removed repository being reported as 'offline' with no way out."""
    from huggingface_hub.errors import RepositoryNotFoundError

    text = "404 Client Error. Repository Not Found for url: https://huggingface.co/api/models/x"
    hub_error = RepositoryNotFoundError.__new__(RepositoryNotFoundError)  # its __init__ wants
    Exception.__init__(hub_error, text)                                   # an HTTP response
    try:
        try:
            raise hub_error
        except RepositoryNotFoundError as inner:
            raise OSError("stabilityai/stable-diffusion-2-inpainting is not a local folder") from inner
    except OSError as e:
        err = checkpoint_error("Stable Diffusion inpainting",
                               "stabilityai/stable-diffusion-2-inpainting", e, option="sd_model")
    msg = str(err)
    assert isinstance(err, CheckpointUnavailableError)
    assert "LRConfig(sd_model='sd2-community/stable-diffusion-2-inpainting')" in msg
    assert "diffusers/stable-diffusion-xl-1.0-inpainting-0.1" in msg and "offline" not in msg.lower()


def test_removed_default_id_loads_its_mirror_with_a_warning(monkeypatch):
    """Catches an old config (the removed stabilityai id) failing where the mirror would load."""
    import lrlib.editors.load as sd
    from lrlib.config import LRConfig
    from lrlib.models import load_editor

    asked = []
    monkeypatch.setattr(sd, "load_sd_editor", lambda name, **kw: asked.append(name) or
                        (_ for _ in ()).throw(RuntimeError("stop")))
    with pytest.warns(UserWarning, match="removed from the Hugging Face Hub"), \
            pytest.raises(RuntimeError, match="stop"):
        load_editor(LRConfig(sd_model="stabilityai/stable-diffusion-2-inpainting"), "cpu")
    assert asked == ["sd2-community/stable-diffusion-2-inpainting"]


# ------------------------------------------------------------------ MaskGIT's reveal schedule
@pytest.mark.parametrize("L,T", [(256, 12), (16, 12), (5, 8), (1024, 16), (64, 3)])
def test_maskgit_reveals_as_amused_scheduler_on_a_fully_masked_grid(L, T, tiny_dirs):
    """Catches the missing clamp (a step revealing nothing, or the last step left to fill a
    large remainder) and any off-by-one in the cosine schedule, against diffusers' own
    scheduler; and lrlib's decoder following its schedule step by step."""
    from diffusers import AmusedScheduler
    from lrlib.editors.maskgit import MaskGITEditor, mask_schedule

    K = 8
    sch = AmusedScheduler(mask_token_id=K, masking_schedule="cosine")
    sch.set_timesteps(T, temperature=(2.0, 0.0))
    g = torch.Generator().manual_seed(0)
    z = torch.full((1, L), K)                                   # every token masked
    theirs = []
    for t in sch.timesteps:
        z = sch.step(torch.randn(1, L, K, generator=g), t, z, generator=g).prev_sample
        theirs.append(int((z == K).sum()))
    ours = mask_schedule(L, T)
    for t, (a, b) in enumerate(zip(ours, theirs)):
        # aMUSEd takes the cosine in float32: where L cos is an integer in exact arithmetic
        # (256 cos(pi/3) = 128) its floor can come out one lower; nowhere else may they differ
        exact = L * math.cos(math.pi / 2 * (t + 1) / T)
        tie = abs(exact - round(exact)) < 1e-4 and t < T - 1
        assert a == b or (tie and abs(a - b) == 1), (t, ours, theirs)
    if L <= 256:   # the tiny editor's token grid is 16 x 16
        ed = MaskGITEditor.from_pretrained(tiny_dirs["maskgit"], device="cpu", steps=T)
        h, w = ed.token_shape
        tokens = torch.zeros(1, h, w, dtype=torch.long)
        mask = torch.zeros(1, h, w, dtype=torch.bool)
        mask.view(-1)[:L] = True
        trace = []
        ed.generate_tokens(tokens, mask, ["a red circle"], torch.Generator().manual_seed(0), trace)
        assert [n[0] for n in trace] == ours
