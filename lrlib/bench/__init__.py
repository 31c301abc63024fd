"""Benchmarks that print tables. Nothing here is imported by the library itself.

    python -m lrlib.bench toy --n 200            # region strategies and loss ablations, judged (toy.py)
    python -m lrlib.bench learning --n 100       # ceiling, floor, random vs learned choice of a box (learning.py)
    python -m lrlib.bench speed --size toy       # UNet evals, CLIP forwards, seconds, memory per edit (speed.py)
    python -m lrlib.bench draft --n 200          # drafts + regenerated winner vs full candidates, judged (speed.py)
    python -m lrlib.bench smoke --size full      # every default architecture, one edit each (smoke.py)
    python -m lrlib.bench blend --n 50           # does feathering the paste hide the box? (blend.py)
    python -m lrlib.bench scenes                 # milliseconds to draw a toy scene (scenes.py)
    python -m lrlib.bench prepare                # seconds of prepare's CPU-side stages, 64-1024 px (prepare.py)
    python -m lrlib.bench estimate               # GPU seconds per edit, estimated from counted work (gpu_estimate.py)
    python -m lrlib.bench gpu-check --family sd2 # on a CUDA GPU: LRConfig() s/edit, peak memory (gpu_check.py)

| module | what it measures |
|---|---|
| `toy.py` | the whole method on held-out toy tasks, one row per region strategy, graded by the judge |
| `learning.py` | does the RGN's choice matter: best / worst / random / fixed / learned choice among the same judged candidates, per proposal family; results in LEARNING.md |
| `peers.py` | the peers' boxes (DiffEdit-style, CLIPSeg-style, DINO attention box) for toy.py |
| `speed.py` | UNet image-evaluations, CLIP forwards, seconds, peak memory and quality per edit, lrlib's modes vs the official loop; the draft benchmark |
| `smoke.py` | the real architectures (random weights) end to end on a photo: seconds and peak RSS |
| `blend.py` | seam, success and preservation of the final paste for several `blend_px` |
| `scenes.py` | wall-clock time to draw the toy world's scenes (render_batch) |
| `prepare.py` | seconds per stage of `pipeline.prepare` before the editor (DINO, anchors, caption, fitted blobs, ROI) at 64-1024 px, real classes with random weights |
| `gpu_check.py` | on a CUDA GPU, one family at full size with random weights: `LRConfig()` seconds per edit with and without drafts, peak GPU memory, finiteness (`tools/gpu_check.sh`) |
| `gpu_estimate.py` | UNet evaluations, VAE calls and CLIP forwards per edit (exact, from the config) times measured FLOPs: GPU seconds, labelled estimates |
"""
