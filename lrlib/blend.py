"""Blending the pasted box into the input: a feathered mask, so the box border does not show.

The hard paste `y = m * E + (1 - m) * x` (m = 1 in the box) keeps everything outside the box
exactly, but the editor's background rarely matches the input's to the last grey level, so the
box shows as a rectangle (a seam; `lrlib.toy.judge.seam` measures it). Feathering ramps the
mask down inside the box, over its last b pixels:

    w = (1/b) * sum_{k=0}^{b-1} erode^k(m)        erode: 3 x 3 minimum (Chebyshev distance)
    y = w * E + (1 - w) * x

A pixel at Chebyshev distance d >= 0 from the nearest pixel outside the box (d = 0 on the box's
own border row) gets w = min(d + 1, b) / b: 1/b on the border, 1 from b - 1 pixels deep inward.
Outside the box w = 0 exactly, so the output there is still the input bit for bit. The image
edge counts as inside (a box touching it is not faded against it). b = 0 or 1 is the hard paste.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def feather(mask: torch.Tensor, b: int) -> torch.Tensor:
    """(..., H, W) mask in {0, 1} -> the same shape, ramping from 1/b on its border to 1 deep
    inside (over b pixels); 0 wherever `mask` is 0. b <= 1 returns the mask unchanged."""
    if b <= 1:
        return mask
    shape = mask.shape
    m = mask.reshape(-1, 1, *shape[-2:]).float()
    total = torch.zeros_like(m)
    for _ in range(b):
        total += m
        m = -F.max_pool2d(-m, 3, stride=1, padding=1)   # erosion; the padding (-inf) is inside
    return (total / b).reshape(shape).to(mask.dtype)
