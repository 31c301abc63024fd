"""Stage 1: DINO self-attention -> K anchor points.

A ViT trained with DINO attends from its [CLS] token to the salient object without any labels.
For the last block with heads h = 1..H, queries q and keys k (d_h per head):

    A_h = softmax(q_cls,h . k_h^T / sqrt(d_h))          (one row: [CLS] -> every patch)
    A   = 1/H * sum_h A_h                                  (averaged over heads, reshaped h x w)

The K anchors are the K highest patches of A, greedily, each at least `spacing` patches
(Chebyshev distance) from those already taken, so that K anchors are not K neighbours of one
peak. Anchors are returned in pixel coordinates (x, y) of the working image: the centre of the
patch. The same forward pass also yields the patch features F (d x h x w) that the RGN pools, and
the last block's keys used by the structure loss (Splicing ViT Features).

The paper's failure mode is visible here: when the attention peak is on the background, so is
the anchor, and the edit lands there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lrlib.errors import LRError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class DinoOutput:
    attn: torch.Tensor      # (B, H, h, w)  [CLS] -> patch attention per head
    feats: torch.Tensor     # (B, d, h, w)  final patch features (after the last norm)
    keys: torch.Tensor      # (B, N, d)     last block keys of all tokens, heads concatenated

    @property
    def attn_mean(self) -> torch.Tensor:
        """(B, h, w): the map the anchors are picked from."""
        return self.attn.mean(1)


class Dino(torch.nn.Module):
    """A frozen timm ViT that returns attention, features and keys of one forward pass.

    Input: images (B, 3, H, W) in [0, 1], any size: resized to `input_size` (default: the
    model's own) and ImageNet-normalised here (the official code forgot the normalisation).

    **Grid.** The anchors and the RGN's features live on the patch grid, input_size / patch cells
    per side. DINO ViT-B/16 at its own 224 px gives 14 x 14: on a 512 px image a cell is ~37 px
    and the smallest box (0.15 x 512 = 77 px) spans two cells. `input_size=448` gives 28 x 28
    (18 px cells) at the same token count as ViT-B/8 at 224 (the official code: ViT-B/8 at 256,
    32 x 32); timm resamples the position embeddings to the new grid once (`set_input_size`,
    bicubic), as DINO's own attention visualisations do at higher resolution.
    """

    def __init__(self, vit: torch.nn.Module, input_size: int | tuple[int, int] | None = None):
        super().__init__()
        if input_size is not None:
            size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
            if size != tuple(vit.patch_embed.img_size):
                vit.set_input_size(img_size=size)     # position embeddings resampled
        self.vit = vit.eval().requires_grad_(False)
        cfg = getattr(vit, "pretrained_cfg", {}) or {}
        self.register_buffer("mean", torch.tensor(cfg.get("mean", IMAGENET_MEAN)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", IMAGENET_STD)).view(1, 3, 1, 1), persistent=False)
        self.input_size = tuple(vit.patch_embed.img_size)
        self.patch = vit.patch_embed.patch_size[0]
        self.grid = (self.input_size[0] // self.patch, self.input_size[1] // self.patch)
        self.n_prefix = vit.num_prefix_tokens

    def forward(self, x: torch.Tensor) -> DinoOutput:
        if x.shape[-2:] != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False,
                              antialias=True)
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        attn_mod = self.vit.blocks[-1].attn
        seen = {}
        hook = attn_mod.register_forward_pre_hook(lambda m, args: seen.__setitem__("x", args[0]))
        try:
            tokens = self.vit.forward_features(x)
        finally:
            hook.remove()
        q, k = _queries_keys(attn_mod, seen["x"])               # (B, H, N, dh)
        A = ((q[:, :, :1] * attn_mod.scale) @ k.transpose(-2, -1)).softmax(-1)  # (B, H, 1, N)
        h, w = self.grid
        attn = A[:, :, 0, self.n_prefix:].reshape(x.shape[0], -1, h, w)
        patches = tokens[:, self.n_prefix:]
        feats = patches.transpose(1, 2).reshape(x.shape[0], -1, h, w)
        keys = k.permute(0, 2, 1, 3).flatten(2)                 # (B, N, H*dh)
        return DinoOutput(attn=attn, feats=feats, keys=keys)


def _queries_keys(attn_mod, x):
    """Recompute q, k of a timm `Attention` from its input, exactly as its forward does."""
    B, N, _ = x.shape
    H = attn_mod.num_heads
    qkv = attn_mod.qkv(x).reshape(B, N, 3, H, -1).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)
    return attn_mod.q_norm(q), attn_mod.k_norm(k)


def top_k_anchors(A: torch.Tensor, K: int, spacing: int = 1) -> torch.Tensor:
    """Greedy top-K of a (h, w) map with a minimum Chebyshev distance `spacing` (in cells).

    Returns (K, 2) long tensor of (row, col), in decreasing order of A. spacing <= 1 allows any
    two distinct cells. Raises LRError when fewer than K cells can be spaced that far apart.
    """
    if A.ndim != 2:
        raise LRError(f"top_k_anchors takes one (h, w) map, got shape {tuple(A.shape)}.")
    h, w = A.shape
    order = torch.argsort(A.flatten(), descending=True, stable=True)
    picked: list[tuple[int, int]] = []
    for idx in order.tolist():
        r, c = divmod(idx, w)
        if all(max(abs(r - pr), abs(c - pc)) >= max(spacing, 1) for pr, pc in picked):
            picked.append((r, c))
            if len(picked) == K:
                break
    if len(picked) < K:
        raise LRError(f"only {len(picked)} anchors fit on the {h}x{w} patch grid with spacing "
                      f"{spacing}; lower K (asked {K}) or anchor_spacing.")
    return torch.tensor(picked, dtype=torch.long)


def cells_to_pixels(cells: torch.Tensor, grid: tuple[int, int], H: int, W: int) -> torch.Tensor:
    """(K, 2) (row, col) patch cells -> (K, 2) float (x, y) pixel centres in an H x W image."""
    h, w = grid
    x = (cells[:, 1].float() + 0.5) * (W / w)
    y = (cells[:, 0].float() + 0.5) * (H / h)
    return torch.stack([x, y], 1)


def refine_anchors(A: torch.Tensor, cells: torch.Tensor, H: int, W: int,
                   radius: int = 1) -> torch.Tensor:
    """(K, 2) (row, col) peak cells of the (h, w) map A -> (K, 2) float (x, y) pixels, each the
    attention-weighted centroid of the (2r+1) x (2r+1) cells around its peak:

        a_k = sum_c w_c p_c / sum_c w_c,   w_c = A_c - min_window A,   p_c: cell centre in pixels

    A patch is 8-16 px, so the peak cell's centre can sit half a patch away from the object's
    centre; the local centroid moves the anchor (and the boxes centred on it) towards the object
    (the toy world: median distance to the nearest object's centre 4.5 px -> 1.9 px).
    A flat window keeps the cell centre."""
    h, w = A.shape
    out = []
    for r0, c0 in cells.tolist():
        rs, cs = slice(max(0, r0 - radius), min(h, r0 + radius + 1)), \
            slice(max(0, c0 - radius), min(w, c0 + radius + 1))
        win = A[rs, cs].float()
        wgt = win - win.min()
        if float(wgt.sum()) <= 0:
            wgt = torch.zeros_like(win)
            wgt[r0 - rs.start, c0 - cs.start] = 1.0
        wgt = wgt / wgt.sum()
        yy, xx = torch.meshgrid(torch.arange(rs.start, rs.stop).float(),
                                torch.arange(cs.start, cs.stop).float(), indexing="ij")
        out.append([float(((xx + 0.5) * wgt).sum()) * W / w, float(((yy + 0.5) * wgt).sum()) * H / h])
    return torch.tensor(out, dtype=torch.float32)


def upsample_map(A: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """A (h, w) map -> (H, W), bilinear, for display over the image."""
    return F.interpolate(A[None, None].float(), size=(H, W), mode="bilinear",
                         align_corners=False)[0, 0]


# ----------------------------------------------------------------------------- caption-aware
# lrlib's anchors (anchor_pool > K): the paper takes the K attention peaks, blind to the caption,
# so in a scene of several objects the named one may get no anchor at all. Instead take a pool
# of P peaks, fit a blob R_a and its box B_a around each (regions.fitted_blobs), and keep the K
# whose view matches the caption c best, one per object:
#
#     s_a = cos(E_I(view_a(x)), E_T(c))
#
# in decreasing s_a, skipping an anchor whose box overlaps a kept one (IoU > 0.5). The view
# (anchor_view): "blob" (default) keeps only R_a (plus a rim of a quarter patch) and fills the
# rest with the image's median colour, so a background anchor, whose *box* often holds the
# object, shows only background; "keep" keeps the box grown by `context`; "crop" crops it.
# When the caption holds a spatial relation, s_a becomes the grounding score g_a of
# lrlib.relations; the kept anchors' g_a are returned for the ranking's S_cap term.

def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of (..., 4) boxes a and b (broadcast)."""
    a, b = a.float(), b.float()
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])
    inter = iw * ih
    return inter / (area(a) + area(b) - inter).clamp(min=1e-9)


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
    from lrlib.editors.base import crop_resize, crop_windows
    from lrlib.regions import boxes_to_masks, scale_boxes
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


def content_cells(h: int, w: int, S: int, content) -> torch.Tensor:
    """(h, w) bool: the patch cells of an S x S canvas whose centre lies in the content
    rectangle (x0, y0, x1, y1), i.e. on the picture, not on the letterbox padding."""
    x0, y0, x1, y1 = content
    cx, cy = (torch.arange(w) + 0.5) * S / w, (torch.arange(h) + 0.5) * S / h
    return ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]


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
    from lrlib.regions import fitted_blobs, guide_stats, pixel_norms, snap_radius
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
    rectangle), their (K,) grounding scores g (lrlib.relations: s_a, plus the relation term
    when the caption says where its object is and cfg.relation_weight > 0) and their (K, 4)
    blob boxes B_a (what "fitted" proposals scale: no second blob fit)."""
    from lrlib.regions import fitted_blobs, mask_boxes
    from lrlib.relations import grounding, parse_relation
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
        if all(float(box_iou(boxes[i], boxes[j])) <= 0.5 for j in kept):
            kept.append(i)
        else:
            rest.append(i)
    order = (kept + rest)[:cfg.K]
    return pool_xy[order], s[order], boxes[order]
