# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · The widget lab: prompt experiments you drive in a browser
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/10_widgets.ipynb)
#
# In this notebook we will run edits from a panel of controls, the way you would run an
# experiment: pick a picture (or upload one), write the prompt and the caption, choose the
# paper's method or lrlib's with one click, turn the knobs that matter, press **Run edit**, and
# read why the winner won, term by term. Every run is kept, so two runs can be compared side by
# side and any run exported as a result folder with its `result.json`. We also see what each
# control changes under each method, and the plain functions behind the panel, for experiments
# in code.
#
# **Needs**: seconds per run in the toy world (the default without a GPU or hub access); a GPU
# with internet for the real checkpoints (about a minute per run). The panel needs a live kernel
# (JupyterLab, Notebook 7, Voila, Colab). Run headless (nbconvert, nbmake, CI), the notebook
# shows a first edit as a plain figure and the panel runs nothing: no cell waits on a widget.

# %%
# Install on Colab only (locally: `make install` in the repository)
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "git+https://github.com/learnable-regions/lrlib"])
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## Which models run
# `world_and_config()` picks real checkpoints on a GPU machine that reaches the Hugging Face
# Hub, and the toy world otherwise (`lrlib.worlds.choose_world`), and returns the branch this
# notebook takes (`WORLD`) with its settings (`cfg`). Pass `"real"`, `"toy"` or `"random"` (or
# set the environment variable `LRLIB_WORLD`) to override. `LRLIB_WORLD=real-random` (CI,
# `make notebooks-real`) runs the real branch with small random-weight models of the real
# classes at CPU sizes: the same code as on a GPU, pictures that mean nothing.
#
# The world gives the *base* config: the models and the sizes (toy: `LRConfig.cpu()`, 64 px; real:
# `LRConfig()`, 512 px, here with fewer anchors, boxes and steps so that a run takes about a
# minute). The panel's method presets go on top of it; they never change the models or the sizes.

# %%
import matplotlib.pyplot as plt

from lrlib.logs import quiet_libraries
from lrlib.models import load_models
from lrlib.course import world_and_config
from lrlib.worlds import banner

quiet_libraries()                          # no library warnings or loading bars in the outputs
WORLD, cfg = world_and_config(progress=False)   # override: world_and_config("toy", ...)
base = cfg.replace(K=3, M=5, epochs=1, iters_per_epoch=10, steps=25) if WORLD == "real" else cfg
print(banner(base))
models = load_models(base)                 # loaded once, shared by every run of the panel

# %% [markdown]
# ## A first edit, as a plain figure
# The panel offers sample pictures, each with the edit it was drawn for: a toy scene with a red
# circle and a green triangle ("the red circle" -> "a blue square"), the demo scene that
# `python -m lrlib demo` edits, and toy scenes with two objects, with a relation in the caption
# and with a long prompt. First one edit, with the base settings, through the same function the
# panel's button calls: of the toy scene, or with real checkpoints of a shipped photo (a coffee
# cup to turn into green tea). Its figure is an ordinary output, there even when the
# notebook runs without a live kernel.

# %%
from lrlib.widgets import edit_from_controls, sample_images

samples = sample_images(base.size)
if WORLD == "real":                # a shipped photo (data/photos), its square at the canvas size
    from lrlib import course
    image, caption, prompt, _ = course.photo_task("coffee", base.size)
else:
    image, caption, prompt = samples["toy scene"]
first, fig = edit_from_controls(image, prompt, caption, base=base, models=models)
plt.show()
print(first)

# %% [markdown]
# ## The panel
# Set the controls, press **Run edit**. Only the button runs an edit: typing, Enter, Tab or a
# slider never does, and the values a run uses are the values shown when you press. While it
# runs the button is disabled and the bar next to it follows the run (candidate edits, then the
# RGN's training). Below it: the final image, the box each anchor chose (thick: the winner),
# the training loss, the K candidates and the table of their scores; then the history.
#
# A mistake (an empty prompt, a file that is not a picture, a folder that already exists) is one
# line under the button that says what to change.

# %%
from lrlib.widgets import make_ui

ui = make_ui(base=base, models=models)
ui

# %% [markdown]
# ## The controls, and what they do under each method
# **paper's method** (`LRConfig.paper()`) and **lrlib's method** (`LRConfig()`) set every method
# control at once, and a few fields that are not controls (the line under the buttons lists them:
# anchors at the peak cell's centre or refined, square or ladder boxes, the box terms and the
# training objective, hard or feathered paste).
# A control that cannot change the result under the current settings is greyed out, and its
# tooltip says why.
#
# | control | what it changes | paper's method | lrlib's method |
# |---|---|---|---|
# | **image**, **upload** | the picture; an upload joins the list | | |
# | **prompt** | what the edited region should show, any length | | |
# | **caption** | what is being changed | steers $L_{dir}$ only | also chooses where to edit and scores it ($S_{cap}$) |
# | **K** | anchors tried, one candidate each | K candidates, the K strongest attention peaks | *at most* K: anchors the caption rules out are pruned (toy scenes: often 1 left); K stops below the anchor pool (toy: 7) |
# | **M** | boxes per anchor | M squares around the anchor | the object's blob box at M scales, 0.85-1.7 |
# | **iterations** | RGN training steps | | |
# | **estimator** | how the RGN learns | `st`: straight-through Gumbel samples | `expected`: fitted to the cached candidates' loss table (objective `softmin`, + 3 L_cover + 1 L_spill) |
# | **tau** | Gumbel temperature | live | greyed out: no Gumbel samples |
# | **lambda_clip / _str / _dir** | loss weights: like the prompt / keep the structure / move caption -> prompt | 1, 1, 1 | 1, 1, 1 |
# | **alpha**, **beta** | ranking weights of $S_{t2i}$, $S_{i2i}$ | 2, 1 | 2, 1 |
# | **gamma** | ranking weight of $S_{dir}$ | 0 | 3 |
# | **delta** | ranking weight of $S_{cap}$ | greyed out: no caption anchors | 30 |
# | **caption-aware anchors** | choose anchors by the caption | off | on (greyed out without a caption) |
# | **prune** | drop anchors the caption rules out | greyed out | 0.1 |
# | **editor**, **seed** | the inpainting model; one seed for every random draw | | |
#
# Read the ranking table this way: each term is a softmax over the K candidates of a cosine
# (`lrlib.scoring`), and $S = \alpha S_{t2i} + \beta S_{i2i} + \gamma S_{dir} + \delta S_{cap}$
# is written out per candidate with its weights, so the sum can be checked by eye. The winner is
# the highest $S$ among the 3 candidates with the highest $S_{t2i}$ (the official rule). With
# one candidate left every softmax is 1 and $S = \alpha + \beta + \gamma + \delta$ (36 under
# lrlib's method): the ranking weights then change nothing, and the panel says so. Turn **prune**
# off, or use the paper's method, to see K candidates compete.
#
# The values the next press will run with (a snapshot: it changes when you change a control):

# %%
print(ui.settings())

# %% [markdown]
# ## The same, in code
# Behind the panel are plain functions (`lrlib.widgets.lab`): `Settings` holds what the controls
# show, `Settings.config(base)` turns it into the `LRConfig` of a run, `run_edit` runs it. Here
# the same scene under both methods, with pruning off so that all K candidates compete, and the
# ranking of each written out as the panel writes it.

# %%
from lrlib.widgets import Settings, preset_config, run_edit
from lrlib.widgets.lab import score_rows

runs = {}
for method in ("paper", "lrlib"):
    s = Settings.from_config(preset_config(method, base), image="toy scene", prompt=prompt,
                             caption=caption, prune="off")
    runs[method] = r = run_edit(image, s, base, models)
    print(f"{method}: estimator {r.config.estimator}, {len(r.results)} candidates, "
          f"winner #{r.best}")
    for row in score_rows(r):
        terms = " + ".join(f"{w:g} x {v:.3f} ({n})" for n, _, w, v in row["terms"])
        mark = "  <- winner" if row["best"] else ""
        print(f"  #{row['k']}: {terms} = {row['S']:.3f}{mark}")

fig, ax = plt.subplots(1, 3, figsize=(9, 3.2))
ax[0].imshow(image)
ax[0].set_title(f"{caption} -> {prompt}", fontsize=9)
for a, (method, r) in zip(ax[1:], runs.items()):
    a.imshow(r.image)
    a.set_title(f"{method}'s method: box {r.best_box_image}", fontsize=9)
for a in ax:
    a.axis("off")
plt.show()

# %% [markdown]
# A prompt experiment in code: two prompts for the same object, each judged by the toy world's
# judge (`lrlib.toy.judge`, no model), which names the colour and shape of whatever stands out
# in a box. We give it the smallest box holding both the circle and the box the method chose:
# the new object may be larger than the circle was. "no object" means nothing there stands out
# from its surroundings. With random-weight models (`LRLIB_WORLD=random`) the pictures, and so
# the verdicts, mean nothing.

# %%
from types import SimpleNamespace

from lrlib.toy import judge_edit, render_scene

scene = render_scene(7, base.size, objects=[("circle", "red"), ("triangle", "green")])
c0, d0, c1, d1 = scene.objects[0].box                     # the red circle ("toy scene")
for p in ("a blue square", "a yellow star"):
    r, fig = edit_from_controls(image, p, caption, base=base, models=models)
    plt.close(fig)
    x0, y0, x1, y1 = r.best_box_image
    union = (min(x0, c0), min(y0, d0), max(x1, c1), max(y1, d1))
    colour, shape = p.split()[-2:]
    v = judge_edit(image, r.image, SimpleNamespace(target_box=union, target_shape=shape,
                                                    target_colour=colour))["verdict"]
    seen = f"{v.colour} {v.shape}" if v.colour else "no object"
    print(f"asked: {p:15s} judge reads: {seen:18s} box {r.best_box_image}")

# %% [markdown]
# ## Recap
# - The panel runs an edit only on its button, with the values shown at that moment, and shows
#   the run's progress; the button is disabled until the run ends.
# - Two clicks switch between the paper's method and lrlib's; controls that cannot change the
#   result are greyed out with the reason in their tooltip (tau without "st"; S_cap and pruning
#   without a caption and caption-aware anchors).
# - The result explains the winner: every term of $S$ with its weight, summed per candidate, and
#   a note when the caption pruned the candidates to one (then the weights change nothing).
# - Every run stays in the history: compare two side by side (what differs is in bold), export
#   one as a result folder (`result.json` with the config used, plus `lab.json` with the panel's
#   settings) into a new folder; the lab never replaces a folder.
# - Behind the panel, `Settings`, `run_edit` and `edit_from_controls` (`lrlib.widgets`) run the
#   same experiments in code.
