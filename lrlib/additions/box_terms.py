"""Geometric loss terms of a box proposal, from the DINO blobs lrlib already computes.

The CLIP losses (L_clip, L_dir) and the structure loss (L_str) do not see the two ways a box
fails on the toy benchmark: a box too small leaves part of the old object (it is still there
after the edit), a box too large repaints a neighbour. Both are read from the anchors' DINO blobs
(lrlib.additions.fitted.fitted_blobs: the connected region of pixels whose DINO feature is like
the anchor's) and the other objects' blobs (the caption-anchor pool's regions,
lrlib.additions.grounding.cover_pool, the background and specks left out):

    L_cover(k, j) = |R_k \\ m_kj| / |R_k|                 share of anchor k's blob R_k outside
                                                         box j's mask m_kj (0: the box holds it);
                                                         R_k grown by cover_margin patch cells
                                                         first (a box flush with the blob can
                                                         still leave the object's rim)
    L_spill(k, j) = max_o |(O_o \\ R_k) & m_kj| / |O_o \\ R_k|
                                                         the largest share of another object O_o
                                                         (what of it is not R_k) inside the box
                                                         (0: no neighbour is touched)

Both are (K, M), in [0, 1], and cost one pass over the masks; a blob or object with no pixels
counts 0. An object that lies mostly inside R_k (its rest under `min_px` pixels, or under half of
it) is the anchor's own object seen twice, not a neighbour, and is left out of L_spill.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def grow(blobs: torch.Tensor, px: int, content=None) -> torch.Tensor:
    """(K, H, W) bool blobs grown by px pixels (a (2 px + 1)^2 square), kept inside the picture
    (`content` (x0, y0, x1, y1), or the whole image)."""
    if px <= 0:
        return blobs
    out = F.max_pool2d(blobs[:, None].float(), 2 * px + 1, stride=1, padding=px)[:, 0] > 0
    if content is not None:
        x0, y0, x1, y1 = content
        inside = torch.zeros_like(out[0])
        inside[y0:y1, x0:x1] = True
        out &= inside
    return out


def cover_term(blobs: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """L_cover (K, M): the share of anchor k's blob (K, H, W) bool outside box j's mask
    (K, M, 1, H, W) (0: the box holds the whole blob; 1: none of it; 0 for an empty blob)."""
    b = blobs[:, None].float().to(masks.device)                               # (K, 1, H, W)
    outside = (b * (masks[:, :, 0].float() <= 0)).flatten(2).sum(-1)
    return (outside / b.flatten(2).sum(-1).clamp(min=1)).cpu()


def neighbours(blobs: torch.Tensor, others: torch.Tensor, min_px: int = 4) -> torch.Tensor:
    """(K, H, W) anchor blobs and (P, H, W) object blobs -> (K, P, H, W) bool: object p's pixels
    outside anchor k's blob, emptied when what is left is under min_px pixels or under half the
    object (the anchor's own object, not a neighbour)."""
    o = others[None].bool() & ~blobs[:, None].bool()                          # (K, P, H, W)
    left = o.flatten(2).sum(-1)                                              # (K, P)
    whole = others.bool().flatten(1).sum(-1)[None].clamp(min=1)             # (1, P)
    keep = (left >= min_px) & (left * 2 >= whole)
    return o & keep[..., None, None]


def spill_term(blobs: torch.Tensor, others: torch.Tensor, masks: torch.Tensor,
               min_px: int = 4) -> torch.Tensor:
    """L_spill (K, M): the largest share of any other object (`neighbours` of the (K, H, W)
    anchor blobs among the (P, H, W) object blobs) inside box j's mask (K, M, 1, H, W); 0 when
    no neighbour is touched or there is none."""
    K, M = masks.shape[:2]
    if others is None or len(others) == 0:
        return torch.zeros(K, M)
    nb = neighbours(blobs.cpu(), others.cpu(), min_px).float()               # (K, P, H, W)
    m = (masks[:, :, 0].float().cpu() > 0).float()                           # (K, M, H, W)
    inside = torch.einsum("kphw,kmhw->kmp", nb, m)                           # (K, M, P)
    share = inside / nb.flatten(2).sum(-1).clamp(min=1)[:, None]            # (K, M, P)
    return share.amax(-1) if share.shape[-1] else torch.zeros(K, M)


def object_blobs(attn: torch.Tensor, feats: torch.Tensor, x: torch.Tensor, content, cfg,
                 regions: torch.Tensor | None = None) -> torch.Tensor:
    """The picture's object blobs (P, S, S) bool: the caption-anchor pool's regions
    (`regions` when prepare already found them, else lrlib.additions.grounding.cover_pool on the
    (h, w) mean [CLS] attention, the (1, d, h, w) DINO features and the (1, 3, S, S) canvas), the
    background (over cfg.max_blob of the picture) and specks (under a quarter of a patch cell)
    left out."""
    from lrlib.additions.grounding import cover_pool, is_background
    S = x.shape[-1]
    h, w = feats.shape[-2:]
    blobs = regions if regions is not None else cover_pool(
        attn, feats, x, content, cfg.replace(anchor_pool=max(cfg.anchor_pool, cfg.K)))[1]
    speck = blobs.flatten(1).sum(1) < (S / h) * (S / w) / 4
    return blobs[~(speck | is_background(blobs, cfg.max_blob, content))]


def anchor_blobs(p, cfg) -> torch.Tensor:
    """The anchors' DINO blobs (K, S, S) bool of a prepared edit p (lrlib.pipeline.Prepared),
    fitted as "fitted" proposals fit them (cfg.fit_level, fit_snap, fit_reach), from p.feats."""
    from lrlib.additions.fitted import fitted_blobs
    S = p.x.shape[-1]
    return fitted_blobs(p.feats[0], p.anchors, cfg.fit_level, S, S, p.content, p.x[0],
                        cfg.fit_snap, cfg.fit_reach)


def geometry(p, cfg, spill: bool = True) -> dict[str, torch.Tensor]:
    """{"L_cover", "L_spill"} (K, M) each for a prepared edit p (lrlib.pipeline.Prepared): the
    anchors' blobs (`anchor_blobs`; grown by cfg.cover_margin patch cells for L_cover), the
    objects of `object_blobs`, p's masks. spill=False: L_spill is zeros (not computed)."""
    S = p.x.shape[-1]
    blobs = anchor_blobs(p, cfg)
    margin = round(cfg.cover_margin * S / p.feats.shape[-2])            # patch cells -> px
    out = {"L_cover": cover_term(grow(blobs, margin, p.content), p.masks)}
    if spill:
        objs = object_blobs(p.attn.float().mean(0), p.feats, p.x, p.content, cfg, p.regions)
        out["L_spill"] = spill_term(blobs, objs, p.masks)
    else:
        out["L_spill"] = torch.zeros_like(out["L_cover"])
    return out
