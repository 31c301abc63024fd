"""The one interface every editor implements.

An editor fills a box of an image from a text prompt:

    inpaint(images, masks, prompts, generator) -> images

* `images`: float tensor (B, 3, H, W) in [0, 1] on any device,
* `masks`: float tensor (B, 1, H, W), 1 inside the region to repaint, 0 outside,
* `prompts`: list of B strings (any length: long prompts are encoded in 77-token chunks),
* `generator`: a `torch.Generator` (CPU) that makes the call deterministic.

It returns (B, 3, H, W) in [0, 1] on the input's device, with no gradient. What the editor does
outside the mask is its own business: lrlib composites `m * E + (1 - m) * x` itself, so pixels
outside the box are always exactly the source.
"""
from __future__ import annotations

import abc
import math

import torch
import torch.nn.functional as F

#: a local checkpoint folder may carry this JSON file of editor defaults (e.g. {"crop_margin": 1.5})
EDITOR_DEFAULTS_FILE = "lrlib_editor.json"


class Editor(abc.ABC):
    #: "sd" or "maskgit": the LRConfig.editor value this class serves
    kind: str = ""
    #: the resolution (square side, pixels) the editor works at; lrlib resizes to it and back.
    resolution: int = 512
    #: pixels per token / latent cell: masks are snapped to this grid when it matters.
    grid: int = 8

    @abc.abstractmethod
    def inpaint(self, images: torch.Tensor, masks: torch.Tensor, prompts: list[str],
                generator: torch.Generator) -> torch.Tensor:
        ...

    def snap_mask(self, masks: torch.Tensor) -> torch.Tensor:
        """The mask the editor really edits (identity unless the editor works on a token grid)."""
        return masks


def check_inpaint_args(images: torch.Tensor, masks: torch.Tensor, prompts: list[str]) -> None:
    """Shared argument checks with messages that say what to pass instead."""
    from lrlib.errors import LRError

    if images.ndim != 4 or images.shape[1] != 3:
        raise LRError(f"images must be (B, 3, H, W) in [0, 1], got shape {tuple(images.shape)}; "
                      "use lrlib.io.load_image to read a file.")
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


def paste_back(images: torch.Tensor, crops: torch.Tensor, windows) -> torch.Tensor:
    """Resize each crop back to its window and paste it into a copy of `images`."""
    out = images.clone()
    for i, (x, y, s) in enumerate(windows):
        c = crops[i:i + 1]
        if c.shape[-1] != s:
            c = F.interpolate(c, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        out[i, :, y:y + s, x:x + s] = c[0].to(out.dtype)
    return out
