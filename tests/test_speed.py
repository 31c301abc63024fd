"""The cost claims of lrlib.bench.speed, counted on the real diffusers classes (tiny weights):
UNet evaluations per edit, counted by plain forward hooks, and the peak-memory probe."""
import time

import torch

from lrlib.bench.speed import Counter, lrlib_edit, official_style_edit
from lrlib.config import LRConfig
from lrlib.regions import boxes_to_masks


class Hook:
    """Counts UNet forward calls and the images they return: diffusers only, no lrlib code."""

    def __init__(self, unet):
        self.calls, self.images = 0, 0
        self.h = unet.register_forward_hook(self.count)

    def count(self, module, args, out):
        sample = out[0] if isinstance(out, tuple) else out.sample
        self.calls += 1
        self.images += sample.shape[0]


def test_pndm_runs_the_unet_steps_plus_one_times(models, scene):
    """The real pipeline (diffusers' StableDiffusionInpaintPipeline with SD 2's PNDM scheduler),
    called directly: N steps make N + 1 UNet calls (the PLMS warm-up repeats one timestep; SD 2
    at 50 steps: 51), each on 2 images (classifier-free guidance). Bug caught: a cost formula
    (lrlib's or a benchmark's) that counts one UNet call per step for PNDM."""
    ed = models("sd").editor
    pipe = ed.pipeline("pndm")          # SD 2 inpainting's own scheduler (PNDM, PLMS steps only)
    mask = boxes_to_masks(torch.tensor([[8, 8, 40, 40]]), 64, 64)
    for n_steps in (3, 5):
        hook = Hook(pipe.unet)
        try:
            pipe(prompt="a blue square", image=scene[None], mask_image=mask, height=64, width=64,
                 num_inference_steps=n_steps, guidance_scale=3.0, output_type="pt",
                 generator=torch.Generator().manual_seed(0))
        finally:
            hook.h.remove()
        assert (hook.calls, hook.images) == (n_steps + 1, 2 * (n_steps + 1))


def test_counter_agrees_with_a_plain_hook_and_the_loops_cost_what_they_claim(models, scene):
    """lrlib's Counter against a plain forward hook, on both loops, with PNDM (steps + 1 UNet
    calls per editor run, measured above). The official loop runs the editor for K anchors at
    each of T iterations plus once at the end; lrlib runs the K * M candidates once:

        official: 2 * (steps + 1) * (T + 1) * K        lrlib: 2 * (steps + 1) * K * M

    Bugs caught: a Counter that counts calls instead of images, or does not reset between
    blocks; an official-style loop that skips the final run or regenerates only some anchors;
    an lrlib edit that calls the editor again during training or ranking."""
    m = models("sd")
    cfg = LRConfig.cpu(world="random", K=2, M=3, steps=3, guidance_scale=3.0, epochs=1,
                       iters_per_epoch=2, scheduler="pndm", progress=False)
    counter = Counter(m.editor.pipe.unet, torch.device("cpu"))
    per_run = cfg.steps + 1
    T = 2
    counts = {}
    for name, run in (("official", lambda: official_style_edit(scene, "a blue square", cfg, m, T=T)),
                      ("lrlib", lambda: lrlib_edit(scene, "a blue square", cfg, m))):
        hook = Hook(m.editor.pipe.unet)
        try:
            with counter:
                run()
        finally:
            hook.h.remove()
        assert counter.n == hook.images, name
        counts[name] = (hook.calls, hook.images)
    assert counts["official"] == ((T + 1) * per_run, 2 * per_run * (T + 1) * cfg.K)
    assert counts["lrlib"] == (per_run, 2 * per_run * cfg.K * cfg.M)     # one batched run
    assert counter.seconds > 0


def test_counter_peak_memory_sees_a_tensor_allocated_inside_the_block():
    """A 256 MiB tensor allocated, held for a moment and freed inside the block: the reported
    peak is at least its size and not wildly more. Bugs caught: a peak read only at the end
    (after the free: ~0), the start and end swapped (negative), the wrong unit (MiB read as GiB)."""
    counter = Counter(torch.nn.Identity(), torch.device("cpu"))
    with counter:
        big = torch.ones(64 * 2**20)                   # float32: 256 MiB, every page touched
        time.sleep(0.3)                                # the sampler reads every 20 ms
        del big
    print(f"peak {counter.mem_gb:.3f} GiB for a 0.25 GiB tensor")
    assert 0.24 <= counter.mem_gb < 1.0
