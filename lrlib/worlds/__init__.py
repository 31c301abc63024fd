"""Which models run: the one place that decides it (real checkpoints, the toy world, or stand-ins).

A *world* is a set of the four models the method needs (DINO, CLIP, an editor):

| world    | models                                                        | settings           |
|----------|---------------------------------------------------------------|--------------------|
| `real`   | the hub ids / local folders named in the config (GPU)          | `LRConfig()`       |
| `toy`    | the small models we trained and ship in `lrlib/toy/weights`    | `LRConfig.cpu()`   |
| `random` | small random-weight models of the real classes (wiring only)   | `LRConfig.cpu(world="random")` |

The rule, the same for every entry point (CLI, demo, notebooks, benchmarks):

    world = the explicit choice (--world / choose_world("toy"))  if given and not "auto"
          else $LRLIB_WORLD                                       if set and not "auto"
          else "real"   on a CUDA GPU that reaches the Hugging Face Hub
          else "toy"    if its weights are installed
          else "random" (with a warning)

`LRConfig` only holds the choice as a value (`cfg.world`); `model_sources(cfg)` turns it into the
ids or folders `lrlib.models` loads, so `models.py` knows nothing about toy paths.

    world = choose_world()         # "real" | "toy" | "random"
    cfg = config_for(world)        # LRConfig() for real, LRConfig.cpu(world=...) otherwise
    print(banner(cfg))
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from lrlib.config import LRConfig
from lrlib.errors import LRError, hub_offline

WORLDS = ("real", "toy", "random")
CHOICES = ("auto",) + WORLDS
TOY_WEIGHTS = Path(__file__).parent.parent / "toy" / "weights"
TOY_PALETTE = {  # the toy world's five colours, RGB in [0, 1] (lrlib.toy.scenes draws with them);
    "red": (0.90, 0.12, 0.10),      # hues (the judge's formula) about 1, 54, 124, 223, 288 degrees
    "yellow": (0.95, 0.85, 0.10),
    "green": (0.15, 0.75, 0.20),
    "blue": (0.10, 0.35, 0.95),
    "purple": (0.70, 0.15, 0.85),
}
TOY_CORE = ("dino", "clip", "sd")  # what the toy world needs; its MaskGIT is optional

TOY_LIMITS = ("the toy models know only coloured shapes (5 shapes x 5 colours) on plain "
              "backgrounds: on a photo they paint a coloured blob")


def toy_available(names=None) -> bool:
    """True if the toy world's models `names` (default: DINO, CLIP and SD) are installed."""
    return all((TOY_WEIGHTS / k).is_dir() for k in (names or TOY_CORE))


def toy_paths(names=TOY_CORE) -> dict[str, str]:
    """Folders of the shipped toy-world models `names`; LRError if this install lacks one."""
    paths = {k: TOY_WEIGHTS / k for k in names}
    missing = [k for k, p in paths.items() if not p.is_dir()]
    if missing:
        raise LRError(f"the toy-world weights {missing} are not in this install ({TOY_WEIGHTS}); "
                      "reinstall lrlib from the repository, retrain them with "
                      "`python -m lrlib.toy train <name>`, or use --world random.")
    return {k: str(p) for k, p in paths.items()}


def hub_reachable(timeout: float = 3.0) -> bool:
    """True if the Hugging Face Hub answers (never true with HF_HUB_OFFLINE=1)."""
    if hub_offline():
        return False
    try:
        import urllib.request
        urllib.request.urlopen("https://huggingface.co/api/models?limit=1", timeout=timeout)
        return True
    except Exception:
        return False


def choose_world(override: str | None = None, editor: str = "sd", allow_real: bool = True) -> str:
    """The world to run (see the rule in the module docstring). `allow_real=False` (the CLI's
    `--cpu`) makes "auto" pick among the small worlds only."""
    for source, w in (("--world", override), ("LRLIB_WORLD", os.environ.get("LRLIB_WORLD"))):
        if w and w != "auto":
            if w not in WORLDS:
                raise LRError(f"{source}={w!r}: use one of {', '.join(CHOICES)}.")
            return w
    import torch
    if allow_real and torch.cuda.is_available() and hub_reachable():
        return "real"
    if toy_available(("dino", "clip", editor)):
        return "toy"
    if toy_available():
        warnings.warn(f"this install has no toy-world {editor!r} editor (lrlib/toy/weights/"
                      f"{editor}): using random-weight stand-ins; train it with "
                      f"`python -m lrlib.toy train {editor}`.", stacklevel=2)
    else:
        warnings.warn("no GPU with hub access and no toy-world weights installed: using "
                      "random-weight stand-ins (the pictures mean nothing).", stacklevel=2)
    return "random"


def config_for(world: str, **overrides) -> LRConfig:
    """The GPU settings for "real", the CPU-sized settings for the small worlds."""
    if world not in WORLDS:
        raise LRError(f"world={world!r}: use one of {', '.join(WORLDS)} (or choose_world()).")
    if world == "real":            # the canvas the default editors work at, known before loading
        cfg = LRConfig(**overrides)
        return cfg if cfg.size is not None else cfg.replace(size=cfg.canvas())
    return LRConfig.cpu(world=world, **overrides)


def model_sources(cfg: LRConfig, parts=("dino", "clip", "editor")) -> dict:
    """What `lrlib.models.load_models` loads for `cfg.world`: {"dino": id or folder, "clip": ...,
    "clip_pretrained": tag or None, "editor": folder or None (None: the config's own id)}."""
    editor = (cfg.editor,) if "editor" in parts else ()
    if cfg.world == "toy":
        p = toy_paths(("dino", "clip") + editor)
    elif cfg.world == "random":
        from lrlib.worlds.random_world import random_world
        p = random_world(tuple(k for k in ("dino", "clip") if k in parts) + editor)
    else:
        return {"dino": cfg.dino, "clip": cfg.clip, "clip_pretrained": cfg.clip_pretrained,
                "editor": None}
    return {"dino": p.get("dino"), "clip": p.get("clip"), "clip_pretrained": None,
            "editor": p.get(cfg.editor)}


def banner(cfg: LRConfig) -> str:
    """One line saying which models run, on what, and how to choose others."""
    import torch
    dev = "CUDA GPU" if torch.cuda.is_available() and cfg.device != "cpu" else "CPU"
    text = {
        "real": f"REAL checkpoints ({cfg.dino}, {cfg.clip}/{cfg.clip_pretrained}, "
                f"{cfg.sd_model if cfg.editor == 'sd' else cfg.maskgit_model})",
        "toy": f"the TOY WORLD, small models trained by us on synthetic scenes (lrlib/toy): "
               f"{TOY_LIMITS}",
        "random": "RANDOM-WEIGHT stand-ins of the real classes: the code runs, the pictures "
                  "mean nothing",
    }[cfg.world]
    return (f"lrlib models: {text}. Device: {dev}. Choose with --world auto|real|toy|random "
            "or LRLIB_WORLD.")


def toy_likeness(image) -> float:
    """Share of pixels that look like a toy scene: a grey-ish background pixel (saturation
    < 0.35) or a vivid object pixel (saturation > 0.7) whose hue is within 20 degrees of a toy
    palette colour. Toy scenes score ~0.95-1.0; photos usually well under 0.8.

        s = (max - min) / max,   hue = atan2(sqrt(3) (g - b), 2r - g - b)
    """
    import numpy as np
    from PIL import Image

    img = image if isinstance(image, Image.Image) else Image.open(image)
    a = np.asarray(img.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.float32) / 255
    mx, mn = a.max(-1), a.min(-1)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    hue = lambda r, g, b: np.degrees(np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b))
    h = hue(a[..., 0], a[..., 1], a[..., 2])
    palette = np.array([hue(*np.asarray(c, np.float32)) for c in TOY_PALETTE.values()])
    dist = np.abs((h[..., None] - palette + 180) % 360 - 180).min(-1)
    toy = (sat < 0.35) | ((sat > 0.7) & (dist < 20))
    return float(toy.mean())


def warn_if_not_toy_scene(image, cfg: LRConfig, threshold: float = 0.85) -> None:
    """In the toy world, warn when the image does not look like a toy scene (a photo)."""
    if cfg.world != "toy":
        return
    score = toy_likeness(image)
    if score < threshold:
        warnings.warn(f"this image does not look like a toy scene ({score:.0%} toy-like pixels): "
                      f"{TOY_LIMITS}. For a photo use real checkpoints on a GPU "
                      "(--world real / LRConfig(), see 'Your own photo' in lrlib/README.md).",
                      stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """The stacklevel of the first caller outside lrlib, so a warning points at the user's line."""
    import sys
    root = str(Path(__file__).parent.parent)      # the lrlib package
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(root):
        frame, level = frame.f_back, level + 1
    return level
