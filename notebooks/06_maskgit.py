# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Editing with MaskGIT / Muse tokens
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/06_maskgit.ipynb)
#
# **You will learn** how the editor (b) of the method fills a box with discrete tokens instead of
# denoising: an image becomes a grid of codebook ids, the box becomes the token cells it touches,
# and a bidirectional transformer fills the hidden cells in a few parallel steps on a cosine
# schedule. We write the schedule and the decoding loop from the MaskGIT paper, check them
# against lrlib's token for token, and watch the grid fill in.
#
# **Needs**: about 1 CPU-minute in the toy world (the default without a GPU or hub access);
# a GPU with internet for the real checkpoint (`amused/amused-256`, aMUSEd = open Muse).

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
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from lrlib.course import world_and_config
from lrlib.worlds import banner

WORLD, cfg = world_and_config(editor="maskgit", progress=False)
# override: world_and_config("toy", editor="maskgit", progress=False)
print(banner(cfg))

# %% [markdown]
# ## The editor and an edit task
# A toy edit task gives the image, the box of the object to change and the new look (drawn at
# the working size: 512 px with real checkpoints; the section "On a photo" at the end repaints a
# shipped photo).

# %%
from lrlib.images import load_image, to_tensor
from lrlib.logs import quiet_libraries
from lrlib.models import load_models
from lrlib.regions import boxes_to_masks
from lrlib.toy import judge_edit, make_edit_task

quiet_libraries()                                  # no library warnings or loading bars
ed = load_models(cfg).editor                       # a lrlib.editors.maskgit.MaskGITEditor
crop_margin, ed.crop_margin = ed.crop_margin, None # the whole image first; the crop comes last
S = cfg.size
task = make_edit_task(3, size=S)
x = to_tensor(load_image(task.scene.image))[None]    # (1, 3, S, S) in [0, 1]
prompt = task.prompt
mask = boxes_to_masks(torch.tensor([task.target_box]), S, S)   # (1, 1, S, S)
h, w = ed.token_shape
print(f"task: {task.source_caption!r} -> {prompt!r}, box {task.target_box}")
print(f"editor: {ed.resolution} px = {h} x {w} tokens of {ed.grid} x {ed.grid} px, "
      f"codebook of {ed.codebook_size} codes, mask token id {ed.mask_id}")


def show(t):
    """(3, H, W) tensor in [0, 1] -> (H, W, 3) array for imshow."""
    return t.detach().float().cpu().permute(1, 2, 0).clamp(0, 1).numpy()


def show_row(images, titles):
    """(3, H, W) tensors side by side, with titles."""
    fig, ax = plt.subplots(1, len(images), figsize=(3 * len(images), 3.2))
    for a, im, title in zip(ax, images, titles):
        a.imshow(show(im)); a.set_title(title); a.axis("off")
    plt.show()


# %% [markdown]
# ## Images as tokens
# A VQ autoencoder maps the image to a grid of codebook ids, one per $g \times g$ cell:
#
# $$z = Q(E(x)) \in \{0, \dots, K-1\}^{h \times w}, \qquad \hat x = D(z),$$
#
# $Q$ picking the nearest of $K$ codebook vectors for each cell. Everything the transformer does
# happens on $z$; the decoder $D$ turns ids back into pixels. The round trip is lossy (a whole
# cell is one of $K$ codes), which is why lrlib never trusts the editor's pixels outside the box.

# %%
from lrlib.toy.judge import psnr

x_R = F.interpolate(x, size=(ed.resolution, ed.resolution), mode="bilinear", antialias=True,
                    align_corners=False).clamp(0, 1)
tokens = ed.tokenize(x_R)                            # (1, h, w) ids
recon = ed.detokenize(tokens)                        # (1, 3, R, R)
assert tokens.shape == (1, h, w) and int(tokens.max()) < ed.codebook_size
print(f"{h * w} tokens, {len(tokens.unique())} distinct codes used; "
      f"round-trip PSNR {psnr(x_R[0], recon[0]):.1f} dB")

fig, ax = plt.subplots(1, 3, figsize=(9, 3.2))
ax[0].imshow(show(x_R[0])); ax[0].set_title("x")
fig.colorbar(ax[1].imshow(tokens[0].cpu(), cmap="nipy_spectral"), ax=ax[1], fraction=0.046,
             pad=0.04, label="code id")
ax[1].set_title("token ids z")
ax[2].imshow(show(recon[0])); ax[2].set_title("D(z)")
for a in ax:
    a.axis("off")
plt.show()

# %% [markdown]
# ## A box on the token grid
# The editor can only repaint whole cells. A token is hidden behind the mask token $[M]$ if *any*
# pixel of its cell is in the box (`token_mask`); `snap_mask` turns those cells back into the
# pixel mask really repainted. Written by hand: cut the mask into $g \times g$ cells (in the
# input's own coordinates) and ask whether each cell has a masked pixel.

# %%
tm = ed.token_mask(mask).cpu()                       # (1, h, w) bool
cell = S // h                                        # input pixels per token cell
mine = mask[0, 0].reshape(h, cell, w, cell).amax(dim=(1, 3)) >= 0.5
assert torch.equal(mine, tm[0])
snapped = ed.snap_mask(mask)                         # (1, 1, S, S)
assert torch.equal(snapped[0, 0], tm[0].float().repeat_interleave(cell, 0).repeat_interleave(cell, 1))



def bbox(m):
    """Tight box (x0, y0, x1, y1) of a (1, 1, H, W) mask."""
    rows, cols = torch.nonzero(m[0, 0].any(1))[:, 0], torch.nonzero(m[0, 0].any(0))[:, 0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


x0, y0, x1, y1 = task.target_box
sx0, sy0, sx1, sy1 = bbox(snapped)
assert 0 <= x0 - sx0 < cell and 0 <= y0 - sy0 < cell and 0 <= sx1 - x1 < cell and 0 <= sy1 - y1 < cell
print(f"box {task.target_box} -> snapped box {(sx0, sy0, sx1, sy1)}: {int(tm.sum())} tokens, "
      f"{float(snapped.sum() / mask.sum()):.2f} x the box's area")

fig, ax = plt.subplots(1, 2, figsize=(7, 3.5))
for a, (m, title) in zip(ax, [(mask, "the box (pixels)"), (snapped, "snap_mask: whole cells")]):
    a.imshow(show(x[0]))
    a.imshow(m[0, 0], cmap="Reds", alpha=0.45)
    for k in range(h + 1):
        a.axhline(k * cell - 0.5, color="w", lw=0.4); a.axvline(k * cell - 0.5, color="w", lw=0.4)
    a.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="k", lw=1.5))
    a.set_title(title); a.axis("off")
plt.show()

# %% [markdown]
# ### Why boxes suit token editors
# Whatever region we ask for, a token editor repaints a union of cells. An axis-aligned box
# snaps to an axis-aligned box of cells, less than one cell larger on each side (the assert
# above): the method's region stays the shape the RGN chose, and what the editor is asked to
# fill is still "a rectangle with this in it". A free-form mask becomes a staircase of cells, and
# every cell on its edge repaints pixels the mask wanted kept. A disc, and the box around it:

# %%
yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
cx, cy, r = S * 0.52, S * 0.47, S * 0.21
disc = (((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2) <= r ** 2).float()[None, None]
sq = boxes_to_masks(torch.tensor([[round(cx - r), round(cy - r), round(cx + r), round(cy + r)]]), S, S)
fig, ax = plt.subplots(1, 2, figsize=(7, 3.5))
for a, (m, name) in zip(ax, [(sq, "box"), (disc, "disc")]):
    sm = ed.snap_mask(m)
    is_box = torch.equal(sm, boxes_to_masks(torch.tensor([bbox(sm)]), S, S))
    assert is_box == (name == "box")           # the box snaps to a box, the disc to a staircase
    cb = fig.colorbar(a.imshow(sm[0, 0] + m[0, 0], cmap="viridis", vmin=0, vmax=2), ax=a,
                      fraction=0.046, pad=0.04, ticks=[0, 1, 2])
    cb.ax.set_yticklabels(["kept", "snapped only", "both"], fontsize=7)
    a.set_title(f"{name}: +{float((sm - m).sum() / m.sum()):.0%} area, a box: {is_box}")
    a.axis("off")
plt.show()

# %% [markdown]
# ## The cosine schedule, from the paper
# MaskGIT (Chang et al. 2022, Sec. 3.2) fills the $N$ hidden tokens in $T$ steps and decides, by
# a mask scheduling function $\gamma$, how many stay hidden after each step $t = 1..T$:
#
# $$n_t = N\,\gamma\!\left(\frac{t}{T}\right), \qquad \gamma(r) = \cos\!\left(\frac{\pi r}{2}\right),$$
#
# decreasing from $\gamma(0) = 1$ (all hidden) to $\gamma(1) = 0$ (all filled): few tokens are
# committed early, when the model knows little, and many at the end, when most of the picture is
# there to condition on. The paper writes $\lceil\cdot\rceil$; the released MaskGIT code and
# diffusers' `AmusedScheduler` take $\lfloor\cdot\rfloor$ and clamp it, so that every step
# reveals at least one token and keeps at least one hidden for the next:
# $n_t \leftarrow \max(1, \min(n_{t-1} - 1, n_t))$ for $t < T$.
#
# Written from those sentences, not from lrlib's code, and then compared with lrlib's
# `mask_schedule` over many $(N, T)$:

# %%
from lrlib.editors.maskgit import mask_schedule


def gamma(r):
    return math.cos(math.pi * r / 2)


def paper_schedule(N, T, clamp):
    """Tokens still hidden after steps t = 1..T (the last step fills everything)."""
    out, hidden = [], N
    for t in range(1, T + 1):
        n = 0 if t == T else math.floor(N * gamma(t / T))
        if clamp and 0 < t < T and N > 0:
            n = max(1, min(hidden - 1, n))
        out.append(n)
        hidden = n
    return out


grid_NT = [(N_, T_) for N_ in (1, 2, 7, int(tm.sum()), 256, 1000) for T_ in (1, 2, 4, 8, 12, 30)]
agree = {clamp: all(paper_schedule(N_, T_, clamp) == mask_schedule(N_, T_) for N_, T_ in grid_NT)
         for clamp in (False, True)}
assert any(agree.values()), "lrlib's mask_schedule follows neither the plain nor the clamped rule"
CLAMP = agree[True]
print(f"lrlib's mask_schedule == the {'clamped' if CLAMP else 'plain'} cosine schedule on all "
      f"{len(grid_NT)} (N, T); the two rules differ for N = 7, T = 12: "
      f"{paper_schedule(7, 12, False)} vs {paper_schedule(7, 12, True)}")

N = int(tm.sum())
fig, ax = plt.subplots(figsize=(5.5, 3.2))
for T in (4, 8, 12):
    ax.step(range(T + 1), [N] + paper_schedule(N, T, CLAMP), where="post", label=f"T = {T}")
r_ = np.linspace(0, 1, 100)
ax.plot(r_ * 12, N * np.cos(np.pi / 2 * r_), "k:", lw=1, label=r"$N\gamma(t/T)$, T = 12")
ax.set_xlabel("steps done"); ax.set_ylabel("tokens still hidden"); ax.legend(fontsize=8)
ax.set_title(f"N = {N} hidden tokens")
plt.show()

# %% [markdown]
# ## Decoding, step by step, from the paper
# One step of MaskGIT's iterative decoding, with the prompt $c$ (Muse and aMUSEd add the text and
# classifier-free guidance against the empty prompt $\varnothing$):
#
# 1. **predict** logits for every cell, $\hat\ell = \ell_\varnothing + s\,(\ell_c - \ell_\varnothing)$
#    (`ed.logits`: the model, the one piece we do not rewrite);
# 2. **sample** a code for every hidden cell, $\hat z_i \sim \mathrm{softmax}(\hat\ell_i / \tau_s)$;
# 3. **confidence** of each sample: its log-probability, plus Gumbel noise $g_i = -\log(-\log u_i)$
#    scaled by an annealed temperature, $\mathrm{conf}_i = \log p(\hat z_i) + \tau_t g_i$;
# 4. **reveal** the most confident samples, as many as leave $n_t$ cells hidden; the others are
#    hidden again and predicted anew at the next step. Revealed cells never change again.
#
# The annealing differs between the two codes: MaskGIT's goes $\tau_t = \tau_0 (1 - t/T)$
# after step $t$; aMUSEd's scheduler (and lrlib, which follows the checkpoint's own pipeline) goes
# linearly from $\tau_0$ to $\tau_1$ over the $T$ steps. Our loop below is one image, one token
# list, written from the four sentences above; it draws its random numbers in the natural order
# (the samples of the hidden cells, then one $u$ per cell), so with the same seed it must agree
# with lrlib's batched `generate_tokens` token for token, if both implement the same thing.

# %%
def anneal_amused(t, T, tau0, tau1):
    return tau0 if T == 1 else tau0 + (tau1 - tau0) * t / (T - 1)


def anneal_maskgit(t, T, tau0, tau1):
    return tau0 * (1 - (t + 1) / T)


def paper_decode(ed, z_src, hidden, prompt, generator, T, anneal):
    """One image: z_src (1, h, w) ids, hidden (1, h, w) bool -> final ids (1, h, w) and the grid
    after each step."""
    shape = z_src.shape
    z = z_src.flatten().clone().to(ed.device)
    still = hidden.flatten().clone().to(ed.device)         # cells not revealed yet
    z[still] = ed.mask_id
    n_after = paper_schedule(int(still.sum()), T, CLAMP)
    cond = ed.encode_prompts([prompt])
    states = [z.view(shape).clone()]
    for t in range(T):
        if still.any():
            log_p = torch.log_softmax(ed.logits(z.view(shape), cond)[0] / ed.sample_temperature, -1)
            cells = torch.nonzero(still)[:, 0]                                 # hidden, in order
            draw = torch.multinomial(log_p[cells].exp().to(generator.device), 1,
                                     generator=generator)[:, 0].to(z.device)    # 2. sample
            u = torch.rand(z.numel(), generator=generator, device=generator.device)
            g = -torch.log(-torch.log(u)).to(z.device)
            tau = anneal(t, T, *ed.temperature)
            conf = log_p[cells, draw] + tau * g[cells]                         # 3. confidence
            best = conf.argsort(descending=True)[:len(cells) - n_after[t]]     # 4. reveal
            z[cells[best]] = draw[best]
            still[cells[best]] = False
        states.append(z.view(shape).clone())
    return z.view(shape), states


T = 12 if WORLD == "real" else 8
from lrlib.editors.base import EditorSettings   # T steps for this call only

trace = []
theirs = ed.generate_tokens(tokens, tm, [prompt], torch.Generator().manual_seed(0), trace=trace,
                            settings=EditorSettings(steps=T))
ours, states = paper_decode(ed, tokens, tm, prompt, torch.Generator().manual_seed(0), T,
                            anneal_amused)
other, _ = paper_decode(ed, tokens, tm, prompt, torch.Generator().manual_seed(0), T,
                        anneal_maskgit)
assert torch.equal(ours, theirs)
assert [int((s == ed.mask_id).sum()) for s in states[1:]] == [n[0] for n in trace] \
    == paper_schedule(N, T, CLAMP)
outside = ~tm.to(ours.device)
for z in (ours, other):
    assert torch.equal(z[outside], tokens.to(z.device)[outside])   # visible tokens never change
    assert not (z == ed.mask_id).any()                             # every hidden token filled
print(f"decoding written from the paper == generate_tokens, all {h * w} tokens; hidden per step: "
      f"{[n[0] for n in trace]}")
print(f"with MaskGIT's annealing instead of aMUSEd's: {int((other != ours).sum())} of {N} hidden "
      "tokens differ")

# %% [markdown]
# The grid filling in. Top: token ids, hidden cells black. Bottom: the decoded image, hidden
# cells grey.

# %%
show_at = sorted(set(np.linspace(0, T, 5).round().astype(int).tolist()))
fig, ax = plt.subplots(2, len(show_at), figsize=(2.4 * len(show_at), 5))
for j, t in enumerate(show_at):
    z = states[t]
    hid = (z == ed.mask_id)
    ids = z.float().cpu().masked_fill(hid.cpu(), float("nan"))[0]
    im = ax[0, j].imshow(np.ma.masked_invalid(ids.numpy()), cmap="nipy_spectral",
                         vmin=0, vmax=ed.codebook_size - 1)
    if j == len(show_at) - 1:
        fig.colorbar(im, ax=ax[0, j], fraction=0.046, pad=0.04, label="code id (black: hidden)")
    ax[0, j].set_facecolor("black")
    img = ed.detokenize(torch.where(hid, 0, z))[0].cpu()
    hid_px = hid[0].float().cpu().repeat_interleave(ed.grid, 0).repeat_interleave(ed.grid, 1)
    img = img * (1 - hid_px) + 0.5 * hid_px
    ax[1, j].imshow(show(img))
    ax[0, j].set_title(f"step {t}: {int(hid.sum())} hidden" if t else f"start: {int(hid.sum())} hidden")
for a in ax.flat:
    a.set_xticks([]); a.set_yticks([])
plt.show()

# %% [markdown]
# ## The edit, and the composite
# `inpaint` = tokenize, hide the cells, decode the tokens, detokenize. As for Stable Diffusion,
# lrlib composites the result into the input with the *snapped* mask (the pixels really
# repainted, `m * E + (1 - m) * x`): outside those cells, the input bit for bit. The judge then
# reads the target box.

# %%
from lrlib.train import composites

edited = ed.inpaint(x, snapped, [prompt], torch.Generator().manual_seed(0))
C = composites(edited, snapped, x)
keep = (snapped == 0).expand_as(x)
assert torch.equal(C[keep], x[keep])
verdict = judge_edit(x[0], C[0], task)
print(f"asked for: {task.target_colour} {task.target_shape}; judge reads: "
      f"{verdict['verdict'].colour} {verdict['verdict'].shape} -> success {verdict['success']}")

show_row([x[0], edited[0], C[0]],
         ["input", "editor output (VQ round trip)", f"composite: {prompt[:28]}"])


# %% [markdown]
# ## Small boxes: the mask crop
# A box of a few tokens leaves the transformer little room to draw a shape. Like diffusers'
# `padding_mask_crop` (and lrlib's SD editor), the editor can cut a square of `crop_margin`
# times the box's side around it, resize the crop to its working resolution, edit there and
# paste it back. The toy MaskGIT was trained that way (its folder's `lrlib_editor.json` says
# `crop_margin: 1.5`): on whole scenes the same small model only reached 0.27 success, on crops
# 0.615 (its model card). Then the token cells live in the crop, so lrlib composites with the
# box itself.

# %%
if crop_margin:
    ed.crop_margin = crop_margin
    edited_crop = ed.inpaint(x, mask, [prompt], torch.Generator().manual_seed(0))
    assert torch.equal(ed.snap_mask(mask), mask)          # the composite mask is the box
    C2 = composites(edited_crop, mask, x)
    v2 = judge_edit(x[0], C2[0], task)
    print(f"with the crop (margin {crop_margin}): judge reads {v2['verdict'].colour} "
          f"{v2['verdict'].shape} -> success {v2['success']}")
    show_row([x[0], C[0], C2[0]], ["input", "whole image", f"crop x{crop_margin}"])
else:
    print(f"{cfg.maskgit_model}: no crop_margin set, the editor works on the whole image")

# %% [markdown]
# ## On a photo
# With real checkpoints, the editor as `lrlib.edit` runs it (the mask crop as configured) on a
# shipped photo: the cup's box of `data/photos/coffee.png` (the centred square at the working
# size, `lrlib.course.photo_task`) repainted as "a cup of green tea". No judge reads a photo;
# what holds whatever the weights is the composite: outside the repainted cells, the photo.

# %%
if WORLD == "real":
    from lrlib import course

    ed.crop_margin = crop_margin
    photo, p_caption, p_prompt, p_box = course.photo_task("coffee", S)
    xp = to_tensor(photo)[None]
    mp = boxes_to_masks(torch.tensor([p_box]), S, S)
    mc = mp if ed.crop_margin else ed.snap_mask(mp)          # the pixels really repainted
    Ep = ed.inpaint(xp, mc, [p_prompt], torch.Generator().manual_seed(cfg.seed))
    Cp = composites(Ep, mc, xp)
    keep_p = (mc == 0).expand_as(xp)
    assert Cp.shape == xp.shape and torch.equal(Cp[keep_p], xp[keep_p])
    show_row([xp[0], Ep[0], Cp[0]], [p_caption, "editor output", f"composite: {p_prompt}"])
else:
    print("real checkpoints only (world_and_config('real'), or LRLIB_WORLD=real-random to run "
          "this branch with random weights)")

# %% [markdown]
# ## Exercises
# Each exercise cell holds a placeholder (`...`): replace it with your code and run the cell.
# The checker (`lrlib.course`) computes the answer its own way and prints "correct" or a hint;
# left as it is, it prints "not answered yet". Solutions: `solutions/06_maskgit_solutions.ipynb`.

# %% [markdown]
# **Exercise (look at the schedule).** With the paper's cosine schedule (no clamp), for
# $N = 256$ tokens and $T = 12$ steps: how many tokens are revealed at the first step, and how
# many at the last? Compute them from $n_t = \lfloor N \cos(\pi t / 2T) \rfloor$ (hidden
# after step $t$, $n_T = 0$). The ratio says how cautious the first step is.

# %%
from lrlib import course

revealed_first_last = ...     # your code: (first, last)
course.check_reveals(revealed_first_last, N=256, T=12)

# %% [markdown]
# ## Recap
# * aMUSEd / MaskGIT edit in a grid of VQ tokens, so a box is snapped to the token grid.
# * The cosine schedule hides $n_t = N\cos(\pi t / 2T)$ tokens after step $t$: few are committed
#   early, many late; lrlib's `mask_schedule` was checked against the rule written from the paper.
# * Decoding keeps the most confident tokens each step; lrlib's decoder matched ours token for
#   token.
# * Small boxes are edited on a crop (`crop_margin`), which is how the toy MaskGIT was trained.
#
# Next: notebook 07, ranking the K candidate edits.
