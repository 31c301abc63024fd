"""Prompt experiments with ipywidgets: every knob of an edit as a control.

`edit_from_controls(...)` is the callback: a plain, tested function that runs one edit and
returns its figure. `make_ui(image)` wires it to ipywidgets with a Run button (`interactive`,
manual): nothing runs until the button is pressed, so a notebook run headless (nbconvert, nbmake)
never waits on a widget; show a first edit with a plain `edit_from_controls` call.
"""
from __future__ import annotations

from lrlib.config import LRConfig


def edit_from_controls(image, prompt: str, caption: str = "", K: int = 3, M: int = 5,
                       tau: float = 1.0, lambda_clip: float = 1.0, lambda_str: float = 1.0,
                       lambda_dir: float = 1.0, alpha: float = 2.0, beta: float = 1.0,
                       editor: str = "sd", base: LRConfig | None = None, models=None):
    """Run one edit with these settings on top of `base`; return (EditResult, figure)."""
    from lrlib.pipeline import edit

    cfg = (base or LRConfig.cpu()).replace(
        K=int(K), M=int(M), tau=float(tau), lambda_clip=float(lambda_clip),
        lambda_str=float(lambda_str), lambda_dir=float(lambda_dir), alpha=float(alpha),
        beta=float(beta), editor=editor, progress=False)
    if models is not None and models.editor.kind != editor:
        models = None                      # other editor asked for: load it
    r = edit(image, prompt, caption=caption or None, config=cfg, models=models)
    return r, r.figure()


def make_ui(image, base: LRConfig | None = None, models=None, prompt: str = "a blue square",
            caption: str = "the red circle"):
    """An ipywidgets panel over `edit_from_controls`: the controls start from `base` (and the
    given prompt/caption); each press of "Run edit" runs one edit and shows its figure below.
    Display it (last expression of a cell, or `display(panel)`). The last EditResult is kept in
    `panel.last["result"]`; `panel.values()` gives the controls' current values."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    base = base or LRConfig.cpu()
    last = {}

    def run(prompt, caption, K, M, tau, lambda_clip, lambda_str, lambda_dir, alpha, beta, editor):
        r, fig = edit_from_controls(image, prompt, caption, K, M, tau, lambda_clip, lambda_str,
                                    lambda_dir, alpha, beta, editor, base, models)
        last["result"] = r
        display(fig)
        plt.close(fig)
        print(f"best anchor {r.best}, box {r.best_box}, S = {r.scores['S'][r.best]:.3f}")

    panel = W.interactive(
        run, {"manual": True, "manual_name": "Run edit"},
        prompt=W.Text(value=prompt), caption=W.Text(value=caption),
        K=W.IntSlider(value=base.K, min=1, max=9), M=W.IntSlider(value=base.M, min=2, max=9),
        tau=W.FloatLogSlider(value=base.tau, base=10, min=-1, max=1),
        lambda_clip=W.FloatSlider(value=base.lambda_clip, min=0, max=3),
        lambda_str=W.FloatSlider(value=base.lambda_str, min=0, max=3),
        lambda_dir=W.FloatSlider(value=base.lambda_dir, min=0, max=3),
        alpha=W.FloatSlider(value=base.alpha, min=0, max=4), beta=W.FloatSlider(value=base.beta, min=0, max=4),
        editor=W.Dropdown(options=["sd", "maskgit"], value=base.editor))
    panel.last = last
    panel.values = lambda: {w._kwarg: w.value for w in panel.kwargs_widgets}
    return panel
