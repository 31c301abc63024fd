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

    f (d x r x r) -> 1x1 conv -> ReLU -> 1x1 conv -> ReLU -> flatten ++ g -> Linear -> ReLU
    -> Linear -> pi. The same weights score every box of every anchor. g is the box's
    `geom_dim` geometric features: [w, h] (box_geometry), or more when the caller appends some
    (lrlib.train.rgn_inputs: the box's L_cover and L_spill).
    """

    def __init__(self, d: int, roi_size: int, channels: int = 64, hidden: int = 256,
                 geom_dim: int = 2):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(d, channels, 1), nn.ReLU(),
                                   nn.Conv2d(channels, channels, 1), nn.ReLU())
        self.mlp = nn.Sequential(nn.Linear(channels * roi_size * roi_size + geom_dim, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 1))

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
