#!/usr/bin/env bash
# The GPU check, prepared to run in a few minutes on one CUDA GPU with no network (not run yet:
# no GPU has been lent to this project). Random weights at the real architectures' sizes:
#   1. the smoke's four families at the paper settings (K=9, M=7, 50 steps, 5 x 10 iterations),
#      fp16, one edit each: seconds per edit and peak GPU memory;
#   2. the full-size speed benchmark (SD 2 inpainting + ViT-B/16s at 512 px): lrlib vs official.
# Usage: bash tools/gpu_check.sh [outdir]   (writes gpu_check.txt there; at most 4 x 4 + 5 min)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-outputs/gpu_check}}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONPATH=$PWD
PY=${PY:-python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu_check.txt"
# one process per family (the default, sd2, first), each under its own limit: a family that runs
# out of time is reported as such and the next one still runs
for fam in sd2 amused sd15 sdxl; do
timeout 240 $PY - "$fam" <<'PY' 2>&1 | grep -v "Loading\|Writing" | tee -a "$OUT/gpu_check.txt" || echo "$fam: did not finish in 240 s" | tee -a "$OUT/gpu_check.txt"
import sys, time, torch
import lrlib
from lrlib.bench.smoke import build_full, photo, release_memory
from lrlib.config import LRConfig

dev = torch.device("cuda")
paper = dict(K=9, M=7, steps=50, epochs=5, iters_per_epoch=10, n_aug=4, progress=False)
for fam in sys.argv[1:]:
    models, cfg = build_full(fam)
    ed = models.editor
    if cfg.editor == "sd":
        ed.pipe.to(dev, torch.float16)
        ed.device = dev
        ed.steps, ed.guidance_scale = paper["steps"], 7.5
    else:
        from lrlib.editors.maskgit import MaskGITEditor
        ed = MaskGITEditor(ed.vqvae, ed.transformer, ed.text_encoder, ed.tokenizer, device=dev,
                           dtype=torch.float16, name=ed.name)
    models.dino.to(dev); models.clip.to(dev)
    models = models.__class__(dino=models.dino, clip=models.clip, editor=ed, device=dev, world="gpu")
    cfg = cfg.replace(device="cuda", **paper)
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    lrlib.edit(photo(), "a bowl of ramen", caption="a red ball", config=cfg, models=models)
    torch.cuda.synchronize()
    print(f"{fam}: paper settings {paper}, fp16: {time.perf_counter() - t0:.1f} s/edit, "
          f"peak GPU {torch.cuda.max_memory_allocated() / 2**30:.2f} GB", flush=True)
    del models, ed
    release_memory(); torch.cuda.empty_cache()
PY
done
timeout 300 $PY -m lrlib.bench speed --size full --device cuda 2>&1 | grep -v "Loading\|Writing" | tee -a "$OUT/gpu_check.txt"
