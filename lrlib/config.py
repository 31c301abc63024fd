"""One config object holding every knob of the method, each declared once.

`LRConfig()` is lrlib's method for a GPU with real checkpoints: the paper's sizes and weights,
with the choices the toy benchmark measured better (lrlib/bench/README.md): the exact
expected-loss gradient, caption-aware anchors and ranking, boxes fitted to the object.
`LRConfig.paper()` is the paper / official code's method exactly (`PAPER_METHOD` below).
`LRConfig.cpu()` is the CPU-sized setting: the same method on the shipped toy world's small models
at 64 px (it learns and is measured there; it knows only toy scenes, not photos).
Which models a config runs is decided by `lrlib.worlds` (`choose_world`, `LRLIB_WORLD`); the config
only holds the choice (`world`) as a value and never reads the disk or the environment (its
`validate()` asks torch whether the `device` named exists: that is where the edit will run).

    cfg = LRConfig(K=5, editor="maskgit")     # override any field
    cfg = LRConfig.paper()                     # the paper's method, exactly
    cfg = LRConfig.cpu(seed=3)                 # CPU-sized, same code path

**Declarations.** Every field is declared with `knob(default, meaning, ...)`: its one-line
meaning, its kind ("model": which models run; "runtime": where and how fast, not what; "method":
what the edit computes; "output": how the result is made from the chosen edit), its type (the
annotation), its bounds (lower and upper, each justified where it is not obvious) or allowed
values. `validate()`, `describe()` and the command line's flags (`python -m lrlib`) are
generated from these declarations (`KNOBS`), so a new field cannot be left unchecked or
undocumented. The rules that tie several fields together (box_min <= box_max, the total work of an edit) are the
`_RULES` below.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import re
import typing
from dataclasses import dataclass

from lrlib.errors import LRError, UnknownSettingError

KINDS = ("model", "runtime", "method", "output")

#: the most work one edit may ask for (see `LRConfig.work`): each limit is several times what the
#: paper's own settings need, and the worst accepted edit stays under about an hour on a T4
MAX_EDITOR_EVALS = 40_000      # UNet (or MaskGIT transformer) image-evaluations; the paper's
                               # settings: 6,528, the official loop 10,098; a T4 runs ~14 a second
MAX_CLIP_FORWARDS = 200_000    # CLIP image forwards of the losses and the ranking; the paper's
                               # straight-through run: 2,250; a T4: ~300 a second
MAX_ITERATIONS = 5_000         # RGN updates, epochs * iters_per_epoch: 100x the paper's 50
MAX_CANDIDATE_PIXELS = 2 ** 30  # K * M * S * S: the candidate composites are held at once as
                               # float32 (K, M, 3, S, S): 12 GiB at this limit
#: a model id or a folder: any text without control characters (a NUL byte cannot be a path)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def knob(default, meaning: str, *, kind: str = "method", lo=None, hi=None, lo_open: bool = False,
         choices: tuple = (), multiple: int | None = None, none: str = "", why: str = "",
         hint: str = "", nonempty: bool = False, path: bool = False, check=None):
    """A dataclass field with its declaration in `metadata["knob"]` (see `Knob`)."""
    spec = dict(meaning=meaning, kind=kind, lo=lo, hi=hi, lo_open=lo_open, choices=tuple(choices),
                multiple=multiple, none=none, why=why, hint=hint, nonempty=nonempty, path=path,
                check=check)
    return dataclasses.field(default=default, metadata={"knob": spec})


@dataclass(frozen=True)
class Knob:
    """One LRConfig field as declared: what it means and which values it takes.

    type / optional come from the field's annotation (`int | None`: an int, or None); lo, hi
    are inclusive bounds (lo_open: lo itself excluded); choices the only allowed values; none
    what None means (for an optional field); why the reason for the bounds; hint the fix an
    error adds; nonempty / path: a string that must hold text / be usable as a path; check an
    extra rule on the value (returns what is wrong, or None)."""
    name: str
    default: object
    type: type
    optional: bool
    meaning: str
    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple = ()
    multiple: int | None = None
    none: str = ""
    why: str = ""
    hint: str = ""
    nonempty: bool = False
    path: bool = False
    check: typing.Callable | None = None

    @property
    def flag(self) -> str:
        """The command-line flag: the name with dashes (sd_model -> --sd-model)."""
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> str:
        """The values this knob takes, in words: 'an integer in 1..500', "'sd' or 'maskgit'"."""
        if self.choices:
            text = " or ".join(map(repr, self.choices))
        elif self.type is bool:
            text = "True or False"
        elif self.type is str:
            text = "a non-empty string" if self.nonempty or self.path else "a string"
        else:
            noun = "an integer" if self.type is int else "a finite number"
            if self.lo is not None and self.hi is not None:
                rng = (f"{self.lo}..{self.hi}" if self.type is int else
                       f"{'(' if self.lo_open else '['}{self.lo}, {self.hi}]")
                text = f"{noun} in {rng}"
            elif self.lo is not None:
                text = f"{noun} {'>' if self.lo_open else '>='} {self.lo}"
            else:
                text = noun
            if self.multiple:
                text += f", a multiple of {self.multiple}"
        if self.optional:
            text += f", or None ({self.none})" if self.none else ", or None"
        return text

    def short(self) -> str:
        """`allowed()` in a few characters, for the knob table."""
        if self.choices:
            text = "|".join(map(str, self.choices))
        elif self.type is bool:
            text = "bool"
        elif self.type is str:
            text = "text"
        else:
            lo = "" if self.lo is None else str(self.lo)
            hi = "" if self.hi is None else str(self.hi)
            text = (f"{lo}..{hi}" if self.type is int else
                    f"{'(' if self.lo_open else '['}{lo}, {hi or 'inf'}{']' if hi else ')'}")
            if self.multiple:
                text += f" x{self.multiple}"
        return text + (" | None" if self.optional else "")

    def problem(self, v) -> str | None:
        """What is wrong with the value v for this knob (None: nothing), as the error says it."""
        if v is None:
            return None if self.optional else self._wrong(v)
        if self.type is bool:
            ok = isinstance(v, bool)
        elif self.type is int:
            ok = isinstance(v, numbers.Integral) and not isinstance(v, bool)
        elif self.type is float:
            ok = (isinstance(v, numbers.Real) and not isinstance(v, bool)
                  and math.isfinite(float(v)))
        else:
            ok = isinstance(v, str) and (not (self.nonempty or self.path) or bool(v.strip()))
            if ok and self.path and _CONTROL.search(v):
                return (f"{self.name}={v!r}: a model id or folder cannot hold control characters "
                        "(a NUL byte, a newline); check how it was written.")
        if ok and self.choices:
            if v not in self.choices:
                return f"{self.name}={v!r} is unknown; use {self.allowed()}{self.hint}."
        elif ok and self.type in (int, float):
            ok = ((self.lo is None or v > self.lo or (v == self.lo and not self.lo_open))
                  and (self.hi is None or v <= self.hi)
                  and (not self.multiple or v % self.multiple == 0))
        if not ok:
            return self._wrong(v)
        return self.check(v) if self.check else None

    def _wrong(self, v) -> str:
        """The message for a value of the wrong type or out of bounds; the bounds' reason is
        given when the value is past the upper one or not a whole multiple."""
        past = (self.type in (int, float) and isinstance(v, numbers.Real)
                and not isinstance(v, bool) and math.isfinite(float(v))
                and ((self.hi is not None and v > self.hi)
                     or bool(self.multiple and v % self.multiple)))
        why = f"; why: {self.why}" if self.why and past else ""
        return (f"{self.name}={v!r}: must be {self.allowed()}{self.hint}{why}; "
                f"e.g. {self.name}={self.default!r} (the default).")

    def parse(self, text: str):
        """The value a command-line string stands for (checked by `problem` afterwards)."""
        t = text.strip()
        if self.optional and t.lower() in ("none", "null", "auto"):
            return None
        if self.type is bool:
            low = t.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise LRError(f"{self.flag} {text!r}: must be true or false.")
        if self.type is int:
            try:
                return int(t)
            except ValueError:
                raise LRError(f"{self.flag} {text!r}: must be {self.allowed()}; e.g. {self.flag} "
                              f"{self.default}.") from None
        if self.type is float:
            try:
                return float(t)
            except ValueError:
                raise LRError(f"{self.flag} {text!r}: must be {self.allowed()}; e.g. {self.flag} "
                              f"{self.default}.") from None
        return text


def _device_problem(v: str) -> str | None:
    """What is wrong with a device name on this machine (None: it can be used here)."""
    if v in ("auto", "cpu"):
        return None
    import torch
    try:
        d = torch.device(v)
    except (RuntimeError, ValueError, TypeError):
        return f"device={v!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:1'."
    if d.type == "cpu":
        return None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            return (f"device={v!r} was asked for but no CUDA GPU is visible on this machine; use "
                    "device='auto' or 'cpu' (slow with real checkpoints), or run on a GPU.")
        n = torch.cuda.device_count()
        if d.index is not None and d.index >= n:
            return (f"device={v!r}: this machine has {n} CUDA GPU{'s' if n > 1 else ''} "
                    f"(cuda:0..cuda:{n - 1}); use one of them or 'auto'.")
        return None
    if d.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return (f"device={v!r}: this machine has no Apple MPS device (or this PyTorch was "
                    "built without it); use device='auto' or 'cpu'.")
        return None
    return f"device={v!r}: lrlib runs on 'cpu', 'cuda' or 'mps', not {d.type!r}; use 'auto'."


def _template_problem(v: str) -> str | None:
    """A prompt template must take the prompt at one '{}' and nothing else (str.format)."""
    try:
        filled = v.format("\x00")
    except (IndexError, KeyError, ValueError):
        filled = ""
    if filled.count("\x00") != 1:
        return (f"prompt_template={v!r} must contain '{{}}' once, where the prompt goes, and no "
                "other braces (write '{{' for a literal brace); e.g. 'a photo of {}.'.")
    return None


def _caption_problem(v: str) -> str | None:
    from lrlib.text import check_prompt
    try:
        check_prompt(v, "default_caption")
    except LRError as e:
        return str(e)
    return None


@dataclass
class LRConfig:
    # --- which models ------------------------------------------------------------------
    world: str = knob(
        "real", "which models run: 'real' the hub ids / local folders below; 'toy' the shipped "
        "toy-world models (lrlib/toy/weights); 'random' small random-weight stand-ins of the same "
        "classes (wiring only)", kind="model", choices=("real", "toy", "random"),
        hint=" ('real': checkpoints, 'toy': the shipped toy world, 'random': small random-weight "
             "stand-ins)")
    dino: str = knob("vit_base_patch16_224.dino", "DINO: timm id or local folder (official: "
                     "..._patch8_224.dino)", kind="model", path=True)
    clip: str = knob("ViT-B-16", "CLIP: open_clip architecture name or local folder",
                     kind="model", path=True)
    clip_pretrained: str = knob("openai", "open_clip pretrained tag (ignored for a folder)",
                                kind="model", path=True)
    editor: str = knob("sd", "the editor: 'sd' (Stable Diffusion inpainting) or 'maskgit' "
                       "(aMUSEd)", kind="model", choices=("sd", "maskgit"))
    sd_model: str = knob("sd2-community/stable-diffusion-2-inpainting", "SD 1.x / 2.x / SDXL "
                         "inpainting: hub id or folder", kind="model", path=True)
    maskgit_model: str = knob("amused/amused-256", "aMUSEd: hub id or folder (or "
                              "amused/amused-512)", kind="model", path=True)
    device: str = knob("auto", "where it runs: 'auto' (cuda if present) | 'cpu' | 'cuda' | "
                       "'cuda:1' | 'mps'; checked against this machine", kind="runtime",
                       nonempty=True, check=_device_problem)
    dtype: str = knob("auto", "the editors' dtype: 'auto' (fp16 on CUDA, fp32 on CPU) | "
                      "'float16' | 'bfloat16' | 'float32'", kind="runtime",
                      choices=("auto", "float16", "bfloat16", "float32"))

    # --- image ---------------------------------------------------------------------------
    size: int | None = knob(
        None, "working canvas side S; None: the editor's resolution, at least 512 (SD 1.x / 2.x, "
        "aMUSEd: 512; SDXL: 1024; decided when the editor is loaded, recorded in the result). A "
        "non-square input is letterboxed onto S x S (long side S, edge padding); the result is "
        "pasted back into the full-resolution input, outside the box untouched", kind="output",
        lo=32, hi=4096, multiple=8, none="the editor's own resolution",
        why="the editors' latents need a multiple of 8; past 4096 px the S x S candidates do "
            "not fit one GPU (the input itself may be up to 8192 px: it is pasted back)",
        hint="; paper: 512")

    # --- anchors (DINO) -------------------------------------------------------------------
    K: int = knob(9, "anchor points (official README run: 9)", lo=1, hi=64,
                  why="more anchors than objects in any picture; each costs M edits",
                  hint=": the number of anchors (paper runs use 9)")
    anchor_spacing: int = knob(2, "min Chebyshev distance between anchors, in patches", lo=0,
                               hi=16, why="patches between anchors; DINO's grid is at most "
                                          "64 cells a side, 28 by default",
                               hint=" (patches between anchors)")
    anchor_refine: bool = knob(True, "anchor = local attention centroid around each peak cell "
                               "(lrlib; False: the peak cell's centre, as the paper)")
    dino_size: int | None = knob(
        448, "DINO input px for real checkpoints (B/16: 28x28 patches, not 14x14; official B/8 at "
        "256); None: the model's own; toy / random worlds: their own", lo=64, hi=1024,
        multiple=16, none="the model's own input size",
        why="a whole number of 8 or 16 px patches; at 1024 px B/16 attends over 4,096 tokens")
    anchor_pool: int = knob(
        18, "> K: score this many attention peaks against the caption and keep the K best, one "
        "per object (lrlib, additions.grounding; CPU: 8); 0 (or any value <= K): the top K "
        "peaks (paper)", lo=0, hi=256,
        why="each pooled peak is one CLIP view; more than the grid's distinct objects is waste")
    anchor_cover: bool = knob(True, "caption anchors: the pool takes one peak per region (a peak "
                              "inside a region already taken is skipped; additions.grounding.cover_pool; "
                              "lrlib); False: peaks spaced on the grid only")
    max_blob: float | None = knob(
        0.5, "caption anchors: a blob over this share of the picture (the background) or under a "
        "quarter patch (a speck) is not an object: g - 1 (lrlib); None: every blob alike (use "
        "None or 0.9 on a close-up whose subject fills over half the frame)", lo=0, hi=1,
        lo_open=True, none="every blob alike", why="a share of the picture")
    prune_margin: float | None = knob(
        0.1, "caption anchors: drop (before any edit) those whose grounding g is below the best "
        "by more than this (fewer candidate edits; lrlib; None: keep all K, as the paper)", lo=0, hi=2, none="keep every anchor",
        why="a margin between cosines, which differ by at most 2")
    anchor_context: float = knob(
        1.2, "caption score views: this times the fitted box's side", lo=1, hi=8,
        why="a view at least the box itself; past 8 times its side the view is the whole "
            "picture for any box lrlib proposes")
    anchor_view: str = knob(
        "blob", "'blob': the image with all outside the anchor's DINO blob filled with its median "
        "colour (lrlib); 'keep': all outside the box x anchor_context; 'crop': that square, "
        "resized", choices=("keep", "crop", "blob"))

    # --- proposals and RGN ----------------------------------------------------------------
    M: int = knob(7, "box proposals per anchor (paper: 7)", lo=2, hi=64,
                  hint=": the RGN needs at least 2 box proposals to choose from (paper: 7)")
    box_min: float = knob(0.15, "smallest box side, fraction of the image side", lo=0.01, hi=1,
                          why="a fraction of the image side; under 0.01 a box is under a pixel "
                              "on a small canvas")
    box_max: float = knob(0.75, "largest box side, fraction of the image side (<= 1)", lo=0.01,
                          hi=1, why="a fraction of the image side",
                          hint=": box sides are fractions of the image side, over 1.0 a box is "
                               "larger than the image")
    roi_size: int = knob(8, "ROI-align output, cells a side (official: 8)", lo=1, hi=32,
                         why="more cells than DINO's grid has only interpolates")
    rgn_channels: int = knob(64, "RGN conv channels over the pooled features", lo=1, hi=1024,
                             why="a small network trained for a few dozen steps")
    rgn_hidden: int = knob(256, "RGN hidden width before the M box logits", lo=1, hi=4096,
                           why="a small network trained for a few dozen steps")
    tau: float = knob(1.0, "Gumbel-Softmax temperature (official: 1, hard)", lo=0.01, hi=100,
                      why="below 0.01 the scaled logits overflow; above 100 the samples are "
                          "uniform", hint=": the Gumbel-Softmax temperature (official: 1.0)")
    hard: bool = knob(True, "straight-through hard samples")
    proposals: str = knob(
        "ladder", "'ladder': the DINO-feature blob's box around the anchor scaled by M factors "
        "ladder_lo..ladder_hi, from a tight part of the object to the object with context "
        "(lrlib.additions.proposals_ladder; lrlib); 'fitted': the same box scaled by "
        "fit_min..fit_max, every box holds the object (lrlib); 'squares': M squares of "
        "box_sides centred on the anchor (paper)", choices=("ladder", "fitted", "squares"))
    fit_level: float = knob(
        0.7, "'fitted': cosine to the anchor's feature that joins the blob", lo=-1, hi=1, why="a cosine")
    fit_snap: float = knob(
        1.5, "'fitted': snap the similarity to the image's edges with a guided filter of this "
        "radius in patch cells (lrlib.additions.guided_filter; 0: the blurred patch map)", lo=0, hi=16, why="patch cells; 16 is over half of the default 28-cell grid")
    fit_reach: float = knob(
        0.5, "'fitted': an anchor below fit_level seeds its blob at the nearest pixel above it "
        "within this many patch cells (a star's gap, an object's rim; lrlib); 0: the anchor's "
        "pixel", lo=0, hi=16, why="patch cells; 16 is over half of the default 28-cell grid")
    fit_min: float = knob(
        1.1, "'fitted': smallest scale of the blob's box (1.0: the blob's box itself)", lo=0.1, hi=8,
        why="a scale of the blob's box; boxes are clipped to the picture, so past 8 every box "
            "is the whole picture")
    fit_max: float = knob(1.5, "'fitted': largest scale of the blob's box (>= fit_min)", lo=0.1,
                          hi=8, why="a scale of the blob's box; boxes are clipped to the "
                                    "picture, so past 8 every box is the whole picture")
    ladder_lo: float = knob(
        0.85, "'ladder': smallest scale of the blob's box (a tight part of the object); the M "
        "scales are geometric from ladder_lo to ladder_hi", lo=0.1, hi=8,
        why="a scale of the blob's box; boxes are clipped to the picture, so past 8 every box "
            "is the whole picture")
    ladder_hi: float = knob(
        1.7, "'ladder': largest scale of the blob's box (the object with context; >= ladder_lo)",
        lo=0.1, hi=8, why="a scale of the blob's box; boxes are clipped to the picture, so past "
                          "8 every box is the whole picture")

    # --- training (test-time optimisation of the RGN) ------------------------------------
    epochs: int = knob(5, "RGN training epochs (paper: '5 epochs'; the official train.sh runs "
                       "--epochs 1)", lo=0, hi=1000,
                       why=f"with iters_per_epoch, at most {MAX_ITERATIONS:,} updates in all",
                       hint=" (paper: 5)")
    iters_per_epoch: int = knob(
        10, "RGN updates per epoch (official --per_image_iteration 10); iterations = epochs * "
        "iters_per_epoch (official run: 10)", lo=0, hi=1000,
        why=f"with epochs, at most {MAX_ITERATIONS:,} updates in all")
    lr: float = knob(0.003, "learning rate (paper: Adam, 0.003)", lo=0, hi=1, lo_open=True,
                     why="Adam moves each weight by about lr per step; past 1 it diverges",
                     hint=" (paper: Adam, 0.003)")
    estimator: str = knob("expected", "'expected': exact gradient of E_p[L] over cached "
                          "candidates (lrlib); 'st': straight-through Gumbel (paper)",
                          choices=("st", "expected"), hint=" ('st': straight-through)")
    lambda_clip: float = knob(1.0, "weight of L_clip (paper: 1)", lo=0, hi=1000,
                              why="a loss weight; only ratios matter")
    lambda_str: float = knob(1.0, "weight of L_str (paper: 1); 0 skips the structure loss",
                             lo=0, hi=1000, why="a loss weight; only ratios matter")
    lambda_dir: float = knob(1.0, "weight of L_dir (paper: 1)", lo=0, hi=1000,
                             why="a loss weight; only ratios matter")
    n_aug: int = knob(4, "augmented views for L_clip", lo=1, hi=64,
                      why="views per candidate and iteration, each one CLIP forward",
                      hint=": L_clip needs at least one view")
    structure: str = knob("dino", "'dino': DINO key self-similarity (Splicing ViT Features); "
                          "'clip': CLIP tokens before the last block (official code)",
                          choices=("dino", "clip"))
    default_caption: str = knob("a photo", "source text for L_dir when no caption is given",
                                check=_caption_problem)
    table_views: int = knob(
        16, "'expected': L_clip views per candidate, loss table computed once (lrlib; official: "
        "16; CPU: 16; 0: redrawn every iteration)", lo=0, hi=256,
        why="each view is one CLIP forward per candidate",
        hint=" (0: the loss table redrawn every iteration)")
    objective: str = knob(
        "softmin", "'expected' estimator, what the RGN fits on the loss table: 'expected' "
        "minimises E_p[L]; 'softmin' the cross-entropy to softmax(-L / softmin_tau) per anchor "
        "(lrlib: its gradient p - q does not vanish where p saturates on a wrong box)",
        choices=("expected", "softmin"))
    softmin_tau: float = knob(0.1, "'softmin' objective: the target's temperature, in units "
                              "of the weighted loss (low: the per-anchor argmin of L)",
                              lo=0, hi=100, lo_open=True,
                              why="a temperature of the loss L; past 100 the target is uniform "
                                  "for any weights up to 1000")
    lambda_cover: float = knob(
        3.0, "weight of L_cover, the share of the anchor's DINO blob outside the box: the old "
        "object stays (lrlib.additions.box_terms; lrlib; paper: none)", lo=0, hi=1000,
        why="a loss weight; only ratios matter")
    cover_margin: float = knob(
        0.25, "L_cover: the anchor's blob grown by this many DINO patch cells first (a box flush "
        "with the blob can leave the object's rim; lrlib)", lo=0, hi=8,
        why="patch cells; 8 cells is a third of the 28-cell grid's side")
    lambda_spill: float = knob(
        1.0, "weight of L_spill, the largest share of another object's DINO blob inside the box: "
        "a neighbour is repainted (lrlib.additions.box_terms; lrlib; paper: none)", lo=0,
        hi=1000, why="a loss weight; only ratios matter")

    # --- ranking -------------------------------------------------------------------------
    alpha: float = knob(2.0, "S = alpha * S_t2i + beta * S_i2i (official: 2, 1)", lo=0, hi=1000,
                        why="a score weight; only ratios matter")
    beta: float = knob(1.0, "weight of S_i2i in the ranking score (official: 1)", lo=0, hi=1000,
                       why="a score weight; only ratios matter")
    gamma: float = knob(3.0, "+ gamma * S_dir, caption-aware (lrlib; paper: 0)", lo=0, hi=1000,
                        why="a score weight; only ratios matter")
    delta: float = knob(30.0, "+ delta * S_cap: the anchor's region matches the caption "
                        "(lrlib.scoring; needs caption anchors; paper: 0)", lo=0, hi=1000,
                        why="a score weight; only ratios matter")
    relation_weight: float = knob(
        0.2, "rho: 'the X left of the Y' read geometrically when choosing and ranking anchors "
        "(lrlib.additions.relations; 0: caption as is)", lo=0, hi=10,
        why="added to cosine scores in -1..1; past 10 the caption's words no longer count")
    rank_top: int = knob(3, "keep the best S among the top-3 by S_t2i (official rule)", lo=1,
                         hi=64, why="at most K results are ranked")
    score_scale: float | None = knob(
        1.0, "softmax temperature of S: 1.0 = raw cosines (official code); None = CLIP's logit "
        "scale (100 for OpenAI CLIP)", lo=0, hi=1000, lo_open=True,
        none="CLIP's own logit scale", why="a scale of cosines; CLIP's own is 100")

    # --- editors ---------------------------------------------------------------------------
    steps: int = knob(
        50, "SD denoising steps (official: 50)", lo=1, hi=500,
        why="the schedulers have 1,000 training timesteps, and past 500 a 'leading' schedule "
            "asks for timestep 1,000, one past the last",
        hint=": the editor needs at least one denoising step (official: 50)")
    guidance_scale: float = knob(7.5, "SD classifier-free guidance (official: 7.5)", lo=0,
                                 hi=100, why="guidance runs above 1; past ~30 images burn")
    scheduler: str = knob(
        "default", "'default': the checkpoint's own (SD2: PNDM/DDIM, 50 steps); 'dpm++': "
        "DPM-Solver++ (2M), good at ~20 steps (faster); 'pndm': PNDM (the official code's); "
        "'lcm': with an LCM-LoRA", choices=("default", "dpm++", "pndm", "lcm"),
        hint=" ('lcm' with an LCM-LoRA in lora=)")
    prompt_template: str | None = knob(None, "e.g. 'a high quality image of {}.' (official code)",
                                       none="the prompt as written", check=_template_problem)
    maskgit_steps: int = knob(12, "MaskGIT decoding steps (aMUSEd default: 12)", lo=1, hi=256,
                              why="aMUSEd-256 unmasks 256 tokens: more steps reveal nothing new",
                              hint=" (aMUSEd: 12)")
    maskgit_guidance: float = knob(10.0, "MaskGIT classifier-free guidance (aMUSEd's default: "
                                   "10)", lo=0, hi=100, why="guidance runs above 1")
    editor_batch_size: int = knob(8, "candidate edits per editor call", kind="runtime", lo=1,
                                  hi=256, why="images in one UNet batch; memory grows with it")
    draft_steps: int = knob(
        5, "> 0: candidates drafted with DPM-Solver++ at this many steps, the winner regenerated "
        "at `steps` (lrlib.additions.drafts; SD only: MaskGIT runs 0; paper: 0; CPU: 0)", lo=0, hi=500, why="as steps",
        hint=" (0: no drafts)")
    lora: str | None = knob(
        None, "LoRA fused into the SD UNet (id or folder), e.g. 'latent-consistency/lcm-lora-"
        "sdv1-5' + scheduler='lcm', steps=4 (paper: none)", kind="model", path=True,
        none="no LoRA")
    blend_px: int = knob(
        3, "feather the paste over the box's last px (lrlib.blend; outside stays the input; 0: "
        "hard paste; paper: none; CPU: 3)", kind="output", lo=0, hi=64,
        why="one erosion pass over the canvas per px; past 64 px the ramp is wider than most "
            "boxes")
    blend_tau: float = knob(
        0.5, "... but keep the full edit where it changed a pixel by this much (the new object, "
        "the old one's removal; lrlib.blend.keep_changes); 0: ramp only", kind="output", lo=0, hi=1,
        why="a colour difference, colours being in 0..1",
        hint=" (0: the plain ramp)")
    full_res: bool = knob(
        True, "a photo larger than its place on the canvas: the winning box is painted again on "
        "a window of the photo itself at the editor's resolution (lrlib.additions.fullres: the photo's "
        "detail, not the canvas upscaled; one more editor call); False: upscaled", kind="output")
    full_res_margin: float = knob(
        1.5, "full_res: the window's side, times the box's longer side (context for the editor; "
        "at least the editor's resolution)", kind="output", lo=1, hi=8,
        why="at least the box itself; past 8 times the box the window is the whole photo")

    seed: int = knob(0, "one seed: Gumbel noise, augmentations, editor noise", lo=0,
                     hi=2 ** 32 - 1, why="numpy and torch seeds are 32-bit")
    progress: bool = knob(True, "tqdm progress bars", kind="runtime")

    @classmethod
    def cpu(cls, **overrides) -> "LRConfig":
        """CPU-sized settings: small models, 64 px, few anchors; same method, same code.

        A pure function of its arguments (which models exist is `lrlib.worlds`'s business):
        `world="toy"` (default, the shipped toy world) or `world="random"` (random stand-ins).
        The toy editors get the sampling settings they were measured with (SD: 10 DDIM steps,
        guidance 3; MaskGIT: 12 steps, guidance 4); random stand-ins get 4 steps (nothing to see).
        The method's choices are `LRConfig()`'s (lrlib's, measured on the toy benchmark), with a
        pool of 8 anchor candidates for K = 3.
        """
        toy = overrides.get("world", "toy") == "toy"
        base = dict(world="toy", size=64, K=3, anchor_spacing=2, M=5, roi_size=4,
                    rgn_channels=32, rgn_hidden=64, epochs=2, iters_per_epoch=10, n_aug=2,
                    steps=10 if toy else 4, guidance_scale=3.0, maskgit_steps=12 if toy else 4,
                    maskgit_guidance=4.0 if toy else 10.0, editor_batch_size=16, device="cpu",
                    anchor_pool=8, draft_steps=0)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def paper(cls, **overrides) -> "LRConfig":
        """The paper / official code's method exactly: straight-through Gumbel estimator, the
        caption-blind score S = 2 S_t2i + S_i2i over raw cosines, the top-K attention peaks at
        their cells' centres, M squares per anchor. Other fields (models, size) as `LRConfig()`;
        `LRConfig.paper(**LRConfig.cpu().to_dict())`-style overrides apply on top."""
        return cls(**{**PAPER_METHOD, **overrides})

    @classmethod
    def describe(cls, markdown: bool = False) -> str:
        """Every knob: its kind, its value in `LRConfig()` (GPU), `LRConfig.paper()` (the paper /
        official code) and `LRConfig.cpu()` (the toy world), the values it takes and its meaning,
        all from the declarations. `print(LRConfig.describe())`."""
        return knobs_table(cls, markdown)

    def replace(self, **changes) -> "LRConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def for_editor(self, editor) -> "LRConfig":
        """This config as it runs with `editor` loaded (what an EditResult records): the canvas
        side `size` as set, or (None) the editor's resolution, at least 512; `draft_steps` 0
        for an editor without a diffusion sampler (MaskGIT drafts nothing)."""
        cfg = self
        if cfg.size is None:
            cfg = cfg.replace(size=max(512, int(getattr(editor, "resolution", None) or 512)))
        if cfg.draft_steps and getattr(editor, "kind", "sd") != "sd":
            cfg = cfg.replace(draft_steps=0)
        return cfg

    @property
    def iterations(self) -> int:
        return self.epochs * self.iters_per_epoch

    def canvas(self) -> int:
        """The canvas side S this config will run at: `size`, or (None) the default editors'
        resolution (SDXL 1024, else 512; the loaded editor decides: `for_editor`)."""
        if self.size is not None:
            return self.size
        xl = (self.editor == "sd" and isinstance(self.sd_model, str)
              and "xl" in self.sd_model.lower())
        return 1024 if xl else 512

    def work(self) -> dict:
        """The counted work of one edit with all K anchors edited (fewer when the caption prunes
        anchors), as lrlib.bench.gpu_estimate counts it:

            editor image-evaluations = g * (N * n_c + n)     N = K * M candidates; g = 2 with
                                                             guidance (1 without)
        n the editor's evaluations for `steps` (PNDM adds one: counted), n_c the candidates' (the
        drafts' steps when drafting); the + n is the winner painted again. CLIP forwards: the
        loss table (expected, table_views > 0: N * (table_views + 1)), else every iteration's
        views, plus the K ranked results."""
        N = self.K * self.M
        if self.editor == "maskgit":
            g = 2 if self.maskgit_guidance > 1 else 1
            n = n_c = self.maskgit_steps
        else:
            g = 2 if self.guidance_scale > 1 else 1
            n = self.steps + 1
            n_c = self.draft_steps or n
        if self.estimator == "expected" and self.table_views:
            clip = N * (self.table_views + 1)
        elif self.estimator == "expected":
            clip = N * (self.n_aug + 1) * self.iterations
        else:
            clip = self.K * (self.n_aug + 1) * self.iterations
        return {"candidates": N, "editor_evals": g * (N * n_c + n), "clip_forwards": clip + self.K,
                "iterations": self.iterations, "candidate_pixels": N * self.canvas() ** 2}

    def fit_factors(self) -> list[float]:
        """The M scales of the fitted box ("fitted" proposals), evenly spaced."""
        if self.M == 1:
            return [self.fit_min]
        step = (self.fit_max - self.fit_min) / (self.M - 1)
        return [self.fit_min + i * step for i in range(self.M)]

    def box_sides(self) -> list[float]:
        """The M box sides as fractions of the image side, evenly spaced."""
        if self.M == 1:
            return [self.box_max]
        step = (self.box_max - self.box_min) / (self.M - 1)
        return [self.box_min + i * step for i in range(self.M)]

    def problems(self) -> list[str]:
        """Everything wrong with this config: each field against its declaration, then (when
        every field is right) the rules across fields. [] when it can run."""
        out = [p for k in KNOBS.values() if (p := k.problem(getattr(self, k.name)))]
        if not out:
            out = [p for rule in _RULES if (p := rule(self))]
        return out

    def validate(self) -> "LRConfig":
        """Raise an LRError saying which knob is impossible (value or type), the values it takes
        and what to set instead; the first problem found (`problems()` lists them all)."""
        found = self.problems()
        if found:
            raise LRError(found[0])
        return self


def _init_with_hint(init):
    """The dataclass __init__, with an unknown keyword refused as an UnknownSettingError (an
    LRError and a TypeError) that names the closest setting: LRConfig(step=5) -> 'steps'."""
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        unknown = [k for k in kwargs if k not in _NAMES]
        if unknown:
            raise UnknownSettingError(unknown_setting(unknown[0]))
        init(self, *args, **kwargs)
    return __init__


def unknown_setting(name) -> str:
    """The message for a setting LRConfig does not have, with the closest one (difflib)."""
    near = difflib.get_close_matches(str(name), _NAMES, n=1, cutoff=0.6)
    near = near or [n for n in _NAMES if n.lower() == str(name).lower()]
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return (f"LRConfig has no setting {name!r}{hint} (LRConfig.describe() lists every setting "
            "with its values).")


_NAMES = tuple(f.name for f in dataclasses.fields(LRConfig))
LRConfig.__init__ = _init_with_hint(LRConfig.__init__)


def _knobs() -> dict[str, Knob]:
    """Every field's declaration, its type and optionality read from the annotation."""
    hints = typing.get_type_hints(LRConfig)
    out = {}
    for f in dataclasses.fields(LRConfig):
        spec = f.metadata.get("knob")
        if spec is None:
            raise TypeError(f"LRConfig.{f.name} is not declared with knob(...)")
        args = typing.get_args(hints[f.name]) or (hints[f.name],)
        base = [a for a in args if a is not type(None)]
        if len(base) != 1 or base[0] not in (int, float, bool, str) or spec["kind"] not in KINDS:
            raise TypeError(f"LRConfig.{f.name}: declare one of int, float, bool, str (or with "
                            f"| None) and a kind in {KINDS}")
        out[f.name] = Knob(name=f.name, default=f.default, type=base[0],
                           optional=type(None) in args, **spec)
    return out


#: every LRConfig field's declaration, in field order
KNOBS: dict[str, Knob] = _knobs()


# --- rules across fields (each: the config -> what is wrong, or None) ---------------------------

def _boxes(c):
    if c.box_min > c.box_max:
        return (f"box sizes must satisfy 0 < box_min <= box_max, got {c.box_min}, {c.box_max}; "
                "swap them.")


def _fit(c):
    if c.fit_min > c.fit_max:
        return (f"fit_min={c.fit_min} is above fit_max={c.fit_max}: the M box scales run from "
                "fit_min up to fit_max; swap them (e.g. fit_min=1.1, fit_max=1.5).")
    if c.ladder_lo > c.ladder_hi:
        return (f"ladder_lo={c.ladder_lo} is above ladder_hi={c.ladder_hi}: the M box scales run "
                "from ladder_lo up to ladder_hi; swap them (e.g. ladder_lo=0.85, ladder_hi=1.7).")


def _candidates(c):
    if c.K * c.M > 4096:
        return f"K*M={c.K * c.M} candidate edits is too many (at most 4,096); lower K or M."


def _lora(c):
    if c.lora and c.editor != "sd":
        return f"lora={c.lora!r} is an SD option; use editor='sd' or set lora=None."


def _lcm(c):
    if c.scheduler == "lcm" and c.editor == "sd" and c.steps > 50:
        return (f"steps={c.steps} with scheduler='lcm': the LCM schedule has 50 original steps, "
                "so steps must be <= 50 (an LCM-LoRA runs at 2-8); lower steps.")


def _iterations(c):
    if c.iterations > MAX_ITERATIONS:
        return (f"epochs * iters_per_epoch = {c.epochs} * {c.iters_per_epoch} = {c.iterations:,} "
                f"RGN updates; lrlib runs at most {MAX_ITERATIONS:,} per edit (100x the paper's "
                "50): lower epochs or iters_per_epoch (paper: 5 x 10).")


def _work(c):
    w = c.work()
    if w["editor_evals"] > MAX_EDITOR_EVALS:
        steps = "maskgit_steps" if c.editor == "maskgit" else ("draft_steps" if c.draft_steps
                                                                else "steps")
        draft = ", or draft the candidates (draft_steps=5)" if steps == "steps" else ""
        return (f"this edit would run {w['editor_evals']:,} editor image-evaluations (K*M = "
                f"{w['candidates']} candidates x {getattr(c, steps)} {steps}, doubled by guidance, "
                f"+ the winner); lrlib runs at most {MAX_EDITOR_EVALS:,} per edit (the paper's "
                "settings: 6,528; ~45 min on a T4 at the limit): lower K, M or "
                f"{steps}{draft}.")
    if w["clip_forwards"] > MAX_CLIP_FORWARDS:
        return (f"this edit would run {w['clip_forwards']:,} CLIP image forwards (n_aug="
                f"{c.n_aug}, table_views={c.table_views}, {c.iterations} iterations, "
                f"estimator={c.estimator!r}); lrlib runs at most {MAX_CLIP_FORWARDS:,} per edit: "
                "lower n_aug, table_views or the iterations (estimator='expected' with "
                "table_views=16 computes the loss table once).")
    if w["candidate_pixels"] > MAX_CANDIDATE_PIXELS:
        return (f"K*M = {w['candidates']} candidates at {c.canvas()} x {c.canvas()} px would hold "
                f"{w['candidate_pixels'] * 12 / 2 ** 30:.0f} GiB of float32 images at once (at "
                f"most {MAX_CANDIDATE_PIXELS * 12 / 2 ** 30:.0f} GiB): lower K, M or size.")


_RULES = (_boxes, _fit, _candidates, _lora, _lcm, _iterations, _work)


#: the method fields where the paper / official code differs from lrlib's defaults
PAPER_METHOD = dict(estimator="st", gamma=0.0, delta=0.0, anchor_refine=False, anchor_pool=0,
                    anchor_cover=False, max_blob=None, prune_margin=None, blend_px=0,
                    proposals="squares", score_scale=1.0, draft_steps=0, objective="expected",
                    lambda_cover=0.0, cover_margin=0.0, lambda_spill=0.0)


def knobs_table(cls=None, markdown: bool = False) -> str:
    """The knob table of `describe()`: one row per declaration."""
    cls = cls or LRConfig
    cols = [("LRConfig()", cls())]
    if hasattr(cls, "paper"):
        cols.append(("paper()", cls.paper()))
    cols.append(("cpu()", cls.cpu()))
    rows = [["knob", "kind"] + [c for c, _ in cols] + ["allowed", "meaning"]]
    for k in KNOBS.values():
        rows.append([k.name, k.kind] + [repr(getattr(v, k.name)) for _, v in cols]
                    + [k.short(), k.meaning])
    if markdown:
        fmt = lambda r: "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |"
        return "\n".join([fmt(rows[0]), "|" + "---|" * len(rows[0])] + [fmt(r) for r in rows[1:]])
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w[i]) for i, c in enumerate(r[:-1])) + "  " + r[-1]
                     for r in rows)
