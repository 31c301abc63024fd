# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Solutions to notebook 02 · Boxes, ROI-align and the RGN
# The scene, anchors and both kinds of proposals are made again as in notebook 02.

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
from lrlib.anchors import cells_to_pixels, top_k_anchors
from lrlib.models import load_models
from lrlib.regions import make_proposals
from lrlib.additions.proposals import propose
from lrlib.toy import render_scene
from lrlib.course import world_and_config

_, cfg = world_and_config()
models = load_models(cfg)
S, K = cfg.size, cfg.K
scene = render_scene(7, size=S, n_objects=3)
x = torch.from_numpy(scene.image).permute(2, 0, 1)[None].to(models.device)
with torch.no_grad():
    out = models.dino(x)
cells = top_k_anchors(out.attn_mean[0].cpu(), K, cfg.anchor_spacing)
anchors = cells_to_pixels(cells, out.feats.shape[2:], S, S)
boxes = make_proposals(anchors, cfg.box_sides(), S, S)
fitted = propose(anchors.to(models.device), out.feats, cfg.replace(proposals="fitted"), S, S,
                 image=x).cpu()

# %% [markdown]
# **Exercise.** IoU with exclusive corners: the intersection's width is
# max(0, min(x1) - max(x0)), likewise its height.

# %%
def iou(a, b):
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)


gt = [list(o.box) for o in scene.objects]
best_iou_squares = [max(iou(p, g) for p in props for g in gt) for props in boxes.tolist()]
best_iou_fitted = [max(iou(p, g) for p in props for g in gt) for props in fitted.tolist()]
print("squares:", np.round(best_iou_squares, 2), " fitted:", np.round(best_iou_fitted, 2))
assert course.check_best_iou(best_iou_squares, boxes, gt)
assert course.check_best_iou(best_iou_fitted, fitted, gt)
