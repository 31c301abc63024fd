"""Which models run: one rule for every entry point (lrlib.worlds), and a config that is data."""
import ast
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lrlib import LRConfig, LRError
from lrlib import worlds as world

LRLIB = Path(world.__file__).parent.parent


@pytest.fixture
def offline_cpu(monkeypatch):
    monkeypatch.delenv("LRLIB_WORLD", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_precedence_explicit_then_env_then_auto(offline_cpu, monkeypatch):
    """Bug caught: the CLI ignoring LRLIB_WORLD (the old `edit`), or the env var beating an
    explicit --world, or "auto" treated as a world name."""
    monkeypatch.setenv("LRLIB_WORLD", "random")
    assert world.choose_world() == "random"
    assert world.choose_world("toy") == "toy"              # explicit beats the variable
    assert world.choose_world("auto") == "random"          # "auto" defers to the variable
    monkeypatch.setenv("LRLIB_WORLD", "auto")
    assert world.choose_world() == "toy"                   # auto, offline, toy weights shipped
    monkeypatch.setenv("LRLIB_WORLD", "moon")
    with pytest.raises(LRError, match="LRLIB_WORLD='moon'"):
        world.choose_world()
    with pytest.raises(LRError, match="--world='sun'"):
        world.choose_world("sun")


def test_auto_is_real_only_on_a_gpu_that_reaches_the_hub(offline_cpu, monkeypatch):
    """Bug caught: going for the hub checkpoints on a CPU machine or offline (the old `edit`
    retried ~55 s and failed), or `--cpu` still picking real checkpoints on a GPU."""
    assert not world.hub_reachable()                       # HF_HUB_OFFLINE=1 short-circuits
    assert world.choose_world() == "toy"
    monkeypatch.setattr(world, "hub_reachable", lambda timeout=3.0: True)
    assert world.choose_world() == "toy"                   # hub but no GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert world.choose_world() == "real"
    assert world.choose_world(allow_real=False) == "toy"   # the CLI's --cpu
    monkeypatch.setattr(world, "hub_reachable", lambda timeout=3.0: False)
    assert world.choose_world() == "toy"                   # GPU but no hub


def test_missing_toy_editor_falls_back_with_a_warning(offline_cpu, monkeypatch, tmp_path):
    """Toy DINO, CLIP and SD installed but no toy MaskGIT: the toy world for SD; random
    stand-ins, with a warning that says how to train it, for MaskGIT; loading the toy MaskGIT
    says which weights are missing."""
    from lrlib import models
    for name in ("dino", "clip", "sd"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(world, "TOY_WEIGHTS", tmp_path)
    assert world.toy_available() and not world.toy_available(("maskgit",))
    assert world.choose_world() == "toy"
    with pytest.warns(UserWarning, match="lrlib.toy train maskgit"):
        assert world.choose_world(editor="maskgit") == "random"
    with pytest.raises(LRError, match="maskgit"):
        models.load_models(LRConfig.cpu(world="toy", editor="maskgit"))


def test_config_is_data(monkeypatch, tmp_path):
    """Bug caught: LRConfig.cpu() reading $LRLIB_WORLD or the disk (the old cpu() did both), so
    the same call gave different settings on different machines."""
    monkeypatch.setenv("LRLIB_WORLD", "random")
    monkeypatch.setattr(world, "TOY_WEIGHTS", tmp_path)    # no toy weights "installed"
    a = LRConfig.cpu()
    assert a.world == "toy" and a.steps == 10
    assert LRConfig.cpu(world="random").steps == 4         # the stand-ins' own sampler setting
    assert world.config_for("real") == LRConfig(size=512)     # the canvas known before loading
    sdxl = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
    assert world.config_for("real", sd_model=sdxl).size == 1024
    assert world.config_for("toy", K=2) == LRConfig.cpu(K=2)


def test_model_sources_per_world():
    """Bug caught: a toy or random config loading hub ids (or a real config loading toy folders)."""
    real = world.model_sources(LRConfig())
    assert real["dino"] == LRConfig().dino and real["editor"] is None
    toy = world.model_sources(LRConfig.cpu(world="toy"))
    assert toy["dino"] == str(world.TOY_WEIGHTS / "dino") and toy["clip_pretrained"] is None
    assert toy["editor"] == str(world.TOY_WEIGHTS / "sd")
    anchors_only = world.model_sources(LRConfig.cpu(world="toy"), parts=("dino",))
    assert anchors_only["editor"] is None


def _imports(path: Path) -> set[str]:
    """lrlib modules a file imports, at module level or inside functions (a lazy import is a
    dependency too: the old config -> world -> models -> config circle was made of them)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lrlib"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("lrlib")}
    return out


def _module(path: Path) -> str:
    rel = path.relative_to(LRLIB.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def test_no_import_cycle_and_nobody_imports_the_cli():
    """Bug caught: config -> world -> models -> config import circles, and library
    code that reaches into the CLI for a constant or a helper."""
    graph = {_module(p): _imports(p) for p in LRLIB.rglob("*.py")}
    users_of_cli = [m for m, deps in graph.items() if "lrlib.cli" in deps and m != "lrlib.__main__"]
    lazy_cli = [str(p) for p in LRLIB.rglob("*.py") if p.name not in ("__main__.py", "cli.py")
                and re.search(r"lrlib\.cli(?![\w])", p.read_text())]       # imports inside functions too
    assert not users_of_cli and not lazy_cli, (users_of_cli, lazy_cli)
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in graph.get(m, ()):
            if d not in graph:
                continue
            assert state.get(d) != 1, f"import cycle: {' -> '.join(stack + [m, d])}"
            if d not in state:
                visit(d, stack + [m])
        state[m] = 2
    for m in graph:
        if m not in state:
            visit(m, [])
    assert "lrlib.worlds" not in graph["lrlib.config"]


def test_toy_likeness_tells_a_toy_scene_from_a_photo():
    """Bug caught: the toy world 'succeeding' silently on a photo. Toy scenes of two sizes score
    high; a smooth, mid-saturation photo-like image scores low and gets a warning in the toy
    world only."""
    from lrlib.toy.scenes import render_scene
    for seed, size in ((3, 64), (4, 128)):
        a = render_scene(10_000_000 + seed, size).image
        assert world.toy_likeness(Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))) > 0.9
    yy, xx = np.mgrid[0:240, 0:320] / 240
    photo = np.stack([0.6 + 0.3 * np.sin(3 * xx), 0.45 + 0.2 * np.cos(2 * yy), 0.3 + 0.1 * xx], -1)
    photo = Image.fromarray((photo * 255).astype(np.uint8))
    assert world.toy_likeness(photo) < 0.5
    with pytest.warns(UserWarning, match="only coloured shapes") as rec:
        world.warn_if_not_toy_scene(photo, LRConfig.cpu(world="toy"))
    assert rec[0].filename == __file__          # points at the caller's line, not lrlib's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        world.warn_if_not_toy_scene(photo, LRConfig.cpu(world="random"))


def test_every_cli_command_prints_the_banner_and_honours_the_env(tmp_path):
    """Bug caught: `edit` ignoring LRLIB_WORLD=toy (going for real checkpoints) and
    commands that never say which models ran."""
    import os
    env = dict(os.environ, LRLIB_WORLD="toy", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "lrlib", "edit", str(LRLIB / "data" / "demo.png"),
                        "--prompt", "a blue square", "--caption", "the red circle", "--K", "1",
                        "--M", "2", "--epochs", "1", "--steps", "1", "--out", str(tmp_path / "o")],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "TOY WORLD" in r.stdout.splitlines()[0]
    r = subprocess.run([sys.executable, "-m", "lrlib", "edit", "missing.png", "--prompt", "x",
                        "--world", "random"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "RANDOM-WEIGHT" in r.stdout and "does not exist" in r.stderr


def test_every_knob_is_documented():
    """Bug caught: a new LRConfig field without a declaration (a meaning, a kind, its values), so
    `LRConfig.describe()`'s table would show an empty cell and validate() would not check it, or
    describe() losing a field."""
    import dataclasses

    from lrlib.config import KINDS, KNOBS
    assert list(KNOBS) == [f.name for f in dataclasses.fields(LRConfig)]
    undocumented = [k.name for k in KNOBS.values() if len(k.meaning) < 8 or k.kind not in KINDS]
    assert not undocumented, f"declare a meaning and a kind for each of {undocumented}"
    table = LRConfig.describe().splitlines()
    assert len(table) == 1 + len(dataclasses.fields(LRConfig))
    row = next(r for r in table if r.startswith("size "))
    assert "512" in row and "64" in row and "32..4096" in row   # values side by side, bounds
