# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · End to end: the whole method, written out
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/09_end_to_end.ipynb)
#
# **You will learn** how the stages of notebooks 01-07 fit together: we run every step of
# `lrlib.edit` by hand with lrlib's pieces (anchors, proposals, ROI features, candidate edits,
# composites, the RGN training loop, ranking), check that we get exactly what `lrlib.edit` gets
# with the same config and seed, watch the losses and the box probabilities during training, and
# compare the two gradient estimators ("st" and "expected") on the same candidates.
#
# **Needs**: about 2 CPU-minutes in the toy world (the default without a GPU or hub access),
# with CPU-sized settings; a GPU with internet for the real checkpoints and the paper's settings.

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
#
# With real checkpoints this notebook uses the paper's settings (K = 9, M = 7, 5 epochs of 10
# iterations, 50 SD steps); on a CPU, smaller ones.

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import lrlib
from lrlib.course import world_and_config
from lrlib.worlds import banner

WORLD, cfg = world_and_config(progress=False)   # override: world_and_config("toy", ...)
if WORLD != "real":
    cfg = cfg.replace(K=3, M=4, epochs=2, iters_per_epoch=6)
# the paper's loop, written out below: straight-through Gumbel, the top-K attention peaks, M
# squares per anchor and the paper's three losses ("expected", the default estimator, is
# compared at the end; lrlib's caption anchors, ladder boxes and box terms are notebook 08's)
cfg = cfg.replace(estimator="st", anchor_pool=0, proposals="squares", lambda_cover=0.0,
                  lambda_spill=0.0)
print(banner(cfg))
print(f"K = {cfg.K} anchors, M = {cfg.M} boxes each, {cfg.iterations} iterations, "
      f"editor {cfg.editor} ({cfg.steps} steps), estimator {cfg.estimator!r}, seed {cfg.seed}")

# %% [markdown]
# ## The task
# A toy edit task with ground truth: a scene with a few objects, the one to change (named by the
# caption) and what it should become (the prompt). With real checkpoints it is drawn at 512 px:
# the checks below need the ground truth a toy task has and a photo has not. The whole method on
# a photo, with real checkpoints, is notebook 11.

# %%
from lrlib.images import load_image, to_tensor
from lrlib.logs import quiet_libraries
from lrlib.models import load_models
from lrlib.toy import ground_truth_edit, judge_edit, make_edit_task

quiet_libraries()                 # no library warnings or loading bars in the outputs

task = make_edit_task(5, size=cfg.size, kind="multi")
image, prompt, caption = task.scene.image, task.prompt, task.source_caption
models = load_models(cfg)
dev, S = models.device, cfg.size

# exactly what lrlib.edit does to any input: RGB, [0, 1], resized to the working size
x_full = to_tensor(load_image(image))[None]
x = F.interpolate(x_full, size=(S, S), mode="bilinear", antialias=True,
                  align_corners=False).clamp(0, 1).to(dev)

fig, ax = plt.subplots(1, 2, figsize=(6, 3.2))
ax[0].imshow(image); ax[0].set_title(f"{caption}")
ax[1].imshow(ground_truth_edit(task)); ax[1].set_title(f"ideal: {prompt}")
for a in ax:
    a.axis("off")
plt.show()

# %% [markdown]
# ## 1. Anchors: DINO's [CLS] attention (notebook 01)
# $A = \frac1H \sum_h \mathrm{softmax}(q_{cls,h} k_h^\top / \sqrt{d_h})$ over the patches; the K
# highest patches, kept apart by `anchor_spacing`, are the anchors. lrlib then moves each anchor
# from its patch centre to the attention centroid of the 3 x 3 patches around it
# (`anchor_refine`, on by default; the paper keeps the patch centre). The same forward pass
# gives the patch features $F$ the RGN looks at.

# %%
from lrlib.anchors import cells_to_pixels, refine_anchors, top_k_anchors, upsample_map

with torch.no_grad():
    d_out = models.dino(x)
A = d_out.attn_mean[0]                                          # (h, w)
cells = top_k_anchors(A.cpu(), cfg.K, cfg.anchor_spacing)      # (K, 2) (row, col)
if cfg.anchor_refine:                                            # (K, 2) pixel (x, y)
    anchors = refine_anchors(A.cpu(), cells, S, S)              # local attention centroid
else:
    anchors = cells_to_pixels(cells, A.shape, S, S)              # the patch centre

# %% [markdown]
# ## 2. Proposals, ROI features, masks (notebook 02)
# M squares of growing side around each anchor, $B_{ij}$; ROI-align pools $F$ over each box,
# $f_{ij} = \mathrm{ROIAlign}(F, B_{ij})$; each box becomes a mask $m_{ij}$ (snapped to the
# editor's grid when it has one: identity for SD).

# %%
from lrlib.regions import RGN, box_geometry, boxes_to_masks, make_proposals, roi_pool
from lrlib.viz import draw_boxes

boxes = make_proposals(anchors, cfg.box_sides(), S, S)                 # (K, M, 4)
pooled = roi_pool(d_out.feats, boxes.to(dev), S, S, cfg.roi_size)      # (K, M, d, r, r)
geom = box_geometry(boxes, S, S).to(dev)                               # (K, M, 2) relative w, h
K, M = boxes.shape[:2]
masks = models.editor.snap_mask(boxes_to_masks(boxes, S, S).flatten(0, 1).to(dev))   # (K*M, 1, S, S)
print("boxes", tuple(boxes.shape), "| ROI features", tuple(pooled.shape), "| masks", tuple(masks.shape))

src_pil = lrlib.images.to_pil(x[0].cpu())
fig, ax = plt.subplots(1, 2, figsize=(7, 3.6))
ax[0].imshow(src_pil)
fig.colorbar(ax[0].imshow(upsample_map(A.cpu(), S, S), cmap="inferno", alpha=0.55), ax=ax[0],
             fraction=0.046, pad=0.04)
ax[0].set_title("DINO [CLS] attention")
ax[1].imshow(draw_boxes(src_pil, boxes.flatten(0, 1).tolist(), None,
                        anchors.repeat_interleave(M, 0).tolist(), ids=[k for k in range(K) for _ in range(M)]))
ax[1].set_title(f"{K} anchors x {M} proposals")
for a in ax:
    a.axis("off")
plt.show()

# %% [markdown]
# ## 3. Candidate edits, once (notebook 05 / 06)
# The editor fills every box once, without gradient, in batches: $E_{ij}$. The composites
# $C_{ij} = m_{ij} E_{ij} + (1 - m_{ij})\,x$ are what the RGN will choose among; outside its box
# each one is the input exactly.

# %%
from lrlib.editors.candidates import generate_candidates
from lrlib.train import composites

cands = generate_candidates(models.editor, x, masks, prompt, cfg.seed, cfg.editor_batch_size,
                            progress=False)                                   # (K*M, 3, S, S)
C = composites(cands, masks, x).view(K, M, 3, S, S)
outside = (masks.view(K, M, 1, S, S) == 0).expand_as(C)
assert torch.equal(C[outside], x.expand(K * M, -1, -1, -1).reshape(K, M, 3, S, S)[outside])

# %% [markdown]
# ## 4. Training the RGN, by hand (notebooks 03, 04)
# The RGN scores the M boxes of each anchor, $\pi_i = \mathrm{RGN}(f_{i\cdot})$. Each iteration:
#
# 1. draw a hard Gumbel-Softmax sample $g_i$ (one-hot forward, soft gradient backward);
# 2. the edited image is the chosen composite, $e_i = \sum_j g_{ij} C_{ij}$;
# 3. $L = \lambda_C L_{clip} + \lambda_S L_{str} + \lambda_D L_{dir}$ on $e_i$, averaged over anchors;
# 4. one Adam step on the RGN (lr 0.003).
#
# The RGN is initialised from the seed and one generator drives both the Gumbel noise and the
# CLIP augmentations, as in `lrlib.edit`, so our loop must reproduce it exactly. We fill a
# `lrlib.train.History` as `train_rgn` does.

# %%
from functools import partial

from lrlib.losses import edit_loss, embed
from lrlib.regions import gumbel_softmax
from lrlib.train import History

with torch.random.fork_rng(devices=[]):
    torch.manual_seed(cfg.seed)
    rgn = RGN(pooled.shape[2], cfg.roi_size, cfg.rgn_channels, cfg.rgn_hidden).to(dev)
rgn_init = copy.deepcopy(rgn.state_dict())                    # for the estimator comparison
emb = embed(models.clip, models.dino, x, prompt, caption, cfg.structure)  # once per edit
loss_fn = partial(edit_loss, emb=emb, clip=models.clip, dino=models.dino, n_aug=cfg.n_aug,
                  lambda_clip=cfg.lambda_clip, lambda_str=cfg.lambda_str, lambda_dir=cfg.lambda_dir)
gen = torch.Generator().manual_seed(cfg.seed)
opt = torch.optim.Adam(rgn.parameters(), lr=cfg.lr)
hist = History()

for it in range(cfg.iterations):
    logits = rgn(pooled, geom)                                            # (K, M)  pi
    g = gumbel_softmax(logits, tau=cfg.tau, hard=cfg.hard, generator=gen)  # (K, M)  one-hot
    e = torch.einsum("km,kmchw->kchw", g, C)                              # (K, 3, S, S)
    terms = loss_fn(e, gen)                                               # each (K,)
    L = terms["L"].mean()
    opt.zero_grad()
    L.backward()
    opt.step()
    hist.loss.append(float(L.detach()))
    for name in ("L_clip", "L_dir", "L_str"):
        hist.terms.setdefault(name, []).append(float(terms[name].detach().mean()))
    hist.chosen.append(g.argmax(-1).tolist())
    hist.probs.append(torch.softmax(logits.detach(), -1).tolist())

assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rgn.parameters()), \
    "every RGN parameter gets a gradient through the composite"
print(f"{cfg.iterations} iterations: L {hist.loss[0]:.4f} -> {hist.loss[-1]:.4f}")

# %% [markdown]
# ## 5. Choose, rank, paste (notebook 07)
# Each anchor keeps its most probable box; the K results are ranked by
# $S = \alpha S_{t2i} + \beta S_{i2i} + \gamma S_{dir}$ with the top-3 rule ($\gamma = 0$ is
# the paper's score; the CPU settings read the caption with $\gamma = 3$); the winner's box is
# pasted into the full-resolution input. The paste is feathered (`lrlib.blend.feather`,
# `blend_px` = 3): inside the box the mask ramps from 1/3 on its border to 1 three pixels in,
# $y = w\,E + (1 - w)\,x$, which softens the box's edge (it does not hide it where the fill
# differs from the surroundings); outside it $w = 0$. Where the
# edit changed a pixel a lot (the new object, the old one's removal) the ramp would fade it, so
# there the weight stays 1: $w' = \max(w,\ m \min(1, D/\tau))$, $D$ = the 3 x 3 maximum of
# $\max_c |E - x|$, $\tau$ = `blend_tau` (`lrlib.blend.keep_changes`).

# %%
from lrlib.blend import feather, keep_changes
from lrlib.scoring import pick_best, quality_scores

with torch.no_grad():
    probs = torch.softmax(rgn(pooled, geom), -1)                        # (K, M)
    chosen = probs.argmax(-1)
    results = C[torch.arange(K), chosen]                                # (K, 3, S, S)
    scores = quality_scores(models.clip.encode_image(results), emb.E_T, emb.E_I_src,
                            cfg.alpha, cfg.beta, cfg.score_scale or models.clip.logit_scale,
                            emb.E_T_caption, cfg.gamma)   # score_scale 1: raw cosines (official)
best = pick_best(scores, cfg.rank_top)

H, W = x_full.shape[-2:]
m_box = masks.view(K, M, 1, S, S)[best, chosen[best]]                  # (1, S, S)
w_best = keep_changes(feather(m_box, cfg.blend_px), m_box, results[best], x[0], cfg.blend_tau)
m_best = F.interpolate(w_best[None].float().cpu(), size=(H, W), mode="nearest")
up = F.interpolate(results[best][None].cpu(), size=(H, W), mode="bicubic",
                   align_corners=False).clamp(0, 1)
final = m_best * up + (1 - m_best) * x_full
print("chosen box per anchor:", [boxes[k, c].tolist() for k, c in enumerate(chosen.tolist())],
      "| best anchor:", best)

# %% [markdown]
# ## Check: the same as `lrlib.edit`
# Same image, prompt, caption, config and seed: the same anchors, boxes, loss curve, box
# probabilities, choices, scores and final image. (On a CPU, bit for bit. On a GPU a few
# backward kernels add in a random order, so the numbers there agree to a tolerance.)

# %%
result = lrlib.edit(image, prompt, caption=caption, config=cfg, models=models)

tol = dict(atol=1e-3, rtol=1e-3) if dev.type == "cuda" else dict(atol=0, rtol=0)
assert result.anchors == anchors.tolist() and result.boxes == boxes.tolist()
torch.testing.assert_close(result.candidates, C.cpu(), **tol)
torch.testing.assert_close(torch.tensor(result.history.loss), torch.tensor(hist.loss), **tol)
assert result.history.chosen == hist.chosen
torch.testing.assert_close(torch.tensor(result.history.probs), torch.tensor(hist.probs), **tol)
torch.testing.assert_close(torch.tensor(result.probs), probs.cpu(), **tol)
assert result.chosen == chosen.tolist() and result.best == best
torch.testing.assert_close(torch.tensor(result.scores["S"]), scores["S"].cpu(), **tol)
if dev.type == "cpu":
    assert np.array_equal(np.asarray(result.image), np.asarray(lrlib.images.to_pil(final[0])))
print(f"hand-written run == lrlib.edit: {cfg.iterations} iterations, chosen {result.chosen}, "
      f"best #{result.best} ({result.seconds:.0f} s for lrlib.edit)")

# %% [markdown]
# ## Training, in pictures
# The loss and its three terms per iteration (each the mean over the K anchors for the sampled
# boxes: the curve is noisy because the Gumbel sample and the CLIP augmentations change every
# iteration), and each anchor's box probabilities $\mathrm{softmax}(\pi_i)$ from `History.probs`.

# %%
P = np.array(hist.probs)                                     # (iterations, K, M)
fig, ax = plt.subplots(1, K + 1, figsize=(3.2 * (K + 1), 3), squeeze=False)
ax = ax[0]
ax[0].plot(hist.loss, "k", label="L")
for name, v in hist.terms.items():
    ax[0].plot(v, label=name, lw=1)
ax[0].set_xlabel("iteration"); ax[0].legend(fontsize=7); ax[0].set_title("losses")
sides = cfg.box_sides()
for k in range(K):
    for j in range(M):
        ax[k + 1].plot(P[:, k, j], label=f"side {sides[j]:.2f}")
    ax[k + 1].set_ylim(0, 1); ax[k + 1].set_xlabel("iteration")
    ax[k + 1].set_title(f"anchor {k}: p(box)" + (" *" if k == best else ""))
ax[1].legend(fontsize=6)
plt.tight_layout()
plt.show()

# %% [markdown]
# All K·M candidates, each with its final probability (the chosen box per anchor framed):

# %%
fig, ax = plt.subplots(K, M, figsize=(1.6 * M, 1.7 * K), squeeze=False)
for k in range(K):
    for j in range(M):
        ax[k, j].imshow(C[k, j].permute(1, 2, 0).cpu().clamp(0, 1))
        ax[k, j].set_title(f"{probs[k, j]:.2f}", fontsize=8)
        ax[k, j].set_xticks([]); ax[k, j].set_yticks([])
        if j == int(chosen[k]):
            for sp in ax[k, j].spines.values():
                sp.set_color("red"); sp.set_linewidth(2.5)
    ax[k, 0].set_ylabel(f"anchor {k}", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The final edit

# %%
verdict = judge_edit(image, result.image, task)
fig = result.figure()
plt.show()
print(f"asked for {task.target_colour} {task.target_shape} in {task.target_box}; the judge reads "
      f"{verdict['verdict'].colour} {verdict['verdict'].shape} -> success {verdict['success']}, "
      f"PSNR outside the box {verdict['psnr_outside']:.1f} dB")

# %% [markdown]
# ## Two estimators on the same candidates
# The straight-through estimator above trains on one sampled composite per anchor; its gradient
# $\partial L / \partial g_{ij} = \langle \partial L / \partial e_i, C_{ij} \rangle$ is a first-order
# guess of how the loss would change if the choice moved to box $j$. Since the candidates are
# cached, lrlib can also optimise the *expected* loss exactly (`estimator="expected"`):
#
# $$\mathcal L_i = \sum_j p_{ij}\, L(C_{ij}), \qquad p_i = \mathrm{softmax}(\pi_i), \qquad
#   \frac{\partial \mathcal L_i}{\partial \pi_{ij}} = p_{ij}\big(L(C_{ij}) - \mathcal L_i\big),$$
#
# every candidate's loss evaluated (no gradient through CLIP), at M times the CLIP forward passes.
# First the closed-form gradient, checked against autograd on one loss table:

# %%
from lrlib.train import train_rgn

with torch.no_grad():
    table = loss_fn(C.flatten(0, 1), torch.Generator().manual_seed(cfg.seed))["L"].view(K, M)
pi = torch.randn(K, M, generator=torch.Generator().manual_seed(1), requires_grad=True)
p = torch.softmax(pi, -1)
(p * table).sum().backward()
expected_L = (p * table).sum(-1, keepdim=True)
torch.testing.assert_close(pi.grad, (p * (table - expected_L)).detach())
print("loss of every candidate (one evaluation):\n", table.cpu().numpy().round(4))

# %% [markdown]
# Now both estimators, from the same initial RGN, on the same composites, for the same number
# of iterations ("st" is the run above):

# %%
rgn_exp = RGN(pooled.shape[2], cfg.roi_size, cfg.rgn_channels, cfg.rgn_hidden).to(dev)
rgn_exp.load_state_dict(rgn_init)
hist_exp = train_rgn(rgn_exp, pooled, geom, C, loss_fn, cfg.iterations, cfg.lr, cfg.tau, cfg.hard,
                     torch.Generator().manual_seed(cfg.seed), progress=False, estimator="expected")
P_exp = np.array(hist_exp.probs)

lowest = table.argmin(-1).tolist()
fig, ax = plt.subplots(2, K, figsize=(3.2 * K, 5.2), sharey=True, squeeze=False)
for row, (name, PP) in enumerate([("st", P), ("expected", P_exp)]):
    for k in range(K):
        for j in range(M):
            ax[row, k].plot(PP[:, k, j], lw=2.2 if j == lowest[k] else 1,
                            label=f"box {j}" + (" (lowest loss)" if j == lowest[k] else ""))
        ax[row, k].set_title(f"{name}: anchor {k}", fontsize=9)
        ax[row, k].set_ylim(0, 1)
    ax[row, 0].set_ylabel("p(box)")
ax[0, 0].legend(fontsize=6)
fig.suptitle("thick line: the box with the lowest loss in one evaluation of every candidate", fontsize=9)
for a in ax[1]:
    a.set_xlabel("iteration")
plt.tight_layout()
plt.show()

final_st, final_exp = P[-1].argmax(-1).tolist(), P_exp[-1].argmax(-1).tolist()
print("box with the lowest loss per anchor:", lowest)
print(f"st picks      {final_st}  (agrees with the lowest-loss box for "
      f"{sum(a == b for a, b in zip(final_st, lowest))}/{K} anchors)")
print(f"expected picks {final_exp} (agrees for {sum(a == b for a, b in zip(final_exp, lowest))}/{K})")
print(f"mean loss of the picked boxes: st {float(table[torch.arange(K), torch.tensor(final_st)].mean()):.4f}, "
      f"expected {float(table[torch.arange(K), torch.tensor(final_exp)].mean()):.4f}")

# %% [markdown]
# ## A failure case, explained: the paper's loop at these settings
# In the toy world at these CPU settings the hand-written run above does not learn, and the
# final edit changes the wrong object (with real checkpoints, read your own numbers). Both have
# causes we can point at:
#
# * **Too few, too noisy steps for "st".** Each of the 12 iterations sees one sampled box per
#   anchor, through freshly drawn CLIP crops. The loss differences between an anchor's boxes
#   (the table above: about 0.05 to 0.35) are of the size of the crop-to-crop noise, and 12 Adam
#   steps of lr 0.003 barely move the logits; the printed loss goes up or down with the samples,
#   not because the RGN learns. The paper runs 50 iterations on real models.
# * **A caption-blind ranking on the wrong anchors.** This loop uses the paper's top-K attention
#   peaks and squares; the ranking S has no term saying which region the caption names, so a
#   good-looking edit of another object can win. Below: each anchor's chosen box against the
#   target box, and which anchor won.

# %%
def box_iou(a, b):
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


for k, c in enumerate(chosen.tolist()):
    b = boxes[k, c].tolist()
    print(f"anchor {k}: chosen box {b}, IoU with the target {box_iou(b, task.target_box):.2f}"
          + ("  <- the winner" if k == best else ""))
print("success of the paper's loop here:", verdict["success"])

# %% [markdown]
# ## A run that learns: two objectives on the same loss table
# lrlib's default estimator ("expected") computes every candidate's loss once (`table_views` =
# 16 crops per candidate: less noise than a training step's `n_aug`) and lets the RGN minimise
# $E_p[L] = \sum_j p_{ij} L_{ij}$. The minimum of that over probability vectors is the one-hot on
# the smallest $L_{ij}$ (a closed form), but gradient descent does not always get there: the
# gradient in the logit of box $j$ is $p_{ij}(L_{ij} - E_p[L])$, which vanishes on every box the
# RGN has already made unlikely. An RGN that moves early toward a box merely better than the
# worst stays there.
#
# `LRConfig(objective="softmin")` fits the same table another way: the cross-entropy to the
# target $q_i = \mathrm{softmax}(-L_i / \tau_q)$ (`softmin_tau`). Its gradient $p_i - q_i$ does
# not vanish, and the most probable box of $q_i$ is the lowest-loss box. It is lrlib's default
# objective: among the default's ladder boxes (`lrlib/bench/LEARNING.md`) the learned choice
# then reaches its loss's argmin, where the expected loss stalls on a too-large box. (Here
# both train on the paper's three losses, the table above, so the comparison is of the
# objectives alone.)
#
# We train both for 60 iterations from the same initial RGN. The checks are independent of
# lrlib's code: the closed-form minimum $\frac{1}{K}\sum_i \min_j L_{ij}$ of the table, and the
# target $q$ computed here in numpy.

# %%
from lrlib.train import loss_table

tab = loss_table(loss_fn, C, torch.Generator().manual_seed(cfg.seed), cfg.table_views)["L"].view(K, M)
floor = float(tab.min(-1).values.mean())                              # the closed-form minimum
runs = {}
for objective in ("expected", "softmin"):
    rgn_long = RGN(pooled.shape[2], cfg.roi_size, cfg.rgn_channels, cfg.rgn_hidden).to(dev)
    rgn_long.load_state_dict(rgn_init)
    runs[objective] = train_rgn(rgn_long, pooled, geom, C, loss_fn, 60, cfg.lr, cfg.tau, cfg.hard,
                                torch.Generator().manual_seed(cfg.seed), progress=False,
                                estimator="expected", table_views=cfg.table_views,
                                objective=objective, softmin_tau=cfg.softmin_tau)


def gaps(P_last):
    """How much worse than its anchor's lowest-loss box each anchor's most probable box is
    (0: it is a lowest-loss box)."""
    picks = torch.as_tensor(P_last.argmax(-1))                        # (K,)
    return (tab[torch.arange(K), picks] - tab.min(-1).values).tolist()


for objective, h in runs.items():
    P_last = np.array(h.probs)[-1]                                    # (K, M)
    E_L = float((torch.as_tensor(P_last) * tab).sum(-1).mean())
    print(f"{objective:8s}: E_p[L] {h.loss[0]:.4f} -> {E_L:.4f} (closed-form minimum {floor:.4f}); "
          f"picks {P_last.argmax(-1).tolist()}, lowest-loss boxes {tab.argmin(-1).tolist()}, "
          f"each pick's loss above its anchor's lowest {[round(g, 4) for g in gaps(P_last)]}")

fig, ax = plt.subplots(2, K, figsize=(3.2 * K, 5.2), sharey=True, squeeze=False)
for row, (objective, h) in enumerate(runs.items()):
    PP = np.array(h.probs)                                            # (60, K, M)
    for k in range(K):
        for j in range(M):
            best = j == int(tab[k].argmin())
            ax[row, k].plot(PP[:, k, j], lw=2.2 if best else 1,
                            label=f"box {j}" + (" (lowest loss)" if best else ""))
        ax[row, k].set_title(f"{objective}: anchor {k}", fontsize=9)
        ax[row, k].set_ylim(0, 1)
    ax[row, 0].set_ylabel("p(box)")
ax[0, 0].legend(fontsize=6)
for a in ax[1]:
    a.set_xlabel("iteration")
fig.suptitle("thick line: each anchor's lowest-loss box in the table", fontsize=9)
plt.tight_layout()
plt.show()

# softmin: the RGN's probabilities approach the target q (numpy, from the table alone), and each
# anchor's most probable box is a lowest-loss box (two boxes within 0.005 are both minima)
P_soft = np.array(runs["softmin"].probs)[-1]
L_np = tab.cpu().numpy()
q = np.exp(-(L_np - L_np.min(-1, keepdims=True)) / cfg.softmin_tau)
q /= q.sum(-1, keepdims=True)                                          # (K, M)
print(f"softmin: largest |p - q| after 60 iterations {np.abs(P_soft - q).max():.3f}")
assert max(gaps(P_soft)) < 0.005, "softmin: each anchor's most probable box should be a lowest-loss box"
assert np.abs(P_soft - q).max() < 0.1, "softmin: the probabilities should approach softmax(-L / tau_q)"
reached = sum(g < 0.005 for g in gaps(np.array(runs["expected"].probs)[-1]))
print(f"expected: its most probable box is a lowest-loss box on {reached} of {K} anchors")

# %% [markdown]
# Read the two rows of curves. With softmin every anchor ends on its lowest-loss box (the thick
# line), at the probability the target gives it (below 1 where another box's loss is close).
# With the expected loss, the printed count says how many anchors reached their lowest-loss box
# in this run; an anchor that did not is the stall described above: its probability went early
# to another box and the thick line's fell near 0. How often that happens is measured on the
# toy benchmark's ladder proposals (`lrlib/bench/LEARNING.md`, 306 anchors, 20 iterations): the
# expected objective's pick missed its own table's lowest-loss box on 123 anchors, softmin's on
# 36 (30 of them the same box under another index). Where the expected loss ends can even
# change with the machine: on the random-weight branch (`LRLIB_WORLD=real-random`), the float
# rounding of 2 CPU threads instead of 1 was enough to turn "all three anchors on their
# lowest-loss box" into "all three on box 0". That is why only softmin's result is asserted.

# %% [markdown]
# What it does and does not fix: trained with softmin, the RGN picks, for every anchor, the box
# the losses prefer; whether the final edit is right still depends on the anchors (are they on the named
# object?), on the boxes offered and on the ranking. Those are lrlib's caption anchors, ladder
# boxes with their box terms, and S_cap, on by default (`LRConfig()`), and measured in notebook
# 08 and the README's table.

# %% [markdown]
# ## Exercises
# Each exercise cell holds a placeholder (`...`): replace it with your code and run the cell.
# The checker (`lrlib.course`) computes the answer its own way and prints "correct" or a hint;
# left as it is, it prints "not answered yet". Solutions: `solutions/09_end_to_end_solutions.ipynb`.

# %% [markdown]
# **Exercise (the gradient `estimator="expected"` follows).** With `objective="expected"` the
# RGN is trained on $E_p[L] = \sum_j p_j L_j$ with $p = \mathrm{softmax}(z)$ and the candidates' losses
# $L_j$ fixed. Write its gradient with respect to the logits $z$ in closed form (numpy). The
# checker compares it with finite differences. What is the gradient when every $L_j$ is equal,
# and what does that say about anchors whose candidates all score alike?

# %%
from lrlib import course


def expected_loss_grad(z, L):
    ...                       # your code: an array shaped like z


course.check_expected_grad(expected_loss_grad)

# %% [markdown]
# ## Recap
# * `lrlib.edit` is: anchors, proposals, ROI features, one candidate edit per box, the RGN
#   trained on the candidates' losses, one edit per anchor (its most probable box), the
#   ranking, the paste.
# * The paper's estimator ("st") trains on one sampled box per anchor; lrlib's default
#   ("expected") computes every candidate's loss once. Descending $E_p[L]$ follows the gradient
#   $p_j (L_j - E_p[L])$: it pushes probability towards boxes below the average loss, and does
#   nothing when all boxes score alike, or on a box it has already made unlikely: it can stall
#   on a wrong box (`objective="expected"`). lrlib's default objective, `"softmin"`, fits the
#   same table by the cross-entropy to softmax(-L / tau_q), whose gradient p - q does not
#   vanish: it reaches each anchor's lowest-loss box.
#
# Next: notebook 10, every knob as a control.
