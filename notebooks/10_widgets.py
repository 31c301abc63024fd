# %% [markdown]
# # 10 · Prompt experiments with widgets
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/10_widgets.ipynb)
#
# **You will learn** what each knob of an edit does by turning it: a panel of ipywidgets over
# `lrlib.edit` (prompt, caption, K, M, Gumbel temperature, loss weights, ranking weights,
# editor), and the plain function behind it for experiments in code.
#
# **Needs**: about 1 CPU-minute in the toy world (the default without a GPU or hub access) for
# the first edit, seconds to a minute per run; a GPU with internet for the real checkpoints.
# The panel needs a live kernel (Jupyter, Colab). Run headless (nbconvert, nbmake, CI), the
# notebook shows the first edit as a plain figure and the panel runs nothing: no cell waits on
# a widget.

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
#
# Every change of a control runs a whole edit, so the panel starts from small settings: few
# anchors and boxes and a short training (on a GPU, fewer steps than the paper's too). The
# sliders go up to the paper's values.

# %%
import matplotlib.pyplot as plt

from lrlib.world import banner, choose_world, config_for

WORLD = choose_world()            # override: WORLD = "toy"
cfg = config_for(WORLD, progress=False)
if WORLD == "real":
    base = cfg.replace(K=3, M=5, epochs=2, steps=25)
else:
    base = cfg.replace(K=2, M=3, epochs=1, iters_per_epoch=5)
print(banner(base))
print(f"panel defaults: K = {base.K}, M = {base.M}, {base.iterations} training iterations, "
      f"editor {base.editor}")

# %% [markdown]
# ## The image
# The panel's default prompt is "a blue square" and its default caption "the red circle", so we
# draw a toy scene with a red circle in it (at the working size: 512 px with real checkpoints),
# and write the matching task down so that the toy judge can grade what comes out.

# %%
from lrlib.logs import quiet_libraries
from lrlib.models import load_models
from lrlib.toy import EditTask, judge_edit, render_scene

quiet_libraries()                          # no library warnings or loading bars in the outputs

scene = render_scene(7, size=base.size, objects=[("circle", "red"), ("triangle", "green")])
circle = scene.objects[0]
image = scene.image


def task_for(prompt, box=circle.box):
    """The toy task "turn the red circle into <colour> <shape>", graded in `box`."""
    colour, shape = prompt.split()[-2:]
    return EditTask(scene, "the red circle", prompt, 0, box, shape, colour, "multi", 7)


models = load_models(base)                 # loaded once, shared by every run of the panel
plt.imshow(image); plt.title("the red circle -> a blue square"); plt.axis("off"); plt.show()

# %% [markdown]
# ## The controls
#
# | control | what it changes | paper / official |
# |---|---|---|
# | **prompt** | what the edited region should show; any length (long prompts are encoded in chunks) | |
# | **caption** | what is being changed; only steers the directional loss $L_{dir}$ | |
# | **K** | anchors: how many places (DINO attention peaks) are tried | 9 |
# | **M** | square boxes per anchor, sides from `box_min` to `box_max` of the image | 7 |
# | **tau** | Gumbel-Softmax temperature: low = samples follow the RGN's preference, high = explore | 1 |
# | **lambda_clip** | weight of $L_{clip}$: does the edit look like the prompt (CLIP, augmented views) | 1 |
# | **lambda_str** | weight of $L_{str}$: keep the DINO self-similarity structure of the source | 1 |
# | **lambda_dir** | weight of $L_{dir}$: the image moves the way the text moves, caption → prompt | 1 |
# | **alpha**, **beta** | ranking $S = \alpha S_{t2i} + \beta S_{i2i}$: prompt match vs. faithfulness | 2, 1 |
# | **editor** | `sd` (Stable Diffusion inpainting, notebook 05) or `maskgit` (tokens, notebook 06) | sd |
#
# K, M, the editor and the prompt change the candidate edits; tau and the three λ change which
# box the RGN learns to pick; α and β only change which of the K results wins (notebook 07).
#
# First the edit the panel starts from, as a plain call (its figure is an ordinary output, there
# even when the notebook runs without a kernel to talk to):

# %%
from lrlib.widgets import edit_from_controls, make_ui

first, fig = edit_from_controls(image, "a blue square", "the red circle", K=base.K, M=base.M,
                                base=base, models=models)
plt.show()
print(first)

# %% [markdown]
# Now the panel. Set the controls, press **Run edit**: each press runs one edit (seconds to a
# minute) and shows its figure under the panel; the last result is `ui.last["result"]`. Nothing
# runs until you press it.

# %%
ui = make_ui(image, base=base, models=models)
ui

# %% [markdown]
# The controls' current values (what the next press will run with):

# %%
controls = ui.values()
assert controls["K"] == base.K and controls["M"] == base.M and controls["editor"] == base.editor
print(controls)

# %% [markdown]
# ## The same, in code
# The panel calls `lrlib.widgets.edit_from_controls`, a plain function: one edit with these
# settings on top of `base`, returning the `EditResult` and its figure. For a prompt experiment
# you can call it directly, e.g. two prompts for the same object, side by side with what the
# judge reads. The judge (`lrlib.toy.judge`, no model) names the colour and shape of the object
# that stands out from its surroundings in a box; we give it the smallest box holding both the
# circle's box (dashed) and the box the method chose (solid), as the toy benchmark does: the
# new object may be larger than the circle was. "no object" means nothing there stands out
# from the ring of pixels around that box (for instance the edit is a blob that runs over the
# box's edge). With random-weight models (`LRLIB_WORLD=random`) the pictures, and so the
# verdicts, mean nothing.

# %%
from matplotlib.patches import Rectangle

prompts = ["a blue square", "a yellow star"]
runs = [first]                             # "a blue square" ran above
for p in prompts[1:]:
    r, fig = edit_from_controls(image, p, "the red circle", K=base.K, M=base.M, base=base,
                                models=models)
    plt.close(fig)
    runs.append(r)
for r in runs:
    assert 1 <= len(r.results) <= base.K and r.config.iterations == base.iterations   # <= K: prune_margin


def outline(a, box, **style):
    a.add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0], box[3] - box[1],
                          fill=False, **style))


fig, ax = plt.subplots(1, len(prompts) + 1, figsize=(3.2 * (len(prompts) + 1), 3.6))
ax[0].imshow(image); ax[0].set_title("input")
outline(ax[0], circle.box, ec="w", ls="--")
for a, p, r in zip(ax[1:], prompts, runs):
    x0, y0, x1, y1 = r.best_box_image
    c0, d0, c1, d1 = circle.box
    union = (min(x0, c0), min(y0, d0), max(x1, c1), max(y1, d1))
    v = judge_edit(image, r.image, task_for(p, union))
    seen = f"{v['verdict'].colour} {v['verdict'].shape}" if v["verdict"].colour else "no object"
    a.imshow(r.image)
    outline(a, circle.box, ec="w", ls="--")
    outline(a, r.best_box_image, ec="k")
    a.set_title(f"asked: {p}\njudge reads: {seen}", fontsize=9)
for a in ax:
    a.axis("off")
plt.show()
