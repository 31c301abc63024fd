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


def content_cells(h: int, w: int, S: int, content) -> torch.Tensor:
    """(h, w) bool: the patch cells of an S x S canvas whose centre lies in the content
    rectangle (x0, y0, x1, y1), i.e. on the picture, not on the letterbox padding."""
    x0, y0, x1, y1 = content
    cx, cy = (torch.arange(w) + 0.5) * S / w, (torch.arange(h) + 0.5) * S / h
    return ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]


def content_anchors(A: torch.Tensor, content, S: int, K: int, spacing: int,
                    refine: bool) -> torch.Tensor:
    """K anchors (K, 2) pixel (x, y) from the (h, w) attention map A of the S x S canvas, using
    only the cells whose centre lies in the content rectangle (the padding is never an anchor)."""
    h, w = A.shape
    inside = content_cells(h, w, S, content)
    cells = top_k_anchors(A.masked_fill(~inside, -math.inf), K, spacing)
    if not inside[cells[:, 0], cells[:, 1]].all():
        raise LRError(f"only {int(inside.sum())} of the {h}x{w} patch cells lie on the picture "
                      f"(the rest of the square canvas is padding), too few for K={K} anchors "
                      f"with anchor_spacing={spacing}: lower K or anchor_spacing, or crop the "
                      "image closer to square.")
    if refine:
        return refine_anchors(A.masked_fill(~inside, 0.0), cells, S, S)   # padding weighs 0
    return cells_to_pixels(cells, (h, w), S, S)
