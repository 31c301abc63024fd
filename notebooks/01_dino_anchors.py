# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · DINO attention and anchors: where the edit could go
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/01_dino_anchors.ipynb)
#
# **You will learn** how the method finds candidate places to edit without any mask: the [CLS]
# token of a self-supervised ViT (DINO) attends to the salient objects; we read that attention
# head by head, recompute it by hand from the last block's queries and keys, pick K anchor
# points from it (and see why they need a minimum spacing), and measure, with the ground truth
# of toy scenes, how often an anchor lands on the background: the paper's failure mode.
#
# **Needs**: under a CPU-minute in the toy world (the default without a GPU or hub access);
# a GPU with internet for the real DINO ViT-B/16.
#
# | stage | this notebook | lrlib |
# |---|---|---|
# | DINO [CLS] attention → K anchors | here | `lrlib.anchors`: `Dino`, `top_k_anchors`, `refine_anchors` (`cells_to_pixels`: the paper's) |

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
# `load_models` gives the frozen DINO wrapper (and CLIP and an editor, unused here). `Dino`
# resizes any image to the ViT's input size and ImageNet-normalises it (the official code
# forgets the normalisation), then returns, from **one** forward pass, the [CLS] attention of
# every head of the last block, the patch features (notebook 02) and the keys (notebook 04).

# %%
from lrlib.logs import quiet_libraries
from lrlib.models import load_models

quiet_libraries()                 # no library warnings or loading bars in the outputs
models = load_models(cfg)
dino, dev = models.dino, models.device
S = cfg.size                      # the working resolution: 64 px in the small worlds, 512 real
h, w = dino.grid                  # patch grid of the ViT
print(f"DINO: input {dino.input_size}, patches of {dino.patch} px -> a {h}x{w} grid, "
      f"{dino.vit.blocks[-1].attn.num_heads} heads; working image {S}x{S}")

# %% [markdown]
# ## A toy scene with ground truth
# `lrlib.toy.render_scene` draws coloured shapes on a soft background and knows where every
# object is: its tight box `(x0, y0, x1, y1)` in pixels, x to the right, y down, x1 and y1
# exclusive. That lets us check where the anchors land instead of eyeballing it.

# %%
from matplotlib.patches import Rectangle

from lrlib.toy import render_scene


def as_tensor(scene):
    """(H, W, 3) numpy scene -> (1, 3, H, W) tensor on the models' device."""
    return torch.from_numpy(scene.image).permute(2, 0, 1)[None].to(dev)


def draw_gt(ax, scene, colour="white"):
    """The ground-truth object boxes, dashed."""
    for o in scene.objects:
        x0, y0, x1, y1 = o.box
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ls="--",
                               lw=1.2, ec=colour))


scene = render_scene(7, size=S, n_objects=3)
x = as_tensor(scene)
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(scene.image); draw_gt(ax, scene); ax.axis("off")
ax.set_title(", ".join(o.name for o in scene.objects), fontsize=9)
plt.show()

# %% [markdown]
# ## The [CLS] attention, head by head
# The last block has H heads. With $d_h$ the head width, head $h$'s query of the [CLS] token
# $q_{\mathrm{cls},h}$ and the keys $k_{h,n}$ of all $N$ tokens, the [CLS] row of the
# attention matrix is
#
# $$A_h = \mathrm{softmax}_n\!\left(\frac{q_{\mathrm{cls},h} \cdot k_{h,n}}{\sqrt{d_h}}\right),
# \qquad A = \frac{1}{H}\sum_{h=1}^{H} A_h ,$$
#
# kept at the $h \times w$ patch tokens (the [CLS] token's attention to itself is dropped) and
# reshaped to the grid. `Dino` returns `attn` (B, H, h, w) and `attn_mean` = $A$.

# %%
from lrlib.anchors import upsample_map

with torch.no_grad():
    out = dino(x)
A_heads, A = out.attn[0].cpu(), out.attn_mean[0].cpu()          # (H, h, w), (h, w)
H = A_heads.shape[0]

cols = min(H + 2, 7)
rows = -(-(H + 2) // cols)
fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.2 * rows), squeeze=False)
for a in axes.flat:
    a.axis("off")
axes.flat[0].imshow(scene.image); axes.flat[0].set_title("image", fontsize=9)
for i in range(H):
    im = axes.flat[i + 1].imshow(A_heads[i], cmap="inferno")
    fig.colorbar(im, ax=axes.flat[i + 1], fraction=0.046, pad=0.04)
    axes.flat[i + 1].set_title(f"head {i}", fontsize=9)
axes.flat[H + 1].imshow(scene.image)
im = axes.flat[H + 1].imshow(upsample_map(A, S, S), cmap="inferno", alpha=0.6)
fig.colorbar(im, ax=axes.flat[H + 1], fraction=0.046, pad=0.04)
draw_gt(axes.flat[H + 1], scene)
axes.flat[H + 1].set_title("mean A over the image", fontsize=9)
fig.tight_layout(); plt.show()

# %% [markdown]
# Heads can differ: each is its own similarity between the [CLS] query and the patch keys, and
# the method simply averages them. The patch maps do not sum to 1 because part of the [CLS]
# row goes to the [CLS] token itself; how much varies per head:

# %%
share = A_heads.sum((-2, -1))
assert (share <= 1 + 1e-5).all()
print("share of [CLS] attention on the patches, per head:", [round(float(s), 3) for s in share])

# %% [markdown]
# ## The same attention, by hand
# A timm ViT block computes `qkv = Linear(x)` from its (normalised) input tokens $x$ and splits
# it into queries, keys and values of H heads. We catch that input with a forward pre-hook on
# `blocks[-1].attn`, redo the three lines of maths above in plain torch, and check that we get
# `Dino`'s maps exactly.

# %%
attn = dino.vit.blocks[-1].attn
assert isinstance(attn.q_norm, torch.nn.Identity) and isinstance(attn.k_norm, torch.nn.Identity)
seen = {}
hook = attn.register_forward_pre_hook(lambda module, args: seen.update(x=args[0]))
with torch.no_grad():
    out = dino(x)
hook.remove()

with torch.no_grad():
    tokens = seen["x"]                                                  # (1, N, D)
    B, N, D = tokens.shape
    qkv = tokens @ attn.qkv.weight.T
    if attn.qkv.bias is not None:
        qkv = qkv + attn.qkv.bias
    q, k, v = qkv.view(B, N, 3, H, -1).permute(2, 0, 3, 1, 4)          # each (1, H, N, d_h)
    d_h = q.shape[-1]
    A_cls = torch.softmax(q[:, :, :1] @ k.transpose(-2, -1) / d_h ** 0.5, dim=-1)  # (1, H, 1, N)
    A_hand = A_cls[:, :, 0, dino.n_prefix:].reshape(1, H, h, w)          # drop [CLS], to the grid

torch.testing.assert_close(A_hand, out.attn)
torch.testing.assert_close(A_hand.mean(1), out.attn_mean)
print(f"N = {N} tokens ({dino.n_prefix} prefix + {h * w} patches), d_h = {d_h}: "
      "hand-made attention == Dino.attn")

# %% [markdown]
# ## From the map to K anchors
# The anchors are the $K$ highest cells of $A$, taken greedily, each at least `spacing` cells
# (Chebyshev distance, $\max(|\Delta r|, |\Delta c|)$) away from those already taken. Without
# spacing ("spacing 1": any two distinct cells), a broad peak spreads over several neighbouring
# cells and can swallow all K anchors, so that K "different" edits are K copies of one.
#
# Both versions by hand, checked against `top_k_anchors`:

# %%
from lrlib.anchors import cells_to_pixels, top_k_anchors


def top_k_by_hand(A, K, spacing):
    picked = []
    for idx in torch.argsort(A.flatten(), descending=True, stable=True).tolist():
        r, c = divmod(idx, A.shape[1])
        if all(max(abs(r - pr), abs(c - pc)) >= spacing for pr, pc in picked):
            picked.append((r, c))
        if len(picked) == K:
            return torch.tensor(picked)


K, spacing = cfg.K, cfg.anchor_spacing
for sp in (1, spacing):
    assert torch.equal(top_k_by_hand(A, K, sp), top_k_anchors(A, K, sp))
print(f"K = {K}, spacing = {spacing}: hand-made top-K == lrlib.anchors.top_k_anchors")

# %% [markdown]
# To see the collapse for sure, plant a map: a broad peak whose 3x3 core is higher than a
# second, narrower peak elsewhere. Without spacing the anchors fill the core of the first peak
# (up to 9 of them); with spacing the core's neighbours are ruled out and the second anchor
# finds the second peak.

# %%
rr, cc = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                        indexing="ij")
bump = lambda r, c, var: torch.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * var))
p1, p2 = (round(0.3 * h), round(0.3 * w)), (round(0.75 * h), round(0.75 * w))
planted = bump(*p1, 1.5) + 0.4 * bump(*p2, 0.36)          # core >= 0.51 > 0.4 > ring 2 (0.26)
Kp = min(K, 9)

fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for a, sp in zip(axes, (1, spacing)):
    cells = top_k_anchors(planted, Kp, sp)
    fig.colorbar(a.imshow(planted, cmap="inferno"), ax=a, fraction=0.046, pad=0.04)
    a.scatter(cells[:, 1], cells[:, 0], c="cyan", s=40, edgecolors="k")
    for i, (r, c) in enumerate(cells.tolist()):
        a.annotate(str(i), (c, r), color="w", fontsize=8, xytext=(3, 3), textcoords="offset points")
    a.set_title(f"spacing {sp}", fontsize=9); a.axis("off")
    on_second = int(((cells - torch.tensor(p2)).abs().max(1).values <= 1).sum())
    print(f"spacing {sp}: {on_second} of {Kp} anchors on the second peak")
fig.tight_layout(); plt.show()
assert ((top_k_anchors(planted, Kp, 1) - torch.tensor(p1)).abs().max(1).values <= 1).all()
if spacing >= 2 and Kp >= 2:
    assert top_k_anchors(planted, Kp, spacing)[1].tolist() == list(p2)

# %% [markdown]
# On the scene's own map, the same comparison: how many anchors are direct neighbours (or the
# same cell block) of the first one?

# %%
def neighbours_of_first(cells):
    return int(((cells[1:] - cells[0]).abs().max(1).values <= 1).sum())


cells_free, cells = top_k_anchors(A, K, 1), top_k_anchors(A, K, spacing)
print(f"without spacing: {neighbours_of_first(cells_free)} of the other {K - 1} anchors touch "
      f"the first one; with spacing {spacing}: {neighbours_of_first(cells)}")
assert neighbours_of_first(cells) == 0 or spacing <= 1

# %% [markdown]
# ## Anchors in pixels
# Anchors are cells (row, column) of the $h \times w$ grid; the boxes of notebook 02 live in
# pixels (x, y) of the $S \times S$ working image. An anchor is the centre of its patch:
#
# $$x = (c + \tfrac12)\,\frac{W}{w}, \qquad y = (r + \tfrac12)\,\frac{H}{h}$$
#
# Note the swap: the row gives y, the column gives x.

# %%
anchors = cells_to_pixels(cells, (h, w), S, S)                            # (K, 2) x, y
by_hand = torch.stack([(cells[:, 1] + 0.5) * S / w, (cells[:, 0] + 0.5) * S / h], 1)
torch.testing.assert_close(anchors, by_hand)


def inside_any(xy, scene):
    """Is the pixel point (x, y) inside some object's ground-truth box?"""
    return any(o.box[0] <= xy[0] < o.box[2] and o.box[1] <= xy[1] < o.box[3] for o in scene.objects)


fig, axes = plt.subplots(1, 2, figsize=(7, 3.6))
for a, (c, title) in zip(axes, ((cells_free, "no spacing"), (cells, f"spacing {spacing}"))):
    xy = cells_to_pixels(c, (h, w), S, S)
    a.imshow(scene.image)
    fig.colorbar(a.imshow(upsample_map(A, S, S), cmap="inferno", alpha=0.45), ax=a, fraction=0.046,
                 pad=0.04)
    draw_gt(a, scene)
    for i, p in enumerate(xy.tolist()):
        on = inside_any(p, scene)
        a.scatter(*p, c="lime" if on else "red", s=60, edgecolors="k", marker="o" if on else "X")
        a.annotate(str(i), p, color="w", fontsize=9, xytext=(4, 4), textcoords="offset points")
    a.set_title(f"{title}: green = on an object, red = background", fontsize=8); a.axis("off")
fig.tight_layout(); plt.show()

# %% [markdown]
# ## What `lrlib.edit` really uses: the refined anchor
# The patch centre is the paper's anchor. A patch is 8 px in the toy world; the real DINO
# ViT-B/16 sees the 512 px canvas resized to `dino_size` = 448 px, a 28 x 28 grid of 16 px
# patches, so one patch covers 512 / 28 ≈ 18 px of the image. The centre of the peak cell can sit half a patch away
# from the object it points at, and the boxes are centred on it. lrlib therefore moves each
# anchor to the attention-weighted centroid of the 3 x 3 cells around its peak
# (`refine_anchors`, `LRConfig.anchor_refine`, on by default), with weights shifted so the
# window's lowest cell counts 0:
#
# $$a_k = \frac{\sum_c w_c\, p_c}{\sum_c w_c}, \qquad w_c = A_c - \min_{\text{window}} A,
# \qquad p_c = \big((c_x + \tfrac12)\tfrac{W}{w},\ (c_y + \tfrac12)\tfrac{H}{h}\big).$$
#
# This is how `lrlib.pipeline.prepare` (the function `lrlib.edit` calls) places anchors when it
# is given **no caption**:
#
# ```python
# anchors = (refine_anchors(A, cells, S, S) if cfg.anchor_refine
#            else cells_to_pixels(cells, A.shape, S, S))
# ```
#
# **With a caption** (the usual call, and the demo's), `lrlib.edit` does more: it takes
# `anchor_pool` = 18 attention peaks, one per DINO region (`anchor_cover`), scores each
# peak's region against the caption with CLIP, and keeps the K best
# (`lrlib.additions.grounding.caption_anchors`). The paper has no such step (`LRConfig.paper()`:
# `anchor_pool=0`, the top-K peaks as in this notebook). On the toy benchmark (README, "Does
# the method work?") caption anchors reach success 0.90, the top-K peaks 0.70 with everything
# else lrlib's. This notebook studies the caption-free rule, the part both share.
#
# By hand for every anchor, checked against `refine_anchors`:

# %%
from lrlib.anchors import refine_anchors


def refine_by_hand(A, cell, S):
    r0, c0 = cell
    rows = range(max(0, r0 - 1), min(A.shape[0], r0 + 2))
    cols = range(max(0, c0 - 1), min(A.shape[1], c0 + 2))
    win = torch.tensor([[float(A[r, c]) for c in cols] for r in rows])
    wgt = win - win.min()
    if wgt.sum() <= 0:                                   # a flat window keeps the cell centre
        return [(c0 + 0.5) * S / A.shape[1], (r0 + 0.5) * S / A.shape[0]]
    xs = torch.tensor([(c + 0.5) * S / A.shape[1] for c in cols])
    ys = torch.tensor([(r + 0.5) * S / A.shape[0] for r in rows])
    total = wgt.sum()
    return [float((wgt * xs[None, :]).sum() / total), float((wgt * ys[:, None]).sum() / total)]


def pipeline_anchors(A, K=cfg.K, spacing=cfg.anchor_spacing):
    """The (K, 2) pixel anchors `lrlib.edit` uses for the attention map A when given no caption."""
    c = top_k_anchors(A, K, spacing)
    return refine_anchors(A, c, S, S) if cfg.anchor_refine else cells_to_pixels(c, A.shape, S, S)


refined = refine_anchors(A, cells, S, S)
torch.testing.assert_close(refined, torch.tensor([refine_by_hand(A, c, S) for c in cells.tolist()]))
moved = (refined - anchors).norm(dim=1)
print(f"anchor_refine = {cfg.anchor_refine}; refined == by hand; each anchor moved by "
      f"{[round(float(d), 1) for d in moved]} px (a patch is {S / w:.0f} px)")

fig, ax = plt.subplots(figsize=(3.8, 3.8))
ax.imshow(scene.image)
fig.colorbar(ax.imshow(upsample_map(A, S, S), cmap="inferno", alpha=0.45), ax=ax, fraction=0.046,
             pad=0.04, label="A")
draw_gt(ax, scene)
ax.scatter(anchors[:, 0], anchors[:, 1], c="white", s=50, edgecolors="k",
           label="patch centre (paper)")
ax.scatter(refined[:, 0], refined[:, 1], c="cyan", s=50, marker="P", edgecolors="k",
           label="refined (lrlib.edit)")
for p, q in zip(anchors.tolist(), refined.tolist()):
    ax.annotate("", q, p, arrowprops=dict(arrowstyle="->", color="w"))
ax.legend(fontsize=7, loc="lower left"); ax.axis("off")
plt.show()

# %% [markdown]
# ## The failure mode: anchors on the background
# The method can only edit where it puts an anchor. If the attention peak is on the background,
# the anchor is too, and whatever the RGN and the editor do afterwards happens in the wrong
# place: the paper shows such failures. With ground truth we can count it over 30 scenes.
# The yardstick is chance: an anchor dropped uniformly at random lands on an object with a
# probability equal to the share of the image the object boxes cover.

# %%
from lrlib.toy import render_batch

xs, scenes = render_batch(range(100, 130), size=S, n_objects=(1, 3))
with torch.no_grad():
    maps = dino(xs.to(dev)).attn_mean.cpu()                               # (30, h, w)

on_object = torch.zeros(len(scenes), K, dtype=torch.bool)                # [scene, anchor rank]
on_centre = torch.zeros(len(scenes), K, dtype=torch.bool)                # the paper's patch centres
coverage = []
for i, (sc, Ai) in enumerate(zip(scenes, maps)):
    xy = pipeline_anchors(Ai)                                   # lrlib.edit's, without a caption
    on_object[i] = torch.tensor([inside_any(p, sc) for p in xy.tolist()])
    xy_c = cells_to_pixels(top_k_anchors(Ai, K, spacing), (h, w), S, S)
    on_centre[i] = torch.tensor([inside_any(p, sc) for p in xy_c.tolist()])
    covered = np.zeros((S, S), bool)
    for o in sc.objects:
        covered[o.box[1]:o.box[3], o.box[0]:o.box[2]] = True
    coverage.append(covered.mean())

chance = float(np.mean(coverage))
rate = on_object.float().mean(0)
print(f"{len(scenes)} scenes, K = {K}, lrlib.edit's caption-free anchors: on an object "
      f"{float(on_object.float().mean()):.0%} (chance {chance:.0%}); scenes whose FIRST anchor "
      f"is on the background: {int((~on_object[:, 0]).sum())}; scenes with no anchor on any "
      f"object: {int((~on_object.any(1)).sum())}")
print(f"the paper's patch centres instead: on an object {float(on_centre.float().mean()):.0%}, "
      f"first anchor on the background in {int((~on_centre[:, 0]).sum())} scenes")

fig, ax = plt.subplots(figsize=(4, 2.6))
ax.bar(np.arange(K) - 0.2, on_centre.float().mean(0), 0.4, color="tab:gray", label="patch centre")
ax.bar(np.arange(K) + 0.2, rate, 0.4, color="tab:green", label="refined (no caption)")
ax.axhline(chance, color="k", ls="--", lw=1, label="chance (box coverage)")
ax.set_xlabel("anchor rank (0 = highest attention)"); ax.set_ylabel("on an object")
ax.set_ylim(0, 1); ax.legend(fontsize=8); ax.set_title("where the anchors land", fontsize=9)
plt.show()

# %% [markdown]
# Rank 0 is the attention's own choice; later ranks are pushed away by the spacing, so on a
# scene with one small object they have to land somewhere else. The scenes where the **first**
# anchor already misses, or where no anchor hits anything, are the ones the method cannot
# rescue. A few of them (or the worst scenes, if every first anchor hits):

# %%
order = sorted(range(len(scenes)), key=lambda i: (bool(on_object[i, 0]), int(on_object[i].sum())))
show = order[:4]
fig, axes = plt.subplots(1, len(show), figsize=(2.6 * len(show), 2.8))
for a, i in zip(np.atleast_1d(axes), show):
    sc = scenes[i]
    xy = pipeline_anchors(maps[i])
    a.imshow(sc.image)
    fig.colorbar(a.imshow(upsample_map(maps[i], S, S), cmap="inferno", alpha=0.45), ax=a,
                 fraction=0.046, pad=0.04)
    draw_gt(a, sc)
    for r, p in enumerate(xy.tolist()):
        on = bool(on_object[i, r])
        a.scatter(*p, c="lime" if on else "red", s=50, edgecolors="k", marker="o" if on else "X")
        a.annotate(str(r), p, color="w", fontsize=8, xytext=(3, 3), textcoords="offset points")
    a.set_title(f"scene {100 + i}: {int(on_object[i].sum())}/{K} on objects", fontsize=8)
    a.axis("off")
fig.tight_layout(); plt.show()

# %% [markdown]
# ## On a photo
# With real checkpoints the same pass runs on a shipped photo (`data/photos/coffee.png`, its
# centred square at the working size, `lrlib.course.photo_task`): the mean [CLS] attention, the
# K caption-free anchors `lrlib.edit` would start from, and the box of the object the caption
# names. What to look at: whether the highest attention, and so the anchors, fall on the cup
# or on the saucer, the spoon or the table; an anchor off the cup is the failure mode above, on
# a photo, and the reason `lrlib.edit` chooses anchors with the caption. (CI runs this cell with
# random weights, so no claim about its picture is checked here; the toy models never saw a
# photo: in the toy world notebook 00 shows what they make of one.)

# %%
if WORLD == "real":
    from lrlib import course
    from lrlib.images import to_tensor

    photo, p_caption, _, p_box = course.photo_task("coffee", S)
    with torch.no_grad():
        A_photo = dino(to_tensor(photo)[None].to(dev)).attn_mean[0].cpu()     # (h, w)
    xy = pipeline_anchors(A_photo)
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(photo)
    im = ax.imshow(upsample_map(A_photo, S, S), cmap="inferno", alpha=0.5)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="mean [CLS] attention A")
    ax.add_patch(Rectangle((p_box[0] - 0.5, p_box[1] - 0.5), p_box[2] - p_box[0],
                           p_box[3] - p_box[1], fill=False, ls="--", ec="white"))
    on = [p_box[0] <= px < p_box[2] and p_box[1] <= py < p_box[3] for px, py in xy.tolist()]
    for r, (p, o) in enumerate(zip(xy.tolist(), on)):
        ax.scatter(*p, c="lime" if o else "red", s=50, edgecolors="k", marker="o" if o else "X")
        ax.annotate(str(r), p, color="w", fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_title(f"{p_caption!r}: {sum(on)} of {K} anchors in its box", fontsize=9)
    ax.axis("off"); plt.show()
    assert A_photo.shape == (h, w) and xy.shape == (K, 2)
    assert ((xy >= 0) & (xy <= S)).all(), "an anchor outside the photo"
else:
    print("real checkpoints only (world_and_config('real'), or LRLIB_WORLD=real-random to run "
          "this branch with random weights)")

# %% [markdown]
# ## Exercises
# Each exercise cell holds a placeholder (`...`): replace it with your code and run the cell.
# The checker (`lrlib.course`) computes the answer its own way and prints "correct" or a hint;
# left as it is, it prints "not answered yet". Solutions: `solutions/01_dino_anchors_solutions.ipynb`.

# %% [markdown]
# **Exercise 1 (scale).** With the real checkpoints, the 512 px canvas is resized to
# `LRConfig().dino_size` = 448 px for DINO ViT-B/16 (16 px patches). How many pixels of the
# 512 px canvas does one patch cover? This is how far the paper's patch-centre anchor can sit
# from the peak it stands for (half of it).

# %%
from lrlib import course

patch_px = ...                # your code: a number
course.check_patch_px(patch_px)

# %% [markdown]
# **Exercise 2 (a stage by hand).** Write `my_top_k(A, K, spacing)`: the K cells (row, col)
# of the map `A` (a numpy array) in decreasing order of A, each at Chebyshev distance
# max(|Δrow|, |Δcol|) >= `spacing` from every cell taken before it. The checker runs it on
# random maps, broad peaks included, where spacing matters.

# %%
def my_top_k(A, K, spacing):
    ...                       # your code: return a list of K (row, col) pairs


course.check_top_k(my_top_k)

# %% [markdown]
# ## Recap
# * $A$ is the [CLS] row of the last block's attention, averaged over heads: three lines of
#   torch from that block's q and k, and `Dino` gives exactly that.
# * Anchors are greedy top-K cells with a minimum spacing; without it, one broad peak takes
#   all K.
# * Cells are (row, col); pixels are (x, y) = (col, row) + ½, times the patch size. `lrlib.edit`
#   then moves each anchor to the attention centroid around its peak (`anchor_refine`).
# * With a caption, `lrlib.edit` chooses among `anchor_pool` peaks by the caption
#   (`caption_anchors`); the paper takes the top K (`anchor_pool=0`).
# * An anchor outside every object is an edit in the wrong place, whatever comes later; the
#   ground truth of the toy world measures how often that happens against chance.
#
# Next: notebook 02 puts M boxes around each anchor and pools DINO features from them.
