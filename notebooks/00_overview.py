# %% [markdown]
# # 00 · Overview: text-driven editing via learnable regions, in one cell
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/00_overview.ipynb)
#
# **You will learn** what the method of Lin et al. (CVPR 2024) does end to end: from an image
# and a prompt, with no mask, to an edit inside a box the method found by itself.
#
# **Needs**: about 1 CPU-minute in the toy world (the default without a GPU or hub access);
# a GPU with internet for the real checkpoints (DINO ViT-B/16, CLIP ViT-B/16, SD 2 inpainting).
#
# The pipeline, one stage per later notebook:
#
# | stage | notebook | lrlib |
# |---|---|---|
# | DINO [CLS] attention → K anchors | 01 | `lrlib.anchors` |
# | M boxes per anchor, ROI-align, RGN scores | 02 | `lrlib.regions` |
# | Gumbel-Softmax picks a box, differentiably | 03 | `lrlib.regions.gumbel_softmax` |
# | L = L_clip + L_str + L_dir trains the RGN | 04, 09 | `lrlib.losses`, `lrlib.train` |
# | an editor fills the box | 05, 06 | `lrlib.editors` |
# | S = α S_t2i + β S_i2i ranks the K results | 07 | `lrlib.scoring` |

# %%
# Install on Colab only (locally: `make install` in the repository)
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "git+https://github.com/learnable-regions/lrlib"])

# %% [markdown]
# ## Which models run
# `choose_world()` picks real checkpoints on a GPU machine that reaches the Hugging Face Hub,
# and the toy world otherwise. Set `WORLD = "real"`, `"toy"` or `"random"` (or the environment
# variable `LRLIB_WORLD`) to override.

# %%
import matplotlib.pyplot as plt

import lrlib
from lrlib.world import banner, choose_world, config_for

WORLD = choose_world()            # override: WORLD = "toy"
cfg = config_for(WORLD)
print(banner(cfg))

# %% [markdown]
# ## An image, a prompt, a caption
# In the toy world the input is a synthetic scene with known objects; with real checkpoints,
# use any photo. The caption says what is being changed (it steers the directional loss).

# %%
from lrlib.demo import DEMO_CAPTION, DEMO_IMAGE, DEMO_PROMPT
from lrlib.io import load_image
from lrlib.logs import quiet_libraries

quiet_libraries()                 # no library warnings or loading bars in the outputs

image = load_image(DEMO_IMAGE)
prompt, caption = DEMO_PROMPT, DEMO_CAPTION
if WORLD == "real":
    # any photo works; this one is the toy scene upscaled so the notebook runs without files
    image = image.resize((512, 512))
plt.imshow(image); plt.title(f"{caption!r} -> {prompt!r}"); plt.axis("off"); plt.show()

# %% [markdown]
# ## The whole method in one call

# %%
result = lrlib.edit(image, prompt, caption=caption, config=cfg)
fig = result.figure()
plt.show()

# %% [markdown]
# The figure (also `figure.png` of `result.save(folder)`) reads top to bottom: the caption and
# prompt; the source, the anchors (dots) with the box the RGN chose for each (one colour per
# candidate, the winner's thicker), the DINO attention they came from, the final edit (pasted
# into the input at full resolution: outside the box nothing changes; inside, the last
# `blend_px` = 3 pixels fade into the input so the box's border does not show, except where
# the edit drew or removed something, which is kept whole: `blend_tau`); the K
# per-anchor results with their quality score S (the star marks the winner); the training
# loss, each anchor's probability of its chosen box during training, and a legend.
#
# `result` is an `EditResult` (`help(lrlib.EditResult)` lists its fields); printed, it says what
# was decided:

# %%
print(result)
print("anchors (x, y):", [[round(v, 1) for v in a] for a in result.anchors])
print("chosen box per anchor:", [result.boxes[k][c] for k, c in enumerate(result.chosen)])
print("RGN probabilities of the chosen boxes:",
      [round(result.probs[k][c], 3) for k, c in enumerate(result.chosen)])
print("quality S:", [round(s, 3) for s in result.scores["S"]], "-> best", result.best)
print(f"{result.seconds:.1f} s")

# %% [markdown]
# ## Check: the output keeps the input outside the chosen box, exactly

# %%
import numpy as np

a, b = np.asarray(image).astype(int), np.asarray(result.image).astype(int)
changed = np.abs(a - b).sum(-1) > 0
x0, y0, x1, y1 = result.best_box
s = image.size[0] / cfg.size
inside = np.zeros_like(changed)
inside[int(y0 * s):int(np.ceil(y1 * s)), int(x0 * s):int(np.ceil(x1 * s))] = True
assert not (changed & ~inside).any(), "pixels outside the box changed"
print(f"{changed.sum()} pixels changed, all inside the box {result.best_box} (working coordinates)")
