"""Benchmarks that print tables. Nothing here is imported by the library itself.

    python -m lrlib.bench toy --n 200            # region strategies and loss ablations, judged (toy.py)
    python -m lrlib.bench speed --size toy       # UNet evals, CLIP forwards, seconds, memory per edit (speed.py)
    python -m lrlib.bench draft --n 200          # drafts + regenerated winner vs full candidates, judged (speed.py)
    python -m lrlib.bench blend --n 50           # does feathering the paste hide the box? (blend.py)

| module | what it measures |
|---|---|
| `toy.py` | the whole method on held-out toy tasks, one row per region strategy, graded by the judge |
| `speed.py` | UNet image-evaluations, CLIP forwards, seconds, peak memory and quality per edit, lrlib's modes vs the official loop; the draft benchmark |
| `blend.py` | seam, success and preservation of the final paste for several `blend_px` |
"""
