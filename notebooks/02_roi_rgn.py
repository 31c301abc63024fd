# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Boxes around anchors, ROI-align and the Region Generation Network
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/02_roi_rgn.ipynb)
#
# **You will learn** how each anchor becomes M candidate regions: the paper's square boxes of
# growing size (cut at the image border) and the boxes built on the object that `lrlib.edit`
# uses by default (`LRConfig.proposals="ladder"`: from a tight part of the object to the object
# with context), what ROI-align reads from DINO's patch features for each box, and
# why the x/y order of a box matters (the official code swaps them); we write the bilinear
# average of ROI-align by hand and check it against lrlib, then look at what the Region
# Generation Network (RGN) sees and what it says before it is trained.
#
# **Needs**: under a CPU-minute in the toy world (the default without a GPU or hub access);
# a GPU with internet for the real DINO ViT-B/16.
#
# | stage | this notebook | lrlib |
# |---|---|---|
# | M boxes per anchor, ROI-align, RGN scores | here | `lrlib.regions`: `make_proposals`, `roi_pool`, `box_geometry`, `RGN` |

# %%
# Set-up, the same cell in every notebook: use lrlib from the repository this notebook sits in
# (installed in editable mode if it is not yet), on Colab clone the repository first, and
# anywhere else stop with one sentence saying what to do. Then silence library warnings and
# loading bars so the outputs show only what the notebook teaches.
import importlib
import pathlib
import subprocess
import sys

REPO_URL = "https://github.com/learnable-regions/lrlib"   # where the README says it is published


def use_lrlib_checkout():
    here = pathlib.Path.cwd().resolve()
    root = next((p for p in (here, *here.parents)
                 if (p / "pyproject.toml").is_file() and (p / "lrlib").is_dir()), None)
    if root is None and "google.colab" in sys.modules:
        root = pathlib.Path("/content/lrlib")
        if not root.exists():
            subprocess.check_call(["git", "clone", "-q", REPO_URL, str(root)])
    if root is None:
        try:
            importlib.import_module("lrlib")
            return
        except ImportError:
            raise SystemExit("lrlib is not installed and this notebook is not inside its "
                             f"repository: clone {REPO_URL}, run `make install` there and "
                             "open the notebook from its notebooks/ folder.") from None
    try:
        found = pathlib.Path(importlib.import_module("lrlib").__file__).resolve()
        if root in found.parents:
            return
    except ImportError:
        pass
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-e", str(root)])
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()


use_lrlib_checkout()
from lrlib.logs import quiet_libraries  # noqa: E402

quiet_libraries()

# %% [markdown]
# ## Which models run
# `world_and_config()` picks real checkpoints on a GPU machine that reaches the Hugging Face
# Hub, and the toy world otherwise (`lrlib.worlds.choose_world`), and returns the branch this
# notebook takes (`WORLD`) with its settings (`cfg`). Pass `"real"`, `"toy"` or `"random"` (or
# set the environment variable `LRLIB_WORLD`) to override. `LRLIB_WORLD=real-random` (CI,
# `make notebooks-real`) runs the real branch with small random-weight models of the real
# classes at CPU sizes: the same code as on a GPU, pictures that mean nothing.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import lrlib
from lrlib.course import world_and_config
from lrlib.worlds import banner

WORLD, cfg = world_and_config()           # override: world_and_config("toy")
print(banner(cfg))

# %% [markdown]
# ## Recap of notebook 01: a scene, its DINO features and K anchors
# One DINO pass gives the head-averaged [CLS] attention (anchors come from it) and the patch
# features $F$ ($d \times h \times w$), which is what the boxes will pool.

# %%
from matplotlib.patches import Rectangle

from lrlib.anchors import cells_to_pixels, top_k_anchors
from lrlib.images import to_pil
from lrlib.models import load_models
from lrlib.toy import render_scene
from lrlib.viz import draw_boxes

models = load_models(cfg)
dino, dev = models.dino, models.device
S, K, M = cfg.size, cfg.K, cfg.M

scene = render_scene(7, size=S, n_objects=3)
x = torch.from_numpy(scene.image).permute(2, 0, 1)[None].to(dev)        # (1, 3, S, S)
with torch.no_grad():
    out = dino(x)
feats = out.feats                                                       # (1, d, h, w)
d, h, w = feats.shape[1:]
cells = top_k_anchors(out.attn_mean[0].cpu(), K, cfg.anchor_spacing)
anchors = cells_to_pixels(cells, (h, w), S, S)                          # (K, 2) pixels x, y
print(f"features: d = {d} channels on a {h}x{w} grid; {K} anchors at",
      [[round(v, 1) for v in a] for a in anchors.tolist()])


def draw_rect(ax, box, colour, ls="-", lw=1.5):
    x0, y0, x1, y1 = [float(v) for v in box]
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=colour,
                           ls=ls, lw=lw))

# %% [markdown]
# ## The paper's proposals: M squares per anchor (`proposals="squares"`)
# This is the paper's rule and `LRConfig.paper()`'s; lrlib's default is different (next
# section). Around anchor $C_i = (c_x, c_y)$ the method places $M$ squares of sides
# $s_1 < \dots < s_M$ (fractions of the image side, evenly spaced from `box_min` to `box_max`):
#
# $$B_{ij} = \big(c_x - \tfrac{s_j S}{2},\; c_y - \tfrac{s_j S}{2},\; c_x + \tfrac{s_j S}{2},\;
# c_y + \tfrac{s_j S}{2}\big) \;\text{rounded to pixels and clipped to the image.}$$
#
# By hand for every anchor, checked against `make_proposals`:

# %%
from lrlib.regions import boxes_to_masks, make_proposals

sides = cfg.box_sides()


def proposals_by_hand(cx, cy, sides, H, W):
    out = []
    for s in sides:
        half = s * min(H, W) / 2
        x0 = min(max(round(cx - half), 0), W - 1)
        y0 = min(max(round(cy - half), 0), H - 1)
        x1 = max(min(max(round(cx + half), 1), W), x0 + 1)      # x1, y1 exclusive, >= 1 px wide
        y1 = max(min(max(round(cy + half), 1), H), y0 + 1)
        out.append([x0, y0, x1, y1])
    return out


boxes = make_proposals(anchors, sides, S, S)                            # (K, M, 4)
for a, b in zip(anchors.tolist(), boxes.tolist()):
    assert proposals_by_hand(*a, sides, S, S) == b
print("sides (fraction of the image):", [round(s, 3) for s in sides], "-> hand-made == lrlib")

fig, axes = plt.subplots(1, K, figsize=(2.8 * K, 2.9), squeeze=False)
for k, a in enumerate(axes[0]):
    a.imshow(draw_boxes(to_pil(x[0]), boxes[k].tolist(), anchors=[anchors[k].tolist()] * M))
    a.set_title(f"anchor {k}: {M} proposals", fontsize=9); a.axis("off")
fig.tight_layout(); plt.show()

# %% [markdown]
# ## lrlib's default: boxes built on the object (`proposals="ladder"`)
# A square centred on the anchor fits a round object and misfits a long one. `LRConfig()`
# therefore grows a blob around each anchor from DINO's patch features (the pixels whose
# feature is at least `fit_level` = 0.7 cosine-similar to the anchor's, snapped to the image's
# edges with a guided filter of radius `fit_snap`), takes the blob's bounding box, and scales it
# by M factors geometric from `ladder_lo` = 0.85 (a tight part of the object: its rim would
# stay) to `ladder_hi` = 1.7 (the object with context: the box may reach a neighbour)
# (`lrlib.additions.proposals.propose`). Some of these boxes are right and some are wrong, so
# the RGN's choice matters. `proposals="fitted"` scales the same box by `fit_min` = 1.1 to
# `fit_max` = 1.5 instead: five boxes that all hold the object, among which the choice hardly
# matters (notebook 08 measures both). Side by side for the same anchors: squares, ladder,
# fitted. On the toy benchmark (`lrlib/bench/LEARNING.md`, first set, 200 tasks) the learned
# choice succeeds 0.905 of the time among ladder boxes (a random pick 0.69), 0.90 among fitted
# boxes with the paper's losses (random 0.89), and 0.54 among the paper's squares with the
# paper's losses (random 0.42).
# The rest of this notebook pools the squares, whose rule is simple enough to write by hand;
# ROI-align treats every family alike.

# %%
from lrlib.additions.proposals import propose

families = {"squares (paper)": boxes}
for fam in ("ladder", "fitted"):
    families[f"{fam} (lrlib)"] = propose(anchors.to(dev), feats, cfg.replace(proposals=fam), S, S,
                                         image=x).cpu()                 # (K, M, 4)
fitted = families["fitted (lrlib)"]
fig, axes = plt.subplots(3, K, figsize=(2.8 * K, 8.7), squeeze=False)
for k in range(K):
    for row, (kind, bx) in enumerate(families.items()):
        a = axes[row, k]
        a.imshow(draw_boxes(to_pil(x[0]), bx[k].tolist(), anchors=[anchors[k].tolist()] * M))
        a.set_title(f"anchor {k}: {kind}", fontsize=9); a.axis("off")
fig.tight_layout(); plt.show()

# %% [markdown]
# ### At the border, boxes are cut, not shifted
# Near an edge the square is clipped: it stays put on the anchor's side that fits and loses what
# sticks out, so it is no longer square and no longer centred on the anchor. (Shifting it
# inwards would move the region away from the anchor instead.)

# %%
corner = torch.tensor([[0.1 * S, 0.9 * S]])                              # near bottom-left
cut = make_proposals(corner, sides, S, S)[0]
wh = cut[:, 2:] - cut[:, :2]
touches = (cut[:, 0] == 0) | (cut[:, 3] == S)                           # left or bottom edge
centre = (cut[:, :2] + cut[:, 2:]).float() / 2
assert (cut[:, :2] >= 0).all() and (cut[:, 2:] <= S).all() and touches[-1]
assert (wh[touches, 0] != wh[touches, 1]).any() or (centre[touches] != corner).any()
for j in range(M):
    print(f"side {sides[j]:.2f}: box {cut[j].tolist()}, {wh[j, 0]}x{wh[j, 1]} px, centre "
          f"{centre[j].tolist()}" + ("  <- cut at the border" if touches[j] else ""))

fig, ax = plt.subplots(figsize=(3, 3))
ax.imshow(draw_boxes(to_pil(x[0]), cut.tolist(), anchors=[corner[0].tolist()] * M))
ax.set_title("clipped at the border", fontsize=9); ax.axis("off"); plt.show()

# %% [markdown]
# The editor will later get each box as a mask $m_{ij}$: 1 on pixels $x_0 \le x < x_1$,
# $y_0 \le y < y_1$, so a box's mask has exactly $(x_1 - x_0)(y_1 - y_0)$ pixels.

# %%
masks = boxes_to_masks(boxes, S, S)                                     # (K, M, 1, S, S)
area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
assert torch.equal(masks.sum((-3, -2, -1)).long(), area)

# %% [markdown]
# ## ROI-align, and which coordinate is x
# ROI-align turns a box of any size into a fixed $r \times r$ grid of features: it splits the box
# into $r \times r$ bins, samples each bin at $n \times n$ points (lrlib: $n = 2$) by bilinear
# interpolation of the feature map and averages them:
#
# $$f_{ij}[:, a, b] = \frac{1}{n^2} \sum_{u, v} \mathrm{bilinear}\big(F,\; y_{a,u},\; x_{b,v}\big).$$
#
# The box is in image pixels, the features in cells: `roi_pool` scales x by $w/W$ and y by
# $h/H$ separately (so non-square grids work) and uses `aligned=True`, which places cell $i$'s
# value at coordinate $i + \tfrac12$ (the patch centre).
#
# To see the orientation, plant a feature map whose channel 0 **is** the x pixel coordinate of
# each cell's centre and channel 1 the y coordinate, on a non-square grid and image. Pooling a box
# must give back its centre, with x growing along the output's columns.

# %%
from lrlib.regions import roi_pool

Hp, Wp, hp, wp = 64, 128, 8, 16                                          # image H x W, grid h x w
ys, xs = torch.meshgrid(torch.arange(hp) + 0.5, torch.arange(wp) + 0.5, indexing="ij")
coords = torch.stack([xs * Wp / wp, ys * Hp / hp])[None]                # (1, 2, hp, wp) pixels
box = torch.tensor([[[24, 12, 88, 44]]])                                # x0, y0, x1, y1: wide
pooled_xy = roi_pool(coords, box, Hp, Wp, out=4)[0, 0]                  # (2, 4, 4)
print("x channel (columns grow to the right):\n", pooled_xy[0].numpy().round(1))
print("y channel (rows grow downwards):\n", pooled_xy[1].numpy().round(1))
torch.testing.assert_close(pooled_xy[0].mean(), torch.tensor(56.0))     # (24 + 88) / 2
torch.testing.assert_close(pooled_xy[1].mean(), torch.tensor(28.0))     # (12 + 44) / 2
assert (pooled_xy[0].diff(dim=1) > 0).all() and (pooled_xy[1].diff(dim=0) > 0).all()

# %% [markdown]
# The same with the scene itself as the "feature map" (3 channels, one cell per pixel): pooling
# an object's ground-truth box at a higher output size shows the object. Passing the box with x
# and y swapped, as the official code does, reads the box mirrored in the image's diagonal:
# still a plausible box, no error, the wrong place.

# %%
obj = max(scene.objects, key=lambda o: abs(o.centre[0] - o.centre[1]))  # far from the diagonal
right = torch.tensor([[list(obj.box)]])
swapped = right[..., [1, 0, 3, 2]]
crops = [roi_pool(x.cpu(), b, S, S, out=32)[0, 0] for b in (right, swapped)]

fig, axes = plt.subplots(1, 3, figsize=(8, 2.8))
axes[0].imshow(scene.image)
draw_rect(axes[0], right[0, 0], "lime"); draw_rect(axes[0], swapped[0, 0], "red", ls="--")
axes[0].set_title(f"the {obj.name}: box (green), x/y swapped (red)", fontsize=8)
for a, c, t in zip(axes[1:], crops, ("roi_pool(box)", "roi_pool(swapped box)")):
    a.imshow(c.permute(1, 2, 0).clamp(0, 1)); a.set_title(t, fontsize=9)
for a in axes:
    a.axis("off")
fig.tight_layout(); plt.show()

# %% [markdown]
# ## ROI-align by hand
# Bilinear interpolation at a point $(y, x)$ in cell coordinates (cell $i$'s value sits at $i$,
# points are clamped to the grid) mixes the four surrounding cells; the sample points of the
# bins are evenly spread over the box, $n$ per bin and axis. Ten lines of torch, checked
# against `roi_pool` on the real DINO features for all $K \times M$ proposals:

# %%
def bilinear(F_, y, x):
    """F_: (d, h, w); y, x: same-shape tensors of points in cell coordinates -> (d, *y.shape)."""
    hh, ww = F_.shape[-2:]
    y, x = y.clamp(0, hh - 1), x.clamp(0, ww - 1)
    y0, x0 = y.floor().long().clamp(max=hh - 2), x.floor().long().clamp(max=ww - 2)
    ty, tx = y - y0, x - x0
    return (F_[:, y0, x0] * (1 - ty) * (1 - tx) + F_[:, y0, x0 + 1] * (1 - ty) * tx
            + F_[:, y0 + 1, x0] * ty * (1 - tx) + F_[:, y0 + 1, x0 + 1] * ty * tx)


def roi_align_by_hand(F_, box, H, W, r, n=2):
    """Average of n x n bilinear samples in each of r x r bins of a pixel box -> (d, r, r)."""
    hh, ww = F_.shape[-2:]
    x0, x1 = box[0] * ww / W - 0.5, box[2] * ww / W - 0.5      # pixels -> cells, aligned
    y0, y1 = box[1] * hh / H - 0.5, box[3] * hh / H - 0.5
    t = (torch.arange(r * n, dtype=F_.dtype) + 0.5) / (r * n)  # sample positions in the box
    yy, xx = torch.meshgrid(y0 + t * (y1 - y0), x0 + t * (x1 - x0), indexing="ij")
    return bilinear(F_, yy, xx).view(-1, r, n, r, n).mean((2, 4))


r = cfg.roi_size
pooled = roi_pool(feats, boxes.to(dev), S, S, r)                        # (K, M, d, r, r)
by_hand = torch.stack([torch.stack([roi_align_by_hand(feats[0].cpu(), b.float(), S, S, r)
                                    for b in bk]) for bk in boxes])
torch.testing.assert_close(by_hand, pooled.cpu(), rtol=1e-4, atol=1e-5)
print(f"pooled: {tuple(pooled.shape)} = (K, M, d, r, r); hand-made ROI-align == lrlib.regions.roi_pool")

# %% [markdown]
# ## What the RGN sees
# Each box becomes $d$ numbers on an $r \times r$ grid, whatever its size. To look at $d$
# channels at once, project them on their first three principal components (over all boxes)
# and show those as RGB: top row, what the box covers in the image; bottom row, the $r \times r$
# features the RGN gets. Small boxes read a few cells, big ones average many, and a box cut at
# the border is stretched to the same square grid.

# %%
from lrlib.regions import box_geometry

X = pooled.permute(0, 1, 3, 4, 2).reshape(-1, d).cpu()
X = X - X.mean(0)
_, _, V = torch.linalg.svd(X, full_matrices=False)
P = X @ V[:3].T
P = ((P - P.min(0).values) / (P.max(0).values - P.min(0).values + 1e-8)).view(K, M, r, r, 3)
geom = box_geometry(boxes, S, S)                                        # (K, M, 2)

show_k = min(K, 3)
fig, axes = plt.subplots(2 * show_k, M, figsize=(1.5 * M, 3.1 * show_k), squeeze=False)
for k in range(show_k):
    crops = roi_pool(x.cpu(), boxes[k:k + 1], S, S, out=24)[0]          # (M, 3, 24, 24)
    for j in range(M):
        axes[2 * k, j].imshow(crops[j].permute(1, 2, 0).clamp(0, 1))
        axes[2 * k, j].set_title(f"a{k} w={geom[k, j, 0]:.2f} h={geom[k, j, 1]:.2f}", fontsize=7)
        axes[2 * k + 1, j].imshow(P[k, j])
for a in axes.flat:
    a.axis("off")
fig.tight_layout(); plt.show()

# %% [markdown]
# The RGN also gets each box's relative width and height, `box_geometry`:
# $(x_1 - x_0)/W,\ (y_1 - y_0)/H$. Why: after ROI-align, a small and a large box over a
# uniform region look **identical**. A constant feature map proves it:

# %%
wh_by_hand = (boxes[..., 2:] - boxes[..., :2]).float() / S
torch.testing.assert_close(geom, wh_by_hand)

flat = torch.ones(1, d, h, w) * torch.randn(1, d, 1, 1)                 # same vector everywhere
flat_pooled = roi_pool(flat, boxes, S, S, r)
assert torch.allclose(flat_pooled, flat_pooled[:1, :1].expand_as(flat_pooled), atol=1e-5)
print("on a uniform map all", K * M, "boxes pool to the same features; only geometry tells "
      "them apart:", [round(float(v), 2) for v in geom[0, :, 0]])

# %% [markdown]
# ## The RGN and its opinion before training
# The RGN scores every box with the same small network:
# $1{\times}1$ conv → ReLU → $1{\times}1$ conv → ReLU → flatten, concatenate $(w, h)$ →
# Linear → ReLU → Linear → one logit $\pi_{ij}$, and per anchor
# $p_i = \mathrm{softmax}(\pi_{i1}, \dots, \pi_{iM})$.
#
# It is trained **at test time**, on this one image (notebooks 04 and 09), so in every world,
# toy and real included, it starts from random weights: these probabilities are its starting
# point, not a prediction. Because the weights are shared, a box's logit depends only on that
# box: scoring one box alone gives the same number, and reordering the boxes reorders the
# logits.

# %%
from lrlib.regions import RGN

torch.manual_seed(cfg.seed)                      # as lrlib.pipeline.edit does
rgn = RGN(d, r, cfg.rgn_channels, cfg.rgn_hidden).to(dev)
with torch.no_grad():
    logits = rgn(pooled, geom.to(dev)).cpu()                            # (K, M)
    alone = rgn(pooled[:1, 2:3], geom[:1, 2:3].to(dev)).cpu()
    perm = torch.randperm(M)
    permuted = rgn(pooled[:, perm], geom[:, perm].to(dev)).cpu()
    no_size = rgn(pooled, torch.zeros_like(geom).to(dev)).cpu()
torch.testing.assert_close(alone[0, 0], logits[0, 2])
torch.testing.assert_close(permuted, logits[:, perm])
assert not torch.allclose(no_size, logits)                               # the size is used
probs = logits.softmax(-1)
print(f"RGN: {sum(p.numel() for p in rgn.parameters())} parameters; "
      f"max probability per anchor {[round(float(p), 3) for p in probs.max(-1).values]} "
      f"(uniform would be {1 / M:.3f})")

# %% [markdown]
# Which box *should* it learn to pick? In the toy world we know: the proposal that fits the
# object under (or nearest to) the anchor best, by intersection over union with the
# ground-truth box. Training (notebook 09) has to move the probability mass there, using only
# the losses of notebook 04.
#
# Does the RGN's choice matter at all? Notebook 08 ("Does the learned choice matter?") grades
# every box's edit on toy tasks: with fitted boxes every box works, so the best pick is only
# about 7 points of success above a random one and the trained RGN gains under 1; with squares
# the choice decides success (worst pick 0.00, best 0.92) and the RGN, with the paper's losses,
# beats a random pick by 11 points; among the default ladder boxes (worst 0.05, best 0.96) the
# RGN trained with the default's box terms beats a random pick by 21 points.

# %%
from torchvision.ops import box_iou

gt = torch.tensor([o.box for o in scene.objects], dtype=torch.float32)
centres = torch.tensor([o.centre for o in scene.objects])
fig, axes = plt.subplots(1, K, figsize=(2.8 * K, 2.6), squeeze=False)
for k, a in enumerate(axes[0]):
    nearest = int((centres - anchors[k]).norm(dim=1).argmin())
    iou = box_iou(boxes[k].float(), gt[nearest:nearest + 1])[:, 0]
    bars = a.bar(range(M), probs[k], color="tab:blue", label="p (untrained RGN)")
    a.plot(range(M), iou, "o--", color="tab:orange", label="IoU with the object")
    a.axvline(int(iou.argmax()), color="tab:orange", lw=0.8)
    a.set_ylim(0, 1); a.set_xticks(range(M)); a.set_xlabel("proposal j (small -> large)")
    a.set_title(f"anchor {k}, nearest: {scene.objects[nearest].name}", fontsize=8)
axes[0, 0].legend(fontsize=7)
fig.tight_layout(); plt.show()

# %% [markdown]
# ## On a photo
# With real checkpoints, the same steps on a shipped photo (`data/photos/coffee.png` at the
# working size, `lrlib.course.photo_task`): K anchors from DINO's attention, the paper's squares
# and lrlib's default ladder boxes around each, and the untrained RGN's probabilities over them
# (its starting point, as above). What to look at: the ladder's boxes follow the extent of the
# DINO blob around their anchor (the cup, or the cup with its saucer), from a tight part of it to
# it with its surroundings; a square only has the side it was given.

# %%
if WORLD == "real":
    from lrlib import course
    from lrlib.images import to_tensor

    photo, p_caption, _, p_box = course.photo_task("coffee", S)
    xp = to_tensor(photo)[None].to(dev)
    with torch.no_grad():
        out_p = dino(xp)
        cells_p = top_k_anchors(out_p.attn_mean[0].cpu(), K, cfg.anchor_spacing)
        anchors_p = cells_to_pixels(cells_p, (h, w), S, S)
        squares_p = make_proposals(anchors_p, sides, S, S)
        ladder_p = propose(anchors_p.to(dev), out_p.feats, cfg.replace(proposals="ladder"), S, S,
                           image=xp).cpu()
        probs_p = rgn(roi_pool(out_p.feats, ladder_p.to(dev), S, S, r),
                      box_geometry(ladder_p, S, S).to(dev)).softmax(-1).cpu()
    assert squares_p.shape == ladder_p.shape == (K, M, 4) and probs_p.shape == (K, M)
    assert (ladder_p[..., :2] >= 0).all() and (ladder_p[..., 2:] <= S).all()
    fig, axes = plt.subplots(2, K, figsize=(2.8 * K, 5.8), squeeze=False)
    for k in range(K):
        for row, (kind, bx) in enumerate((("squares (paper)", squares_p),
                                          ("ladder (lrlib)", ladder_p))):
            a = axes[row, k]
            a.imshow(draw_boxes(photo, bx[k].tolist(), anchors=[anchors_p[k].tolist()] * M))
            a.set_title(f"anchor {k}: {kind}", fontsize=9); a.axis("off")
    fig.tight_layout(); plt.show()
    print("untrained RGN over the ladder boxes, p per anchor:",
          [[round(float(v), 2) for v in row] for row in probs_p])
else:
    print("real checkpoints only (world_and_config('real'), or LRLIB_WORLD=real-random to run "
          "this branch with random weights)")

# %% [markdown]
# ## Exercises
# Each exercise cell holds a placeholder (`...`): replace it with your code and run the cell.
# The checker (`lrlib.course`) computes the answer its own way and prints "correct" or a hint;
# left as it is, it prints "not answered yet". Solutions: `solutions/02_roi_rgn_solutions.ipynb`.

# %% [markdown]
# **Exercise (a measurement that decides the method).** For each anchor, what is the highest
# IoU of any of its proposals with any object's ground-truth box (`o.box for o in
# scene.objects`, x1 and y1 exclusive)? Compute it for the squares (`boxes`) and for the fitted
# boxes (`fitted`). Which kind gets closer to the objects on this scene, and for which anchor
# does the difference matter most? Write the IoU yourself (numpy or plain Python).

# %%
from lrlib import course

gt = [list(o.box) for o in scene.objects]
best_iou_squares = ...        # your code: K numbers
best_iou_fitted = ...         # your code: K numbers
course.check_best_iou(best_iou_squares, boxes, gt)
course.check_best_iou(best_iou_fitted, fitted, gt)

# %% [markdown]
# ## Recap
# * The paper's proposals are M squares per anchor (`proposals="squares"`), clipped (not
#   shifted) at the border; lrlib's default is M scalings of the anchor's DINO blob box from a
#   tight part of the object to the object with context (`proposals="ladder"`, 0.85-1.7;
#   `"fitted"` scales it by 1.1-1.5). On the toy benchmark the learned choice succeeds 0.905
#   among ladder boxes, 0.90 among fitted ones and 0.54 among squares with the paper's losses.
#   As masks all cover
#   exactly $x_0 \le x < x_1$, $y_0 \le y < y_1$.
# * ROI-align is a bilinear average over sample points spread across the box; x is the
#   column, y the row, each with its own scale. Swap them and you silently read another place.
# * After ROI-align, box size is invisible on uniform regions, hence the extra $(w, h)$ input.
# * The RGN is trained per image, so it always starts from random weights.
#
# Next: notebook 03, how one box is *chosen* from $p_i$ while keeping a gradient.
