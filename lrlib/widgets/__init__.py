"""The widget lab: prompt experiments a person drives in a browser (notebook 10).

    from lrlib.widgets import make_ui
    ui = make_ui(base=cfg, models=models)     # display it: `ui` as a cell's last expression

The panel (`panel.Panel`, ipywidgets 7 and 8) runs an edit only when its button is pressed, with
the values its controls show at that moment, and shows progress, the result with every term of
the ranking score, and a history of runs to compare and export. Behind it are plain functions
(`lab`: Settings, presets, control rules, run_edit, export_run) that tests and code call directly;
`edit_from_controls` is one edit with keyword settings, returning the result and its figure.
Importing this package does not import ipywidgets; `make_ui` does.
"""
from __future__ import annotations

from lrlib.config import LRConfig
from lrlib.widgets.lab import (Run, Settings, control_rules, export_run, preset_config,
                               progress_to, run_edit, sample_images, uploaded_files)

__all__ = ["Run", "Settings", "control_rules", "edit_from_controls", "export_run", "make_ui",
           "preset_config", "progress_to", "run_edit", "sample_images", "uploaded_files"]


def edit_from_controls(image, prompt: str, caption: str = "", K: int | None = None,
                       M: int | None = None, tau: float | None = None,
                       lambda_clip: float | None = None, lambda_str: float | None = None,
                       lambda_dir: float | None = None, alpha: float | None = None,
                       beta: float | None = None, editor: str | None = None,
                       base: LRConfig | None = None, models=None, progress=None, **more):
    """One edit with these settings on top of `base` (default LRConfig.cpu()); a setting left
    None keeps base's value. `more`: any other `lab.Settings` field (estimator, gamma, delta,
    iterations, seed, caption_anchors, prune, preset). Returns (EditResult, its figure)."""
    base = base or LRConfig.cpu()
    given = dict(K=K, M=M, tau=tau, lambda_clip=lambda_clip, lambda_str=lambda_str,
                 lambda_dir=lambda_dir, alpha=alpha, beta=beta, editor=editor)
    given = {k: v for k, v in given.items() if v is not None}
    s = Settings.from_config(base, prompt=prompt, caption=caption or "", **given, **more)
    r = run_edit(image, s, base, models, progress)
    return r, r.figure()


def make_ui(base: LRConfig | None = None, models=None, image=None, prompt: str | None = None,
            caption: str | None = None, samples: dict | None = None):
    """The lab's panel (lrlib.widgets.panel.Panel) on `base` (default: the world lrlib.worlds
    chooses) with `models` loaded once and shared by every run. `image` (optional) is added to
    the samples and selected; prompt / caption default to the first sample's edit."""
    from lrlib.widgets.panel import Panel
    return Panel(base=base, models=models, image=image, prompt=prompt, caption=caption,
                 samples=samples)
