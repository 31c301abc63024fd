"""The SD inpainting editor against diffusers itself: the same pipeline, called directly, must give
the same pixels; hooks on the UNet and the scheduler check what reaches them."""
import functools

import pytest
import torch
import torch.nn.functional as F

from lrlib.editors.base import EditorSettings
from lrlib.editors.sd import StableDiffusionEditor
from lrlib.errors import LRError
from lrlib.regions import boxes_to_masks

BOX = boxes_to_masks(torch.tensor([[8, 8, 40, 40]]), 64, 64)


@pytest.fixture(scope="module")
def sd(tiny_dirs):
    return StableDiffusionEditor.from_pretrained(tiny_dirs["sd"], device="cpu", steps=3,
                                                 guidance_scale=3.0)


@pytest.fixture(scope="module")
def ref(tiny_dirs):
    """The same checkpoint loaded by diffusers alone: the reference lrlib must reproduce."""
    from diffusers import StableDiffusionInpaintPipeline
    pipe = StableDiffusionInpaintPipeline.from_pretrained(tiny_dirs["sd"], safety_checker=None,
                                                          requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeds_used(sd, monkeypatch):
    """Record the per-image seeds the editor hands to the pipeline (however it derives them)."""
    seen = []
    cls = type(sd.pipe)
    call = cls.__call__

    def spy(self, *args, **kwargs):
        seen.append([g.initial_seed() for g in kwargs["generator"]])
        return call(self, *args, **kwargs)
    monkeypatch.setattr(cls, "__call__", spy)
    return seen


def unet_inputs(unet):
    """Forward hook recording (sample, encoder_hidden_states, output) of every UNet call."""
    calls = []

    def hook(module, args, kwargs, out):
        calls.append((args[0] if args else kwargs["sample"], kwargs["encoder_hidden_states"],
                      out[0] if isinstance(out, tuple) else out.sample))
    return calls, unet.register_forward_hook(hook, with_kwargs=True)


def hand_encoded(pipe, prompt, n_chunks):
    """The prompt's cross-attention states computed from the tokenizer and text encoder alone:
    75-token chunks, each `bos ... eos pad*` (77), encoded separately, concatenated."""
    tok, enc = pipe.tokenizer, pipe.text_encoder
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    rows = []
    for i in range(n_chunks):
        body = ids[75 * i:75 * (i + 1)]
        row = [tok.bos_token_id] + body + [tok.eos_token_id]
        rows.append(row + [tok.pad_token_id] * (77 - len(row)))
    with torch.no_grad():
        return enc(torch.tensor(rows))[0].reshape(1, 77 * n_chunks, -1)[0]


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


def test_scheduler_option_is_diffusers_dpm_solver_pp(sd, ref, scene, monkeypatch):
    """Each scheduler option gives exactly what diffusers' own pipeline gives with that scheduler
    and the same seed, and DPM-Solver++ is far from the default. Bugs caught: a scheduler setting
    that does not reach the sampler (or reaches it as another algorithm, e.g. the SDE variant, or
    without the checkpoint's config), a call that leaves its scheduler on the shared pipeline for
    the next one, and any drift of the editor's prompt encoding from diffusers' for a short
    prompt."""
    from diffusers import DPMSolverMultistepScheduler
    seen = seeds_used(sd, monkeypatch)
    default_cfg = ref.scheduler.config
    shared = sd.pipe.scheduler
    out = {}
    for name in ("default", "dpm++", "default"):
        out.setdefault(name, []).append(
            sd.inpaint(scene[None], BOX, ["a cat"], torch.Generator().manual_seed(0),
                       settings=EditorSettings(scheduler=name)))
        assert sd.pipe.scheduler is shared
    monkeypatch.undo()
    assert seen[0] == seen[1] == seen[2]
    for name, sched in (("default", type(ref.scheduler).from_config(default_cfg)),
                        ("dpm++", DPMSolverMultistepScheduler.from_config(
                            default_cfg, algorithm_type="dpmsolver++"))):
        ref.scheduler = sched
        want = ref(prompt="a cat", image=scene[None], mask_image=BOX, height=64, width=64,
                   num_inference_steps=sd.steps, guidance_scale=sd.guidance_scale, output_type="pt",
                   generator=[torch.Generator().manual_seed(s) for s in seen[0]]).images
        torch.testing.assert_close(out[name][0], want.float().clamp(0, 1), atol=1e-5, rtol=0)
    assert float((out["dpm++"][0] - out["default"][0]).abs().mean()) > 0.05
    assert torch.equal(out["default"][0], out["default"][1])     # nothing left behind


def test_guidance_scale_is_applied_to_the_unet_predictions(sd, scene, monkeypatch):
    """The prediction handed to the scheduler is eps_u + w (eps_c - eps_u), with eps_u from the
    empty prompt and eps_c from the prompt, w = the editor's guidance_scale; at w = 1 the UNet
    runs on the prompt alone and its prediction goes to the scheduler as it is. Bugs caught: a
    guidance scale that never reaches the pipeline, prompt and empty prompt swapped, a negative
    prompt that is not the empty one."""
    cond = hand_encoded(sd.pipe, "a cat", 1)
    empty = hand_encoded(sd.pipe, "", 1)
    for w in (3.0, 1.0):
        steps = []
        step = sd.pipe.scheduler.step

        @functools.wraps(step)
        def spy(model_output, *args, **kwargs):
            steps.append(model_output.clone())
            return step(model_output, *args, **kwargs)
        monkeypatch.setattr(sd.pipe.scheduler, "step", spy)
        calls, h = unet_inputs(sd.pipe.unet)
        try:
            sd.inpaint(scene[None], BOX, ["a cat"], torch.Generator().manual_seed(0),
                       settings=EditorSettings(guidance_scale=w))
        finally:
            h.remove()
            monkeypatch.undo()
        assert len(calls) == len(steps) == sd.steps
        for (sample, states, eps), guided in zip(calls, steps):
            if w == 1.0:
                assert sample.shape[0] == 1
                torch.testing.assert_close(states[0], cond, atol=1e-5, rtol=0)
                torch.testing.assert_close(guided, eps)
            else:
                assert sample.shape[0] == 2
                torch.testing.assert_close(states[0], empty, atol=1e-5, rtol=0)
                torch.testing.assert_close(states[1], cond, atol=1e-5, rtol=0)
                torch.testing.assert_close(guided, eps[:1] + w * (eps[1:] - eps[:1]))


def test_long_prompts_reach_cross_attention_in_chunks(sd, scene):
    """A ~160-token prompt reaches the UNet's cross-attention as 3 chunks of 77 states, each
    equal to the text encoder's output on that chunk; in the same batch a short prompt is its own
    chunk followed by empty-prompt chunks, and the empty prompt (guidance) is padded to the same
    length. Bugs caught: the prompt cut at 77 tokens (e.g. passed to diffusers as a string), a
    chunk boundary off by the start/end tokens, chunks of one prompt mixed with another's."""
    long = "a red circle on a grey background, " * 20
    n_tokens = len(sd.pipe.tokenizer(long, add_special_tokens=False)["input_ids"])
    assert 150 < n_tokens <= 225                                   # 3 chunks of 75
    calls, h = unet_inputs(sd.pipe.unet)
    try:
        sd.inpaint(scene[None].expand(2, -1, -1, -1), BOX.expand(2, -1, -1, -1),
                   [long, "a cat"], torch.Generator().manual_seed(0))
    finally:
        h.remove()
    states = calls[0][1]                                           # (2 * B, 77 * 3, D)
    empty = hand_encoded(sd.pipe, "", 1)
    assert states.shape[:2] == (4, 77 * 3)
    torch.testing.assert_close(states[2], hand_encoded(sd.pipe, long, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(states[3], torch.cat([hand_encoded(sd.pipe, "a cat", 1), empty, empty]),
                               atol=1e-5, rtol=0)
    for i in (0, 1):
        torch.testing.assert_close(states[i], empty.repeat(3, 1), atol=1e-5, rtol=0)


def test_resizes_to_its_resolution_and_back(sd, scene):
    """A 96 px input is denoised at the editor's resolution (64 px: 16 x 16 latents) and brought
    back: the result is the 64 px edit of the resized input, resized to 96 px. Bugs caught: the
    pipeline run at the input's size, the mask resized differently from the image, the result
    not resized back."""
    x = F.interpolate(scene[None], size=96)
    m = boxes_to_masks(torch.tensor([[12, 12, 60, 60]]), 96, 96)
    calls, h = unet_inputs(sd.pipe.unet)
    try:
        out = sd.inpaint(x, m, ["a blue square"], torch.Generator().manual_seed(0))
    finally:
        h.remove()
    assert calls[0][0].shape[-2:] == (16, 16)
    small = sd.inpaint(F.interpolate(x, size=64, mode="bilinear", antialias=True),
                       F.interpolate(m, size=64, mode="nearest"), ["a blue square"],
                       torch.Generator().manual_seed(0))
    want = F.interpolate(small, size=96, mode="bilinear", antialias=True).clamp(0, 1)
    assert out.shape == (1, 3, 96, 96)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=0)


def test_mask_crop_leaves_everything_outside_its_window_untouched(sd, scene):
    """With crop_margin 1.5, two masks in one batch: a 16 x 16 box at (8, 8) gets the window
    x, y in [4, 28) (side 24, centred), a 16 x 24 box at (40, 36) the window [28, 64) (side 36,
    shifted inside the image). Outside its own window each result is the input bit for bit, and
    inside it the editor did repaint. Bugs caught: windows swapped between batch items, a window
    not shifted inside the image, the whole image replaced by the decoded crop."""
    m = boxes_to_masks(torch.tensor([[8, 8, 24, 24], [40, 36, 56, 60]]), 64, 64)
    x = scene[None].expand(2, -1, -1, -1)
    sd.crop_margin = 1.5
    try:
        out = sd.inpaint(x, m, ["a cat", "a dog"], torch.Generator().manual_seed(0))
    finally:
        sd.crop_margin = None
    for i, (x0, y0, s) in enumerate([(4, 4, 24), (28, 28, 36)]):
        inside = torch.zeros(64, 64, dtype=torch.bool)
        inside[y0:y0 + s, x0:x0 + s] = True
        assert torch.equal(out[i][:, ~inside], scene[:, ~inside])
        assert float((out[i][:, inside] - scene[:, inside]).abs().mean()) > 0.02


def test_prompt_template_and_bad_args(sd, scene):
    """The template is applied to every prompt: "a cat" under "a high quality image of {}." is
    exactly the edit of the formatted text. Bug caught: a template stored but never used."""
    g = lambda: torch.Generator().manual_seed(0)
    plain = sd.inpaint(scene[None], BOX, ["a cat"], g())
    formatted = sd.inpaint(scene[None], BOX, ["a high quality image of a cat."], g())
    templated = sd.inpaint(scene[None], BOX, ["a cat"], g(),
                           settings=EditorSettings(prompt_template="a high quality image of {}."))
    assert torch.equal(templated, formatted) and not torch.equal(templated, plain)
    with pytest.raises(LRError, match="one each"):
        sd.inpaint(scene[None], torch.ones(1, 1, 64, 64), ["a", "b"], torch.Generator())
    with pytest.raises(LRError, match="masks must be"):
        sd.inpaint(scene[None], torch.ones(1, 64, 64), ["a"], torch.Generator())


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
