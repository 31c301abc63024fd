"""The widget lab's panel under ipywidgets 7, driven as ipywidgets 7's front end drives it.

Run by test_ipywidgets7.py in a subprocess whose PYTHONPATH puts a folder holding ipywidgets 7
first (the venv holds ipywidgets 8). A value changed in the browser arrives as
`widget.set_state({"value": ...})` (a dropdown's or toggle buttons' choice as its
`{"index": ...}`), a click as `Button.click()`, an upload as ipywidgets 7's
FileUpload state (`metadata`, `data`, `_counter`). Prints "ok" when every check passes.
"""
import html
import io
import re

import ipywidgets
from PIL import Image

from lrlib.config import LRConfig
from lrlib.models import load_models
from lrlib.toy import render_scene
from lrlib.widgets import make_ui
from lrlib.widgets.panel import tooltip_of

assert ipywidgets.__version__.startswith("7."), ipywidgets.__version__
CFG = LRConfig.cpu(world="random", progress=False, epochs=1, iters_per_epoch=2, K=2, M=3)


def from_browser(widget, value):
    if hasattr(widget, "options"):
        widget.set_state({"index": [v for _, v in widget._options_full].index(value)})
    else:
        widget.set_state({"value": value})
    assert widget.value == value


def status(panel):
    return html.unescape(re.sub(r"<[^>]+>", "", panel.status.value))


panel = make_ui(base=CFG, models=load_models(CFG),
                samples={"scene": (render_scene(0, 64).pil(), "the red circle", "a blue square")})
c = panel.controls
seen = []
panel.progress.observe(lambda ch: seen.append((ch["new"], panel.run_button.disabled)), "value")

# only the button runs; the tau slider is disabled under 'expected', with why in its tooltip
assert c["tau"].disabled and "straight-through" in tooltip_of(c["tau"])
assert c["tau"].description_tooltip == tooltip_of(c["tau"])      # ipywidgets 7's trait
for name, value in (("prompt", "a yellow star"), ("M", 2), ("alpha", 1.5), ("prune", "off")):
    from_browser(c[name], value)
assert panel.runs == [] and seen == []
from_browser(c["estimator"], "st")
assert not c["tau"].disabled
from_browser(c["estimator"], "expected")

# a press: one run with the values shown, progress while the button is disabled, every S term
panel.press()
assert len(panel.runs) == 1, status(panel)
r = panel.runs[0].result
assert (r.prompt, r.config.M, r.config.alpha) == ("a yellow star", 2, 1.5) and len(r.results) == 2
assert any(0 < v < 100 and disabled for v, disabled in seen) and seen[-1][0] == 100
assert "run #1 done" in status(panel) and not panel.run_button.disabled
table = panel.result.children[-1].value
assert all(t in table for t in ("S_t2i", "S_i2i", "S_dir", "S_cap", "1.5&middot;S_t2i"))

# an upload as ipywidgets 7's front end sends it, then a run on it
buf = io.BytesIO()
Image.new("RGB", (64, 64), (20, 200, 40)).save(buf, format="PNG")
data = buf.getvalue()
panel.upload.set_state({"metadata": [{"name": "green.png", "type": "image/png",
                                      "size": len(data), "lastModified": 0}],
                        "data": [memoryview(data)], "_counter": 1})
assert c["image"].value == "upload: green.png", status(panel)
panel.press()
assert len(panel.runs) == 2 and panel.runs[1].result.source.getpixel((32, 32)) == (20, 200, 40)
assert len(panel.history.children) == 2 and len(panel.compare.children) == 2

# bad input: one line, no traceback, no run
from_browser(c["prompt"], "   ")
panel.press()
text = status(panel)
assert "prompt is empty" in text and "\n" not in text and "Traceback" not in panel.status.value
assert len(panel.runs) == 2 and not panel.run_button.disabled
print("ok", ipywidgets.__version__)
