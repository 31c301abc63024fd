"""Which models run: real checkpoints, the shipped toy world, or random stand-ins.

    world = choose_world()        # "real" on a CUDA machine that reaches the hub, else "toy"
    cfg = config_for(world)       # LRConfig() for real, LRConfig.cpu(world=...) otherwise
    print(banner(cfg))

One variable overrides the choice everywhere (notebooks, demo): `LRLIB_WORLD=real|toy|random`.
"""
from __future__ import annotations

import os

import torch

from lrlib.config import LRConfig
from lrlib.errors import LRError

WORLDS = ("real", "toy", "random")


def toy_available(names=None) -> bool:
    """True if the toy world's models `names` (default: DINO, CLIP and SD) are installed."""
    from lrlib.models import TOY_CORE, TOY_WEIGHTS
    return all((TOY_WEIGHTS / k).is_dir() for k in (names or TOY_CORE))


def hub_reachable(timeout: float = 3.0) -> bool:
    """True if the Hugging Face Hub answers (never true with HF_HUB_OFFLINE=1)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    try:
        import urllib.request
        urllib.request.urlopen("https://huggingface.co/api/models?limit=1", timeout=timeout)
        return True
    except Exception:
        return False


def choose_world(override: str | None = None, editor: str = "sd") -> str:
    """`override` or $LRLIB_WORLD if set; else "real" with a GPU and hub access; else "toy" if
    its weights (DINO, CLIP and the toy `editor`) are installed; else "random"."""
    w = override or os.environ.get("LRLIB_WORLD")
    if w:
        if w not in WORLDS:
            raise LRError(f"LRLIB_WORLD={w!r}: use one of {WORLDS}.")
        return w
    if torch.cuda.is_available() and hub_reachable():
        return "real"
    if toy_available(("dino", "clip", editor)):
        return "toy"
    if toy_available():
        import warnings
        warnings.warn(f"this install has no toy-world {editor!r} editor (lrlib/toy/weights/"
                      f"{editor}): using random-weight stand-ins; train it with "
                      f"`python -m lrlib.toy train {editor}`.", stacklevel=2)
    return "random"


def config_for(world: str, **overrides) -> LRConfig:
    """The paper's GPU settings for "real", the CPU-sized settings for the small worlds."""
    if world == "real":
        return LRConfig(**overrides)
    return LRConfig.cpu(world=world, **overrides)


def banner(cfg: LRConfig) -> str:
    dev = "CUDA GPU" if torch.cuda.is_available() and cfg.device != "cpu" else "CPU"
    text = {
        "real": f"REAL checkpoints ({cfg.dino}, {cfg.clip}/{cfg.clip_pretrained}, "
                f"{cfg.sd_model if cfg.editor == 'sd' else cfg.maskgit_model})",
        "toy": "the TOY WORLD: small models trained by us on synthetic scenes (lrlib/toy)",
        "random": "RANDOM-WEIGHT stand-ins of the real classes: the code runs, the pictures "
                  "mean nothing (no toy weights installed, no checkpoints reachable)",
    }[cfg.world]
    return f"lrlib models: {text}. Device: {dev}. Override with LRLIB_WORLD=real|toy|random."
