# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11 · Your photo on a GPU: the whole method, end to end
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/11_your_photo_gpu.ipynb)
#
# **You will learn** what the method does to a real photograph, with every stage running: DINO
# anchors chosen by the caption, boxes built on DINO's blobs, the RGN trained on this one photo
# (the losses and box terms of notebook 04, the estimator of notebook 03 and the objective of
# notebook 09), one candidate edit per box, the
# ranking of notebook 07 and, on a photo larger than the canvas, the winner repainted at the
# editor's resolution on a window of the photo (`full_res`). First on a photo shipped with the
# repository, then on yours.
#
# **Needs**: a GPU with internet for the real checkpoints (on Colab: Runtime → Change runtime
# type → T4 GPU). The cell "What it will cost" estimates the GPU time before anything runs.
# Without a GPU the notebook runs the toy world (about a CPU-minute), whose models know only
# coloured shapes: it shows the code path, not what the method does to a photo.

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
# Hub, and the toy world otherwise (`lrlib.worlds.choose_world`). The settings are lrlib's
# defaults, `LRConfig()`, nothing reduced: K = 9 anchors chosen by the caption from 18
# attention peaks, M = 7 ladder boxes each (the DINO blob's box x 0.85 ... 1.7), 5 x 10 RGN
# iterations on the cached loss table (softmin objective, with the box terms), candidates
# drafted in 5 steps and the winner painted at 50, the 512 px canvas of
# SD 2 inpainting. `LRLIB_WORLD=real-random` (CI, `make notebooks-real`) runs this branch with
# small random-weight models of the real classes at CPU sizes.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import lrlib
from lrlib import course
from lrlib.config import LRConfig
from lrlib.course import world_and_config
from lrlib.images import load_image
from lrlib.models import load_models
from lrlib.worlds import banner, config_for

WORLD, cfg = world_and_config(progress=False)   # override: world_and_config("toy", ...)
print(banner(cfg))

# %% [markdown]
# ## What it will cost
# The GPU time of one edit is dominated by the UNet of Stable Diffusion, and its work can be
# counted exactly from the settings (`LRConfig.work()`, `lrlib.bench.gpu_estimate`):
#
# $$\text{UNet image-evaluations} = g\,(N\,n_c + n), \qquad N = K M \text{ candidates}$$
#
# with $g = 2$ under classifier-free guidance, $n_c$ the UNet calls of a candidate (the draft's
# steps, + 1 for SD 2's PNDM sampler), $n$ those of the winner painted again at full steps. Each
# evaluation costs 0.80 TFLOP at 512 px (measured with torch's FLOP counter on the real UNet),
# the VAE 3.6 TFLOP per candidate, CLIP 0.035 per image; a T4 runs about 11.4 TFLOP/s in fp16
# (diffusers' published ~0.07 s per UNet evaluation). The estimate for `LRConfig()`, whatever
# world this notebook runs in, is printed below: it is an estimate from counts, not a
# measurement. Loading the checkpoints (about 5 GB, downloaded once per Colab session) comes on
# top, typically 1-3 minutes.

# %%
from lrlib.bench.gpu_estimate import estimate

gpu_cfg = config_for("real")                 # the settings this notebook runs with on a GPU
per_edit = estimate(gpu_cfg)                 # all K anchors edited: an upper bound
n_photos = 2                                 # the shipped photo and yours
print(f"LRConfig(): {per_edit['candidates']} candidates, {per_edit['unet']} UNet "
      f"evaluations, {per_edit['vae']} VAE encode+decode, {per_edit['clip']} CLIP forwards "
      f"= {per_edit['tflop']:.0f} TFLOP per edit")
print(f"estimated T4 time: {per_edit['T4'] / 60:.1f} min per edit, "
      f"{n_photos * per_edit['T4'] / 60:.1f} min for the {n_photos} photos "
      f"(+ loading the models); L4 {n_photos * per_edit['L4'] / 60:.1f} min, "
      f"A100 {n_photos * per_edit['A100'] / 60:.1f} min")
assert n_photos * per_edit["T4"] < 10 * 60, "these settings would not fit ~10 minutes on a T4"
paper = estimate(LRConfig.paper())
print(f"for comparison, the paper's settings (LRConfig.paper(): every candidate at "
      f"{LRConfig.paper().steps} steps, no drafts): {paper['unet']} UNet evaluations, "
      f"{paper['T4'] / 60:.1f} T4-minutes per edit")

# %% [markdown]
# ## The shipped photo
# `data/photos/coffee.png` (CC0, scikit-image's sample data, credited in
# `data/photos/CREDITS.md`), found next to the installed package: a coffee cup to be turned into
# green tea. The caption names what changes; lrlib uses it to choose the anchors, to steer
# L_dir and in the ranking (notebook 00).

# %%
photo = load_image(str(course.photos_dir() / "coffee.png"))
caption, prompt = "a cup of coffee", "a cup of green tea"
models = load_models(cfg)                    # loaded once, used for both photos
print(f"photo {photo.size[0]} x {photo.size[1]} px; {caption!r} -> {prompt!r}")

# %% [markdown]
# While it runs, the UNet's calls are counted (a forward hook adds up the images of each
# batch), so the estimate's count is checked against what really ran. `LRConfig.work()` is an
# upper bound: it counts the extra UNet call of SD 2's PNDM sampler for every sampler, and the
# winner painted again at full steps, which is skipped when the candidates already ran at full
# steps (no drafts) and the photo fits the canvas. The floor is the candidates' own steps. Anchors
# the caption rules out (`prune_margin`) edit no candidates, so both are taken for the anchors
# edited.

# %%
import warnings


def edit_counted(image, prompt, caption):
    """lrlib.edit with the UNet's images counted: (result, images). What lrlib warns about (a
    photo in the toy world) is printed as one line."""
    images = []
    unet = getattr(getattr(models.editor, "pipe", None), "unet", None)
    count = lambda module, args, kwargs: images.append(
        int((args[0] if args else kwargs["sample"]).shape[0]))
    hook = unet.register_forward_pre_hook(count, with_kwargs=True) if unet is not None else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = lrlib.edit(image, prompt, caption=caption, config=cfg, models=models)
    finally:
        if hook is not None:
            hook.remove()
    for w in caught:
        print("lrlib says:", str(w.message).split(":")[0])
    return result, sum(images)


result, unet_images = edit_counted(photo, prompt, caption)
print(result)
print(f"{result.seconds:.1f} s on {models.device}")

# %% [markdown]
# The figure reads as in notebook 00: the anchors and the box each one chose, DINO's attention,
# the final edit, the K candidates with their scores (the star marks the winner), the training
# loss and the probabilities of the chosen boxes.

# %%
result.figure()
plt.show()

# %% [markdown]
# ## Checks
# * The count: the UNet images that ran, between the candidates' own steps and
#   `LRConfig.work()`'s upper bound, for the anchors edited.
# * Outside the winning box the photo is unchanged: the box is mapped from the working canvas
#   (where the photo sits letterboxed in `result.content`) back to the photo's pixels, and every
#   changed pixel must lie inside it (one pixel of slack for the rounding of that map).

# %%
def check_edit(result, photo, measured):
    c = result.config
    edited = len(result.results)                              # anchors edited (after pruning)
    counted = c.replace(K=edited).work()["editor_evals"]
    floor = (2 if c.guidance_scale > 1 else 1) * edited * c.M * (c.draft_steps or c.steps)
    if measured:                                             # an editor with a diffusers UNet
        assert floor <= measured <= counted, (floor, measured, counted)
    cx0, cy0, cx1, cy1 = result.content
    sx, sy = photo.size[0] / (cx1 - cx0), photo.size[1] / (cy1 - cy0)
    x0, y0, x1, y1 = result.best_box
    a, b = np.asarray(photo).astype(int), np.asarray(result.image).astype(int)
    assert a.shape == b.shape, "the result is not at the photo's resolution"
    changed = np.abs(a - b).sum(-1) > 0
    inside = np.zeros_like(changed)
    inside[max(0, int((y0 - cy0) * sy) - 1):int(np.ceil((y1 - cy0) * sy)) + 1,
           max(0, int((x0 - cx0) * sx) - 1):int(np.ceil((x1 - cx0) * sx)) + 1] = True
    assert not (changed & ~inside).any(), "pixels outside the winning box changed"
    print(f"UNet images: {measured or 'n/a (no diffusers UNet)'} ran; counted for {edited} "
          f"anchors x {c.M} boxes: at most {counted}, at least {floor} (every candidate's steps); "
          f"{int(changed.sum())} photo pixels changed, all inside the winning box")


check_edit(result, photo, unet_images)

# %% [markdown]
# ## Your photo
# Set `MY_PHOTO` to a file (a path; any size, the canvas is letterboxed and the winner repainted
# on the photo itself), with a caption that names the object to change and a prompt that says
# what it should become. On Colab, leaving `MY_PHOTO = None` opens an upload button. Without
# either (here, in CI) the other shipped photo, Chelsea the cat, stands in.

# %%
MY_PHOTO = None                        # e.g. "my_photo.jpg"
MY_CAPTION, MY_PROMPT = "the cat", "a tiger"

if MY_PHOTO is None:
    try:
        from google.colab import files           # only on Colab
    except ImportError:
        files = None
    if files is not None:
        uploaded = files.upload()                # a button under the cell; pick one image
        MY_PHOTO = next(iter(uploaded), None)
if MY_PHOTO is None:
    MY_PHOTO = str(course.photos_dir() / "chelsea.png")
    MY_CAPTION, MY_PROMPT = "the cat", "a tiger"

mine = load_image(MY_PHOTO)
my_result, my_unet_images = edit_counted(mine, MY_PROMPT, MY_CAPTION)
print(my_result)
check_edit(my_result, mine, my_unet_images)

fig, ax = plt.subplots(1, 2, figsize=(10, 4.5))
ax[0].imshow(mine); ax[0].set_title(f"{MY_CAPTION!r}", fontsize=10)
ax[1].imshow(my_result.image)
ax[1].set_title(f"{MY_PROMPT!r} ({my_result.seconds:.0f} s)", fontsize=10)
for a in ax:
    a.axis("off")
plt.show()
my_result.figure()
plt.show()

# %% [markdown]
# To keep a result: `my_result.save("my_edit")` writes the image, the figure and a
# `result.json` with the settings, scores and boxes (`lrlib.EditResult`). To compare with the
# paper's method exactly, run the same photo with `config=LRConfig.paper()` (its estimate is
# printed above: every candidate at full steps, about 9 times the UNet evaluations of
# `LRConfig()`).
#
# ## Recap
# * `lrlib.edit(photo, prompt, caption=...)` with `LRConfig()` runs every stage on a GPU; the
#   photo keeps its size and aspect (letterboxed on the canvas, the winner repainted on the
#   photo itself).
# * The GPU time is counted before it is spent: UNet evaluations $g(N n_c + n)$ from the
#   config, times FLOPs per evaluation, over the card's throughput; the count was checked here
#   against the UNet calls that really ran.
# * Outside the winning box the photo is unchanged, pixel for pixel (checked on both photos).
# * With random weights (CI) or toy models the same code runs and the pictures mean nothing;
#   only real checkpoints say what the method does to a photo.
