"""lrlib's caption-aware anchors (anchor_pool > K): which K anchors the caption is about.

lrlib's anchors (anchor_pool > K): the paper takes the K attention peaks, blind to the caption,
so in a scene of several objects the named one may get no anchor at all. Instead take a pool
of P peaks, fit a blob R_a and its box B_a around each (lrlib.additions.fitted), and keep the K
whose view matches the caption c best, one per object:

    s_a = cos(E_I(view_a(x)), E_T(c))

in decreasing s_a, skipping an anchor whose box overlaps a kept one (IoU > 0.5). The view
(anchor_view): "blob" (default) keeps only R_a (plus a rim of a quarter patch) and fills the
rest with the image's median colour, so a background anchor, whose *box* often holds the
object, shows only background; "keep" keeps the box grown by `context`; "crop" crops it.
When the caption holds a spatial relation, s_a becomes the grounding score g_a of
lrlib.additions.relations; the kept anchors' g_a are returned for the ranking's S_cap term.
"""
from __future__ import annotations

import math

import torch

from torchvision.ops import box_iou

from lrlib.additions.fitted import fitted_blobs, mask_boxes, pixel_norms, scale_boxes
from lrlib.additions.guided_filter import guide_stats, snap_radius
from lrlib.additions.relations import grounding, parse_relation
from lrlib.anchors import cells_to_pixels, content_anchors, content_cells, refine_anchors
from lrlib.editors.base import crop_resize, crop_windows
from lrlib.errors import LRError
from lrlib.regions import boxes_to_masks


def crop_scores(clip, x: torch.Tensor, boxes: torch.Tensor, E_T: torch.Tensor,
                context: float, mode: str = "crop", blobs: torch.Tensor | None = None,
                rim: int = 0) -> torch.Tensor:
    """(1, 3, H, W) image, (P, 4) boxes, (E,) or (E, T) texts -> (P,) or (P, T) cos of each view
    with the text(s).

    mode "crop": a square of `context` times the box's longer side (kept inside the image),
    resized to CLIP's input; "keep": the whole image with everything outside the box grown by
    `context` replaced by the image's median colour (the object at its own size and place);
    "blob": the same, but keeping only the blob (`blobs`, (P, H, W) bool) grown by `rim` px
    (its anti-aliased edge): a background anchor's box may hold the object, its blob does not."""
    H, W = x.shape[-2:]
    if mode in ("keep", "blob"):
        if mode == "blob":
            m = torch.stack([_dilate(b, rim) for b in blobs])[:, None].float().to(x.device)
        else:
            m = boxes_to_masks(scale_boxes(boxes, [context], H, W)[:, 0], H, W)  # (P, 1, H, W)
        fill = x.flatten(2).median(-1).values[..., None, None]
        views = m * x + (1 - m) * fill
    else:
        wins = crop_windows(boxes_to_masks(boxes, H, W), context)
        views = crop_resize(x.expand(len(wins), -1, -1, -1), wins, clip.image_size[0])
    with torch.no_grad():
        return clip.encode_image(views) @ E_T.to(views)


def _dilate(m: torch.Tensor, r: int) -> torch.Tensor:
    """(H, W) bool mask grown by r pixels (a (2r+1)^2 square): the union of its shifts by
    -r..r columns, then of that by -r..r rows (a square is a row times a column; 4r boolean
    passes instead of a (2r+1)^2 window per pixel)."""
    if r <= 0:
        return m
    rows = m.clone()
    for s in range(1, r + 1):
        rows[:, s:] |= m[:, :-s]
        rows[:, :-s] |= m[:, s:]
    out = rows.clone()
    for s in range(1, r + 1):
        out[s:] |= rows[:-s]
        out[:-s] |= rows[s:]
    return out


def is_background(blobs: torch.Tensor, share: float | None, content) -> torch.Tensor:
    """(P, H, W) bool blobs -> (P,) bool: the blob covers more than `share` of the content
    rectangle (the background, for lrlib's max_blob); all False when share is None."""
    if share is None:
        return torch.zeros(len(blobs), dtype=torch.bool)
    x0, y0, x1, y1 = content
    return blobs.flatten(1).sum(1) > share * (x1 - x0) * (y1 - y0)


# The pool itself (anchor_cover): P attention peaks spaced on the patch grid tend to land on the
# same big object or the background again and again (tuning set, relation tasks: of the 5 in 40
# that kept no anchor on the named object, one pool had three anchors on one circle and two
# more on the background; another's only peaks near the object lay in its gaps). So the pool covers
# regions instead: walk the cells in decreasing attention, and take a cell only if its anchor does
# not lie in a region already taken,
#
#     a_{n+1} = the highest-attention cell with a not in R_1 u ... u R_n   (and spaced as before)
#
# so one peak speaks for the whole background and the rest go to objects not yet covered.
#
# A blob is an object only if it is neither the background nor a speck: g_a - 1 (ranked after every
# object blob, and pruned whenever one exists) when R_a covers more than cfg.max_blob of the picture
# or less than a quarter of a patch cell.

def cover_pool(A: torch.Tensor, feats: torch.Tensor, x: torch.Tensor, content, cfg
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(h, w) attention, (1, d, h, w) features, (1, 3, S, S) canvas -> up to cfg.anchor_pool
    anchors (P, 2), at least cfg.K when the picture has that many cells, and their blobs
    (P, S, S) (the region-covering pool above)."""
    h, w = A.shape
    S = x.shape[-1]
    feats = feats[0]                                    # (d, h, w), on the models' device
    per_image = dict(norms=pixel_norms(feats, S, S),    # (S, S): once for every candidate
                     guide=guide_stats(x[0].to(feats.device), snap_radius(cfg.fit_snap, S, h))
                     if cfg.fit_snap > 0 else None)
    x0, y0, x1, y1 = content
    inside = content_cells(h, w, S, content)
    order = torch.argsort(A.masked_fill(~inside, -math.inf).flatten(), descending=True, stable=True)
    covered = torch.zeros(S, S, dtype=torch.bool)
    cells, pts, blobs, skipped = [], [], [], []
    gap = max(cfg.anchor_spacing, 1)
    for idx in order.tolist():
        r, c = divmod(idx, w)
        if not inside[r, c] or any(max(abs(r - pr), abs(c - pc)) < gap for pr, pc in cells):
            continue
        cell = torch.tensor([[r, c]])
        xy = (refine_anchors(A.masked_fill(~inside, 0.0), cell, S, S) if cfg.anchor_refine
              else cells_to_pixels(cell, (h, w), S, S))[0]
        px, py = min(x1 - 1, max(x0, int(xy[0]))), min(y1 - 1, max(y0, int(xy[1])))
        if covered[py, px]:
            skipped.append((r, c, xy))
            continue
        R = fitted_blobs(feats, xy[None], cfg.fit_level, S, S, content, x[0], cfg.fit_snap,
                         cfg.fit_reach, **per_image)[0]
        cells.append((r, c))
        pts.append(xy)
        blobs.append(R)
        if not is_background(R[None], cfg.max_blob, content)[0]:
            covered |= R                     # the background's blob covers no object's peak
        if len(pts) == cfg.anchor_pool:
            break
    for r, c, xy in skipped:                  # fewer regions than K: fill up with covered peaks
        if len(pts) >= cfg.K:
            break
        if any(max(abs(r - pr), abs(c - pc)) < gap for pr, pc in cells):
            continue
        cells.append((r, c))
        pts.append(xy)
        blobs.append(fitted_blobs(feats, xy[None], cfg.fit_level, S, S, content, x[0],
                                  cfg.fit_snap, cfg.fit_reach, **per_image)[0])
    if len(pts) < cfg.K:
        raise LRError(f"only {len(pts)} anchors fit on the picture's {int(inside.sum())} patch "
                      f"cells with anchor_spacing={cfg.anchor_spacing}, too few for K={cfg.K}: "
                      "lower K or anchor_spacing, or crop the image closer to square.")
    return torch.stack(pts), torch.stack(blobs)


def caption_anchors(pool_xy: torch.Tensor, feats: torch.Tensor, x: torch.Tensor, clip,
                    caption: str, cfg, content=None, blobs: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(P, 2) candidate anchors (attention peaks), (1, d, h, w) features, (1, 3, H, W) image, the
    caption -> (K, 2) pixel anchors (the caption-aware choice above; content: the picture's
    rectangle), their (K,) grounding scores g (lrlib.additions.relations: s_a, plus the relation term
    when the caption says where its object is and cfg.relation_weight > 0) and their (K, 4)
    blob boxes B_a (what "fitted" proposals scale: no second blob fit)."""
    H, W = x.shape[-2:]
    if blobs is None:
        blobs = fitted_blobs(feats[0], pool_xy, cfg.fit_level, H, W, content, x[0],   # one call:
                             cfg.fit_snap, cfg.fit_reach)         # norms and guide once for all P
    boxes = mask_boxes(blobs)
    rim = max(1, round(H / feats.shape[-2] / 4))                      # a quarter of a cell
    parts = parse_relation(caption) if cfg.relation_weight > 0 else None
    texts = [parts[0], parts[2]] if parts else [caption]
    E = clip.encode_text(texts)
    cos = crop_scores(clip, x, boxes.to(x.device), E.T, cfg.anchor_context, cfg.anchor_view,
                      blobs, rim).cpu()                                 # (P, 1 or 2)
    not_obj = torch.zeros(len(boxes))
    if cfg.max_blob is not None:                        # the background or a speck: not an object
        cell = (H / feats.shape[-2]) * (W / feats.shape[-1])
        speck = blobs.flatten(1).sum(1) < cell / 4
        not_obj = (is_background(blobs, cfg.max_blob, content or (0, 0, W, H)) | speck).float()
    centres = (boxes[:, :2] + boxes[:, 2:]).float() / 2
    s = grounding(cos[:, 0], cos[:, 1] - not_obj if parts else None, centres,   # the reference
                  parts and parts[1], cfg.relation_weight) - not_obj           # is an object too
    kept, rest = [], []
    for i in torch.argsort(s, descending=True, stable=True).tolist():
        if not kept or float(box_iou(boxes[i:i + 1], boxes[kept]).max()) <= 0.5:
            kept.append(i)
        else:
            rest.append(i)
    order = (kept + rest)[:cfg.K]
    return pool_xy[order], s[order], boxes[order]


def anchor_pool(A: torch.Tensor, content, S: int, cfg, feats: torch.Tensor | None = None,
                x: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Up to cfg.anchor_pool content anchors (as many as the spacing lets fit, at least K): the
    candidates that `caption_anchors` chooses from.

    cfg.anchor_cover (and feats (1, d, h, w), x given): one anchor per region instead
    (`cover_pool`), returned with its blobs as (pool (P, 2), blobs (P, S, S))."""
    if cfg.anchor_cover and feats is not None and x is not None:
        return cover_pool(A, feats, x, content, cfg)
    for n in range(cfg.anchor_pool, cfg.K, -1):
        try:
            return content_anchors(A, content, S, n, cfg.anchor_spacing, cfg.anchor_refine)
        except LRError:
            continue
    return content_anchors(A, content, S, cfg.K, cfg.anchor_spacing, cfg.anchor_refine)


def grounded_anchors(A: torch.Tensor, feats: torch.Tensor, x: torch.Tensor, clip, caption: str,
                     cfg, content) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                            torch.Tensor | None]:
    """The whole caption-aware choice: (h, w) attention, (1, d, h, w) features, (1, 3, S, S)
    canvas -> (K', 2) anchors, their (K',) grounding scores and (K', 4) blob boxes, K' <= K,
    and the pool's region blobs (P, S, S) bool (cfg.anchor_cover; else None): with
    cfg.prune_margin set, the anchors whose score is more than the margin below the best are
    dropped (no edit is made for an anchor the caption rules out)."""
    pool, blobs = anchor_pool(A, content, x.shape[-1], cfg, feats, x), None
    if isinstance(pool, tuple):                          # anchor_cover: the blobs come along
        pool, blobs = pool
    anchors, ground, blob_boxes = caption_anchors(pool, feats, x, clip, caption, cfg, content, blobs)
    if cfg.prune_margin is not None:
        keep = ground >= ground[0] - cfg.prune_margin            # ground[0] is the highest
        anchors, ground, blob_boxes = anchors[keep], ground[keep], blob_boxes[keep]
    return anchors, ground, blob_boxes, blobs
