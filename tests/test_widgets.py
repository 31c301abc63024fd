"""The widget lab (lrlib.widgets): driven without a browser, the way ipywidgets drives it.

A click is `Button.click()` (what the front end's click message calls); a value typed or dragged
in the browser arrives as `widget.set_state({"value": ...})`, a choice in a dropdown or toggle
buttons as `widget.set_state({"index": ...})` (`from_browser`); Enter in a text box is the
{"event": "submit"} custom message. Tests use the tiny random models and K=2, M=3, 2 iterations.
"""
import io
import json

import matplotlib
import pytest
from PIL import Image

from lrlib.config import PAPER_METHOD, LRConfig
from lrlib.errors import LRError

matplotlib.use("Agg")
CFG = LRConfig.cpu(world="random", progress=False, epochs=1, iters_per_epoch=2, K=2, M=3)


def pil(scene):
    from lrlib.images import to_pil
    return to_pil(scene)


@pytest.fixture
def panel(models, scene):
    from lrlib.widgets import make_ui
    return make_ui(base=CFG, models=models("sd"),
                   samples={"scene": (pil(scene), "the red circle", "a blue square")})


@pytest.fixture
def calls(monkeypatch):
    """Every run_edit the panel makes: (settings, button disabled at that moment)."""
    import lrlib.widgets.panel as wp
    seen, real = [], wp.run_edit

    def counted(image, settings, base, models=None, progress=None):
        seen.append(settings)
        return real(image, settings, base, models, progress)
    monkeypatch.setattr(wp, "run_edit", counted)
    return seen


def from_browser(widget, value):
    """A change made in the browser, as the front end sends it: selection widgets sync their
    option's index (their `value` is not synced: set_state ignores it), the others their value."""
    if hasattr(widget, "options"):
        widget.set_state({"index": [v for _, v in widget._options_full].index(value)})
    else:
        widget.set_state({"value": value})
    assert widget.value == value


def status_text(panel):
    import html
    import re
    return html.unescape(re.sub(r"<[^>]+>", "", panel.status.value))


def test_press_runs_one_edit_with_the_values_shown_and_explains_the_score(panel, calls):
    """Catches a run that uses other values than the controls show (a stale slider value in the
    result), more than one edit per press, and a score table whose terms and weights do not add
    up to the S the ranking used."""
    from lrlib.widgets.lab import score_rows
    from lrlib.widgets.panel import scores_html
    c = panel.controls
    from_browser(c["prompt"], "a yellow star")
    from_browser(c["M"], 2)
    from_browser(c["alpha"], 1.5)
    from_browser(c["prune"], "off")
    shown = panel.settings()
    assert calls == [] and panel.runs == []
    panel.press()
    assert len(calls) == 1 and calls[0] == shown and len(panel.runs) == 1
    run = panel.runs[0]
    r = run.result
    assert run.settings == shown and r.prompt == "a yellow star"
    assert r.config.M == 2 and r.config.alpha == 1.5 and len(r.boxes[0]) == 2
    assert len(r.results) == 2                            # prune off: both anchors kept
    for row in score_rows(r):
        assert row["sum"] == pytest.approx(row["S"], abs=1e-5)
    table = scores_html(r)
    assert "1.5&middot;S_t2i" in table and "S_i2i" in table and "S_cap" in table
    assert "done" in status_text(panel) and "Traceback" not in panel.status.value


def test_typing_enter_blur_and_sliders_never_run_an_edit(panel, calls):
    """Catches a panel that runs on Enter, on a text box losing focus or on a slider moving (as
    `interactive(manual=True)` does in ipywidgets 8): only the button runs."""
    c = panel.controls
    for name, value in (("prompt", "a green cross"), ("caption", "the red disc"), ("K", 1),
                        ("tau", 2.0), ("lambda_dir", 0.5), ("estimator", "st"), ("seed", 3)):
        from_browser(c[name], value)              # what a change in the browser sends
        c[name]._handle_custom_msg({"event": "submit"}, [])   # Enter (a no-op where unhandled)
    from_browser(panel.export_folder, "somewhere")
    panel.export_folder._handle_custom_msg({"event": "submit"}, [])
    assert calls == [] and panel.runs == [] and panel.progress.value == 0
    assert panel.settings().prompt == "a green cross" and panel.settings().K == 1


def test_button_disabled_and_progress_moves_during_a_run(panel, calls):
    """Catches a button that can start a second run while one goes on (disabled, and a click
    that arrives meanwhile ignored) and a run that shows no progress until it ends."""
    seen = []

    def watch(change):
        seen.append((change["new"], panel.run_button.disabled, panel.progress_label.value))
        if len(seen) == 2:
            panel.press()                                # a click while the run goes on
    panel.progress.observe(watch, names="value")
    assert not panel.run_button.disabled
    panel.press()
    values = [v for v, _, _ in seen]
    assert all(disabled for _, disabled, _ in seen)
    assert any(0 < v < 100 for v in values) and values[-1] == 100
    assert values == sorted(values) and len(set(values)) >= 4
    assert any("training RGN" in label for _, _, label in seen)
    assert len(calls) == 1 and len(panel.runs) == 1
    assert not panel.run_button.disabled and panel.run_button.description == "Run edit"


@pytest.mark.parametrize("prompt, words", [("   ", "prompt is empty"),
                                           ("a red apple " * 250, "tokens")])
def test_bad_input_is_one_line_without_traceback(panel, calls, prompt, words):
    """Catches an LRError shown as a traceback (the fix at the bottom, off-screen) and a panel
    left disabled after an error."""
    from_browser(panel.controls["prompt"], prompt)
    panel.press()
    text = status_text(panel)
    assert words in text and "\n" not in text and "Traceback" not in panel.status.value
    assert panel.details.layout.display == "none" and panel.runs == []
    assert not panel.run_button.disabled


def test_unexpected_error_is_one_line_with_details_kept(panel, monkeypatch):
    """Catches a bug's traceback printed into the panel instead of one line (the traceback stays
    available, collapsed)."""
    import lrlib.widgets.panel as wp

    def boom(*a, **k):
        raise RuntimeError("the editor fell over")
    monkeypatch.setattr(wp, "run_edit", boom)
    panel.press()
    text = status_text(panel)
    assert text.startswith("\u26a0 unexpected RuntimeError: the editor fell over")
    assert "Traceback" not in panel.status.value and "Traceback" in panel.last_traceback
    assert panel.details.selected_index is None and panel.details.layout.display is None
    assert not panel.run_button.disabled


def test_impossible_setting_is_an_lrerror(scene, models):
    """Catches settings that reach the pipeline unchecked (the message names the knob)."""
    from lrlib.widgets import Settings, run_edit
    with pytest.raises(LRError, match="M=1"):
        run_edit(pil(scene), Settings(prompt="a blue square", M=1), CFG, models("sd"))


def test_presets_set_the_method_and_disable_what_has_no_effect(panel):
    """Catches presets that miss a method field, a tau slider live under the 'expected'
    estimator, S_cap / pruning live without caption anchors, and K offered up to the anchor
    pool (where caption anchors silently switch off)."""
    from lrlib.widgets.panel import tooltip_of
    c = panel.controls
    panel.preset_buttons["paper"].click()
    s = panel.settings()
    cfg = s.config(CFG)
    assert s.preset == "paper" and (s.estimator, s.gamma, s.delta) == ("st", 0.0, 0.0)
    assert all(getattr(cfg, k) == v for k, v in PAPER_METHOD.items())
    assert (cfg.world, cfg.size, cfg.K) == (CFG.world, CFG.size, CFG.K)   # sizes: the base's
    assert c["delta"].disabled and "caption-aware" in tooltip_of(c["delta"])
    assert c["prune"].disabled and not c["tau"].disabled and c["K"].max == 9
    panel.preset_buttons["lrlib"].click()
    s = panel.settings()
    cfg = s.config(CFG)
    ref = LRConfig.cpu(world="random")
    assert all(getattr(cfg, k) == getattr(ref, k) for k in PAPER_METHOD)
    assert c["tau"].disabled and "'st'" in tooltip_of(c["tau"])
    assert not c["delta"].disabled and c["K"].max == ref.anchor_pool - 1
    from_browser(c["caption"], "")
    assert c["caption_anchors"].disabled and c["delta"].disabled and c["K"].max == 9
    assert "caption" in tooltip_of(c["caption_anchors"])


def test_history_compares_two_runs_and_exports_result_json(panel, tmp_path):
    """Catches a history that keeps only the last run, an export without the settings used, and
    an export that overwrites a folder the user made."""
    from_browser(panel.controls["prune"], "off")
    panel.press()
    from_browser(panel.controls["beta"], 0.5)
    from_browser(panel.controls["seed"], 4)
    panel.press()
    assert [r.number for r in panel.runs] == [1, 2] and len(panel.history.children) == 2
    assert (panel.compare_a.value, panel.compare_b.value) == (1, 2)
    columns, shared = panel.compare.children
    first, second = columns.children
    assert "<b>4</b>" in second.children[-1].value and "<b>0.5</b>" in second.children[-1].value
    assert "<b>0</b>" in first.children[-1].value and "<b>1.0</b>" in first.children[-1].value
    assert "M=3" in shared.value and "seed" not in shared.value      # what differs is apart
    panel.export_pick.value = 2
    panel.export_folder.value = str(tmp_path / "run-2")
    panel.export_button.click()
    data = json.loads((tmp_path / "run-2" / "result.json").read_text())
    assert data["config"]["beta"] == 0.5 and data["config"]["seed"] == 4
    assert data["prompt"] == "a blue square" and data["caption"] == "the red circle"
    lab = json.loads((tmp_path / "run-2" / "lab.json").read_text())
    assert lab["settings"]["beta"] == 0.5 and lab["run"] == 2
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for folder in (mine, tmp_path / "run-2"):
        before = sorted(p.name for p in folder.iterdir())
        panel.export_folder.value = str(folder)
        panel.export_button.click()
        assert "already exists" in status_text(panel) and "Traceback" not in panel.status.value
        assert sorted(p.name for p in folder.iterdir()) == before
    assert (mine / "notes.txt").read_text() == "keep me"


def png_bytes(size=64):
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (20, 200, 40)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("shape", ["ipywidgets8", "ipywidgets7"])
def test_upload_of_a_png_in_either_ipywidgets_shape(panel, calls, shape):
    """Catches an upload handler that reads only one ipywidgets version's FileUpload value, and
    an edit that runs on another image than the one uploaded."""
    data = png_bytes()
    value = (({"name": "green.png", "type": "image/png", "size": len(data),
               "content": memoryview(data), "last_modified": 0},) if shape == "ipywidgets8" else
             {"green.png": {"metadata": {"name": "green.png", "type": "image/png",
                                         "size": len(data), "lastModified": 0}, "content": data}})
    panel.receive_upload(value)
    assert panel.controls["image"].value == "upload: green.png"
    assert "uploaded green.png" in status_text(panel)
    panel.press()
    assert panel.runs[-1].settings.image == "upload: green.png"
    assert panel.runs[-1].result.source.getpixel((32, 32)) == (20, 200, 40)


def test_unreadable_upload_is_one_line(panel):
    panel.receive_upload(({"name": "notes.png", "content": memoryview(b"not a picture")},))
    text = status_text(panel)
    assert "could not read the upload 'notes.png'" in text and "PNG or JPEG" in text
    assert panel.controls["image"].value == "scene"


def test_edit_from_controls_keeps_base_values_it_is_not_given(models, scene):
    """The plain function behind the panel: only the settings given change."""
    from lrlib.widgets import edit_from_controls
    r, fig = edit_from_controls(pil(scene), "a blue square", "", K=2, M=3, gamma=0.0,
                                base=CFG, models=models("sd"))
    assert r.config.iterations == CFG.iterations and r.config.alpha == CFG.alpha
    assert r.config.gamma == 0.0 and "S_dir" not in r.scores
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_text_areas_grow_with_their_text(panel):
    """Catches a prompt box that shows a few lines of a long prompt (135 words need ~10 rows of
    75 characters), a fixed height that overrides the rows, and boxes that grow without bound."""
    c = panel.controls
    long_prompt = " ".join(["a bright red circle with a black outline, standing on the grey "
                            "floor beside the green triangle, lit from the upper left so it "
                            "casts a shadow"] * 5)
    assert len(long_prompt.split()) == 135
    from_browser(c["prompt"], long_prompt)
    assert c["prompt"].rows >= 10 and c["prompt"].layout.height is None
    from_browser(c["prompt"], "a blue square")
    assert c["prompt"].rows == 3
    from_browser(c["caption"], "the red circle " * 100)
    assert c["caption"].rows == 8 and c["caption"].layout.height is None
    assert panel.runs == []


def test_unexpected_error_in_voila_shows_no_traceback(panel, monkeypatch):
    """Catches a Voila page that shows the server's file paths: in a Voila kernel the details
    section says where the traceback went instead of showing it."""
    import lrlib.widgets.panel as wp

    def boom(*a, **k):
        raise RuntimeError("the editor fell over")
    monkeypatch.setattr(wp, "run_edit", boom)
    monkeypatch.setenv("VOILA_KERNEL_ID", "a-kernel")
    panel.press()
    assert status_text(panel).startswith("\u26a0 unexpected RuntimeError: the editor fell over")
    shown = panel.details.children[0].value
    assert "Traceback" not in shown and ".py" not in shown and "server's log" in shown
    assert "Traceback" in panel.last_traceback


def test_an_upload_clears_the_caption_of_the_previous_picture(panel, calls):
    """The caption names what to change in the picture shown; after an upload it named an object
    of the toy scene, and caption-aware anchors would search the upload for "the red circle".
    The prompt is kept (the same change may be wanted), the caption is cleared, and picking the
    toy scene again brings its own texts back."""
    first = panel.controls["image"].value
    prompt, caption = panel.controls["prompt"].value, panel.controls["caption"].value
    assert caption.strip()
    data = png_bytes()
    panel.receive_upload(({"name": "green.png", "content": memoryview(data)},))
    assert panel.controls["caption"].value == "" and panel.controls["prompt"].value == prompt
    panel.press()
    assert panel.runs[-1].settings.caption == ""
    panel.controls["image"].value = first
    assert (panel.controls["prompt"].value, panel.controls["caption"].value) == (prompt, caption)
