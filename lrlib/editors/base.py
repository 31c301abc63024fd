"""The one interface every editor implements.

An editor fills a box of an image from a text prompt:

    inpaint(images, masks, prompts, generator, settings=None) -> images

* `images`: float tensor (B, 3, H, W) in [0, 1] on any device,
* `masks`: float tensor (B, 1, H, W), 1 inside the region to repaint, 0 outside,
* `prompts`: list of B strings (any length: long prompts are encoded in 77-token chunks),
* `generator`: a `torch.Generator` (CPU) that makes the call deterministic,
* `settings`: the sampler settings of this call (`EditorSettings`); None, or a field left None,
  takes the editor's own (`Editor.defaults`, fixed when the editor is built).

It returns (B, 3, H, W) in [0, 1] on the input's device, with no gradient. What the editor does
outside the mask is its own business: lrlib composites the result into the source itself
(`lrlib.train.composites`), so pixels outside the box are always exactly the source. An output
may hold NaN or Inf (an fp16 VAE overflowing): lrlib checks every candidate
(`lrlib.editors.candidates.generate_candidates`).

Settings travel with each call and are never stored on the editor: one loaded editor (its
weights cached and shared by every `Models` that uses it) serves any number of configurations
at once, and a result records what really ran.
"""
from __future__ import annotations

import abc
import copy
import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: a local checkpoint folder may carry this JSON file of editor defaults (e.g. {"crop_margin": 1.5})
EDITOR_DEFAULTS_FILE = "lrlib_editor.json"
#: the sampler names of `EditorSettings.scheduler` (the diffusion editors'; MaskGIT has none)
SCHEDULER_NAMES = ("default", "dpm++", "pndm", "lcm")


@dataclass(frozen=True)
class EditorSettings:
    """How one `inpaint` call samples. A field left None takes the editor's own value
    (`Editor.defaults`).

    steps            denoising (SD) or decoding (MaskGIT) steps, >= 1
    guidance_scale   classifier-free guidance weight (guidance runs above 1)
    scheduler        SD only: "default" (the checkpoint's own), "dpm++" (DPM-Solver++ 2M),
                     "pndm" (PNDM, the official code's), "lcm" (for an LCM-LoRA)
    prompt_template  e.g. "a photo of {}."; "" for none (None: the editor's own)
    upcast_vae       decode the latents (SD) or tokens (MaskGIT) with the autoencoder in float32
                     whatever the editor's dtype: what `generate_candidates` retries a candidate
                     with when the fp16 decode gave NaN or Inf
    """
    steps: int | None = None
    guidance_scale: float | None = None
    scheduler: str | None = None
    prompt_template: str | None = None
    upcast_vae: bool = False

    @classmethod
    def from_config(cls, cfg, draft_steps: int = 0) -> "EditorSettings":
        """The settings `cfg` (an LRConfig) asks of its editor (cfg.editor): SD takes steps,
        guidance_scale, scheduler; MaskGIT maskgit_steps, maskgit_guidance; both
        prompt_template (None there: no template). draft_steps > 0 (SD only): DPM-Solver++ at
        that many steps, the sampler of cheap candidates (lrlib.additions.drafts)."""
        from lrlib.errors import LRError

        template = cfg.prompt_template or ""
        if cfg.editor == "maskgit":
            if draft_steps:
                raise LRError(f"draft_steps={draft_steps} needs a diffusion editor (editor='sd'); "
                              "the MaskGIT editor has no fast sampler: set draft_steps=0 (use "
                              "maskgit_steps).")
            return cls(steps=cfg.maskgit_steps, guidance_scale=cfg.maskgit_guidance,
                       scheduler="default", prompt_template=template)
        if draft_steps:
            return cls(steps=draft_steps, guidance_scale=cfg.guidance_scale, scheduler="dpm++",
                       prompt_template=template)
        return cls(steps=cfg.steps, guidance_scale=cfg.guidance_scale, scheduler=cfg.scheduler,
                   prompt_template=template)

    def replace(self, **changes) -> "EditorSettings":
        """A copy with `changes` (the dataclass is frozen)."""
        return dataclasses.replace(self, **changes)


class Editor(abc.ABC):
    #: "sd" or "maskgit": the LRConfig.editor value this class serves
    kind: str = ""
    #: the resolution (square side, pixels) the editor works at; lrlib resizes to it and back.
    resolution: int = 512
    #: pixels per token / latent cell: masks are snapped to this grid when it matters.
    grid: int = 8
    #: the settings of a call that passes none, every field set (the constructor's options);
    #: lrlib never changes them on a built editor (`with_defaults` makes a new one)
    defaults: EditorSettings = EditorSettings()
    #: the sampler names this editor accepts in `EditorSettings.scheduler`
    schedulers: tuple[str, ...] = ("default",)

    @abc.abstractmethod
    def inpaint(self, images: torch.Tensor, masks: torch.Tensor, prompts: list[str],
                generator: torch.Generator,
                settings: EditorSettings | None = None) -> torch.Tensor:
        ...

    def snap_mask(self, masks: torch.Tensor) -> torch.Tensor:
        """The mask the editor really edits (identity unless the editor works on a token grid)."""
        return masks

    # the constructor's sampler settings, read-only: pass `EditorSettings` to a call instead
    @property
    def steps(self) -> int:
        return self.defaults.steps

    @property
    def guidance_scale(self) -> float:
        return self.defaults.guidance_scale

    @property
    def prompt_template(self) -> str | None:
        return self.defaults.prompt_template or None

    def resolve(self, settings: EditorSettings | None = None) -> EditorSettings:
        """`settings` with every None field taken from `defaults`, checked: what a call runs."""
        if settings is None:
            return self.defaults
        if not isinstance(settings, EditorSettings):
            from lrlib.errors import LRError
            raise LRError(f"settings must be an EditorSettings (lrlib.editors.base), got "
                          f"{type(settings).__name__}; build one with "
                          "EditorSettings.from_config(cfg) or EditorSettings(steps=...).")
        filled = {f.name: getattr(self.defaults, f.name) if getattr(settings, f.name) is None
                  else getattr(settings, f.name) for f in dataclasses.fields(EditorSettings)}
        return self.check_settings(EditorSettings(**filled))

    def check_settings(self, s: EditorSettings) -> EditorSettings:
        """Raise an LRError saying what to pass when `s` (every field set) is not runnable here."""
        from lrlib.errors import LRError

        if isinstance(s.steps, bool) or not isinstance(s.steps, int) or s.steps < 1:
            raise LRError(f"steps={s.steps!r}: the editor needs a whole number of steps >= 1.")
        if isinstance(s.guidance_scale, bool) or not isinstance(s.guidance_scale, (int, float)) \
                or not math.isfinite(s.guidance_scale) or s.guidance_scale < 0:
            raise LRError(f"guidance_scale={s.guidance_scale!r}: a finite number >= 0 "
                          "(1: no guidance).")
        if s.scheduler not in self.schedulers:
            if self.schedulers == ("default",):
                raise LRError(f"scheduler={s.scheduler!r}: the {self.kind or 'this'} editor has "
                              "no sampler choice; pass scheduler='default' (or None).")
            raise LRError(f"scheduler={s.scheduler!r}: use one of {self.schedulers}.")
        if s.prompt_template and (not isinstance(s.prompt_template, str)
                                  or "{}" not in s.prompt_template):
            raise LRError(f"prompt_template={s.prompt_template!r} must contain '{{}}' where the "
                          "prompt goes ('' for none).")
        return s

    # GPU memory: only the editor in use stays on the GPU (lrlib.models.load_editor)
    def modules(self) -> list[torch.nn.Module]:
        """The editor's weights, for moving them between devices."""
        return []

    def offload(self) -> None:
        """Move the weights to the CPU (the editor's `device` stays its home; `place` or the next
        call brings them back)."""
        for m in self.modules():
            m.to("cpu")

    def place(self) -> None:
        """Put the weights back on the editor's own device if they were moved off it."""
        home = torch.device(getattr(self, "device", "cpu"))
        for m in self.modules():
            p = next(m.parameters(), None)
            if p is not None and p.device != home and not (
                    home.type == p.device.type and home.index is None):
                m.to(home)

    def with_defaults(self, settings: EditorSettings) -> "Editor":
        """A new editor sharing this one's weights whose calls without settings run `settings`
        (its None fields: this editor's). Cheap (a shallow copy: no module is copied); this
        editor is left as it is."""
        new = copy.copy(self)
        new.defaults = self.resolve(settings).replace(upcast_vae=False)
        return new


#: the first diffusers release whose from_pretrained takes `dtype=` (0.39 knows only `torch_dtype`;
#: from 0.40 `torch_dtype` still works but warns that it goes in 1.0)
DIFFUSERS_DTYPE_SINCE = (0, 40)


def dtype_kwarg(dtype: torch.dtype | None) -> dict:
    """The keyword that gives diffusers' `from_pretrained` a dtype, for the installed diffusers:
    {"dtype": dtype} from 0.40 on, {"torch_dtype": dtype} before (lrlib supports 0.30 and up);
    {} for None (the checkpoint's own dtype)."""
    if dtype is None:
        return {}
    import re

    import diffusers

    release = tuple(int(n) for n in re.findall(r"\d+", diffusers.__version__)[:2])
    new = release >= DIFFUSERS_DTYPE_SINCE
    return {"dtype" if new else "torch_dtype": dtype}


def check_inpaint_args(images: torch.Tensor, masks: torch.Tensor, prompts: list[str]) -> None:
    """Shared argument checks with messages that say what to pass instead."""
    from lrlib.errors import LRError

    if images.ndim != 4 or images.shape[1] != 3:
        raise LRError(f"images must be (B, 3, H, W) in [0, 1], got shape {tuple(images.shape)}; "
                      "use lrlib.images.load_image to read a file.")
    if masks.ndim != 4 or masks.shape[1] != 1 or masks.shape[0] != images.shape[0] \
            or masks.shape[-2:] != images.shape[-2:]:
        raise LRError(f"masks must be (B, 1, H, W) matching images {tuple(images.shape)}, got "
                      f"{tuple(masks.shape)}; build them with lrlib.regions.boxes_to_masks.")
    if len(prompts) != images.shape[0]:
        raise LRError(f"got {len(prompts)} prompts for {images.shape[0]} images; pass one each.")


# ---------------------------------------------------------------- mask crop (both editors)

def crop_windows(masks: torch.Tensor, margin: float) -> list[tuple[int, int, int]]:
    """(B, 1, H, W) masks -> one square window (x0, y0, side) per mask: `margin` times the longer
    side of the bounding box of mask >= 0.5, centred on it, capped at min(H, W) and shifted to lie
    inside the image. An empty mask gives the largest centred square."""
    H, W = masks.shape[-2:]
    out = []
    for m in masks[:, 0] >= 0.5:
        rows, cols = torch.nonzero(m.any(1))[:, 0], torch.nonzero(m.any(0))[:, 0]
        if len(rows) == 0:
            side = min(H, W)
            out.append(((W - side) // 2, (H - side) // 2, side))
            continue
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        side = min(min(H, W), max(2, math.ceil(max(x1 - x0, y1 - y0) * margin)))
        cx, cy = round((x0 + x1 - side) / 2), round((y0 + y1 - side) / 2)
        out.append((min(max(cx, 0), W - side), min(max(cy, 0), H - side), side))
    return out


def crop_resize(t: torch.Tensor, windows, size: int) -> torch.Tensor:
    """Cut each window out of (B, C, H, W) and resize it to size x size (bilinear, antialiased)."""
    crops = [t[i:i + 1, :, y:y + s, x:x + s] for i, (x, y, s) in enumerate(windows)]
    return torch.cat([c if c.shape[-1] == size else
                      F.interpolate(c, size=(size, size), mode="bilinear", antialias=True,
                                    align_corners=False) for c in crops])


def paste_crops(images: torch.Tensor, crops: torch.Tensor, windows) -> torch.Tensor:
    """Resize each crop back to its window and paste it into a copy of `images`."""
    out = images.clone()
    for i, (x, y, s) in enumerate(windows):
        c = crops[i:i + 1]
        if c.shape[-1] != s:
            c = F.interpolate(c, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        out[i, :, y:y + s, x:x + s] = c[0].to(out.dtype)
    return out
