"""Benchmarks that print tables. Nothing here is imported by the library itself.

    python -m lrlib.bench toy --n 200            # region strategies and loss ablations, judged (toy.py)
    python -m lrlib.bench speed --size small     # UNet evaluations, seconds, memory per edit (speed.py)

| module | what it measures |
|---|---|
| `toy.py` | the whole method on held-out toy tasks, one row per region strategy, graded by the judge |
| `peers.py` | the peers' boxes (DiffEdit-style, CLIPSeg-style, DINO attention box) for toy.py |
| `speed.py` | UNet image-evaluations, seconds and peak memory per edit, lrlib vs the official loop |
"""
