"""Ladder proposals (proposals="ladder"): M genuinely different boxes around the anchor's DINO blob.

"fitted" proposals scale the blob's box B_a by M factors in fit_min..fit_max (1.1-1.5): every
one of them holds the object with a thin margin, so on the toy benchmark a random pick among them
is as good as the learned one. The ladder keeps the same blob box B_a (the same fit, the same
edge snapping) and spreads the M boxes over what a region can mean:

    rung j:  scale s_j, aspect a_j   ->   width  = s_j * sqrt(a_j) * w(B_a)
                                           height = s_j / sqrt(a_j) * h(B_a)
             centred on B_a's centre, clipped to the picture, sides within [min_side, max_side]

    s_j geometric from `lo` (a tight part of the object: the old object's rim stays) to `hi`
    (the whole object with its context: the box may reach a neighbour), a_j cycling through
    `aspects` (1: the blob's own shape; a_j > 1 wider, < 1 taller).

so that some rungs are right and some are wrong, and the choice among them is worth learning.
`lo` and `hi` are the config's `ladder_lo` and `ladder_hi` (0.85 and 1.7: on the toy benchmark's
tuning set the learned choice among them beats a random one by 23 points, lrlib/bench/LEARNING.md).
`ASPECTS` holds the aspects `propose` cycles (the blob's own shape); `ladder_aspects(...)` swaps
them for a block (the learning benchmark compared aspect ladders on the tuning set with it).
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from lrlib.additions.fitted import fitted_boxes

#: the aspects `propose` cycles over the rungs (1: the blob's own shape)
ASPECTS = [1.0]


@contextmanager
def ladder_aspects(*aspects: float):
    """Cycle these aspects over the ladder's rungs inside the block; the old ones are restored."""
    if not aspects or min(aspects) <= 0:
        raise ValueError(f"ladder aspects must be positive numbers, got {aspects}")
    old = list(ASPECTS)
    ASPECTS[:] = aspects
    try:
        yield tuple(ASPECTS)
    finally:
        ASPECTS[:] = old


def rungs(M: int, lo: float, hi: float, aspects=(1.0,)) -> list[tuple[float, float]]:
    """The M (x factor, y factor) of the ladder: scale s_j = lo (hi / lo)^(j / (M - 1)), aspect
    a_j = aspects[j % len(aspects)]; factors (s_j sqrt(a_j), s_j / sqrt(a_j))."""
    if not 0 < lo <= hi:
        raise ValueError(f"ladder scales need 0 < lo <= hi, got {lo}, {hi}")
    out = []
    for j in range(M):
        s = lo if M == 1 else lo * (hi / lo) ** (j / (M - 1))
        a = aspects[j % len(aspects)]
        out.append((s * math.sqrt(a), s / math.sqrt(a)))
    return out


def ladder_boxes(boxes: torch.Tensor, factors: list[tuple[float, float]], H: int, W: int,
                 min_side: float = 1.0, content=None, max_side: float | None = None) -> torch.Tensor:
    """(K, 4) boxes -> (K, M, 4) integer boxes: each scaled about its centre by each (x, y) factor
    pair, sides clamped to [min_side, max_side] px, clipped to the picture (the H x W image or
    `content` (x0, y0, x1, y1)), at least 1 px a side."""
    X0, Y0, X1, Y1 = content or (0, 0, W, H)
    b = boxes.float()[:, None]                                           # (K, 1, 4)
    f = torch.tensor(factors, dtype=torch.float32)[None]                 # (1, M, 2)
    c = (b[..., :2] + b[..., 2:]) / 2
    half = ((b[..., 2:] - b[..., :2]) * f).clamp(min=min_side, max=max_side) / 2
    lo = (c - half).round()
    hi = torch.maximum((c + half).round(), lo + 1)
    lo0 = torch.tensor([X0, Y0], dtype=torch.float32)
    lim = torch.tensor([X1, Y1], dtype=torch.float32)
    lo = torch.minimum(torch.maximum(lo, lo0), lim - 1)
    hi = torch.maximum(torch.minimum(hi, lim), lo + 1)
    return torch.cat([lo, hi], -1).long()


def ladder_proposals(anchors_xy: torch.Tensor, feats: torch.Tensor, cfg, H: int, W: int,
                     content=None, image: torch.Tensor | None = None,
                     blob_boxes: torch.Tensor | None = None) -> torch.Tensor:
    """proposals="ladder" (`lrlib.additions.proposals.propose`): the anchors' blob boxes (given, or fitted as
    "fitted" fits them: cfg.fit_level, fit_snap, fit_reach) -> (K, cfg.M, 4) ladder boxes at
    scales cfg.ladder_lo..cfg.ladder_hi, sides
    in [box_min, box_max] x the picture's shorter side."""
    X0, Y0, X1, Y1 = content or (0, 0, W, H)
    b = blob_boxes if blob_boxes is not None else fitted_boxes(
        feats[0], anchors_xy, cfg.fit_level, H, W, content,
        None if image is None else image[0], cfg.fit_snap, cfg.fit_reach)
    short = min(X1 - X0, Y1 - Y0)
    return ladder_boxes(b, rungs(cfg.M, cfg.ladder_lo, cfg.ladder_hi, tuple(ASPECTS)),
                        H, W, cfg.box_min * short, content, cfg.box_max * short)
