"""The winner at the photo's own resolution: regenerate the chosen box on a crop of the photo.

The method works on an S x S canvas (S = 512 for SD): a phone photo of 4032 x 3024 is scaled by
s = 512 / 4032 onto it. Pasting the canvas winner back means scaling its box up by 1 / s = 7.9,
a blurry patch in a sharp photo. Instead, once the box is chosen, the editor paints it once more
on a window of the photo itself:

    b'   = the winning box in photo pixels (canvas.box_to_image)
    win  = a window around b' with context: side max(margin * longest side of b', R),
           capped at the photo, shifted to lie inside it       (R = the editor's resolution)
    E'   = editor(letterbox(photo[win], R), box mask)          the editor at its native size
    y    = w' * up(E') + (1 - w') * photo       inside win;  y = photo outside win

with w' the paste weight of `lrlib.blend` (feather over blend_px canvas pixels, i.e. blend_px / s
photo pixels; the full edit kept where it changed the picture) on the box b'. The window is shrunk
to R only when it is larger than R, so a box smaller than R / margin photo pixels is repainted at
the photo's own pixel size (no upscaling at all); a larger one at min(1, R / side) of it, always
at least as sharp as the canvas (side <= photo side, so R / side >= s).

The repaint runs only when it sees more of the photo than the canvas path (`detail_gain` > 1):
always for SD / SDXL, which paint the whole canvas at R (R / side >= R / short side >= s when R is
at least the canvas side); not for an editor that already crops the canvas around its mask at a
margin as wide as the window's (the toy world's SD: the same detail either way).

Outside b' the output is the photo, bit for bit (`torch.where` on the weight: whatever the editor
returns there never reaches the output); an output that is not finite is not used at all. Nothing happens when the photo is no larger
than its place on the canvas (s >= 1): the canvas already holds every pixel.

The regenerated box is a new sample of the same prompt in the same box (the noise has another
shape at another size): it was not among the candidates the RGN chose from and the ranking scored.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lrlib.blend import feather, keep_changes
from lrlib.canvas import letterbox


def winner_generator(seed: int, index: int) -> torch.Generator:
    """The noise of the full-resolution repaint of candidate `index`: fixed by (seed, index)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + 7_919 * (index + 1))


def photo_scale(content, image_size) -> float:
    """Photo pixels per canvas pixel (1 / s above): > 1 when the photo is larger than its place
    (`content`, (x0, y0, x1, y1)) on the canvas."""
    (W, H), (x0, y0, x1, y1) = image_size, content
    return max(W / (x1 - x0), H / (y1 - y0))


def detail_gain(editor, canvas_box, canvas_side: int, window, scale: float) -> float:
    """How many times more photo detail the repaint sees than the canvas path: editor pixels per
    photo pixel on the window, min(1, R / side), over the same on the canvas, min(1, R / c) /
    scale, with c the canvas pixels the editor spreads over its R: the whole canvas, or for an
    editor that crops around its mask itself (`crop_margin`, the toy SD) that crop's side. A
    canvas never holds more than 1 / scale of the photo's detail, however far it is upsampled."""
    R = int(editor.resolution)
    c = canvas_side
    if getattr(editor, "crop_margin", None):
        bw, bh = canvas_box[2] - canvas_box[0], canvas_box[3] - canvas_box[1]
        c = min(canvas_side, max(2, math.ceil(max(bw, bh) * editor.crop_margin)))
    side = max(window[2] - window[0], window[3] - window[1])
    return min(1.0, R / side) / (min(1.0, R / c) / scale)


def crop_window(box, image_size, R: int, margin: float) -> tuple[int, int, int, int]:
    """The window (x0, y0, x1, y1) around `box` (photo pixels) that the editor repaints: side
    max(ceil(margin * longest box side), R) per axis, at least the box, capped at the photo and
    shifted to lie inside it (a square whenever the photo's short side allows)."""
    W, H = image_size
    bx0, by0, bx1, by1 = box
    side = max(math.ceil(margin * max(bx1 - bx0, by1 - by0)), R)
    out = []
    for lo, hi, n in ((bx0, bx1, W), (by0, by1, H)):
        s = min(n, max(side, hi - lo))
        start = min(max(round((lo + hi - s) / 2), 0), n - s)
        out.append((start, start + s))
    (x0, x1), (y0, y1) = out
    return x0, y0, x1, y1


def regenerate_full_res(editor, x_full: torch.Tensor, box, prompt: str, generator: torch.Generator,
                        margin: float = 1.5, blend_px: int = 0, blend_tau: float = 0.0,
                        scale: float = 1.0, settings=None, window=None) -> torch.Tensor | None:
    """x_full (1, 3, H, W) in [0, 1] (CPU), the winning box (x0, y0, x1, y1) in its pixels ->
    (1, 3, H, W): the box repainted by `editor` on a window of the photo at the editor's
    resolution (the equations above), pasted with the blend weight; outside the box x_full
    exactly. scale: photo pixels per canvas pixel (blend_px is in canvas pixels). settings: the
    editor's per-call settings (lrlib.editors.base.EditorSettings), None for its defaults.
    window: the repainted window when the caller has it (default: crop_window(box, ..., margin)).
    None when the editor's output is not finite (the caller keeps the canvas winner)."""
    H, W = x_full.shape[-2:]
    R = int(editor.resolution)
    x0, y0, x1, y1 = window or crop_window(box, (W, H), R, margin)
    crop = x_full[:, :, y0:y1, x0:x1].float()                              # (1, 3, h, w)
    h, w = crop.shape[-2:]
    m_crop = torch.zeros(1, 1, h, w)
    bx0, by0, bx1, by1 = (int(v) for v in box)
    m_crop[..., by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = 1.0                 # (1, 1, h, w)
    canvas, (cx0, cy0, cx1, cy1) = letterbox(crop, R)                      # (1, 3, R, R)
    k = (cx1 - cx0) / w                                                    # canvas px per crop px
    m = torch.zeros(1, 1, R, R)
    m[..., cy0 + math.floor((by0 - y0) * k):cy0 + math.ceil((by1 - y0) * k),
      cx0 + math.floor((bx0 - x0) * k):cx0 + math.ceil((bx1 - x0) * k)] = 1.0
    dev = getattr(editor, "device", torch.device("cpu"))
    m = editor.snap_mask(m.to(dev))
    kwargs = {} if settings is None else {"settings": settings}
    E = editor.inpaint(canvas.to(dev), m, [prompt], generator, **kwargs).float().cpu()
    if not torch.isfinite(E).all():
        return None                                  # the caller keeps the canvas winner
    E = E[:, :, cy0:cy1, cx0:cx1]                                          # the crop's part
    if E.shape[-2:] != (h, w):
        E = F.interpolate(E, size=(h, w), mode="bicubic", align_corners=False)
    E = E.clamp(0, 1)
    wgt = feather(m_crop[0], round(blend_px * scale)) if blend_px > 1 else m_crop[0]
    if blend_px > 1:
        wgt = keep_changes(wgt, m_crop[0], E[0], crop[0], blend_tau)
    wgt = wgt[None]                                                        # (1, 1, h, w)
    out = x_full.clone()
    pasted = torch.where(wgt > 0, wgt * E + (1 - wgt) * crop, crop)
    out[:, :, y0:y1, x0:x1] = pasted.to(out.dtype)
    return out
