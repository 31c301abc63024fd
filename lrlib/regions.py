"""Stage 2: box proposals, ROI-align, the Region Generation Network and Gumbel-Softmax.

For every anchor C_i (pixel x, y) we place M square boxes B_ij of growing side s_j centred on it,
clipped to the image (to the picture's content rectangle, when a non-square photo is letterboxed
onto the square canvas: no box reaches the padding). Each box pools the DINO patch features F
(d x h x w):

    f_ij = ROIAlign(F, B_ij)                      (d x r x r, torchvision.ops.roi_align)

The RGN scores each box from its pooled features (and, in lrlib, its relative size s_j: after
ROI-align a big and a small box over a flat region look identical), one logit pi_ij per box:

    p_i = softmax([pi_i1, ..., pi_iM])

Gumbel-Softmax draws a differentiable one-hot choice g_i (Jang et al. 2017):

    y_ij = exp((pi_ij + G_ij) / tau) / sum_l exp((pi_il + G_il) / tau),   G = -log(-log U)
    g_i  = onehot(argmax_j y_ij) - sg(y_i) + y_i       (hard, straight-through; sg = stop-grad)

The forward value is exactly one box, the backward is the gradient of the soft sample. Boxes
become masks m_ij (1 inside). Coordinates: a box is (x0, y0, x1, y1) in pixels, x to the right
(columns), y down (rows), x1/y1 exclusive. The official code swaps x and y; a test pins ours.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import roi_align


def make_proposals(anchors_xy: torch.Tensor, sides: list[float], H: int, W: int,
                   content: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """(K, 2) anchor pixels and M sides (fractions of the shorter side) -> (K, M, 4) integer boxes.

    Each box is the square of side s * min(h, w) centred on the anchor, clipped to the picture
    (so boxes at the border are cut, not shifted). At least 1 pixel wide. The picture is the
    H x W image, or `content` (x0, y0, x1, y1) inside it (w, h: its sides): the rectangle of a
    letterboxed canvas that holds the photo, so that no box covers any padding.
    """
    X0, Y0, X1, Y1 = content or (0, 0, W, H)
    S = min(X1 - X0, Y1 - Y0)
    half = torch.tensor(sides, dtype=torch.float32) * S / 2                      # (M,)
    cx, cy = anchors_xy[:, 0:1].float(), anchors_xy[:, 1:2].float()            # (K, 1)
    x0 = (cx - half).round().clamp(X0, X1 - 1)
    y0 = (cy - half).round().clamp(Y0, Y1 - 1)
    x1 = torch.maximum((cx + half).round().clamp(X0 + 1, X1), x0 + 1)
    y1 = torch.maximum((cy + half).round().clamp(Y0 + 1, Y1), y0 + 1)
    return torch.stack([x0, y0, x1, y1], -1).long()


def boxes_to_masks(boxes: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(..., 4) integer boxes -> (..., 1, H, W) float masks, 1 on pixels x0 <= x < x1, y0 <= y < y1."""
    b = boxes.reshape(-1, 4)
    xs = torch.arange(W).view(1, 1, W)
    ys = torch.arange(H).view(1, H, 1)
    m = ((xs >= b[:, 0, None, None]) & (xs < b[:, 2, None, None])
         & (ys >= b[:, 1, None, None]) & (ys < b[:, 3, None, None]))
    return m.float().reshape(*boxes.shape[:-1], 1, H, W)


def roi_pool(feats: torch.Tensor, boxes: torch.Tensor, H: int, W: int, out: int) -> torch.Tensor:
    """ROI-align features (1, d, h, w) of an H x W image over pixel boxes (K, M, 4).

    Boxes are mapped to feature cells with separate x and y scales (w / W, h / H), so that
    non-square grids work, and `aligned=True` puts cell i's value at coordinate i + 0.5.
    Returns (K, M, d, out, out).
    """
    _, d, h, w = feats.shape
    K, M, _ = boxes.shape
    scale = torch.tensor([w / W, h / H, w / W, h / H], dtype=feats.dtype, device=feats.device)
    rois = boxes.reshape(-1, 4).to(feats) * scale
    pooled = roi_align(feats, [rois], output_size=out, spatial_scale=1.0, sampling_ratio=2,
                       aligned=True)
    return pooled.reshape(K, M, d, out, out)


def box_geometry(boxes: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(K, M, 4) boxes -> (K, M, 2) [relative width, relative height], what the RGN sees of size."""
    wh = (boxes[..., 2:] - boxes[..., :2]).float()
    return wh / torch.tensor([W, H], dtype=torch.float32)


class RGN(nn.Module):
    """Region Generation Network: pooled features of M boxes -> M logits per anchor.

    f (d x r x r) -> 1x1 conv -> ReLU -> 1x1 conv -> ReLU -> flatten ++ [w, h] -> Linear -> ReLU
    -> Linear -> pi. The same weights score every box of every anchor.
    """

    def __init__(self, d: int, roi_size: int, channels: int = 64, hidden: int = 256):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(d, channels, 1), nn.ReLU(),
                                   nn.Conv2d(channels, channels, 1), nn.ReLU())
        self.mlp = nn.Sequential(nn.Linear(channels * roi_size * roi_size + 2, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, pooled: torch.Tensor, geom: torch.Tensor) -> torch.Tensor:
        K, M = pooled.shape[:2]
        z = self.convs(pooled.flatten(0, 1)).flatten(1)                   # (K*M, c*r*r)
        z = torch.cat([z, geom.reshape(K * M, -1).to(z)], 1)
        return self.mlp(z).view(K, M)                                      # logits pi


def gumbel_softmax(logits: torch.Tensor, tau: float = 1.0, hard: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Gumbel-Softmax over the last axis, seeded by `generator` (torch's own uses global RNG).

    hard=True returns one-hot values with the soft sample's gradient (straight-through).
    """
    U = torch.rand(logits.shape, generator=generator, dtype=torch.float32).to(logits.device)
    G = -torch.log(-torch.log(U.clamp(1e-10, 1 - 1e-7)))
    y = F.softmax((logits + G.to(logits.dtype)) / tau, dim=-1)
    if not hard:
        return y
    y_hard = F.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype)
    return y_hard - y.detach() + y


# ----------------------------------------------------------------------------- fitted proposals
# lrlib's proposals (proposals="fitted"): boxes shaped like the object, not squares. Around
# anchor a (pixel), the DINO features say which pixels belong with it:
#
#     sim_a(p) = cos(F(a), F(p))        F bilinearly upsampled from the patch grid to pixels
#     R_a      = the connected blob of {p : sim_a(p) >= level} that holds a
#     B_a      = the tight box of R_a;   proposals: B_a scaled about its centre by each factor
#
# so the M proposals are rectangles of the object's size and position (and a few larger ones,
# which repaint a clean margin around it).
#
# Snapping to the image's edges (fit_snap > 0). sim_a is known only per patch (8-18 px); its
# bilinear upsampling blurs the object's outline by about a patch, so B_a misses the object by
# up to half a patch on each side (toy DINO: IoU 0.69 with the object's box at the best level).
# The guided filter (He, Sun & Tang, ECCV 2010) repaints a coarse map q with the edges of a
# guide image I (here the picture, RGB): inside every window w_k of radius r it fits q linearly
# to the colours,
#
#     q_hat(p) = a_k . I(p) + b_k,     a_k = (Sigma_k + eps 1)^-1 cov_k(I, q),   b_k = mean_k(q) - a_k . mean_k(I)
#
# and averages the (a_k, b_k) of the windows covering p. Where the colours change (an object's
# edge), q_hat changes with them; where they are flat, q_hat is q smoothed. The blob is then
# thresholded on q_hat (tuning tasks, radius 1.5 cells, eps 1e-3, level 0.7: IoU 0.93).
#
# Cost at the real size (512 px canvas, 28 x 28 grid, d = 768, r = 27 px): four identities
# keep every step linear in the pixels:
#
#   * Window means from an integral image: with C(i) = x(0) + ... + x(i - 1) along a row,
#     the sum over the window [i, i + 2r] is C(i + 2r + 1) - C(i), whatever r (then the same
#     along the columns); a sliding window costs (2r + 1)^2 = 3025 adds per pixel.
#   * The guide's statistics (mean_k(I), (Sigma_k + eps 1)^-1) depend on the image and r only:
#     `guide_stats` computes them once per image for every map filtered with it.
#   * Upsampling is linear: up(F)(p) = sum_c t_c(p) F_c over the 4 bilinear taps c of pixel p,
#     so the numerator of sim_a needs only the patch grid,
#
#         F(a) . up(F)(p) = up(F(a) . F)(p)              ((h, w) map, then upsampled)
#         |up(F)(p)|^2    = sum_{c, c'} t_c(p) t_c'(p) G_cc',   G = F^T F   (hw x hw Gram)
#
#     and the (d, H, W) upsampled features (805 MB at 512 px for d = 768) are never built.
#   * R_a is a connected component of the thresholded map: one labelling pass over the pixels
#     (scipy.ndimage.label, 4-neighbourhood) instead of growing the blob one ring at a time.

SNAP_EPS = 1e-3      # the guided filter's regulariser eps (colours in [0, 1]; measured, tuning set)


def _box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """(N, C, H, W) -> the mean over each (2r+1)^2 window, edges replicated: differences of
    cumulative sums along the rows, then the columns (the integral image above), in float64 so
    that the difference of two long sums keeps the window's digits."""
    k = 2 * r + 1
    z = F.pad(x, (r, r, r, r), mode="replicate").double()                 # (N, C, H+2r, W+2r)
    for dim in (-1, -2):
        c = z.cumsum(dim)                                                 # c[j] = C(j + 1)
        n = c.shape[dim] - k + 1                                          # W, then H
        z = c.narrow(dim, k - 1, n).clone()                               # C(i + 2r + 1)
        z.narrow(dim, 1, n - 1).sub_(c.narrow(dim, 0, n - 1))             # - C(i); C(0) = 0
    return (z / (k * k)).to(x.dtype)                                      # (N, C, H, W)


@dataclass
class Guide:
    """What the guided filter needs of its guide image I, for one window radius r and eps:
    computed once per image (`guide_stats`), reused for every map filtered with it."""
    I: torch.Tensor         # (1, 3, H, W)  the guide, float
    mean: torch.Tensor      # (1, 3, H, W)  mean_k(I)
    inv: torch.Tensor       # (H, W, 3, 3)  (Sigma_k + eps 1)^-1
    r: int
    eps: float


def guide_stats(I: torch.Tensor, r: int, eps: float = SNAP_EPS) -> Guide:
    """Guide image (3, H, W) in [0, 1] -> its window means and inverted, regularised 3 x 3
    colour covariances for the guided filter of radius r px (on I's device)."""
    I = I.float()[None]                                                  # (1, 3, H, W)
    H, W = I.shape[-2:]
    ij = [(i, j) for i in range(3) for j in range(i, 3)]                 # Sigma is symmetric
    m = _box_mean(torch.cat([I, torch.stack([I[:, i] * I[:, j] for i, j in ij], 1)], 1), r)
    mI = m[:, :3]                                                        # (1, 3, H, W)
    var = {p: m[0, 3 + n] - mI[0, p[0]] * mI[0, p[1]] for n, p in enumerate(ij)}   # (H, W) each
    Sigma = torch.stack([var[min(i, j), max(i, j)] for i in range(3) for j in range(3)], -1)
    Sigma = Sigma.reshape(H, W, 3, 3) + eps * torch.eye(3, device=I.device)
    return Guide(I=I, mean=mI, inv=torch.linalg.inv(Sigma), r=r, eps=eps)   # inv (H, W, 3, 3)


def guided_filter(I: torch.Tensor, q: torch.Tensor, r: int, eps: float = SNAP_EPS,
                  guide: Guide | None = None) -> torch.Tensor:
    """Colour guided filter (equation above): guide I (3, H, W) in [0, 1], maps q (P, H, W) ->
    (P, H, W) q filtered with I's edges, window radius r px. The guide's 3 x 3 covariances are
    inverted once for all P maps; guide: `guide_stats(I, r, eps)` when the caller already has
    it (several calls with one image). Runs on q's device."""
    if guide is None:
        guide = guide_stats(I.to(q.device), r, eps)
    elif (guide.r, guide.eps) != (r, eps):
        raise ValueError(f"guide statistics of radius {guide.r}, eps {guide.eps} given for a "
                         f"filter of radius {r}, eps {eps}")
    I, mI = guide.I, guide.mean                                          # (1, 3, H, W)
    q = q.float()[:, None]                                               # (P, 1, H, W)
    m = _box_mean(torch.cat([q, I * q], 1), r)                           # (P, 4, H, W)
    mq, cov = m[:, :1], m[:, 1:] - mI * m[:, :1]                         # (P,1,H,W), (P,3,H,W)
    a = torch.einsum("hwij,pjhw->pihw", guide.inv, cov)                  # (P, 3, H, W)
    b = mq - (a * mI).sum(1, keepdim=True)                               # (P, 1, H, W)
    mab = _box_mean(torch.cat([a, b], 1), r)                             # (P, 4, H, W)
    return (mab[:, :3] * I).sum(1) + mab[:, 3]                           # (P, H, W)


def snap_radius(snap: float, H: int, h: int) -> int:
    """The guided filter's radius in pixels for `snap` patch cells (h cells over H pixels)."""
    return max(1, round(snap * H / h))


def _components(allowed: torch.Tensor) -> np.ndarray:
    """(H, W) bool -> (H, W) int labels of its connected components (4-neighbourhood: the
    default structure of scipy.ndimage.label), 0 off the mask."""
    from scipy import ndimage
    return ndimage.label(allowed.cpu().numpy())[0]


def grow(seed: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """The connected blobs (4-neighbourhood) of the (H, W) bool mask `allowed` touching `seed`."""
    labels = _components(allowed)                                        # (H, W)
    touched = np.unique(labels[(seed & allowed).cpu().numpy()])
    touched = touched[touched > 0]
    hit = labels == touched[0] if len(touched) == 1 else np.isin(labels, touched)
    return torch.from_numpy(hit).to(allowed.device)


def blob_box(score: torch.Tensor, xy, level: float) -> list[int]:
    """Tight box (x0, y0, x1, y1) of the connected blob of {score >= level} holding pixel xy of
    the (H, W) map; the pixel's own 1 x 1 box when it is below the level."""
    return mask_boxes(blob(score >= level, xy)[None])[0].tolist()


def blob(allowed: torch.Tensor, xy, reach: int = 0) -> torch.Tensor:
    """The connected blob of the (H, W) bool mask `allowed` holding pixel xy (clamped into the
    map); the pixel alone when it is not allowed. reach > 0: a pixel that is not allowed seeds
    the blob at the nearest allowed pixel within `reach` px instead (an anchor in a star's gap
    or on an object's anti-aliased rim still finds its object)."""
    H, W = allowed.shape
    x, y = min(W - 1, max(0, int(xy[0]))), min(H - 1, max(0, int(xy[1])))
    if reach > 0 and not allowed[y, x]:
        ys, xs = torch.nonzero(allowed[max(0, y - reach):y + reach + 1,
                                       max(0, x - reach):x + reach + 1], as_tuple=True)
        if len(ys):
            ys, xs = ys + max(0, y - reach), xs + max(0, x - reach)
            i = int(torch.argmin((ys - y) ** 2 + (xs - x) ** 2))       # ties: the first in
            y, x = int(ys[i]), int(xs[i])                               # row-major order
    seed = torch.zeros(H, W, dtype=torch.bool, device=allowed.device)
    seed[y, x] = True
    m = grow(seed, allowed)
    return m if m.any() else seed


def upsample(fmap: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(d, h, w) or (h, w) map -> (d, H, W) / (H, W), bilinear (cell i's value at pixel centre)."""
    z = fmap[None].float() if fmap.ndim == 3 else fmap[None, None].float()
    out = F.interpolate(z, size=(H, W), mode="bilinear", align_corners=False)[0]
    return out if fmap.ndim == 3 else out[0]


def scale_boxes(boxes: torch.Tensor, factors: list[float], H: int, W: int,
                min_side: float = 1.0, content=None, max_side: float | None = None) -> torch.Tensor:
    """(K, 4) boxes -> (K, M, 4) integer boxes, each scaled about its centre by each factor
    (sides between `min_side` and `max_side` px), clipped to the picture (the image, or
    `content`)."""
    X0, Y0, X1, Y1 = content or (0, 0, W, H)
    b = boxes.float()[:, None]
    f = torch.tensor(factors, dtype=torch.float32)[None, :, None]
    c = (b[..., :2] + b[..., 2:]) / 2
    half = ((b[..., 2:] - b[..., :2]) * f).clamp(min=min_side, max=max_side) / 2
    lo = (c - half).round()
    hi = torch.maximum((c + half).round(), lo + 1)
    lo0, lim = torch.tensor([X0, Y0], dtype=torch.float32), torch.tensor([X1, Y1], dtype=torch.float32)
    lo = torch.minimum(torch.maximum(lo, lo0), lim - 1)
    hi = torch.maximum(torch.minimum(hi, lim), lo + 1)
    return torch.cat([lo, hi], -1).long()


def _taps(n_out: int, n_in: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The two source cells and their weights for each of n_out outputs along one axis of
    `upsample` (F.interpolate, bilinear, align_corners=False): source coordinate
    s = max(0, (i + 0.5) n_in / n_out - 0.5), cells floor(s) and the next one (the last cell
    twice at the far edge), weights 1 - frac(s) and frac(s). Returns cells (2, n_out) long and
    weights (2, n_out)."""
    s = ((torch.arange(n_out, dtype=torch.float32, device=device) + 0.5) * (n_in / n_out)
         - 0.5).clamp(min=0)                                             # (n_out,)
    i0 = s.long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    f = s - i0
    return torch.stack([i0, i1]), torch.stack([1 - f, f])


def _pixel_taps(h: int, w: int, ys: torch.Tensor, xs: torch.Tensor, H: int, W: int):
    """Bilinear taps of pixels (rows ys, columns xs, broadcast together) of an H x W upsampling
    of an h x w grid: flat cell indices (4, ...) and weights (4, ...), rows x columns."""
    (ry, wy), (cx, wx) = _taps(H, h, ys.device), _taps(W, w, xs.device)
    cells = torch.stack([ry[i][ys] * w + cx[j][xs] for i in (0, 1) for j in (0, 1)])
    weights = torch.stack([wy[i][ys] * wx[j][xs] for i in (0, 1) for j in (0, 1)])
    return cells, weights


def pixel_norms(feats: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(d, h, w) patch features -> (H, W) |upsample(feats)(p)| per pixel, from the (hw x hw)
    Gram matrix and the 4 bilinear taps of each pixel (equation above), never building the
    (d, H, W) upsampled features."""
    d, h, w = feats.shape
    Fm = feats.reshape(d, h * w).float()                                 # (d, hw)
    G = Fm.T @ Fm                                                        # (hw, hw)
    dev = feats.device
    cells, wts = _pixel_taps(h, w, torch.arange(H, device=dev)[:, None],
                             torch.arange(W, device=dev)[None, :], H, W)  # (4, H, W) each
    n2 = torch.zeros(H, W, device=dev)
    for i in range(4):
        n2 += wts[i] * wts[i] * G[cells[i], cells[i]]
        for j in range(i + 1, 4):
            n2 += 2 * wts[i] * wts[j] * G[cells[i], cells[j]]
    return n2.clamp(min=0).sqrt()                                        # (H, W)


def unit_features(feats: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(d, h, w) patch features -> (d, H, W) upsampled to pixels, unit length per pixel."""
    return F.normalize(upsample(feats, H, W), dim=0)


def similarity(feats: torch.Tensor, xy: tuple[int, int], H: int, W: int,
               norms: torch.Tensor | None = None) -> torch.Tensor:
    """(d, h, w) patch features, pixel xy -> (H, W) sim_a(p) = cos(up(F)(a), up(F)(p)) (the map
    of `unit_features` dotted with its own pixel xy), computed on the patch grid and upsampled
    (equations above). norms: `pixel_norms(feats, H, W)` when the caller already has it."""
    d, h, w = feats.shape
    norms = pixel_norms(feats, H, W) if norms is None else norms         # (H, W)
    dev = feats.device
    cells, wts = _pixel_taps(h, w, torch.tensor([xy[1]], device=dev),
                             torch.tensor([xy[0]], device=dev), H, W)    # (4, 1) each
    Fm = feats.reshape(d, h * w).float()                                 # (d, hw)
    Fa = Fm[:, cells[:, 0]] @ wts[:, 0]                                  # (d,) up(F)(a)
    num = upsample((Fa @ Fm).view(h, w), H, W)                           # (H, W) up(F(a) . F)
    eps = 1e-12                                                          # F.normalize's floor
    return num / (Fa.norm().clamp(min=eps) * norms.clamp(min=eps))


FIT_PEAK = 0.9   # fitted_blobs with reach: cut at most this fraction of the anchor's own peak


def fitted_blobs(feats: torch.Tensor, anchors_xy: torch.Tensor, level: float, H: int,
                 W: int, content=None, image: torch.Tensor | None = None,
                 snap: float = 0.0, reach: float = 0.0, Fp: torch.Tensor | None = None,
                 norms: torch.Tensor | None = None, guide: Guide | None = None
                 ) -> torch.Tensor:
    """(d, h, w) DINO patch features and (K, 2) anchor pixels -> (K, H, W) bool blobs R_a (see
    above), kept inside the picture (the image, or `content`: no blob reaches the padding).
    Runs on the features' device; the blobs come back on the CPU.
    Fp: `unit_features(feats, H, W)` when the caller already has it (sim_a read from it);
    otherwise sim_a is computed on the patch grid, with norms: `pixel_norms(feats, H, W)` and
    guide: `guide_stats(image, snap_radius(snap, H, h))` when the caller already has them (one
    of each per image, whatever the number of calls).

    image (3, H, W) and snap > 0: sim_a is first snapped to the image's edges by the guided
    filter, window radius `snap` patch cells. reach > 0 (patch cells): the cut is
    min(level, FIT_PEAK * the map's peak within `reach` of the anchor) (a thin object, snapped,
    can peak under the level), and an anchor below the cut seeds its blob at the nearest pixel
    above it within `reach`; else an anchor below the level gets its own pixel."""
    X0, Y0, X1, Y1 = content or (0, 0, W, H)
    pts = [(min(X1 - 1, max(X0, int(x))), min(Y1 - 1, max(Y0, int(y))))
           for x, y in anchors_xy.tolist()]
    if not pts:
        return torch.zeros(0, H, W, dtype=torch.bool)
    h = feats.shape[-2]
    dev = feats.device if Fp is None else Fp.device
    if Fp is None and norms is None:
        norms = pixel_norms(feats, H, W)                                  # (H, W), once
    snapping = snap > 0 and image is not None
    if snapping and guide is None:
        guide = guide_stats(image.to(dev), snap_radius(snap, H, h))       # once for all anchors
    inside = torch.zeros(H, W, dtype=torch.bool, device=dev)
    inside[Y0:Y1, X0:X1] = True
    px = round(reach * H / h)
    out = []
    for x, y in pts:                      # one (H, W) map at a time: memory O(H W), not O(K H W)
        sim = (torch.einsum("d,dhw->hw", Fp[:, y, x], Fp) if Fp is not None
               else similarity(feats, (x, y), H, W, norms))               # (H, W)
        if snapping:
            sim = guided_filter(image, sim[None], guide.r, guide.eps, guide)[0]
        cut = level
        if px > 0:              # snapping can pull a thin object's whole map below the level:
            peak = float(sim[max(0, y - px):y + px + 1, max(0, x - px):x + px + 1].max())
            cut = min(level, FIT_PEAK * peak)      # then cut relative to the anchor's own peak
        out.append(blob(((sim >= cut) & inside).cpu(), (x, y), px))
    return torch.stack(out)


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(K, H, W) non-empty bool masks -> (K, 4) tight boxes (x0, y0, x1, y1), x1/y1 exclusive."""
    out = []
    for m in masks:
        rows, cols = torch.nonzero(m.any(1))[:, 0], torch.nonzero(m.any(0))[:, 0]
        out.append([int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1])
    return torch.tensor(out, dtype=torch.long).view(-1, 4)


def fitted_boxes(feats: torch.Tensor, anchors_xy: torch.Tensor, level: float, H: int,
                 W: int, content=None, image: torch.Tensor | None = None,
                 snap: float = 0.0, reach: float = 0.0) -> torch.Tensor:
    """(d, h, w) features and (K, 2) anchor pixels -> (K, 4) boxes B_a: the tight boxes of
    `fitted_blobs` (same arguments)."""
    return mask_boxes(fitted_blobs(feats, anchors_xy, level, H, W, content, image, snap, reach))


def propose(anchors_xy: torch.Tensor, feats: torch.Tensor, cfg, H: int, W: int,
            content=None, image: torch.Tensor | None = None,
            blob_boxes: torch.Tensor | None = None) -> torch.Tensor:
    """(K, 2) anchors and (1, d, h, w) DINO features -> the (K, M, 4) proposals cfg.proposals asks
    for: "squares" (make_proposals of cfg.box_sides()) or "fitted" (the blob boxes, scaled),
    inside the picture (the image, or `content`); image (1, 3, H, W): the canvas, for
    cfg.fit_snap; blob_boxes (K, 4): the anchors' blob boxes when already fitted (caption
    anchors), scaled instead of fitted again."""
    if cfg.proposals == "squares":
        return make_proposals(anchors_xy, cfg.box_sides(), H, W, content)
    if cfg.proposals == "fitted":
        X0, Y0, X1, Y1 = content or (0, 0, W, H)
        b = blob_boxes if blob_boxes is not None else fitted_boxes(
            feats[0], anchors_xy, cfg.fit_level, H, W, content,
            None if image is None else image[0], cfg.fit_snap, cfg.fit_reach)
        short = min(X1 - X0, Y1 - Y0)        # box sides in [box_min, box_max] x the short side:
        return scale_boxes(b, cfg.fit_factors(), H, W, cfg.box_min * short, content,  # a blob
                           max_side=cfg.box_max * short)   # over the background is no region
    if cfg.proposals == "ladder":
        from lrlib.additions.proposals_ladder import ladder_proposals
        return ladder_proposals(anchors_xy, feats, cfg, H, W, content, image, blob_boxes)
    from lrlib.errors import LRError
    raise LRError(f"proposals={cfg.proposals!r}; use 'squares' (paper), 'fitted' or 'ladder' "
                  "(lrlib).")
