"""The cost claims of lrlib.speed, counted on small models: UNet evaluations per edit."""
import torch

from lrlib.config import LRConfig
from lrlib.bench.speed import Counter, lrlib_edit, official_style_edit


def test_unet_evaluations_match_the_formulas(models, scene):
    m = models("sd")
    cfg = LRConfig.cpu(world="random", K=2, M=3, steps=3, guidance_scale=3.0, epochs=1, iters_per_epoch=2,
                       progress=False)
    m.editor.steps, m.editor.guidance_scale = cfg.steps, cfg.guidance_scale
    counter = Counter(m.editor.pipe.unet, torch.device("cpu"))
    T = 4
    with counter:
        official_style_edit(scene, "a blue square", cfg, m, T=T)
    official = counter.n
    with counter:
        lrlib_edit(scene, "a blue square", cfg, m)
    ours = counter.n
    assert official == 2 * cfg.steps * (T + 1) * cfg.K       # DDIM: one UNet call per step
    assert ours == 2 * cfg.steps * cfg.K * cfg.M
    assert counter.seconds > 0 and counter.mem_gb >= 0
