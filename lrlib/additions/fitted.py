"""lrlib's box proposals: fitted to the anchor's DINO blob (proposals="fitted").

lrlib's proposals (proposals="fitted"): boxes shaped like the object, not squares. Around
anchor a (pixel), the DINO features say which pixels belong with it:

    sim_a(p) = cos(F(a), F(p))        F bilinearly upsampled from the patch grid to pixels
    R_a      = the connected blob of {p : sim_a(p) >= level} that holds a
    B_a      = the tight box of R_a;   proposals: B_a scaled about its centre by each factor

so the M proposals are rectangles of the object's size and position (and a few larger ones,
which repaint a clean margin around it).

Cost at the real size (512 px canvas, 28 x 28 grid, d = 768): every step is linear in the pixels:

  * Upsampling is linear: up(F)(p) = sum_c t_c(p) F_c over the 4 bilinear taps c of pixel p,
    so the numerator of sim_a needs only the patch grid,

        F(a) . up(F)(p) = up(F(a) . F)(p)              ((h, w) map, then upsampled)
        |up(F)(p)|^2    = sum_{c, c'} t_c(p) t_c'(p) G_cc',   G = F^T F   (hw x hw Gram)

    and the (d, H, W) upsampled features (805 MB at 512 px for d = 768) are never built.
  * R_a is a connected component of the thresholded map: one labelling pass over the pixels
    (scipy.ndimage.label, 4-neighbourhood) instead of growing the blob one ring at a time.

Edges: with fit_snap > 0 the map is snapped to the image's edges first
(`lrlib.additions.guided_filter`). `lrlib.additions.proposals.propose` picks the family.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import masks_to_boxes

from lrlib.additions.guided_filter import Guide, guide_stats, guided_filter, snap_radius


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
    if len(masks) == 0:
        return torch.zeros(0, 4, dtype=torch.long)
    inclusive = masks_to_boxes(masks.cpu()).long()             # (K, 4), x1/y1 the last pixel
    return inclusive + torch.tensor([0, 0, 1, 1])


def fitted_boxes(feats: torch.Tensor, anchors_xy: torch.Tensor, level: float, H: int,
                 W: int, content=None, image: torch.Tensor | None = None,
                 snap: float = 0.0, reach: float = 0.0) -> torch.Tensor:
    """(d, h, w) features and (K, 2) anchor pixels -> (K, 4) boxes B_a: the tight boxes of
    `fitted_blobs` (same arguments)."""
    return mask_boxes(fitted_blobs(feats, anchors_xy, level, H, W, content, image, snap, reach))


def fitted_proposals(anchors_xy: torch.Tensor, feats: torch.Tensor, cfg, H: int, W: int,
                     content=None, image: torch.Tensor | None = None,
                     blob_boxes: torch.Tensor | None = None) -> torch.Tensor:
    """proposals="fitted": the anchors' (K, 4) blob boxes (given, or fitted here) scaled by
    cfg.fit_factors() -> (K, M, 4), sides between box_min and box_max of the picture's short side
    (a blob over the background is no region)."""
    X0, Y0, X1, Y1 = content or (0, 0, W, H)
    b = blob_boxes if blob_boxes is not None else fitted_boxes(
        feats[0], anchors_xy, cfg.fit_level, H, W, content,
        None if image is None else image[0], cfg.fit_snap, cfg.fit_reach)
    short = min(X1 - X0, Y1 - Y0)
    return scale_boxes(b, cfg.fit_factors(), H, W, cfg.box_min * short, content,
                       max_side=cfg.box_max * short)
