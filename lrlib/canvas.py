"""The working canvas: a photo of any shape on the S x S square the method works on, and back.

A non-square photo is letterboxed: scaled uniformly so its longer side is S, centred, and padded
by repeating its edge pixels, so nothing is stretched. The content rectangle c = (x0, y0, x1, y1)
of the canvas holds the photo (w, h: its sides, rounding W * S / max(W, H) and H * S / max(W, H));
a canvas pixel (u, v) in c is the photo's ((u - x0) * W / w, (v - y0) * H / h). A square photo
fills the canvas: c = (0, 0, S, S).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lrlib.blend import paste


def letterbox(x_full: torch.Tensor, S: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """(1, 3, H, W) -> the S x S canvas (1, 3, S, S) and its content rectangle (x0, y0, x1, y1):
    the image scaled uniformly to a longer side of S, centred, padded with its edge pixels."""
    H, W = x_full.shape[-2:]
    h, w = max(1, round(H * S / max(H, W))), max(1, round(W * S / max(H, W)))
    x = F.interpolate(x_full, size=(h, w), mode="bilinear", antialias=True,
                      align_corners=False).clamp(0, 1)
    top, left = (S - h) // 2, (S - w) // 2
    x = F.pad(x, (left, S - w - left, top, S - h - top), mode="replicate")
    return x, (left, top, left + w, top + h)


def box_to_image(box, content, image_size) -> list[int]:
    """A canvas box (x0, y0, x1, y1) -> the covering box in the pixels of the W x H input."""
    (W, H), (cx0, cy0, cx1, cy1) = image_size, content
    w, h = cx1 - cx0, cy1 - cy0
    x0, y0, x1, y1 = (int(v) for v in box)
    return [max(0, (x0 - cx0) * W // w), max(0, (y0 - cy0) * H // h),            # floor, exact
            min(W, -(-(x1 - cx0) * W // w)), min(H, -(-(y1 - cy0) * H // h))]  # ceil


def paste_back(x_full: torch.Tensor, result: torch.Tensor, mask: torch.Tensor,
               content=None) -> torch.Tensor:
    """The result (3, S, S) inside mask (1, S, S), cropped to the content rectangle (x0, y0,
    x1, y1; default the whole canvas) and scaled to x_full (1, 3, H, W); outside the mask x_full
    unchanged, bit for bit, whatever the result holds (`lrlib.blend.paste`)."""
    H, W = x_full.shape[-2:]
    x0, y0, x1, y1 = content or (0, 0, result.shape[-1], result.shape[-2])
    m_up = F.interpolate(mask[None, :, y0:y1, x0:x1].float().cpu(), size=(H, W), mode="nearest")
    up = F.interpolate(result[None, :, y0:y1, x0:x1].float().cpu(), size=(H, W), mode="bicubic",
                       align_corners=False).clamp(0, 1)
    return paste(m_up, up, x_full)
