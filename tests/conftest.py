"""Shared fixtures: small models of the real classes, built once per session into temp folders
and loaded back through lrlib's own loading code (the path a hub checkpoint takes)."""
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# unit tests run on tiny random-weight models; tests of the shipped toy world ask for it by name
os.environ.setdefault("LRLIB_WORLD", "random")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    from lrlib.worlds.random_world import (make_tiny_clip, make_tiny_dino, make_tiny_maskgit, make_tiny_sd)

    root = tmp_path_factory.mktemp("tiny")
    return {"dino": make_tiny_dino(root / "dino"), "clip": make_tiny_clip(root / "clip"),
            "sd": make_tiny_sd(root / "sd"), "maskgit": make_tiny_maskgit(root / "maskgit")}


@pytest.fixture(scope="session")
def dino(tiny_dirs):
    from lrlib.models import load_dino
    return load_dino(tiny_dirs["dino"])


@pytest.fixture(scope="session")
def clip(tiny_dirs):
    from lrlib.models import load_clip
    return load_clip(tiny_dirs["clip"])


@pytest.fixture(scope="session")
def models(tiny_dirs, dino, clip):
    """Models for the SD editor; `models_for(editor)` for either."""
    from lrlib.config import LRConfig
    from lrlib.models import Models, load_editor

    def make(editor):
        ed = load_editor(LRConfig.cpu(world="random", editor=editor), "cpu", tiny_dirs[editor])
        return Models(dino=dino, clip=clip, editor=ed, device=torch.device("cpu"), world="test")
    return make


@pytest.fixture
def scene():
    """A 64x64 RGB test image: a red disc on a grey-blue gradient (float tensor, (3, 64, 64))."""
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    img = torch.stack([0.3 + 0.2 * x / 63, 0.4 + 0.0 * x, 0.5 + 0.2 * y / 63])
    disc = ((x - 40) ** 2 + (y - 22) ** 2) < 100
    img[:, disc] = torch.tensor([0.9, 0.1, 0.1])[:, None]
    return img


@pytest.fixture(scope="module")
def toy():
    """(LRConfig.cpu(), the shipped toy world's models), loaded once per test module."""
    from lrlib.config import LRConfig
    from lrlib.models import load_models
    from lrlib.worlds import toy_available
    if not toy_available():
        pytest.fail("the toy world's weights are missing from lrlib/toy/weights")
    cfg = LRConfig.cpu(world="toy", progress=False)
    return cfg, load_models(cfg)
