"""One config object holding every knob of the method.

`LRConfig()` is lrlib's method for a GPU with real checkpoints: the paper's sizes and weights,
with the choices the toy benchmark measured better (README "Does the method work?"): the exact
expected-loss gradient, caption-aware anchors and ranking, boxes fitted to the object.
`LRConfig.paper()` is the paper / official code's method exactly (`PAPER_METHOD` below).
`LRConfig.cpu()` is the CPU-sized setting: the same method on the shipped toy world's small models
at 64 px (it learns and is measured there; it knows only toy scenes, not photos).
Which models a config runs is decided by `lrlib.world` (`choose_world`, `LRLIB_WORLD`); the config
only holds the choice (`world`) as a value and never reads the disk or the environment.

    cfg = LRConfig(K=5, editor="maskgit")     # override any field
    cfg = LRConfig.paper()                     # the paper's method, exactly
    cfg = LRConfig.cpu(seed=3)                 # CPU-sized, same code path
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from lrlib.errors import LRError


@dataclass
class LRConfig:
    # --- which models ------------------------------------------------------------------
    world: str = "real"            # "real": hub ids / local folders below; "toy": the shipped
                                   # toy-world models (lrlib/toy/weights); "random": small
                                   # random-weight stand-ins of the same classes (wiring only)
    dino: str = "vit_base_patch16_224.dino"   # timm id or local folder (official: ..._patch8_224.dino)
    clip: str = "ViT-B-16"                    # open_clip architecture name or local folder
    clip_pretrained: str = "openai"           # open_clip pretrained tag (ignored for a folder)
    editor: str = "sd"                        # "sd" | "maskgit"
    sd_model: str = "sd2-community/stable-diffusion-2-inpainting"  # SD inpainting id or folder
    maskgit_model: str = "amused/amused-256"  # aMUSEd id or folder (or amused/amused-512)
    device: str = "auto"                      # "auto" (cuda if present) | "cpu" | "cuda" | "cuda:1"
    dtype: str = "auto"                       # editors: "auto" (fp16 on CUDA, fp32 on CPU) |
                                              # "float16" | "bfloat16" | "float32"

    # --- image ---------------------------------------------------------------------------
    size: int | None = None         # working canvas side S; None: the editor's resolution, at
                                    # least 512 (SD 1.x / 2.x, aMUSEd: 512; SDXL: 1024; decided
                                    # when the editor is loaded, recorded in the result). A
                                    # non-square input is letterboxed onto S x S (long side S,
                                    # edge padding); the result is pasted back into the
                                    # full-resolution input, outside the box untouched

    # --- anchors (DINO) -------------------------------------------------------------------
    K: int = 9                      # anchor points (official README run: 9)
    anchor_spacing: int = 2         # min Chebyshev distance between anchors, in patches
    anchor_refine: bool = True      # anchor = local attention centroid around each peak cell
                                    # (lrlib; False: the peak cell's centre, as the paper)
    dino_size: int | None = 448     # DINO input px, real checkpoints (B/16: 28x28 patches, not
                                    # 14x14; official B/8 at 256); None: own; toy/random: own
    anchor_pool: int = 18           # > K: score this many attention peaks against the caption
                                    # and keep the K best, one per object (lrlib, anchors.
                                    # caption_anchors; CPU: 8); 0: the top K peaks (paper)
    anchor_cover: bool = True       # caption anchors: the pool takes one peak per region (a peak
                                    # inside a region already taken is skipped; anchors.
                                    # cover_pool; lrlib); False: peaks spaced on the grid only
    max_blob: float | None = 0.5    # caption anchors: a blob over this share of the picture (the
                                    # background) or under a quarter patch (a speck) is not an
                                    # object: g - 1 (lrlib); None: every blob alike (use None or
                                    # 0.9 on a close-up whose subject fills over half the frame)
    prune_margin: float | None = 0.1   # caption anchors: drop (before any edit) those whose
                                    # grounding g is below the best by more than this (fewer
                                    # candidate edits: tuning set K 3 -> 1.95, success unchanged;
                                    # lrlib; None: keep all K, as the paper)
    anchor_context: float = 1.2     # caption score views: this times the fitted box's side
    anchor_view: str = "blob"       # "blob": the image with all outside the anchor's DINO blob
                                    # filled with its median colour (lrlib); "keep": all outside
                                    # the box x anchor_context; "crop": that square, resized

    # --- proposals and RGN ----------------------------------------------------------------
    M: int = 7                      # box proposals per anchor (paper: 7)
    box_min: float = 0.15           # smallest box side, fraction of the image side
    box_max: float = 0.75           # largest box side, fraction of the image side (<= 1)
    roi_size: int = 8               # ROI-align output (official: 8x8)
    rgn_channels: int = 64          # RGN conv channels over the pooled features
    rgn_hidden: int = 256           # RGN hidden width before the M box logits
    tau: float = 1.0                # Gumbel-Softmax temperature (official: 1, hard)
    hard: bool = True               # straight-through hard samples
    proposals: str = "fitted"       # "fitted": the DINO-feature blob's box around the anchor
                                    # scaled by M factors fit_min..fit_max (lrlib); "squares":
                                    # M squares of box_sides centred on the anchor (paper)
    fit_level: float = 0.7          # "fitted": cosine to the anchor's feature that joins the blob
                                    # (tuning set, snapped: 0.7; unsnapped 0.7-0.8; 0.6: too large)
    fit_snap: float = 1.5           # "fitted": snap the similarity to the image's edges with a
                                    # guided filter of this radius in patch cells (lrlib.regions;
                                    # 0: the blurred patch map, blob IoU 0.69 -> 0.93 on toy)
    fit_reach: float = 0.5          # "fitted": an anchor below fit_level seeds its blob at the
                                    # nearest pixel above it within this many patch cells (a
                                    # star's gap, an object's rim; lrlib); 0: the anchor's pixel
    fit_min: float = 1.1            # "fitted": smallest / largest scale of the blob's box
    fit_max: float = 1.5            # (1.0: the blob's box itself; tuning set, snapped: 1.1-1.5
                                    # 0.88 success, 1.0-1.6 0.84)

    # --- training (test-time optimisation of the RGN) ------------------------------------
    epochs: int = 5                 # paper: "5 epochs"; the official train.sh runs --epochs 1
    iters_per_epoch: int = 10       # RGN updates per epoch (official --per_image_iteration 10);
                                    # iterations = epochs * iters_per_epoch (official run: 10)
    lr: float = 0.003               # paper: Adam, 0.003
    estimator: str = "expected"     # "expected": exact gradient of E_p[L] over cached
                                    # candidates (lrlib); "st": straight-through Gumbel (paper)
    lambda_clip: float = 1.0        # weight of L_clip (paper: 1)
    lambda_str: float = 1.0         # weight of L_str (paper: 1); 0 skips the structure loss
    lambda_dir: float = 1.0         # weight of L_dir (paper: 1)
    n_aug: int = 4                  # augmented views for L_clip
    structure: str = "dino"         # "dino": DINO key self-similarity (Splicing ViT Features)
                                    # "clip": CLIP tokens before the last block (official code)
    default_caption: str = "a photo"  # source text for L_dir when no caption is given
    table_views: int = 16           # "expected": L_clip views per candidate, loss table computed
                                    # once (lrlib; official: 16; CPU: 16; 0: redrawn every iteration)

    # --- ranking -------------------------------------------------------------------------
    alpha: float = 2.0              # S = alpha * S_t2i + beta * S_i2i (official: 2, 1)
    beta: float = 1.0               # weight of S_i2i in the ranking score (official: 1)
    gamma: float = 3.0              # + gamma * S_dir, caption-aware (lrlib; paper: 0)
    delta: float = 30.0             # + delta * S_cap: the anchor's region matches the caption
                                    # (lrlib.scoring; needs caption anchors; paper: 0)
    relation_weight: float = 0.2    # rho: "the X left of the Y" read geometrically when choosing
                                    # and ranking anchors (lrlib.relations; 0: caption as is;
                                    # tuning set, 60 relation tasks: 0.05 -> 0.78, 0.2 -> 0.83)
    rank_top: int = 3               # keep the best S among the top-3 by S_t2i (official rule)
    score_scale: float | None = 1.0  # softmax temperature of S: 1.0 = raw cosines (official
                                    # code); None = CLIP's logit scale (100 for OpenAI CLIP)

    # --- editors ---------------------------------------------------------------------------
    steps: int = 50                 # SD denoising steps (official: 50)
    guidance_scale: float = 7.5     # SD classifier-free guidance (official: 7.5)
    scheduler: str = "default"      # "default": the checkpoint's own (SD2: PNDM/DDIM, 50 steps);
                                    # "dpm++": DPM-Solver++ (2M), good at ~20 steps (faster);
                                    # "pndm": PNDM (the official code's); "lcm": with an LCM-LoRA
    prompt_template: str | None = None  # e.g. "a high quality image of {}." (official code)
    maskgit_steps: int = 12         # MaskGIT decoding steps (aMUSEd default: 12)
    maskgit_guidance: float = 10.0  # aMUSEd's default
    editor_batch_size: int = 8      # candidate edits per editor call
    draft_steps: int = 5            # > 0: candidates drafted with DPM-Solver++ at this many steps,
                                    # the winner regenerated at `steps` (lrlib; SD only: MaskGIT
                                    # runs 0; toy benchmark, 200 tasks each: success 0.900 = 0.900
                                    # on the first set, 0.870 vs 0.875 on the second; paper: 0;
                                    # CPU: 0, the toy tables were measured without)
    lora: str | None = None         # LoRA fused into the SD UNet (id or folder), e.g. "latent-
                                    # consistency/lcm-lora-sdv1-5" + scheduler="lcm", steps=4 (paper: none)
    blend_px: int = 3               # feather the paste over the box's last px (lrlib.blend; outside
                                    # stays the input; 0: hard paste; paper: none; CPU: 3; README)
    blend_tau: float = 0.5          # ... but keep the full edit where it changed a pixel by this
                                    # much (the new object, the old one's removal; lrlib.blend.
                                    # keep_changes; tuning set: success 0.84 -> 0.89); 0: ramp only

    full_res: bool = True           # a photo larger than its place on the canvas: the winning
                                    # box is painted again on a window of the photo itself at the
                                    # editor's resolution (lrlib.fullres: the photo's detail, not
                                    # the canvas upscaled; one more editor call); False: upscaled
    full_res_margin: float = 1.5    # full_res: the window's side, times the box's longer side
                                    # (context for the editor; at least the editor's resolution)

    seed: int = 0                   # one seed: Gumbel noise, augmentations, editor noise
    progress: bool = True           # tqdm progress bars

    @classmethod
    def cpu(cls, **overrides) -> "LRConfig":
        """CPU-sized settings: small models, 64 px, few anchors; same method, same code.

        A pure function of its arguments (which models exist is `lrlib.world`'s business):
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
        """Every knob: its meaning (the comment beside it in lrlib/config.py) and its value in
        `LRConfig()` (GPU), `LRConfig.paper()` (the paper / official code, when defined) and
        `LRConfig.cpu()` (the toy world). `print(LRConfig.describe())`."""
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

    def validate(self) -> "LRConfig":
        """Raise an LRError saying which knob is impossible (value or type) and what to set instead."""
        def bad(msg):
            raise LRError(msg)

        def integer(name, lo, hi=None, hint=""):
            v = getattr(self, name)
            if (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo
                    or (hi is not None and v > hi)):
                bad(f"{name}={v!r}: must be an integer {f'>= {lo}' if hi is None else f'in {lo}..{hi}'}"
                    f"{hint}.")

        def real(name, lo, strict=False, hint=""):
            v = getattr(self, name)
            if (isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v)
                    or v < lo or (strict and v == lo)):
                bad(f"{name}={v!r}: must be a finite number {'>' if strict else '>='} {lo}{hint}.")

        def one_of(name, options, hint=""):
            v = getattr(self, name)
            if v not in options:
                bad(f"{name}={v!r} is unknown; use {' or '.join(map(repr, options))}{hint}.")

        one_of("world", ("real", "toy", "random"), " ('real': checkpoints, 'toy': the shipped toy "
               "world, 'random': small random-weight stand-ins)")
        one_of("editor", ("sd", "maskgit"))
        for name in ("dino", "clip", "clip_pretrained", "sd_model", "maskgit_model", "device",
                     "default_caption"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                bad(f"{name}={v!r}: must be a non-empty string (a model id, a folder, a device "
                    "name or a caption).")
        if self.device != "auto":
            import torch
            try:
                torch.device(self.device)
            except (RuntimeError, ValueError):
                bad(f"device={self.device!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:1'.")
        one_of("dtype", ("auto", "float16", "bfloat16", "float32"))
        for name in ("anchor_refine", "anchor_cover", "hard", "progress", "full_res"):
            if not isinstance(getattr(self, name), bool):
                bad(f"{name}={getattr(self, name)!r}: must be True or False.")
        if self.size is not None:
            integer("size", 32, 4096, hint=" and a multiple of 8 (the working resolution; paper: "
                    "512), or None for the editor's own")
        if self.size is not None and self.size % 8:
            bad(f"size={self.size}: the working resolution must be a multiple of 8 and >= 32.")
        integer("K", 1, hint=": the number of anchors (paper runs use 9)")
        integer("anchor_spacing", 0, hint=" (patches between anchors)")
        integer("M", 2, hint=": the RGN needs at least 2 box proposals to choose from (paper: 7)")
        if self.M > 64:
            bad(f"M={self.M}: more than 64 proposals per anchor is not supported; use <= 64.")
        if self.K * self.M > 4096:
            bad(f"K*M={self.K * self.M} candidate edits is too many; lower K or M.")
        real("box_min", 0, strict=True, hint=" (a fraction of the image side)")
        real("box_max", 0, strict=True, hint=" (a fraction of the image side)")
        if not self.box_min <= self.box_max:
            bad(f"box sizes must satisfy 0 < box_min <= box_max, got {self.box_min}, {self.box_max}.")
        if self.box_max > 1.0:
            bad(f"box_max={self.box_max} is larger than the image: box sides are fractions of the "
                "image side, use a value <= 1.0.")
        real("fit_level", -1, hint=" (a cosine, in -1..1)")
        real("fit_snap", 0, hint=" (guided-filter radius in patch cells; 0: off)")
        real("fit_reach", 0, hint=" (patch cells; 0: the anchor's own pixel)")
        real("blend_tau", 0, hint=" (a colour difference in 0..1; 0: the plain ramp)")
        real("full_res_margin", 1, hint=" (the repainted window's side over the box's side)")
        integer("roi_size", 1, hint=" (official: 8)")
        integer("rgn_channels", 1)
        integer("rgn_hidden", 1)
        real("tau", 0, strict=True, hint=": the Gumbel-Softmax temperature (official: 1.0)")
        integer("epochs", 0, hint=" (paper: 5)")
        integer("iters_per_epoch", 0)
        real("lr", 0, strict=True, hint=" (paper: Adam, 0.003)")
        one_of("estimator", ("st", "expected"), " ('st': straight-through)")
        for name in ("lambda_clip", "lambda_str", "lambda_dir", "alpha", "beta", "gamma", "delta",
                     "relation_weight",
                     "guidance_scale", "maskgit_guidance"):
            real(name, 0)
        integer("n_aug", 1, hint=": L_clip needs at least one view")
        one_of("structure", ("dino", "clip"))
        one_of("anchor_view", ("keep", "crop", "blob"))
        integer("rank_top", 1)
        integer("steps", 1, hint=": the editor needs at least one denoising step (official: 50)")
        integer("maskgit_steps", 1, hint=" (aMUSEd: 12)")
        one_of("scheduler", ("default", "dpm++", "pndm", "lcm"), " ('lcm' with an LCM-LoRA in lora=)")
        integer("table_views", 0, hint=" (0: the loss table redrawn every iteration)")
        integer("draft_steps", 0, hint=" (0: no drafts)")
        if self.max_blob is not None and not 0 < self.max_blob <= 1:
            bad(f"max_blob={self.max_blob}: a share of the picture in (0, 1], or None to keep "
                "every blob alike.")
        if self.prune_margin is not None:
            real("prune_margin", 0, hint=" (a cosine margin; None: keep every anchor)")
        if self.lora is not None and (not isinstance(self.lora, str) or not self.lora.strip()):
            bad(f"lora={self.lora!r}: must be None or a LoRA id or folder (a non-empty string).")
        if self.lora and self.editor != "sd":
            bad(f"lora={self.lora!r} is an SD option; use editor='sd' or set lora=None.")
        integer("editor_batch_size", 1)
        integer("seed", 0, 2**32 - 1)
        if self.prompt_template is not None and (not isinstance(self.prompt_template, str)
                                                 or "{}" not in self.prompt_template):
            bad(f"prompt_template={self.prompt_template!r} must contain '{{}}' where the prompt goes.")
        return self


#: the method fields where the paper / official code differs from lrlib's defaults
PAPER_METHOD = dict(estimator="st", gamma=0.0, delta=0.0, anchor_refine=False, anchor_pool=0,
                    anchor_cover=False, max_blob=None, prune_margin=None, blend_px=0,
                    proposals="squares", score_scale=1.0, draft_steps=0)


def _field_comments(cls) -> dict[str, str]:
    """{field: its comment}, read from the class source: `name: type = value  # text` plus the
    comment-only lines under it."""
    import inspect
    import re
    out, last = {}, None
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"    (\w+): [^=]+=.*?(?:#\s?(.*))?$", line)
        if m:
            last = m.group(1)
            out[last] = (m.group(2) or "").strip()
        elif last and re.match(r"\s+#", line):
            out[last] += " " + line.strip()[1:].strip()
        else:
            last = None
    return out


def knobs_table(cls=None, markdown: bool = False) -> str:
    cls = cls or LRConfig
    cols = [("LRConfig()", cls())]
    if hasattr(cls, "paper"):
        cols.append(("paper()", cls.paper()))
    cols.append(("cpu()", cls.cpu()))
    notes = _field_comments(cls)
    rows = [["knob"] + [c for c, _ in cols] + ["meaning"]]
    for f in dataclasses.fields(cls):
        rows.append([f.name] + [repr(getattr(v, f.name)) for _, v in cols] + [notes.get(f.name, "")])
    if markdown:
        fmt = lambda r: "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |"
        return "\n".join([fmt(rows[0]), "|" + "---|" * len(rows[0])] + [fmt(r) for r in rows[1:]])
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w[i]) for i, c in enumerate(r[:-1])) + "  " + r[-1]
                     for r in rows)
