# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Solutions to notebook 04 · Losses
# The task and the `wrong place` edit are made again as in notebook 04.

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

# %%
import numpy as np
import torch

from lrlib import course
from lrlib.models import load_models
from lrlib.toy import caption_object, make_edit_task, paint_object, render_background
from lrlib.course import world_and_config

_, cfg = world_and_config()
models = load_models(cfg)
clip, S = models.clip, cfg.size
task = make_edit_task(3, size=S, kind="multi")
scene, t = task.scene, task.target_index
prompt, caption = task.prompt, caption_object(scene.objects[t])
other = next(i for i in range(len(scene.objects)) if i != t)
ob = scene.objects[other].box
img = scene.image.copy()
img[ob[1]:ob[3], ob[0]:ob[2]] = render_background(scene.background, S)[ob[1]:ob[3], ob[0]:ob[2]]
wrong_place = paint_object(img, task.target_shape, task.target_colour, ob)[0]
as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].to(models.device)

# %% [markdown]
# **Exercise 1.** An unchanged image has a zero change vector; lrlib's cosine of a zero vector
# is 0 (the eps in `F.cosine_similarity`), so L_dir = 1 - 0 = 1.

# %%
dir_loss_of_no_change = 1.0
assert course.check_dir_loss_no_change(dir_loss_of_no_change)

# %% [markdown]
# **Exercise 2.** The two changes first, then 1 - their cosine.

# %%
with torch.no_grad():
    e_wrong_place = clip.encode_image(as_t(wrong_place))[0].cpu().numpy()
    e_src = clip.encode_image(as_t(scene.image))[0].cpu().numpy()
    t_prompt, t_caption = clip.encode_text([prompt, caption]).cpu().numpy()
dI, dT = e_wrong_place - e_src, t_prompt - t_caption
dir_loss_wrong_place = 1 - dI @ dT / (np.linalg.norm(dI) * np.linalg.norm(dT))
print(f"L_dir(wrong place) = {dir_loss_wrong_place:.4f}")
assert course.check_dir_loss(dir_loss_wrong_place, e_wrong_place, e_src, t_prompt, t_caption)
