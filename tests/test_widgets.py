"""The widget panel of notebook 10: headless it never runs or waits; pressed, it edits."""
import matplotlib

from lrlib.config import LRConfig

matplotlib.use("Agg")
CFG = LRConfig.cpu(progress=False, epochs=1, iters_per_epoch=2, K=2, M=3)


def test_panel_runs_nothing_until_pressed_then_edits_with_its_controls(models, scene, monkeypatch):
    """Catches a panel that runs an edit when it is built (headless nbconvert then waits on the
    widget and its figure lives only in widget state), and controls that do not reach the edit."""
    import lrlib.widgets as wd
    calls = []
    real = wd.edit_from_controls
    monkeypatch.setattr(wd, "edit_from_controls", lambda *a, **k: calls.append(a) or real(*a, **k))
    ui = wd.make_ui(scene, base=CFG, models=models("sd"))
    assert calls == [] and "result" not in ui.last
    v = ui.values()
    assert (v["K"], v["M"], v["editor"], v["prompt"]) == (2, 3, "sd", "a blue square")
    next(w for w in ui.kwargs_widgets if w._kwarg == "M").value = 2
    ui.update()                                   # what pressing "Run edit" does
    r = ui.last["result"]
    assert len(calls) == 1 and len(r.results) == 2 and len(r.boxes[0]) == 2
