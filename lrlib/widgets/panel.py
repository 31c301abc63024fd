"""The widget lab's panel: ipywidgets 7 (Colab) and 8, JupyterLab, Notebook 7, Voila.

Only the button runs an edit (a plain `Button.on_click`: typing, Enter, Tab or moving a slider
never does). The button is disabled while its run lasts and a progress bar in the panel follows
lrlib's own progress bars (`lab.progress_to`). Every other handler only updates the panel.
Errors become one line in the panel: an LRError's message (it says what to change), or for an
unexpected exception its type and message, with the traceback in the `lrlib.widgets` log and,
except in Voila (an app served to others: no server file paths), in a collapsed "details"
section.
"""
from __future__ import annotations

import html
import json
import logging
import os
import time
import traceback

import ipywidgets as W

from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.widgets.lab import (PRUNE_CHOICES, WEIGHTS, Run, Settings, candidates_note,
                               control_rules, export_run, hidden_fields, k_max, loss_png, png,
                               preset_config, read_upload, run_edit, sample_images, score_rows,
                               unused_terms, uploaded_files)

log = logging.getLogger("lrlib.widgets")

#: what each control does (its tooltip while it is enabled)
HELP = {
    "image": "the picture to edit: the demo scene, toy scenes, or an upload",
    "prompt": "what the edited region should show; any length (long prompts are encoded in "
              "chunks of 75 tokens, up to 600 tokens)",
    "caption": "what is being changed (e.g. 'the red circle'): steers L_dir, and with "
               "caption-aware anchors chooses where to edit; empty: 'a photo'",
    "editor": "sd: Stable Diffusion inpainting; maskgit: MaskGIT tokens (loaded on first use)",
    "K": "anchors: how many places are tried (one candidate edit each)",
    "M": "box proposals per anchor, from small to large",
    "iterations": "RGN training steps (the paper: 5 epochs x 10; lrlib CPU: 2 x 10)",
    "seed": "one seed for the Gumbel noise, the augmentations and the editor's noise",
    "estimator": "expected: exact gradient of the expected loss over the cached candidates "
                 "(lrlib); st: straight-through Gumbel-Softmax samples (the paper)",
    "tau": "Gumbel-Softmax temperature of the 'st' estimator: low follows the RGN, high explores",
    "lambda_clip": "weight of L_clip: the edit looks like the prompt (CLIP, augmented views)",
    "lambda_str": "weight of L_str: keep the source's DINO self-similarity structure",
    "lambda_dir": "weight of L_dir: the image moves the way the text moves, caption -> prompt",
    "alpha": "S weight of S_t2i: the result matches the prompt",
    "beta": "S weight of S_i2i: the result keeps the source",
    "gamma": "S weight of S_dir: the edit's direction matches caption -> prompt (without a "
             "caption, 'a photo' -> prompt); paper: 0",
    "delta": "S weight of S_cap: the anchor's region matches the caption; paper: 0",
    "caption_anchors": "choose the K anchors among more attention peaks by how well their region "
                       "matches the caption (lrlib); off: the top-K peaks (the paper)",
    "prune": "drop, before any edit, anchors whose caption match is below the best by more "
             "than this margin (lrlib: 0.1; off: keep all K, as the paper)",
}

#: progress bar span (percent) of each of lrlib's bars within one run
STAGES = {"loading models": (0, 5), "candidate edits": (5, 60), "training RGN": (60, 95)}


#: the text areas' (fewest, most) rows: they grow with their text, then scroll
TEXT_ROWS = {"prompt": (3, 16), "caption": (2, 8)}
#: characters a row holds in the narrowest place the panel is shown (Colab, Notebook 7: ~75)
ROW_CHARS = 75


def fit_rows(area, bounds: tuple[int, int]) -> None:
    """Give a text area as many rows as its text needs (one spare), within `bounds`."""
    need = sum(-(-max(1, len(line)) // ROW_CHARS) for line in area.value.split("\n")) + 1
    area.rows = max(bounds[0], min(bounds[1], need))


def in_voila() -> bool:
    """Whether this kernel serves a Voila page (Voila sets VOILA_KERNEL_ID in its kernels)."""
    return "VOILA_KERNEL_ID" in os.environ


def tip(widget, text: str) -> None:
    """Set a widget's tooltip: `tooltip` (ipywidgets 8, and buttons in 7) or
    `description_tooltip` (other widgets in ipywidgets 7)."""
    name = "tooltip" if widget.has_trait("tooltip") else "description_tooltip"
    if widget.has_trait(name):
        setattr(widget, name, text)


def tooltip_of(widget) -> str | None:
    for name in ("tooltip", "description_tooltip"):
        if widget.has_trait(name):
            return getattr(widget, name)
    return None


def one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _box(children, css: str, **layout):
    b = (W.HBox if layout.pop("row", True) else W.VBox)(children, layout=W.Layout(**layout))
    b.add_class(css)
    return b


class Panel:
    """The lab: input, method presets, controls, one run per press, the result explained, and a
    history of runs to compare and export. Display it (`display(panel)` or as a cell's last
    expression). `panel.runs` holds every finished Run (settings + EditResult)."""

    def __init__(self, base: LRConfig | None = None, models=None, image=None,
                 prompt: str | None = None, caption: str | None = None,
                 samples: dict | None = None):
        from lrlib.worlds import choose_world, config_for
        self.base = base or config_for(choose_world())
        self.models = {} if models is None else {models.editor.kind: models}
        self.samples = dict(samples) if samples is not None else sample_images(self.base.size)
        if image is not None:
            from lrlib.images import load_image
            self.samples = {"your image": (load_image(image), caption or "", prompt or ""),
                            **self.samples}
        first = next(iter(self.samples))
        _, cap0, prompt0 = self.samples[first]
        self.runs: list[Run] = []
        self.busy = False
        self.last_traceback = ""
        s = Settings.from_config(self.base, image=first,
                                 prompt=prompt if prompt is not None else prompt0,
                                 caption=caption if caption is not None else cap0)
        self.preset = s.preset
        self._build(s)
        self._update_rules()

    # ---------------------------------------------------------------------------- layout
    def _build(self, s: Settings) -> None:
        lay = W.Layout
        wide = dict(style={"description_width": "88px"}, layout=lay(width="320px"))
        c = {}
        c["image"] = W.Dropdown(options=list(self.samples), value=s.image, description="image",
                                **wide)
        for k in ("prompt", "caption"):
            c[k] = W.Textarea(value=getattr(s, k), description=k, rows=TEXT_ROWS[k][0],
                              style={"description_width": "88px"}, layout=lay(width="98%"))
        c["editor"] = W.Dropdown(options=["sd", "maskgit"], value=s.editor, description="editor",
                                 **wide)
        c["K"] = W.IntSlider(value=s.K, min=1, max=9, description="K", **wide)
        c["M"] = W.IntSlider(value=s.M, min=2, max=9, description="M", **wide)
        c["iterations"] = W.IntSlider(value=s.iterations, min=0, max=max(50, s.iterations),
                                      description="iterations", **wide)
        c["seed"] = W.BoundedIntText(value=s.seed, min=0, max=2**31 - 1, description="seed",
                                     **wide)
        c["estimator"] = W.ToggleButtons(options=["expected", "st"], value=s.estimator,
                                         description="estimator",
                                         style={"description_width": "80px",
                                                "button_width": "96px"})
        c["tau"] = W.FloatLogSlider(value=s.tau, base=10, min=-1, max=1, description="tau", **wide)
        for k in ("lambda_clip", "lambda_str", "lambda_dir"):
            c[k] = W.FloatSlider(value=getattr(s, k), min=0, max=3, step=0.1, description=k, **wide)
        for k, hi, step in (("alpha", 4, 0.1), ("beta", 4, 0.1), ("gamma", 10, 0.5),
                            ("delta", 50, 1.0)):
            c[k] = W.FloatSlider(value=getattr(s, k), min=0, max=hi, step=step, description=k,
                                 **wide)
        c["caption_anchors"] = W.Checkbox(value=s.caption_anchors, indent=False,
                                          description="caption-aware anchors")
        c["prune"] = W.Dropdown(options=list(PRUNE_CHOICES), value=s.prune,
                                description="prune", **wide)
        for k, w in c.items():
            w.add_class(f"lr-{k}")
            w.observe(self._guard(self._on_control), names="value")
        c["image"].observe(self._guard(self._on_pick), names="value")
        for k in ("prompt", "caption"):
            c[k].observe(self._guard(lambda ch, w=c[k], k=k: fit_rows(w, TEXT_ROWS[k])),
                         names="value")
            fit_rows(c[k], TEXT_ROWS[k])
        self.controls = c

        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.upload.add_class("lr-upload")
        self.upload.observe(self._guard(self._on_upload), names="value")
        tip(self.upload, "upload a PNG or JPEG: it joins the image list and is selected")
        self.preview = W.Image(format="png", layout=lay(width="96px", height="96px"))
        self.preset_buttons = {}
        for name, label in (("paper", "paper's method"), ("lrlib", "lrlib's method")):
            b = W.Button(description=label, layout=lay(width="140px"))
            b.add_class(f"lr-preset-{name}")
            ref = "LRConfig.paper()" if name == "paper" else "LRConfig()"
            tip(b, f"set every method control to {ref}'s values, on top of this world's models "
                   "and sizes")
            b.on_click(self._guard(lambda _b, n=name: self.apply_preset(n)))
            self.preset_buttons[name] = b
        self.preset_note = W.HTML()
        self.run_button = W.Button(description="Run edit", button_style="primary", icon="play",
                                   layout=lay(width="140px"))
        self.run_button.add_class("lr-run")
        tip(self.run_button, "run one edit with the values shown (nothing else starts a run)")
        self.run_button.on_click(self._guard(self._on_run))
        self.progress = W.IntProgress(value=0, min=0, max=100, layout=lay(width="240px"))
        self.progress.add_class("lr-progress")
        self.progress_label = W.Label("")
        self.progress_label.add_class("lr-progress-label")
        self.status = W.HTML("")
        self.status.add_class("lr-status")
        self.details = W.Accordion(children=[W.HTML("")], selected_index=None,
                                   layout=lay(display="none"))
        self.details.set_title(0, "details (traceback)")
        self.details.add_class("lr-details")
        self.result = W.VBox([W.HTML("<i>no run yet: set the controls and press Run edit</i>")])
        self.result.add_class("lr-result")
        self.history = _box([], "lr-history", overflow="auto", width="98%")
        self.compare_a = W.Dropdown(options=[], description="compare", layout=lay(width="260px"))
        self.compare_b = W.Dropdown(options=[], description="with", layout=lay(width="260px"))
        for d in (self.compare_a, self.compare_b):
            d.observe(self._guard(lambda _ch: self._show_compare()), names="value")
        self.compare = _box([], "lr-compare", row=False)
        self.export_pick = W.Dropdown(options=[], description="run", layout=lay(width="200px"))
        self.export_folder = W.Text(value="", placeholder="a new folder, e.g. lab-runs/run-1",
                                    description="folder", layout=lay(width="340px"))
        self.export_folder.add_class("lr-export-folder")
        self.export_button = W.Button(description="Export result.json", layout=lay(width="160px"))
        self.export_button.add_class("lr-export")
        tip(self.export_button, "write the run's result folder (pictures, result.json with the "
                                "settings used) into a new folder; never replaces one")
        self.export_button.on_click(self._guard(lambda _b: self.export()))
        self.export_status = W.HTML("")

        grid = [["editor", "K", "M", "iterations", "seed"],
                ["estimator", "tau", "lambda_clip", "lambda_str", "lambda_dir"],
                ["caption_anchors", "prune", "alpha", "beta", "gamma", "delta"]]
        head = W.HTML("<b>Learnable regions lab</b> &nbsp; world <code>%s</code>, canvas %s px, "
                      "ipywidgets %s; each press of <b>Run edit</b> runs one edit with the values "
                      "shown" % (html.escape(self.base.world), self.base.size or "editor's",
                                 W.__version__))
        head.add_class("lr-head")
        self.widget = W.VBox([
            head,
            W.HBox([W.VBox([c["image"], self.upload]), self.preview]),
            c["prompt"], c["caption"],
            W.HBox([W.Label("method:"), *self.preset_buttons.values()]), self.preset_note,
            W.HBox([W.VBox([c[k] for k in col]) for col in grid]),
            W.HBox([self.run_button, self.progress, self.progress_label]),
            self.status, self.details,
            W.HTML("<hr><b>Result</b>"), self.result,
            W.HTML("<hr><b>History</b> (every run, newest last)"), self.history,
            W.HBox([self.compare_a, self.compare_b]), self.compare,
            W.HBox([self.export_pick, self.export_folder, self.export_button]), self.export_status,
        ], layout=lay(width="100%"))
        self.widget.add_class("lr-panel")
        self._show_preview()

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)

    # ---------------------------------------------------------------------------- state
    def settings(self) -> Settings:
        """The controls' values now: what a press runs."""
        v = {k: w.value for k, w in self.controls.items()}
        for k in ("prompt", "caption"):                 # as the edit reads them: one line
            v[k] = " ".join(v[k].split())
        return Settings(preset=self.preset, **v)

    def _guard(self, handler):
        """`handler` with its errors turned into one line in the panel (never a traceback)."""
        def guarded(*args):
            try:
                return handler(*args)
            except LRError as e:
                self.say(str(e), error=True)
            except Exception as e:                       # a bug: one line + details + log
                self.last_traceback = traceback.format_exc()
                log.error("widget lab: %s", self.last_traceback)
                self.details.children[0].value = (
                    "<small>the traceback is in the server's log</small>" if in_voila() else
                    "<pre>%s</pre>" % html.escape(self.last_traceback))
                self.details.layout.display = None
                self.say(f"unexpected {type(e).__name__}: {e} (details below)", error=True)
        return guarded

    def say(self, text: str, error: bool = False) -> None:
        """One line in the status area (an error in red, with what to change)."""
        style = "color:#b00020" if error else "color:#222"
        mark = "\u26a0 " if error else ""
        self.status.value = (f'<span class="{"lr-error" if error else "lr-info"}" style="{style}">'
                             f"{mark}{html.escape(one_line(text))}</span>")

    def _on_control(self, _change=None) -> None:
        self._update_rules()

    def _update_rules(self) -> None:
        """Enable the controls that can change the result now; disable the others, with why."""
        s = self.settings()
        rules = control_rules(s, self.base)
        for k, w in self.controls.items():
            why = rules.get(k)
            w.disabled = why is not None
            tip(w, f"disabled: {why}" if why else HELP.get(k, k))
        self.controls["K"].max = k_max(s, self.base)
        ref = preset_config(self.preset, self.base)
        ref_s = Settings.from_config(ref)
        changed = [k for k in (*WEIGHTS, "caption_anchors", "prune")
                   if getattr(s, k) != getattr(ref_s, k)]
        name = {"paper": "the paper's (LRConfig.paper())", "lrlib": "lrlib's (LRConfig())",
                None: "the base config's own"}[self.preset]
        hidden = ", ".join(f"{k}={v!r}" for k, v in hidden_fields(self.preset, self.base).items())
        note = f" &mdash; changed here: {', '.join(changed)}" if changed else ""
        self.preset_note.value = (f"<small>method: <b>{name}</b>{note}; also set by it (not "
                                  f"controls): {html.escape(hidden)}</small>")

    def apply_preset(self, name: str) -> None:
        """Set every method control to preset `name`'s values ("paper" or "lrlib")."""
        cfg = preset_config(name, self.base)
        self.preset = name
        s = Settings.from_config(cfg)
        for k in (*WEIGHTS, "caption_anchors", "prune"):
            self.controls[k].value = getattr(s, k)
        self._update_rules()
        self.say(f"method set to the {name} preset; press Run edit to run it")

    def _on_pick(self, change) -> None:
        """A sample brings its own prompt and caption. An image without them (an upload) keeps
        the prompt, but not the caption: it named an object of the previous picture, and
        caption-aware anchors would search this one for it."""
        _, caption, prompt = self.samples[change["new"]]
        if prompt:
            self.controls["prompt"].value = prompt
            self.controls["caption"].value = caption
        elif self.controls["caption"].value.strip():
            self.controls["caption"].value = ""
        self._show_preview()

    def _show_preview(self) -> None:
        self.preview.value = png(self.samples[self.controls["image"].value][0], 96, 96)

    def receive_upload(self, value) -> None:
        """What a FileUpload change does, for either ipywidgets version's value shape."""
        self._guard(self._on_upload)({"new": value})

    def _on_upload(self, change) -> None:
        files = uploaded_files(change["new"])
        if not files:
            return
        name, data = files[-1]
        img = read_upload(name, data)
        key = f"upload: {name}"
        self.samples[key] = (img, "", "")
        self.controls["image"].options = list(self.samples)
        self.controls["image"].value = key
        self._show_preview()
        self.say(f"uploaded {name} ({img.size[0]}x{img.size[1]}); type the prompt and the caption "
                 "(what to change in this picture) and press Run edit")

    # ---------------------------------------------------------------------------- a run
    def _report(self, desc: str, n: int, total) -> None:
        lo, hi = STAGES.get(desc, (self.progress.value, self.progress.value))
        frac = min(1.0, n / total) if total else 0.0
        self.progress.value = int(round(lo + (hi - lo) * frac))
        self.progress_label.value = f"{desc} {n}/{total}" if total else desc

    def _models_for(self, s: Settings):
        if s.editor not in self.models:
            from lrlib.models import load_models
            self._report("loading models", 0, 1)
            self.models[s.editor] = load_models(s.config(self.base))
        return self.models[s.editor]

    def _on_run(self, _button=None) -> None:
        if self.busy:                       # a click that arrived while a run was going on
            return
        s = self.settings()                 # the values shown now are the values run
        self.busy, self.run_button.disabled = True, True
        self.run_button.description = "Running..."
        self.progress.bar_style, self.progress.value = "info", 0
        self.say(f"run #{len(self.runs) + 1}: running...")
        t0 = time.perf_counter()
        try:
            r = run_edit(self.samples[s.image][0], s, self.base, self._models_for(s), self._report)
            run = Run(len(self.runs) + 1, s, r, time.perf_counter() - t0)
            self.runs.append(run)
            self.progress.value, self.progress.bar_style = 100, "success"
            self.progress_label.value = "done"
            self._show_result(run)
            self._add_to_history(run)
            self.say(f"run #{run.number} done in {run.seconds:.1f} s: winner #{r.best}, "
                     f"S = {r.scores['S'][r.best]:.3f}")
        except LRError:                     # bad input: nothing to show on the bar
            self.progress.bar_style, self.progress.value = "", 0
            self.progress_label.value = ""
            raise
        except BaseException:
            self.progress.bar_style = "danger"
            self.progress_label.value = "stopped"
            raise
        finally:
            self.busy, self.run_button.disabled = False, False
            self.run_button.description = "Run edit"

    def press(self) -> None:
        """What a click on the button does (for code and tests)."""
        self.run_button.click()

    # ---------------------------------------------------------------------------- showing
    def _show_result(self, run: Run) -> None:
        r, s = run.result, run.settings
        from lrlib.viz import draw_boxes
        boxes = [b[c] for b, c in zip(r.boxes, r.chosen)]
        top = W.HBox([
            _figure("final", png(r.image, 160, 320)),
            _figure("chosen boxes (thick: the winner)",
                    png(draw_boxes(r.source, boxes, r.best, r.anchors), 160, 320)),
            _figure("", loss_png(r), width="272px"),
        ])
        cards = []
        for k, im in enumerate(r.results):
            star = " &#9733; winner" if k == r.best else ""
            img = png(draw_boxes(im, [boxes[k]], 0, [r.anchors[k]], ids=[k]), 128, 160)
            cards.append(_figure(f"#{k} S = {r.scores['S'][k]:.3f}{star}", img, width="136px"))
        head = W.HTML(f"<b>run #{run.number}</b>: {html.escape(one_line(s.prompt, 120))!s} "
                      f"&mdash; {run.seconds:.1f} s, {len(r.results)} candidate(s)")
        note = candidates_note(r, s)
        self.result.children = [head, top, W.HTML("<b>the K candidates</b>"),
                                 _box(cards, "lr-candidates"),
                                 W.HTML(scores_html(r) + (f"<p><i>{html.escape(note)}</i></p>"
                                                          if note else ""))]

    def _add_to_history(self, run: Run) -> None:
        r, s = run.result, run.settings
        summary = html.escape(settings_line(s))
        full = html.escape(json.dumps(s.to_dict()), quote=True)
        card = W.VBox([W.Image(value=png(r.image, 72, 96), format="png",
                               layout=W.Layout(width="72px", height="72px")),
                       W.HTML(f'<div title="{full}" style="font-size:11px;line-height:1.2">'
                              f"<b>#{run.number}</b> {html.escape(one_line(s.prompt, 40))}<br>"
                              f"{summary}<br>S = {r.scores['S'][r.best]:.3f}</div>")],
                      layout=W.Layout(width="190px", border="1px solid #ccc", padding="4px",
                                      margin="2px", flex="0 0 auto"))
        card.add_class("lr-history-card")
        self.history.children = list(self.history.children) + [card]
        options = [(f"#{x.number} {one_line(x.settings.prompt, 24)}", x.number) for x in self.runs]
        for d in (self.compare_a, self.compare_b, self.export_pick):
            d.options = options
        self.compare_a.value = self.runs[-2].number if len(self.runs) > 1 else run.number
        self.compare_b.value = run.number
        self.export_pick.value = run.number
        self.export_folder.value = f"lab-runs/run-{run.number}"
        self._show_compare()

    def run_by_number(self, n) -> Run | None:
        return next((x for x in self.runs if x.number == n), None)

    def _show_compare(self) -> None:
        a, b = self.run_by_number(self.compare_a.value), self.run_by_number(self.compare_b.value)
        if a is None or b is None:
            self.compare.children = []
            return
        da, db = a.settings.to_dict(), b.settings.to_dict()
        differ = [k for k in da if da[k] != db[k]]
        same = ", ".join(f"{k}={one_line(repr(v), 40)}" for k, v in da.items() if k not in differ)
        cols = []
        for run in (a, b):
            r, d = run.result, run.settings.to_dict()
            rows = "".join(f"<tr><td>{k}</td><td><b>{html.escape(one_line(repr(d[k]), 80))}</b>"
                           "</td></tr>" for k in differ)
            cols.append(W.VBox([
                W.HTML(f"<b>run #{run.number}</b>: winner #{r.best}, "
                       f"S = {r.scores['S'][r.best]:.3f}, {len(r.results)} candidate(s)"),
                W.HBox([_figure("final", png(r.image, 128, 192)),
                        _figure("boxes", png(_boxes(r), 128, 192))]),
                W.HTML(f'<table class="lr-compare-table" style="font-size:12px">{rows}</table>'
                       if differ else "<small>the same settings as the other run</small>")],
                layout=W.Layout(width="48%", border="1px solid #ddd", padding="4px")))
        shared = W.HTML(f"<small>in both: {html.escape(same)}</small>" if differ else "")
        self.compare.children = [W.HBox(cols, layout=W.Layout(width="100%")), shared]

    def export(self) -> None:
        """Write the selected run's result folder into the folder named in the panel."""
        run = self.run_by_number(self.export_pick.value)
        if run is None:
            raise LRError("no run to export yet: press Run edit first.")
        path = export_run(run, self.export_folder.value)
        self.export_status.value = (f"wrote run #{run.number} to <code>"
                                    f"{html.escape(str(path.resolve()))}</code> (result.json, "
                                    "final.png, figure.png, ...)")
        self.say(f"exported run #{run.number} to {path}")


def _figure(title: str, data: bytes, width: str | None = None):
    img = W.Image(value=data, format="png", layout=W.Layout(width=width) if width else W.Layout())
    return W.VBox([W.HTML(f"<small>{title}</small>"), img], layout=W.Layout(margin="2px"))


def _boxes(r):
    from lrlib.viz import draw_boxes
    return draw_boxes(r.source, [b[c] for b, c in zip(r.boxes, r.chosen)], r.best, r.anchors)


def settings_line(s: Settings) -> str:
    """The settings of a run in one short line (the history strip)."""
    preset = s.preset or "base"
    tau = f" tau={s.tau:.2g}" if s.estimator == "st" else ""
    anchors = f" caption-anchors prune={s.prune}" if s.caption_anchors and s.caption.strip() else ""
    return (f"{preset} | K={s.K} M={s.M} it={s.iterations} {s.estimator}{tau} seed={s.seed} | "
            f"L: {s.lambda_clip:g}/{s.lambda_str:g}/{s.lambda_dir:g} | "
            f"S: a={s.alpha:g} b={s.beta:g} g={s.gamma:g} d={s.delta:g}{anchors}")


def scores_html(r) -> str:
    """The ranking of a result, term by term, as the scoring computed it (lrlib.scoring)."""
    cfg = r.config
    rows = score_rows(r)
    names = ("S_t2i", "S_i2i", "S_dir", "S_cap")
    unused = unused_terms(r)
    used = [(n, w) for n, w in (("S_t2i", "alpha"), ("S_i2i", "beta"), ("S_dir", "gamma"),
                                ("S_cap", "delta")) if n in r.scores]
    formula = " + ".join(f"{getattr(cfg, w):g}&middot;{n}" for n, w in used)
    scale = ("CLIP's logit scale" if cfg.score_scale is None else f"{cfg.score_scale:g}")
    out = ["<style>.lr-scores td, .lr-scores th {padding: 1px 8px; text-align: right}</style>"
           f'<div class="lr-scores"><b>S = {formula}</b> &nbsp;<small>(alpha = {cfg.alpha:g}, '
           f"beta = {cfg.beta:g}, gamma = {cfg.gamma:g}, delta = {cfg.delta:g}; each term is a "
           f"softmax over the K candidates of {scale} &times; a cosine; the winner: the highest S "
           f"among the {cfg.rank_top} highest S_t2i)</small>"]
    if unused:
        out.append("<br><small>not in S: " + "; ".join(f"{n} ({why})" for n, why in unused.items())
                   + "</small>")
    head = "".join(f"<th>{n}</th>" for n in names)
    out.append('<table style="font-size:12px;border-collapse:collapse">'
               f"<tr><th>#</th>{head}<th>weighted sum</th><th>S</th><th></th></tr>")
    for row in rows:
        vals = {n: v for n, _, _, v in row["terms"]}
        cells = "".join(f"<td>{vals[n]:.3f}</td>" if n in vals else "<td>&mdash;</td>"
                        for n in names)
        sum_text = " + ".join(f"{wv:g}&times;{v:.3f}" for _, _, wv, v in row["terms"])
        flag = ("&#9733; winner" if row["best"] else
                "" if row["top"] else f"not in the top {cfg.rank_top} by S_t2i")
        out.append(f"<tr><td>#{row['k']}</td>{cells}<td>{sum_text} = {row['sum']:.3f}</td>"
                   f"<td><b>{row['S']:.3f}</b></td><td>{flag}</td></tr>")
    out.append("</table></div>")
    return "".join(out)
