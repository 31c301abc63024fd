"""The GPU check of one family: `LRConfig()` on a phone-sized photo, seconds, memory, finiteness.

    python -m lrlib.bench gpu-check --family sd2 --drafts 5 0     # one family, one process
    bash tools/gpu_check.sh sd2 sdxl                             # each family under its own limit

Random weights at the real architectures' sizes (`lrlib.bench.smoke.build_full`: no hub here),
fp16 editor on CUDA, DINO and CLIP in fp32 under autocast; the VAE config's `force_upcast` as the
real checkpoint's (transcribed in smoke.py). Per family it prints, for each `draft_steps` asked:
seconds per edit (after a small warm-up edit, so CUDA start-up and kernel selection are not
counted), peak GPU memory (`torch.cuda.max_memory_allocated`), whether every candidate came out
finite (random fp16 weights can overflow: the float32 retry and the drop are then exercised),
and the window repainted on the photo. Seconds do not depend on weight values; quality does, so
none is reported.
"""
from __future__ import annotations

import time

import numpy as np
import torch


PROMPT, CAPTION = "a bowl of ramen", "a red ball"


def to_cuda(models, dtype=torch.float16):
    """The smoke's CPU models moved to the GPU: the editor in `dtype`, DINO and CLIP in fp32."""
    dev = torch.device("cuda")
    ed = models.editor
    if getattr(ed, "kind", "") == "sd":
        ed.pipe.to(dev, dtype)
        ed.device = dev
    else:
        from lrlib.editors.maskgit import MaskGITEditor
        ed = MaskGITEditor(ed.vqvae, ed.transformer, ed.text_encoder, ed.tokenizer, device=dev,
                           dtype=dtype, name=ed.name)
    models.dino.to(dev)
    models.clip.to(dev)
    return models.__class__(dino=models.dino, clip=models.clip, editor=ed, device=dev,
                            world="random-full")


def force_upcast(editor) -> str:
    vae = getattr(getattr(editor, "pipe", None), "vae", None) or getattr(editor, "vqvae", None)
    return str(getattr(getattr(vae, "config", None), "force_upcast", "n/a"))


def run_check(family: str, drafts=(5, 0), photo_size=(4032, 3024)) -> list[str]:
    """One family: a warm-up edit, then one `LRConfig()` edit per draft setting; printed lines."""
    import lrlib
    from lrlib.bench.smoke import build_full, photo

    t0 = time.perf_counter()
    models, cfg = build_full(family)
    models = to_cuda(models)
    built = time.perf_counter() - t0
    image = photo(*photo_size)
    lines = [f"{family}: {type(models.editor).__name__} at {models.editor.resolution} px, built "
             f"in {built:.0f} s; VAE force_upcast={force_upcast(models.editor)}; photo "
             f"{photo_size[0]}x{photo_size[1]}; {torch.cuda.get_device_name()}"]
    print(lines[-1], flush=True)
    base = cfg.replace(device="cuda", progress=False)
    lrlib.edit(image, PROMPT, CAPTION, base.replace(K=1, M=2, steps=2, epochs=1,
                                                   iters_per_epoch=1, draft_steps=0), models)
    for d in drafts:
        c = base.replace(draft_steps=d)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        r = lrlib.edit(image, PROMPT, CAPTION, c, models)
        torch.cuda.synchronize()
        sec = time.perf_counter() - t
        finite = bool(torch.isfinite(r.candidates).all())
        lines.append(f"  LRConfig(draft_steps={d}) K={c.K} M={c.M} steps={c.steps}: {sec:.1f} s/edit, "
                     f"peak GPU {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, "
                     f"{len(r.results)} anchors edited, candidates finite: {finite}, "
                     f"final image {r.image.size}, repainted window {r.full_res_window}, "
                     f"recorded size={r.config.size} draft_steps={r.config.draft_steps}")
        assert np.asarray(r.image).shape[:2] == photo_size[::-1]
        print(lines[-1], flush=True)
    return lines
