"""The built-in demo: one toy-world edit of the embedded scene (`python -m lrlib demo`, `make demo`).

The scene is toy task seed 7 at 128 px: "the red circle" -> "a purple cross". The notebooks and
benchmarks use the same constants, so every entry point shows the same first edit.
"""
from __future__ import annotations

from pathlib import Path

from lrlib.config import LRConfig

DEMO_IMAGE = Path(__file__).parent / "data" / "demo.png"
DEMO_CAPTION, DEMO_PROMPT = "the red circle", "a purple cross"   # toy task seed 7, 128 px


def run_demo(out_dir, cfg: LRConfig | None = None) -> str:
    """One edit on the embedded default scene (`cfg` default: the world by lrlib.worlds' rule)."""
    from lrlib.pipeline import edit
    from lrlib.worlds import choose_world, config_for

    cfg = cfg or config_for(choose_world())
    r = edit(DEMO_IMAGE, DEMO_PROMPT, caption=DEMO_CAPTION, config=cfg)
    out = r.save(out_dir)
    return (f"demo: '{DEMO_CAPTION}' -> '{DEMO_PROMPT}' | world={cfg.world} editor={cfg.editor} | "
            f"best anchor {r.best} box {r.best_box} S={r.scores['S'][r.best]:.3f} | "
            f"{r.seconds:.1f} s | wrote {out}/final.png, figure.png, result.json")
