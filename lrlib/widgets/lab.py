"""The plain functions behind the widget lab: no ipywidgets here, so tests drive them directly.

A press of the panel's button reads the controls into a `Settings` (the values shown at that
moment), turns them into an `LRConfig` on top of the world's base config (`Settings.config`) and
runs one edit (`run_edit`), with lrlib's progress bars reported to a callback (`progress_to`).

Presets set the method fields on top of the base (its models and sizes stay):

    "paper"   LRConfig.paper()'s method: straight-through Gumbel, S = 2 S_t2i + S_i2i, the top-K
              attention peaks, M squares per anchor, hard paste
    "lrlib"   LRConfig()'s method: the RGN fitted to the cached loss table (softmin objective,
              + the box terms L_cover and L_spill), caption-aware anchors (pruned by the
              caption), ladder boxes, S with + 3 S_dir + 30 S_cap, feathered paste

`control_rules` says which controls can change the result under the current settings and why
the others cannot (the panel disables those, with the reason as their tooltip).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path

from lrlib.config import PAPER_METHOD, LRConfig
from lrlib.errors import LRError

#: the method fields the panel shows as controls (a preset sets them, the user may change them)
WEIGHTS = ("estimator", "tau", "lambda_clip", "lambda_str", "lambda_dir", "alpha", "beta",
           "gamma", "delta")
#: the prune margins offered ("off": keep every anchor, as the paper)
PRUNE_CHOICES = ("off", "0.05", "0.1", "0.2", "0.3")


def lrlib_reference(base: LRConfig) -> LRConfig:
    """lrlib's method as this base's world runs it: LRConfig() for real checkpoints, else
    LRConfig.cpu() (the same method, with the CPU sizes of its pool and drafts)."""
    return LRConfig() if base.world == "real" else LRConfig.cpu(world=base.world)


def lrlib_pool(base: LRConfig) -> int:
    """The anchor pool of caption-aware anchors for this base: its own when it has one, else
    lrlib's for its world."""
    return base.anchor_pool if base.anchor_pool > 0 else lrlib_reference(base).anchor_pool


def preset_config(name: str | None, base: LRConfig) -> LRConfig:
    """`base` with the method fields of preset `name` ("paper", "lrlib"; None: base as it is).
    Only the fields where the paper and lrlib differ (config.PAPER_METHOD), and the ranking and
    loss weights, change; models and sizes stay the base's."""
    if name is None:
        return base
    if name not in ("paper", "lrlib"):
        raise LRError(f"preset={name!r} is unknown; use 'paper' or 'lrlib'.")
    ref = LRConfig.paper() if name == "paper" else lrlib_reference(base)
    fields = {k: getattr(ref, k) for k in (*PAPER_METHOD, *WEIGHTS)}
    if name == "lrlib":
        fields["anchor_pool"] = lrlib_pool(base)
    return base.replace(**fields)


def preset_of(cfg: LRConfig) -> str | None:
    """"paper" or "lrlib" when cfg's method fields are exactly that preset's, else None."""
    for name in ("lrlib", "paper"):
        ref = preset_config(name, cfg)
        if all(getattr(ref, k) == getattr(cfg, k) for k in (*PAPER_METHOD, *WEIGHTS)):
            return name
    return None


def hidden_fields(name: str | None, base: LRConfig) -> dict:
    """The method fields preset `name` sets that are not controls (shown as one line)."""
    cfg = preset_config(name, base)
    return {k: getattr(cfg, k) for k in PAPER_METHOD
            if k not in WEIGHTS and k not in ("anchor_pool", "prune_margin")}


@dataclass
class Settings:
    """What one press of the button runs: the panel's controls, read at press time."""
    image: str = "toy scene"          # the sample's name (or "upload: name.png")
    prompt: str = "a blue square"
    caption: str = ""
    preset: str | None = "lrlib"      # whose method fields under the controls; None: base's own
    editor: str = "sd"
    K: int = 2
    M: int = 3
    iterations: int = 2
    seed: int = 0
    estimator: str = "expected"
    tau: float = 1.0
    lambda_clip: float = 1.0
    lambda_str: float = 1.0
    lambda_dir: float = 1.0
    alpha: float = 2.0
    beta: float = 1.0
    gamma: float = 3.0
    delta: float = 30.0
    caption_anchors: bool = True      # anchor_pool > K: anchors chosen by the caption (lrlib)
    prune: str = "0.1"                # prune_margin, or "off"

    @classmethod
    def from_config(cls, cfg: LRConfig, **changes) -> "Settings":
        """The controls as they start from `cfg` (its preset detected), then `changes`."""
        s = cls(preset=preset_of(cfg), editor=cfg.editor, K=cfg.K, M=cfg.M,
                iterations=cfg.iterations, seed=cfg.seed,
                caption_anchors=cfg.anchor_pool > cfg.K,
                prune="off" if cfg.prune_margin is None else f"{cfg.prune_margin:g}",
                **{k: getattr(cfg, k) for k in WEIGHTS})
        return dataclasses.replace(s, **changes)

    def config(self, base: LRConfig) -> LRConfig:
        """The LRConfig this press runs: the preset's method on `base`, then every control.
        Progress bars off (the panel reports them itself: `progress_to`)."""
        cfg = preset_config(self.preset, base)
        if self.iterations != cfg.iterations:          # the loop length is all that counts
            cfg = cfg.replace(epochs=1, iters_per_epoch=int(self.iterations))
        try:
            prune = None if self.prune == "off" else float(self.prune)
        except ValueError:
            raise LRError(f"prune={self.prune!r}: use 'off' or a margin such as '0.1'.") from None
        return cfg.replace(
            editor=self.editor, K=int(self.K), M=int(self.M), seed=int(self.seed),
            anchor_pool=lrlib_pool(base) if self.caption_anchors else 0, prune_margin=prune,
            progress=False, **{k: (v if k == "estimator" else float(v))
                               for k, v in ((k, getattr(self, k)) for k in WEIGHTS)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def control_rules(s: Settings, base: LRConfig) -> dict[str, str | None]:
    """{control: None if it can change this run's result, else why it cannot}. The panel
    disables the controls with a reason and shows the reason as their tooltip."""
    caption = bool(s.caption.strip())
    grounded = caption and s.caption_anchors
    return {
        "tau": None if s.estimator == "st" else
        "tau is the Gumbel-Softmax temperature of the straight-through estimator ('st'); the "
        "'expected' estimator trains on the exact softmax, with no Gumbel samples: tau changes "
        "nothing. Set estimator to 'st' to use it.",
        "caption_anchors": None if caption else
        "caption-aware anchors read the caption: with no caption the anchors are the top-K "
        "attention peaks. Type a caption to use them.",
        "prune": None if grounded else
        "pruning drops the anchors whose region the caption rules out: it needs a caption and "
        "caption-aware anchors.",
        "delta": None if grounded else
        "S_cap is how well each anchor's region matches the caption, measured when caption-aware "
        "anchors are chosen: it needs a caption and caption-aware anchors.",
    }


def k_max(s: Settings, base: LRConfig, limit: int = 9) -> int:
    """The largest K the controls offer: caption-aware anchors choose K from a pool of
    `lrlib_pool(base)` peaks, and a K as large as the pool would silently turn them off."""
    if s.caption.strip() and s.caption_anchors:
        return max(1, min(limit, lrlib_pool(base) - 1))
    return limit


# ------------------------------------------------------------------------------ progress

@contextlib.contextmanager
def progress_to(report):
    """Within the block, lrlib's progress bars call `report(desc, n, total)` instead of drawing
    (desc "candidate edits", then "training RGN"; lrlib.progress). `report` None: nothing
    changes."""
    from lrlib.progress import report_to
    with report_to(report):
        yield


# ------------------------------------------------------------------------------ inputs

def sample_images(size: int = 64) -> dict:
    """{name: (PIL image, caption, prompt)}: the shipped demo scene and toy scenes drawn at
    `size` (the world's canvas), each with the edit it was made for."""
    from lrlib.demo import DEMO_CAPTION, DEMO_IMAGE, DEMO_PROMPT
    from lrlib.images import load_image
    from lrlib.toy import make_edit_task, render_scene

    size = int(size or 512)
    out = {"toy scene": (render_scene(7, size, objects=[("circle", "red"), ("triangle", "green")])
                         .pil(), "the red circle", "a blue square"),
           "demo scene": (load_image(DEMO_IMAGE), DEMO_CAPTION, DEMO_PROMPT)}
    for name, seed, kind in (("toy: two objects", 3, "multi"), ("toy: a relation", 5, "relation"),
                             ("toy: a long prompt", 11, "long")):
        t = make_edit_task(seed, size, kind)
        out[name] = (t.scene.pil(), t.source_caption, t.prompt)
    return out


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """[(name, bytes)] from a FileUpload's value, in either shape: ipywidgets 8 (a tuple of
    dicts with "name" and "content", a memoryview) or ipywidgets 7 (a dict name -> {"metadata":
    {"name": ...}, "content": bytes})."""
    if not value:
        return []
    if isinstance(value, dict):                                    # ipywidgets 7
        return [((f.get("metadata") or {}).get("name", name), bytes(f["content"]))
                for name, f in value.items()]
    return [(f.get("name", "upload"), bytes(f["content"])) for f in value]   # ipywidgets 8


def read_upload(name: str, data: bytes):
    """The uploaded bytes as an RGB PIL image (lrlib.images.load_image's checks), or an LRError
    saying what to upload instead."""
    from PIL import Image, UnidentifiedImageError

    from lrlib.images import load_image
    if not data:
        raise LRError(f"the upload '{name}' is empty; upload a PNG or JPEG image.")
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError) as e:
        raise LRError(f"could not read the upload '{name}' as an image ({type(e).__name__}); "
                      "upload a PNG or JPEG image.") from None
    return load_image(img)


# ------------------------------------------------------------------------------ one run

def run_edit(image, settings: Settings, base: LRConfig, models=None, progress=None):
    """One edit with `settings` on top of `base` (models: loaded for the config when None or
    for another editor); `progress(desc, n, total)` gets lrlib's bars. Returns the EditResult.
    Bad input (empty or over-long prompt, impossible setting) raises lrlib.errors.LRError."""
    from lrlib.pipeline import edit
    from lrlib.text import check_prompt

    cfg = settings.config(base).validate()
    prompt = check_prompt(settings.prompt)
    caption = check_prompt(settings.caption, "caption") if settings.caption.strip() else None
    if models is not None and getattr(models.editor, "kind", None) != cfg.editor:
        models = None                                # another editor asked for: load it
    with progress_to(progress):
        return edit(image, prompt, caption=caption, config=cfg, models=models)


@dataclass
class Run:
    """One finished press of the button: the settings read then, and what the edit returned."""
    number: int
    settings: Settings
    result: object                    # the EditResult (its config: the LRConfig that ran)
    seconds: float = 0.0              # wall-clock seconds of the press, models loading included


def export_run(run: Run, folder) -> Path:
    """Write the run's result folder (EditResult.save: pictures and result.json, its config
    the settings used) and lab.json (the panel's settings) into `folder`, which must not exist:
    the lab never replaces a folder. Returns the folder."""
    from lrlib.outputs import atomic_write_text
    text = str(folder).strip()
    if not text:
        raise LRError("name a folder to export into, e.g. lab-runs/run-1.")
    path = Path(text).expanduser()
    if path.exists() or path.is_symlink():
        raise LRError(f"'{text}' already exists; the lab never replaces a folder: name a new one.")
    run.result.save(path, overwrite=False)
    atomic_write_text(path / "lab.json", json.dumps(
        {"run": run.number, "settings": run.settings.to_dict()}, indent=1))
    return path


# ------------------------------------------------------------------------------ the score

TERMS = (("S_t2i", "alpha"), ("S_i2i", "beta"), ("S_dir", "gamma"), ("S_cap", "delta"))


def score_rows(result) -> list[dict]:
    """Per candidate k: each term of S that was computed, its weight, their weighted sum and the
    S the ranking used (lrlib.scoring.quality_scores: S = alpha S_t2i + beta S_i2i
    [+ gamma S_dir] [+ delta S_cap], each term a softmax over the K candidates), whether k is
    among the `rank_top` best by S_t2i (the only ones that can win) and whether it won."""
    import torch
    sc, cfg = result.scores, result.config
    K = len(sc["S"])
    t2i = torch.tensor(sc["S_t2i"])
    top = set(torch.argsort(t2i, descending=True, stable=True)[:min(cfg.rank_top, K)].tolist())
    rows = []
    for k in range(K):
        terms = [(name, w, getattr(cfg, w), sc[name][k]) for name, w in TERMS if name in sc]
        rows.append({"k": k, "terms": terms, "sum": sum(wv * v for _, _, wv, v in terms),
                     "S": sc["S"][k], "top": k in top, "best": k == result.best})
    return rows


def unused_terms(result) -> dict[str, str]:
    """{term: why S has no such term in this result}."""
    cfg, out = result.config, {}
    if "S_dir" not in result.scores:
        out["S_dir"] = "gamma = 0"
    if "S_cap" not in result.scores:
        out["S_cap"] = ("delta = 0" if not cfg.delta else
                        "no caption-aware anchors, so no grounding to score")
    return out


def candidates_note(result, settings: Settings) -> str:
    """Why this run has fewer candidates than K asked, and what that does to the ranking."""
    K = len(result.results)
    msg = ""
    if K < settings.K:
        cfg = result.config
        dropped = settings.K - K
        pruned = cfg.prune_margin is not None and result.grounding is not None
        why = (f"prune_margin {cfg.prune_margin:g} dropped {dropped} anchor(s) whose region "
               "matches the caption less well than the best one" if pruned
               else f"{dropped} anchor(s) had no usable edit")
        msg = f"K = {settings.K} asked, {K} kept: {why}. "
    if K == 1:
        msg += ("One candidate: every softmax over one candidate is 1, so S = alpha + beta "
                "(+ gamma + delta) and the ranking weights cannot change the winner.")
    return msg.strip()


def loss_png(result, width: float = 3.4) -> bytes:
    """The training curve (L and its terms per iteration) as PNG bytes."""
    from matplotlib.figure import Figure         # no pyplot: nothing shown, no global state
    fig = Figure(figsize=(width, 2.3), dpi=80)
    a = fig.add_subplot()
    h = result.history
    if h.loss:
        a.plot(h.loss, "k", label="L", marker="." if len(h.loss) < 3 else None)
        for name, v in h.terms.items():
            a.plot(v, label=name, lw=0.8)
        a.legend(fontsize=6)
    else:
        a.text(0.5, 0.5, "no training (0 iterations)", ha="center", va="center", fontsize=8)
    a.set_xlabel("iteration", fontsize=8)
    a.set_title("training loss", fontsize=9)
    a.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def png(img, min_side: int = 160, max_side: int | None = None) -> bytes:
    """PNG bytes of a PIL image, upscaled (nearest, so toy pixels stay sharp) to `min_side`,
    or shrunk to `max_side`."""
    from PIL import Image
    w, h = img.size
    s = max(1, -(-min_side // min(w, h)))
    if s > 1:
        img = img.resize((w * s, h * s), Image.NEAREST)
    if max_side and max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="png")
    return buf.getvalue()
