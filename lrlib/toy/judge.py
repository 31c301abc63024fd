"""A procedural judge for toy-world edits: which colour and shape is in this box? No model inside.

1. Foreground. Toy backgrounds are grey-ish (saturation under ~0.35 with grain) and toy objects
   are vivid (saturation over ~0.8). Inside the box a pixel is foreground when its saturation
   (max - min) / max exceeds max(0.4, s_ring + 0.15) and its value (max) exceeds 0.25, where s_ring
   is the 95th percentile of saturation over a 2-pixel ring just outside the box: the threshold
   rises by itself if an editor made the surroundings more colourful. Anti-aliased rims (half
   object, half background) mostly fall below it, which slightly erodes small shapes but never
   adds background.
2. Colour. Each foreground pixel's hue is atan2(sqrt(3) (g - b), 2r - g - b) and votes for the
   palette colour with the nearest hue; the majority wins and `colour_conf` is its share of votes.
3. Shape. Crop the foreground to its own bounding box and measure four numbers, in coordinates
   where that box is the unit square:
     fill   = foreground share of the box    (square 1, circle 0.785, cross 0.6, triangle 0.5, star 0.35)
     top    = share of the foreground in the upper half  (triangle 0.25, the others ~0.5)
     corner = foreground share of the four 1/4 x 1/4 corner cells (square 1, cross 0, ...)
     notch  = foreground share of the bottom-centre cell, u in [3/8, 5/8], v in [0.8, 1]
              (the gap between a star's legs: star 0.18, the others ~1)
   and pick the shape whose template, the same numbers measured on that shape drawn large, is
   nearest. `shape_conf` = 1 - d_best / d_second.
4. No object: fewer than max(12, 5% of the box) foreground pixels gives colour = shape = None.

Limits: it is exact on toy objects of 14 px and more (toy images of 64 px or larger; measured
0 errors in ~8,000 objects at 64 px); at 32 px small stars read as circles or crosses (~9% wrong). It
knows only the toy palette and upright toy shapes, and reads a blurry blob by its fill ratio.

`judge_edit` grades a whole edit against an `EditTask`: right colour, right shape, PSNR outside
the box (did the rest of the image survive?) and `seam` (does the edited patch show?), see `seam`.

`judge_task` grades what a user sees, with no box at all (the benchmark's success):

    success = present  and  old_gone  and  others_kept

* present: the edited image's foreground (threshold from the *source's* background, so it never
  goes blind next to another object), minus the pixels of the other objects, grown from the
  source object's box into whole connected blobs, is the prompt's colour and shape, and that
  object covers at least half of the smaller of its box and the source object's box (it sits
  where the source object was).
* old_gone: at most 10% of the source object's pixels are untouched (|edited - source| <= 2/255):
  a box that leaves part of the old object outside fails even when the new object is right.
* others_kept: at most 10% of each other object's pixels moved by more than 0.1 (an edit box
  that repaints or clips a neighbour fails).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lrlib.errors import LRError
from lrlib.toy.scenes import COLOURS, SHAPES, shape_coverage

RING = 2
MIN_SAT, SAT_MARGIN, MIN_VALUE = 0.4, 0.15, 0.25


def to_hwc(image) -> np.ndarray:
    """numpy (H, W, 3) float or uint8, or torch (3, H, W) / (1, 3, H, W) -> float32 (H, W, 3) in [0, 1]."""
    if hasattr(image, "detach"):
        image = image.detach().float().cpu().numpy()
        if image.ndim == 4 and image.shape[0] == 1:
            image = image[0]
        if image.ndim == 3 and image.shape[0] == 3:
            image = image.transpose(1, 2, 0)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise LRError(f"expected an RGB image (H, W, 3) or a tensor (3, H, W), got shape "
                      f"{image.shape}: pass one image, not a batch.")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255
    return image.astype(np.float32)


def hue(rgb: np.ndarray) -> np.ndarray:
    """Hue in degrees [0, 360) of (..., 3) RGB."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.degrees(np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)) % 360


def saturation(rgb: np.ndarray) -> np.ndarray:
    mx = rgb.max(-1)
    return (mx - rgb.min(-1)) / np.maximum(mx, 1e-6)


PALETTE_HUES = {name: float(hue(np.asarray(rgb))) for name, rgb in COLOURS.items()}


def _clip_box(box, h: int, w: int) -> tuple:
    x0, y0, x1, y1 = (int(round(float(c))) for c in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        raise LRError(f"box {tuple(box)} holds no pixel of a {w}x{h} image: "
                      "use (x0, y0, x1, y1) with x1 > x0 and y1 > y0 inside the image.")
    return x0, y0, x1, y1


def foreground(image, box) -> np.ndarray:
    """(y1-y0, x1-x0) bool: the pixels of the box that look like an object (see the module doc)."""
    img = to_hwc(image)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = _clip_box(box, h, w)
    sat = saturation(img)
    rx0, ry0, rx1, ry1 = max(0, x0 - RING), max(0, y0 - RING), min(w, x1 + RING), min(h, y1 + RING)
    ring = np.ones((ry1 - ry0, rx1 - rx0), bool)
    ring[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0] = False
    s_ring = np.percentile(sat[ry0:ry1, rx0:rx1][ring], 95) if ring.any() else 0.0
    thr = max(MIN_SAT, s_ring + SAT_MARGIN)
    crop = img[y0:y1, x0:x1]
    return (sat[y0:y1, x0:x1] > thr) & (crop.max(-1) > MIN_VALUE)


def _overlap(lo: np.ndarray, hi: np.ndarray, a: float, b: float) -> np.ndarray:
    """Length of [lo, hi] inside [a, b], per element."""
    return np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0, None)


def shape_features(fg: np.ndarray) -> np.ndarray:
    """(fill, top, corner, notch) of a foreground mask, measured in its own bounding box."""
    rows, cols = np.flatnonzero(fg.any(1)), np.flatnonzero(fg.any(0))
    fg = fg[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = fg.shape
    n = fg.sum()
    vy0, vy1 = np.arange(h) / h, np.arange(1, h + 1) / h  # each pixel's extent in the unit box
    ux0, ux1 = np.arange(w) / w, np.arange(1, w + 1) / w
    top_w = _overlap(vy0, vy1, 0, 0.5) * h  # share of each row in the upper half
    top = (fg.sum(1) * top_w).sum() / n
    cy = (_overlap(vy0, vy1, 0, 0.25) + _overlap(vy0, vy1, 0.75, 1)) * h
    cx = (_overlap(ux0, ux1, 0, 0.25) + _overlap(ux0, ux1, 0.75, 1)) * w
    cw = cy[:, None] * cx[None, :]  # share of each pixel inside a corner cell
    corner = (fg * cw).sum() / cw.sum()
    nw = (_overlap(vy0, vy1, 0.8, 1) * h)[:, None] * (_overlap(ux0, ux1, 0.375, 0.625) * w)[None, :]
    notch = (fg * nw).sum() / nw.sum()
    return np.array([n / (h * w), top, corner, notch])


@lru_cache(maxsize=None)
def shape_templates() -> dict:
    """Features of each shape drawn 96 px large: the references the judge compares against."""
    return {s: shape_features(shape_coverage(s, 96, 96) >= 0.5) for s in SHAPES}


@dataclass
class Verdict:
    """What the judge sees in a box. colour / shape are None when there is no object."""
    colour: str | None
    shape: str | None
    colour_conf: float
    shape_conf: float
    fill_ratio: float
    top_ratio: float
    corner_ratio: float
    n_foreground: int


def judge_region(image, box) -> Verdict:
    """Name the colour and shape of the object in `box` (x0, y0, x1, y1; x1, y1 exclusive)."""
    img = to_hwc(image)
    fg = foreground(img, box)
    if int(fg.sum()) < max(12, 0.05 * fg.size):
        return Verdict(None, None, 0.0, 0.0, 0.0, 0.0, 0.0, int(fg.sum()))
    x0, y0, x1, y1 = _clip_box(box, *img.shape[:2])
    return classify(img[y0:y1, x0:x1], fg)


def classify(img: np.ndarray, fg: np.ndarray) -> Verdict:
    """Colour (hue votes) and shape (features of the mask's own box) of the foreground fg (H, W)
    of img (H, W, 3); fg must hold at least one pixel."""
    n = int(fg.sum())
    hues = hue(img[fg])
    names = list(PALETTE_HUES)
    ref = np.array([PALETTE_HUES[c] for c in names])
    d = np.abs(hues[:, None] - ref[None, :]) % 360
    votes = np.bincount(np.minimum(d, 360 - d).argmin(1), minlength=len(names))
    colour = names[votes.argmax()]
    feats = shape_features(fg)
    temps = shape_templates()
    dist = {s: float(np.linalg.norm(feats - t)) for s, t in temps.items()}
    ranked = sorted(dist, key=dist.get)
    shape_conf = 1 - dist[ranked[0]] / max(dist[ranked[1]], 1e-9)
    return Verdict(colour, ranked[0], float(votes.max() / n), float(shape_conf),
                   float(feats[0]), float(feats[1]), float(feats[2]), n)


def psnr(a, b, mask=None) -> float:
    """PSNR in dB of images in [0, 1] (data range 1), over the pixels where `mask` (H, W) is True.

    inf when they are identical there (or the mask is empty).
    """
    a, b = to_hwc(a), to_hwc(b)
    if a.shape != b.shape:
        raise LRError(f"images differ in shape {a.shape} vs {b.shape}: resize one to the other first.")
    diff = (a.astype(np.float64) - b) ** 2
    if mask is not None:
        diff = diff[np.asarray(mask, bool)]
    mse = float(diff.mean()) if diff.size else 0.0
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def _dilate(m: np.ndarray, r: int) -> np.ndarray:
    """Grow a bool mask by r pixels (square neighbourhood)."""
    h, w = m.shape
    p = np.pad(m, r)
    out = np.zeros_like(m)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= p[dy:dy + h, dx:dx + w]
    return out


def _steps(img: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute colour step between pixels a (K, 2) and b (K, 2), (y, x) each."""
    return np.abs(img[a[:, 0], a[:, 1]] - img[b[:, 0], b[:, 1]]).mean(-1)


@lru_cache(maxsize=8)
def _neighbour_pairs(h: int, w: int) -> tuple:
    """All horizontally and vertically adjacent pixel pairs as two (K, 2) arrays of (y, x)."""
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.concatenate([np.stack([yy[:, :-1], xx[:, :-1]], -1).reshape(-1, 2),
                        np.stack([yy[:-1], xx[:-1]], -1).reshape(-1, 2)])
    b = np.concatenate([np.stack([yy[:, 1:], xx[:, 1:]], -1).reshape(-1, 2),
                        np.stack([yy[1:], xx[1:]], -1).reshape(-1, 2)])
    return a, b


CHANGED = 2 / 255  # a pixel counts as changed by the edit above this (max over channels)


def seam(source, edited) -> float:
    """How visible the border of the edited patch is, beyond the background's own grain.

    The editor changed some pixels (|edited - source| > 2/255 in some channel). Take every pair of
    adjacent pixels with exactly one of them changed, i.e. pairs across the border of the change,
    and keep those where both pixels are at least 3 px from any object of `edited` (so object
    edges and anti-aliased rims do not count). seam = their mean absolute colour step in `edited`
    minus the mean step between adjacent background pixels (3 px from objects) of `source`, the
    background's own grain. About 0 when the background was restored seamlessly (the ideal edit,
    or a change confined to under the objects: no pairs, 0), > 0 when the patch shows.
    """
    src, edt = to_hwc(source), to_hwc(edited)
    if src.shape != edt.shape:
        raise LRError(f"images differ in shape {src.shape} vs {edt.shape}: resize one to the other first.")
    h, w = src.shape[:2]
    a, b = _neighbour_pairs(h, w)
    full = (0, 0, w, h)
    changed = np.abs(edt - src).max(-1) > CHANGED
    near_e = _dilate(foreground(edt, full), 2)
    near_s = _dilate(foreground(src, full), 2)
    border = (changed[a[:, 0], a[:, 1]] != changed[b[:, 0], b[:, 1]]) & \
        ~near_e[a[:, 0], a[:, 1]] & ~near_e[b[:, 0], b[:, 1]]
    clean = ~near_s[a[:, 0], a[:, 1]] & ~near_s[b[:, 0], b[:, 1]]
    if not border.any() or not clean.any():
        return 0.0
    return float(_steps(edt, a[border], b[border]).mean() - _steps(src, a[clean], b[clean]).mean())


def judge_edit(source, edited, task) -> dict:
    """Grade `edited` against the task (anything with target_box, target_shape, target_colour).

    Returns colour_ok, shape_ok, success (both), psnr_outside (dB between source and edited
    outside the target box; inf if untouched there), seam (see `seam`) and the Verdict.
    """
    src, edt = to_hwc(source), to_hwc(edited)
    v = judge_region(edt, task.target_box)
    x0, y0, x1, y1 = _clip_box(task.target_box, *src.shape[:2])
    outside = np.ones(src.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    colour_ok, shape_ok = v.colour == task.target_colour, v.shape == task.target_shape
    return dict(colour_ok=colour_ok, shape_ok=shape_ok, success=colour_ok and shape_ok,
                psnr_outside=psnr(src, edt, outside), seam=seam(src, edt),
                verdict=v)


def _grow(seed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The connected blobs (4-neighbourhood) of `allowed` that touch `seed` (both (H, W) bool):
    `lrlib.additions.fitted.grow`, the same flood fill the fitted proposals use, on numpy arrays."""
    import torch

    from lrlib.additions.fitted import grow
    return grow(torch.from_numpy(seed), torch.from_numpy(allowed)).numpy()


def _box_of(m: np.ndarray) -> tuple:
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def judge_task(task, edited) -> dict:
    """What a user sees (see the module doc): present, old_gone, others_kept, success, and the
    Verdict of the new object (None when there is none). Needs the task's scene, not a box."""
    scene = task.scene
    src, edt = to_hwc(scene.image), to_hwc(edited)
    if src.shape != edt.shape:
        raise LRError(f"edited image {edt.shape} differs from the scene {src.shape}: "
                      "judge the result at the scene's own size.")
    near = _dilate(np.any([o.mask for o in scene.objects], 0), RING)
    thr = max(MIN_SAT, float(np.percentile(saturation(src)[~near], 95)) + SAT_MARGIN) \
        if (~near).any() else MIN_SAT
    fg = (saturation(edt) > thr) & (edt.max(-1) > MIN_VALUE)
    others = [o for k, o in enumerate(scene.objects) if k != task.target_index]
    if others:
        fg &= ~_dilate(np.any([o.mask for o in others], 0), 1)
    x0, y0, x1, y1 = task.target_box
    seed = np.zeros_like(fg)
    seed[y0:y1, x0:x1] = True
    blob = _grow(seed, fg)
    verdict, present = None, False
    if blob.sum() >= 12:
        verdict = classify(edt, blob)
        b = _box_of(blob)
        ix = max(0, min(b[2], x1) - max(b[0], x0)) * max(0, min(b[3], y1) - max(b[1], y0))
        small = min((b[2] - b[0]) * (b[3] - b[1]), (x1 - x0) * (y1 - y0))
        present = (verdict.colour, verdict.shape) == (task.target_colour, task.target_shape) \
            and ix >= 0.5 * small
    moved = np.abs(edt - src).max(-1)
    old = scene.objects[task.target_index].mask
    old_gone = float((moved[old] <= CHANGED).mean()) <= 0.1
    others_kept = all(float((moved[o.mask] > 0.1).mean()) <= 0.1 for o in others)
    return dict(present=present, old_gone=old_gone, others_kept=others_kept,
                success=present and old_gone and others_kept, verdict=verdict)
