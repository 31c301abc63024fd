"""The shipped toy CLIP and DINO: they load through lrlib's own loaders, are fp16 and small, and
mean something on held-out scenes (the trainers' tests: tests/test_toy_train.py)."""
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from lrlib.toy import evaluate
from lrlib.toy.scenes import TRAIN_SEED_LIMIT

WEIGHTS = Path(evaluate.__file__).parent / "weights"
BUDGET_MB = 40  # every shipped toy model together: the size budget for all four


@pytest.fixture(scope="module")
def toy_clip():
    from lrlib.models import load_clip
    return load_clip(str(WEIGHTS / "clip"), None)


@pytest.fixture(scope="module")
def toy_dino():
    from lrlib.models import load_dino
    return load_dino(str(WEIGHTS / "dino"))


def test_held_out_seeds():
    assert evaluate.EVAL_SEED0 >= TRAIN_SEED_LIMIT


def test_files_fp16_safetensors_and_small():
    for kind, name in (("clip", "open_clip_model.safetensors"), ("dino", "model.safetensors")):
        folder = WEIGHTS / kind
        assert (folder / "README.md").is_file(), f"{kind}: model card missing"
        assert not list(folder.glob("*.bin")), f"{kind}: pickle weights shipped"
        with safe_open(str(folder / name), "pt") as f:
            dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
        assert dtypes == {"F16"}, f"{kind}: {dtypes}"
    json.loads((WEIGHTS / "clip" / "open_clip_config.json").read_text())["model_cfg"]
    total = sum(p.stat().st_size for p in WEIGHTS.rglob("*") if p.is_file())
    assert total < BUDGET_MB * 2**20, f"{total / 2**20:.1f} MB"


def test_clip_zero_shot(toy_clip):
    m = evaluate.clip_metrics(toy_clip, n=100)
    assert m["zero_shot"] >= 0.95, m
    assert m["two_object_per_object"] >= 0.8, m


def test_clip_long_prompt_chunks(toy_clip):
    from lrlib.toy.scenes import caption_scene, render_scene
    scene = render_scene(TRAIN_SEED_LIMIT + 7, n_objects=2)
    e = toy_clip.encode_text([caption_scene(scene, 0, "long"), "a red circle"])
    assert e.shape == (2, toy_clip.model.text_projection.shape[1])
    assert torch.allclose(e.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_dino_attention_finds_objects(toy_dino):
    trained = evaluate.dino_top1_in_box(toy_dino, n=100)
    rand = evaluate.dino_top1_in_box(evaluate.random_dino(WEIGHTS / "dino", 0), n=100)
    assert trained["top1_in_box"] >= 0.85, trained
    assert trained["top1_in_box"] - rand["top1_in_box"] >= 0.35, (trained, rand)


def test_dino_teacher_not_collapsed(toy_dino):
    m = evaluate.dino_teacher_entropy(toy_dino, WEIGHTS / "dino", n=100)
    # not one prototype for every image; not the uniform distribution either. The shipped
    # teacher is soft (per-image entropy ~0.95 log K, see its model card): the bars are loose.
    assert m["entropy_of_mean"] > 0.9 * m["log_prototypes"], m
    assert m["entropy_per_image"] < m["log_prototypes"] - 0.15, m
    assert m["prototypes_used"] >= 8, m
