# %% [markdown]
# # 08 · Ablations: are the learned regions better than random ones?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/08_ablations.ipynb)
#
# **You will learn** how the paper's ablations are set up and what they show when the answer
# is known: in the toy world every task says which object must change and into what, and a
# procedural judge (no model) grades each result. We compare, on the same scenes:
#
# | strategy | the edit region |
# |---|---|
# | ours | DINO anchors + the box the trained RGN picks, ranked by S |
# | ours w/o L_dir, w/o L_str | the same, trained without that loss term |
# | DINO-anchor-random-size | DINO anchors, a random box size per anchor |
# | random-anchor-random-size | random anchors, random sizes |
# | oracle (GT box) | the source object's true box |
#
# **Needs**: about 1.5 CPU-minutes for a handful of tasks here; the full table (200 tasks) comes
# from `python -m lrlib.bench toy --n 200` and is copied in the README with its command.

# %%
# Install on Colab only (locally: `make install` in the repository)
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "git+https://github.com/learnable-regions/lrlib"])

# %% [markdown]
# ## Which models run
# The ablation needs ground truth, so it runs in the toy world (or the random stand-ins when the
# toy weights are not installed; then every strategy fails the judge and only the code runs).
# `LRLIB_WORLD=random|toy` overrides.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from lrlib.bench.toy import STRATEGIES, format_table, iou, run_toy
from lrlib.models import load_models
from lrlib.toy import benchmark_tasks
from lrlib.world import banner, choose_world, config_for

WORLD = choose_world()
if WORLD == "real":
    WORLD = "toy"          # the ablation needs ground truth: always the toy world
cfg = config_for(WORLD, progress=False)
print(banner(cfg))
models = load_models(cfg)

# %% [markdown]
# ## The metrics, by hand
# IoU of two boxes $a, b$: $\frac{|a \cap b|}{|a \cup b|}$. A success needs the judge to find the
# prompt's colour *and* shape where the source object was. Preservation is the PSNR between
# source and result outside the source object's box (higher: less collateral change).

# %%
a, b = (10, 10, 30, 30), (20, 20, 40, 40)
by_hand = (10 * 10) / (20 * 20 + 20 * 20 - 10 * 10)
assert math.isclose(iou(a, b), by_hand) and iou(a, a) == 1.0 and iou(a, (40, 40, 50, 50)) == 0.0
print(f"IoU{a, b} = {iou(a, b):.3f}")

# %% [markdown]
# ## Run every strategy on a few held-out tasks
# All strategies see the same scenes; ours and its ablations share the same candidate edits
# (only the RGN's training differs), the random baselines get their own edits.

# %%
N = 3
images = {}
summary = run_toy(N, cfg, models, progress=False, images=images)
print(format_table(summary))

# %% [markdown]
# ## Look at them
# One row per task: the source (green: the object to change), then each strategy's result with
# its box. The judge's verdict is in the title.

# %%
from lrlib.toy.judge import judge_region

tasks = benchmark_tasks(N, size=cfg.size)
fig, ax = plt.subplots(N, len(STRATEGIES) + 1, figsize=(2.1 * (len(STRATEGIES) + 1), 2.3 * N))
for i, t in enumerate(tasks):
    ax[i, 0].imshow(t.scene.image)
    x0, y0, x1, y1 = t.target_box
    ax[i, 0].add_patch(plt.Rectangle((x0 - .5, y0 - .5), x1 - x0, y1 - y0, fill=False, ec="lime"))
    ax[i, 0].set_title(f"{t.source_caption[:18]}\n-> {t.prompt[:18]}", fontsize=7)
    for j, s in enumerate(STRATEGIES):
        img, box = images[s][i]
        ax[i, j + 1].imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
        ax[i, j + 1].add_patch(plt.Rectangle((box[0] - .5, box[1] - .5), box[2] - box[0],
                                             box[3] - box[1], fill=False, ec="red"))
        v = judge_region(img, t.target_box)
        ax[i, j + 1].set_title(f"{s[:22]}\n{v.colour} {v.shape}", fontsize=7)
for a_ in ax.flat:
    a_.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Reading the table
# * **IoU** and **anchor_on_obj** measure *where* each strategy edits; **success** whether the
#   edit did what the prompt asked *there*; **psnr_out** how much else it touched.
# * The oracle row is the editor's own ceiling: with the perfect box, how often does the editor
#   paint the right thing? No region strategy can beat it on success.
# * With a handful of tasks the numbers are noisy; the README's 200-task table is the one to
#   quote. The checks below only assert what holds by construction.
# * What the 200 tasks say (README, `python -m lrlib.bench toy --n 200`): ours reaches success
#   0.54 and IoU 0.39 against 0.38 / 0.25 (DINO anchor, random size) and 0.25 / 0.12 (random
#   anchor and size); the oracle box 0.98. "ours, paper settings" (straight-through estimator,
#   a ranking that ignores the caption, anchors at patch centres) gets 0.23: in scenes with
#   several objects the paper's score cannot tell which object the caption named. Without
#   $L_{dir}$ success falls to 0.43; without $L_{str}$ it holds (0.52) but the boxes fit worse.

# %%
assert summary["oracle (GT box)"]["IoU"] == 1.0
for s in STRATEGIES:
    r = summary[s]
    assert 0 <= r["IoU"] <= 1 and 0 <= r["success"] <= 1
best = max((s for s in STRATEGIES if not s.startswith("oracle")), key=lambda s: summary[s]["IoU"])
print(f"highest IoU among region strategies on these {N} tasks: {best}")
