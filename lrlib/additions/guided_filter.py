"""Edge snapping for the fitted blobs: the guided filter (He, Sun & Tang, ECCV 2010).

Snapping to the image's edges (fit_snap > 0). sim_a is known only per patch (8-18 px); its
bilinear upsampling blurs the object's outline by about a patch, so B_a misses the object by
up to half a patch on each side (toy DINO: IoU 0.69 with the object's box at the best level).
The guided filter (He, Sun & Tang, ECCV 2010) repaints a coarse map q with the edges of a
guide image I (here the picture, RGB): inside every window w_k of radius r it fits q linearly
to the colours,

    q_hat(p) = a_k . I(p) + b_k,     a_k = (Sigma_k + eps 1)^-1 cov_k(I, q),   b_k = mean_k(q) - a_k . mean_k(I)

and averages the (a_k, b_k) of the windows covering p. Where the colours change (an object's
edge), q_hat changes with them; where they are flat, q_hat is q smoothed. The blob is then
thresholded on q_hat (tuning tasks, radius 1.5 cells, eps 1e-3, level 0.7: IoU 0.93).

Cost at the real size (512 px canvas, 28 x 28 grid, d = 768, r = 27 px): four identities
keep every step linear in the pixels:

  * Window means from an integral image: with C(i) = x(0) + ... + x(i - 1) along a row,
    the sum over the window [i, i + 2r] is C(i + 2r + 1) - C(i), whatever r (then the same
    along the columns); a sliding window costs (2r + 1)^2 = 3025 adds per pixel.
  * The guide's statistics (mean_k(I), (Sigma_k + eps 1)^-1) depend on the image and r only:
    `guide_stats` computes them once per image for every map filtered with it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


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
