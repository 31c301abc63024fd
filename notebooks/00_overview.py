# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

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
# | DINO [CLS] attention → K anchors (with a caption: attention peaks scored against it) | 01 | `lrlib.anchors` |
# | M boxes per anchor, ROI-align, RGN scores | 02 | `lrlib.regions` |
# | Gumbel-Softmax picks a box, differentiably | 03 | `lrlib.regions.gumbel_softmax` |
# | L = L_clip + L_str + L_dir trains the RGN | 04, 09 | `lrlib.losses`, `lrlib.train` |
# | an editor fills the box | 05, 06 | `lrlib.editors` |
# | S = α S_t2i + β S_i2i + γ S_dir + δ S_cap ranks the K results (paper: γ = δ = 0) | 07 | `lrlib.scoring` |

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

import lrlib
from lrlib.course import world_and_config
from lrlib.worlds import banner

WORLD, cfg = world_and_config()           # override: world_and_config("toy")
print(banner(cfg))

# %% [markdown]
# ## An image, a prompt, a caption
# In the toy world the input is a synthetic scene with known objects; with real checkpoints it is
# a shipped photo (a coffee cup to turn into green tea; any photo works). The caption names what
# is being changed. lrlib uses it three times: to choose the anchors (attention peaks whose region
# matches it, `anchor_pool`), as the source text of the directional loss L_dir, and in the ranking
# score (S_dir and S_cap, weights `gamma`, `delta`). The paper uses it for L_dir only
# (`LRConfig.paper()`: `anchor_pool=0`, `gamma=delta=0`); on the toy benchmark (README, "Does the
# method work?") lrlib's use scores success 0.90 against 0.70 without caption anchors and 0.86
# without S_cap.

# %%
from lrlib import course
from lrlib.demo import DEMO_CAPTION, DEMO_IMAGE, DEMO_PROMPT
from lrlib.images import load_image
from lrlib.logs import quiet_libraries

quiet_libraries()                 # no library warnings or loading bars in the outputs

if WORLD == "real":
    # a shipped photo (data/photos), cropped to a square at the working size
    image, caption, prompt, _ = course.photo_task("coffee", cfg.size)
else:
    image, prompt, caption = load_image(DEMO_IMAGE), DEMO_PROMPT, DEMO_CAPTION
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
# into the input: outside the box nothing changes; inside, the last `blend_px` = 3 pixels fade
# into the input, except where the edit drew or removed something, which is kept whole:
# `blend_tau`). The fade softens the seam but does not hide it: where the editor's fill differs
# from what surrounds the box, as the toy editor's flat background does here, the box's outline
# is still visible in the final panel. (On a photo larger than the working canvas,
# `full_res=True` paints the winning box again on a window of the photo at the editor's
# resolution, `lrlib.additions.fullres`, so the result keeps the photo's detail.) Then the K
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

# %% [markdown]
# ## A real photo
# The repository ships two CC0 photographs from scikit-image's sample data (`data/photos/`,
# credited in `data/photos/CREDITS.md`): Chelsea the cat (Stefan van der Walt) and a coffee cup
# (Rachel Michetti). With real checkpoints the cell below asks for a tiger in place of the cat.
# In the toy world it runs the same method with the toy models, which learned only coloured
# shapes on plain backgrounds: DINO still finds regions (an eye, an ear, the head), but CLIP
# only knows "red" and "circle", and the toy editor can only paint a flat coloured shape. So
# the method runs end to end and the picture shows its limit: a red disc pasted on the cat.
# lrlib notices a photo in the toy world and says so (printed below).

# %%
import warnings

photo = load_image(str(course.photos_dir() / "chelsea.png"))   # data/photos of the repository
photo_prompt = "a tiger" if WORLD == "real" else "a red circle"
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    photo_result = lrlib.edit(photo, photo_prompt, caption="the cat", config=cfg)
for w in caught:
    print("lrlib says:", str(w.message).split(":")[0])
photo_result.figure()
plt.show()

# %% [markdown]
# ## Exercises
# Each exercise cell holds a placeholder (`...`): replace it with your code and run the cell.
# The checker (`lrlib.course`) computes the answer its own way and prints "correct" or a hint;
# left as it is, it prints "not answered yet". Solutions: `solutions/00_overview_solutions.ipynb`.

# %% [markdown]
# **Exercise 1 (a measurement).** How many pixels of the image did the edit change? A pixel
# counts once, whichever of its channels changed. Compare `image` and `result.image`.

# %%
from lrlib import course

changed_pixels = ...          # your code: an integer
course.check_changed_pixels(changed_pixels, image, result.image)

# %% [markdown]
# **Exercise 2 (the ranking rule).** From `result.scores` (a dict of lists, one value per
# candidate), find the winner yourself: keep the 3 candidates with the highest `S_t2i`, then
# take the one with the highest `S` among them. Is it also the candidate with the highest `S`
# overall? (It need not be: that is the point of the rule, notebook 07. On the toy demo the
# caption can rule out all anchors but one, `prune_margin`, and with K = 1 the rule has
# nothing to choose; run it on a photo or with `cfg.replace(prune_margin=None)` to see more.)

# %%
winner = ...                  # your code: a candidate index
course.check_winner(winner, result.scores)

# %% [markdown]
# ## Recap
# * `lrlib.edit(image, prompt, caption=...)` runs the whole method: DINO anchors, M boxes per
#   anchor, an RGN trained per image to pick one, one candidate edit per anchor, and a ranking.
# * The caption does three jobs in lrlib (anchors, L_dir, the score S) and one in the paper
#   (L_dir); `LRConfig.paper()` runs the paper's choices.
# * `result.figure()` tells the story; the score in its legend is the S that ranked the
#   candidates, every term included.
# * Outside the winning box the output is the input, pixel for pixel (checked above); the
#   feathered seam is softened, not hidden.
#
# Next: notebook 01, where the anchors come from.
