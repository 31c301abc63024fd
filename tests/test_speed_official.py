"""The cost model of lrlib.bench.speed, counted with hooks on the real diffusers UNet and the CLIP
visual tower, against numbers taken from diffusers' own schedulers and the official loop's
structure (T + 1 SD runs of K images), never from lrlib's formulas; plus the CLIP-work, draft
and LoRA options."""
import pytest
import torch

from lrlib.bench.speed import official_style_edit
from lrlib.config import LRConfig


class Hooks:
    """UNet forward calls, UNet image-evaluations (batch items) and CLIP image forwards."""

    def __init__(self, unet, visual):
        self.calls = self.unet = self.clip = 0
        self.batches = set()
        self.h = [unet.register_forward_pre_hook(self._u, with_kwargs=True),
                  visual.register_forward_pre_hook(self._c, with_kwargs=True)]

    def _u(self, m, args, kwargs):
        b = (args[0] if args else kwargs["sample"]).shape[0]
        self.calls, self.unet = self.calls + 1, self.unet + b
        self.batches.add(b)

    def _c(self, m, args, kwargs):
        self.clip += args[0].shape[0]

    def close(self):
        for h in self.h:
            h.remove()


def n_timesteps(editor, name, steps):
    """UNet calls of scheduler `name` for `steps`, as diffusers itself sets them (on a copy of the
    scheduler the editor samples with: the shared one is left alone)."""
    sched = editor.pipeline(name).scheduler
    sched = type(sched).from_config(sched.config)
    sched.set_timesteps(steps)
    return len(sched.timesteps)


def test_official_loop_counts_come_from_diffusers_pndm(models, scene):
    """Catches an official model that regenerates less (or more) than T + 1 times, forgets the
    K-image batch or guidance, or runs DDIM where the official code ran PNDM (51 calls for 50)."""
    m = models("sd")
    K, T, steps = 2, 3, 4
    pndm = n_timesteps(m.editor, "pndm", steps)
    assert pndm == steps + 1                   # PNDM's own extra step (diffusers' behaviour)
    cfg = LRConfig.cpu(K=K, steps=steps, guidance_scale=3.0, progress=False)
    before = m.editor.steps, m.editor.prompt_template, m.editor.pipe.scheduler
    hooks = Hooks(m.editor.pipe.unet, m.clip.model.visual)
    try:
        final, box, anchor = official_style_edit(scene, "a blue square", cfg, m, T=T,
                                                 caption="a red disc")
    finally:
        hooks.close()
    assert hooks.calls == pndm * (T + 1)      # one SD run per iteration + the final one
    assert hooks.batches == {2 * K}           # K images, doubled by classifier-free guidance
    assert hooks.unet == 2 * K * pndm * (T + 1)
    # per iteration and image: 16 views (L_clip) + 16 + 16 (L_dir) + its tokens (L_str)
    assert hooks.clip >= (16 + 32 + 1) * K * T
    assert final.shape == (3, cfg.size, cfg.size) and len(box) == 4
    assert (m.editor.steps, m.editor.prompt_template, m.editor.pipe.scheduler) == before  # untouched


def test_lrlib_candidates_and_drafts_count_from_diffusers(models, scene):
    """Catches candidates generated more than once, a draft run that does not switch to the
    fast sampler, or one that regenerates more than the winner."""
    from lrlib.bench.speed import lrlib_edit
    m = models("sd")
    K, M, steps, d = 2, 3, 4, 2
    full = n_timesteps(m.editor, "default", steps)
    fast = n_timesteps(m.editor, "dpm++", d)
    cfg = LRConfig.cpu(K=K, M=M, steps=steps, guidance_scale=3.0, epochs=1, iters_per_epoch=3,
                       progress=False)
    counts = []
    for c in (cfg, cfg.replace(draft_steps=d)):
        hooks = Hooks(m.editor.pipe.unet, m.clip.model.visual)
        try:
            lrlib_edit(scene, "a blue square", c, m)
        finally:
            hooks.close()
        counts.append(hooks.unet)
    assert counts[0] == 2 * K * M * full
    assert counts[1] == 2 * (K * M * fast + full)


def test_regenerate_gives_back_the_candidate(models, scene):
    """Catches regenerate() drawing other noise than generate_candidates (a seed-formula drift,
    or the position in the batch ignored): with the same sampler it must give the same image."""
    from lrlib.additions.drafts import regenerate
    from lrlib.editors.base import EditorSettings
    from lrlib.pipeline import prepare
    m = models("sd")
    cfg = LRConfig.cpu(world="random", K=2, M=3, editor_batch_size=4, progress=False)
    p = prepare(scene, "a blue square", None, cfg, m)
    for k, j in ((0, 1), (1, 2)):              # batch 0 position 1; batch 1 position 1
        again = regenerate(m.editor, p.x, p.masks[k, j], p.prompt, cfg.seed, k * p.M + j,
                           cfg.editor_batch_size, EditorSettings.from_config(cfg))
        assert torch.allclose(again, p.C[k, j], atol=1e-4)   # batched vs single: ~2e-5 of float noise
    assert not torch.allclose(p.C[0, 1], p.C[1, 2])


def test_loss_table_is_computed_once(models, scene):
    """Catches the "expected" estimator re-evaluating every candidate at every iteration: with a
    table the CLIP forwards do not grow with the iterations; redrawn (table_views=0) they do."""
    from lrlib.pipeline import prepare, train_and_choose
    m = models("sd")
    cfg = LRConfig.cpu(K=2, M=3, n_aug=2, estimator="expected", progress=False)
    p = prepare(scene, "a blue square", None, cfg, m)
    seen = {}
    for views in (5, 0):
        for iters in (1, 4):
            hooks = Hooks(m.editor.pipe.unet, m.clip.model.visual)
            try:
                probs, hist = train_and_choose(p, cfg.replace(table_views=views, epochs=1,
                                                              iters_per_epoch=iters))
            finally:
                hooks.close()
            seen[views, iters] = hooks.clip
            assert len(hist.loss) == iters and torch.isfinite(probs).all()
    KM = 2 * 3
    assert seen[5, 1] == seen[5, 4] == KM * (5 + 1)
    assert seen[0, 4] == 4 * seen[0, 1] == 4 * KM * (2 + 1)


def test_chunked_clip_forwards_equal_one_batch(clip):
    """Catches chunks that drop, reorder or mis-normalise images, or cut the gradient."""
    x = torch.rand(7, 3, 40, 40, requires_grad=True)
    big = clip.encode_image(x)
    old = clip.chunk
    try:
        clip.chunk = 3
        small = clip.encode_image(x)
        tok_small = clip.tokens(x)
    finally:
        clip.chunk = old
    assert torch.allclose(big, small, atol=1e-5)
    assert torch.allclose(clip.tokens(x), tok_small, atol=1e-5)
    small.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_lcm_lora_option_loads_a_lora_and_runs_four_lcm_steps(tiny_dirs, tmp_path, scene):
    """Catches a LoRA that is not applied (output unchanged), an LCM option that does not sample
    with LCMScheduler at `steps` UNet calls, and a cache that hands the LoRA-fused editor to
    configs without a LoRA."""
    pytest.importorskip("peft")
    from diffusers import StableDiffusionInpaintPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    from lrlib.models import load_editor
    base = StableDiffusionInpaintPipeline.from_pretrained(tiny_dirs["sd"])
    unet = base.unet
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():                      # B starts at zero: make the LoRA do something
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(len(name)))
    StableDiffusionInpaintPipeline.save_lora_weights(
        tmp_path, convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)))

    cfg = LRConfig.cpu(world="random", scheduler="lcm", steps=4, guidance_scale=1.5)
    x = scene[None]
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    outs = []
    plain = load_editor(cfg, "cpu", tiny_dirs["sd"])     # the cached weights other tests use
    lora = load_editor(cfg.replace(lora=str(tmp_path)), "cpu", tiny_dirs["sd"])
    assert plain.pipe is not lora.pipe and lora.defaults.scheduler == "lcm"
    assert type(lora.pipeline("lcm").scheduler).__name__ == "LCMScheduler"
    for ed in (plain, lora):
        hooks = Hooks(ed.pipe.unet, torch.nn.Identity())
        try:
            outs.append(ed.inpaint(x, mask, ["a blue square"], torch.Generator().manual_seed(0)))
        finally:
            hooks.close()
        assert hooks.calls == 4            # LCMScheduler: one UNet call per step
    assert (outs[0] - outs[1]).abs().max() > 1e-3
