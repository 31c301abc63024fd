"""The toy world's trainers: what made the shipped weights in `lrlib/toy/weights/` (runtime code
never imports this package).

    clip     open_clip CLIP, multi-positive InfoNCE over scenes and captions   (clip.py)
    dino     timm ViT, DINO self-distillation on re-rendered views             (dino.py)
    sd       SD inpainting: KL autoencoder, then a 9-channel UNet + text encoder (sd.py)
    maskgit  aMUSEd: VQ-VAE, then a U-ViT masked-token transformer + text encoder (maskgit.py)

`common.py` holds what they share (options, seeding, logging, learning rate, EMA, checkpoints,
the atomic save of a weights folder). The two editors' trainers encode prompts with the editors'
own `lrlib.editors.prompts`. Run one with `python -m lrlib.toy train NAME [--tiny] [--help]`.
"""
from __future__ import annotations

import importlib

TRAINERS = ("clip", "dino", "sd", "maskgit")


def trainer(name: str):
    """The trainer module `lrlib.toy.train.<name>`."""
    if name not in TRAINERS:
        from lrlib.errors import LRError
        raise LRError(f"no toy trainer {name!r}; choose one of {', '.join(TRAINERS)}.")
    return importlib.import_module(f"{__name__}.{name}")


def main(name: str, argv=None) -> str:
    """`python -m lrlib.toy train NAME ARGS...`: train, print and return the output folder."""
    from lrlib.toy.train.common import main as run

    return run(trainer(name), argv)
