# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Solutions to notebook 00 · Overview
# The edit is run again as in notebook 00 (same world, image, prompt and seed), then each
# exercise is answered and checked.

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

import lrlib
from lrlib import course
from lrlib.demo import DEMO_CAPTION, DEMO_IMAGE, DEMO_PROMPT
from lrlib.images import load_image
from lrlib.course import world_and_config

WORLD, cfg = world_and_config()
if WORLD == "real":
    image, caption, prompt, _ = course.photo_task("coffee", cfg.size)
else:
    image, prompt, caption = load_image(DEMO_IMAGE), DEMO_PROMPT, DEMO_CAPTION
result = lrlib.edit(image, prompt, caption=caption, config=cfg)

# %% [markdown]
# **Exercise 1.** A pixel changed when any of its channels differs; compare as integers (uint8
# differences wrap around).

# %%
changed_pixels = int((np.asarray(image).astype(int) != np.asarray(result.image).astype(int))
                     .any(-1).sum())
print(changed_pixels, "pixels changed")
assert course.check_changed_pixels(changed_pixels, image, result.image)

# %% [markdown]
# **Exercise 2.** Keep the 3 highest S_t2i (a stable sort keeps the lower index first on a
# tie), then the best S among them.

# %%
t2i, S = result.scores["S_t2i"], result.scores["S"]
kept = sorted(range(len(t2i)), key=lambda k: -t2i[k])[:3]
winner = max(kept, key=lambda k: S[k])
print("kept", kept, "-> winner", winner, "| highest S overall:", int(np.argmax(S)))
assert course.check_winner(winner, result.scores)
