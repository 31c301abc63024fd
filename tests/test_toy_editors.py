"""The shipped toy editors (lrlib/toy/weights/sd, lrlib/toy/weights/maskgit), loaded through the
editor classes exactly as hub checkpoints: they edit benchmark tasks right (loose bars, set well
under the measured rates in the model cards), never touch the image outside the composite mask,
are deterministic, ship fp16 safetensors (the trainers' tests: tests/test_toy_train.py)."""
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from lrlib.toy import benchmark_tasks
from lrlib.toy.eval_editors import edit_tasks, evaluate, load_editor, task_tensors

WEIGHTS = Path(__file__).resolve().parents[1] / "lrlib" / "toy" / "weights"
N_TASKS = 24
# measured on 200 benchmark tasks (see the model cards); the bars leave room for 24-task noise
BARS = {"sd": dict(success=0.80, colour=0.95), "maskgit": dict(success=0.45, colour=0.95)}
FAST = {"sd": dict(steps=6, guidance_scale=3.0), "maskgit": dict(steps=8, guidance_scale=4.0)}
SHIPPED = ("sd", "maskgit")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads run these small models ~10x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    kind = request.param
    if not (WEIGHTS / kind).is_dir():
        pytest.fail(f"no shipped weights in {WEIGHTS / kind}: run `python -m lrlib.toy train {kind}`.")
    ed = load_editor(kind, **FAST[kind])       # the editor's defaults: the sampler of every call
    return kind, ed


@pytest.fixture(scope="module")
def tasks():
    return benchmark_tasks(N_TASKS)


def test_shipped_weights_are_fp16_safetensors():
    for kind in SHIPPED:
        files = list((WEIGHTS / kind).rglob("*.safetensors"))
        assert len(files) >= 3, kind
        assert not list((WEIGHTS / kind).rglob("*.bin")), kind
        for f in files:
            with safe_open(f, "pt") as st:
                dtypes = {st.get_slice(k).get_dtype() for k in st.keys()}
            assert dtypes == {"F16"}, (f, dtypes)
    assert json.loads((WEIGHTS / "sd" / "lrlib_editor.json").read_text())["crop_margin"] > 1


def test_loads_in_float32_on_cpu(shipped):
    kind, ed = shipped
    if kind == "sd":
        assert ed.pipe.unet.dtype == ed.pipe.vae.dtype == ed.pipe.text_encoder.dtype == torch.float32
        assert ed.crop_margin == 1.5 and ed.resolution == 32
    else:
        assert ed.dtype == ed.vq_dtype == torch.float32
        assert ed.resolution == 32 and ed.grid == 2 and ed.crop_margin == 1.5


def test_benchmark_success_and_untouched_outside(shipped, tasks):
    kind, ed = shipped
    r = evaluate(ed, tasks, seed=0, batch=N_TASKS)
    assert r["success"] >= BARS[kind]["success"], r
    assert r["colour"] >= BARS[kind]["colour"], r
    assert r["outside_mask_unchanged"] == 1.0, r
    # both shipped editors crop around the box, so their composite mask is the box itself
    assert r["outside_box_unchanged"] == 1.0 and math.isinf(r["psnr_outside_box_mean_finite"])


def test_deterministic_with_seed(shipped, tasks):
    kind, ed = shipped
    sub = tasks[:3]
    a, _ = edit_tasks(ed, sub, seed=5, batch=3)
    b, _ = edit_tasks(ed, sub, seed=5, batch=3)
    c, _ = edit_tasks(ed, sub, seed=6, batch=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    x, _ = task_tensors(sub)
    assert not torch.equal(a, x)  # it did edit


def test_square_boxes_are_centred_squares_inside_the_image():
    from lrlib.toy.eval_editors import square_boxes

    tasks = benchmark_tasks(20)
    for t, s in zip(tasks, square_boxes(tasks, 1.4)):
        x0, y0, x1, y1 = s.target_box
        n = t.scene.size
        assert x1 - x0 == y1 - y0 and 0 <= x0 and 0 <= y0 and x1 <= n and y1 <= n
        tx0, ty0, tx1, ty1 = t.target_box
        side = min(n, round(max(tx1 - tx0, ty1 - ty0) * 1.4))
        assert x1 - x0 == side
        if side < n:   # unclipped squares share the object box's centre (to a pixel)
            assert abs((x0 + x1) - (tx0 + tx1)) <= 2 or x0 == 0 or x1 == n
