"""How fast the toy world draws its scenes: `python -m lrlib.bench scenes --n 100`.

Trainers and benchmarks render scenes on the fly (`lrlib.toy.scenes.render_batch`), so drawing
must stay far cheaper than a model step: about 1 ms a 64 px scene on one CPU core. This prints
the figure (wall clock, best of `repeats` runs, so a busy machine shows its least-disturbed run).
"""
from __future__ import annotations

import time


def run_scenes(n: int = 100, size: int = 64, repeats: int = 3) -> str:
    """Render n scenes `repeats` times; return a one-line report of the best run."""
    from lrlib.toy.scenes import render_batch

    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        render_batch(range(n), size)
        best = min(best, time.perf_counter() - t0)
    return (f"toy scenes: {n} scenes of {size} px in {best:.3f} s "
            f"({1000 * best / n:.2f} ms a scene, best of {repeats})")
