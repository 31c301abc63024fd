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

import torch


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
