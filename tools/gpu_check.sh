#!/usr/bin/env bash
# The GPU check, one family per process, each under 4 minutes (a GPU loan is 15 minutes in all):
# random weights at the real architectures' sizes, fp16, no network. Per family
# (lrlib/bench/gpu_check.py): LRConfig() on a 4032 x 3024 photo with drafts (the default) and
# without, seconds per edit, peak GPU memory, whether every candidate came out finite, the
# window repainted on the photo, and the VAE's force_upcast as the real checkpoint's config says.
#
# Usage: bash tools/gpu_check.sh [family ...]     families: sd2 (default) sd15 sdxl amused speed
#        OUT=folder bash tools/gpu_check.sh sd2   (writes gpu_check.txt there; default outputs/gpu_check)
# "speed" is the full-size speed benchmark (SD 2 + ViT-B/16s at 512 px: lrlib vs the official loop).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONPATH=$PWD
PY=${PY:-python}
LIMIT=${LIMIT:-230}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$OUT/gpu_check.txt"
for fam in "${@:-sd2}"; do
  if [ "$fam" = speed ]; then
    cmd=($PY -m lrlib.bench speed --size full --device cuda)
  else
    cmd=($PY -m lrlib.bench gpu-check --family "$fam" --drafts 5 0)
  fi
  # a family that runs out of time is reported as such and the next one still runs
  timeout "$LIMIT" "${cmd[@]}" 2>&1 | grep -v "Loading\|Writing" | tee -a "$OUT/gpu_check.txt" \
    || echo "$fam: did not finish in $LIMIT s (or failed: see above)" | tee -a "$OUT/gpu_check.txt"
done
