"""The procedural judge: right about real objects, and it cannot be fooled by doing nothing."""
import math

import numpy as np
import pytest
import torch

from lrlib.toy.judge import PALETTE_HUES, judge_edit, judge_region, psnr, seam
from lrlib.toy.scenes import (COLOURS, SHAPES, benchmark_tasks, ground_truth_edit, paint_object,
                              render_background, render_scene, side_range)


@pytest.fixture(scope="module")
def tasks():
    return benchmark_tasks(200)


def blanked(task):
    """The source with the target box filled with its own background: the object is gone."""
    x0, y0, x1, y1 = task.target_box
    img = task.scene.image.copy()
    img[y0:y1, x0:x1] = render_background(task.scene.background, task.scene.size)[y0:y1, x0:x1]
    return img


def test_palette_hues_are_far_apart():
    h = sorted(PALETTE_HUES.values())
    gaps = np.diff(h + [h[0] + 360])
    assert gaps.min() >= 50


def test_judge_names_every_rendered_object():
    objs = []
    seed = 0
    while len(objs) < 300:
        s = render_scene(seed)
        objs += [(s.image, o) for o in s.objects]
        seed += 1
    lo, hi = side_range(64)
    for i, (sh, c) in enumerate((sh, c) for sh in SHAPES for c in COLOURS):
        for w, h in ((lo, lo), (hi, hi), (lo, round(lo * 1.2)), (round(lo * 1.2), lo)):
            s = render_scene(1000 + i, objects=[(sh, c, (5, 7, 5 + w, 7 + h))])
            objs.append((s.image, s.objects[0]))
    assert {o.shape for _, o in objs} == set(SHAPES) and {o.colour for _, o in objs} == set(COLOURS)
    wrong = [(o, v) for img, o in objs
             if ((v := judge_region(img, o.box)).colour, v.shape) != (o.colour, o.shape)]
    assert not wrong, wrong[:3]


def test_judge_reads_tensors_and_uint8_alike():
    s = render_scene(4)
    o = s.objects[0]
    a = judge_region(s.image, o.box)
    b = judge_region(torch.from_numpy(s.image).permute(2, 0, 1)[None], o.box)
    c = judge_region((s.image * 255).round().astype(np.uint8), o.box)
    assert (a.colour, a.shape) == (b.colour, b.shape) == (c.colour, c.shape) == (o.colour, o.shape)
    assert a.colour_conf > 0.95 and 0 < a.shape_conf <= 1


def test_plain_background_has_no_object():
    s = render_scene(9, n_objects=0)
    v = judge_region(s.image, (10, 10, 40, 40))
    assert v.colour is None and v.shape is None


def test_doing_nothing_or_erasing_never_succeeds(tasks):
    kept_shape = 0
    for t in tasks:
        orig = judge_edit(t.scene.image, t.scene.image, t)
        assert not orig["success"] and orig["psnr_outside"] == math.inf
        kept_shape += orig["shape_ok"]            # colour-only edits: the shape was already right
        gone = judge_edit(t.scene.image, blanked(t), t)
        assert not gone["success"] and gone["verdict"].shape is None
    assert kept_shape > 20


def test_ground_truth_edit_always_succeeds(tasks):
    for t in tasks:
        r = judge_edit(t.scene.image, ground_truth_edit(t), t)
        assert r["success"] and r["psnr_outside"] == math.inf and abs(r["seam"]) < 0.01, (t, r)


def test_wrong_colour_or_shape_is_caught(tasks):
    for t in tasks[:50]:
        other_c = next(c for c in COLOURS if c != t.target_colour)
        other_s = next(s for s in SHAPES if s != t.target_shape)
        img, _ = paint_object(blanked(t), t.target_shape, other_c, t.target_box)
        r = judge_edit(t.scene.image, img, t)
        assert r["shape_ok"] and not r["colour_ok"] and not r["success"]
        img, _ = paint_object(blanked(t), other_s, t.target_colour, t.target_box)
        r = judge_edit(t.scene.image, img, t)
        assert r["colour_ok"] and not r["shape_ok"] and not r["success"]


def test_psnr():
    a = np.full((8, 8, 3), 0.5, np.float32)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-3)
    b = a.copy()
    b[:4] += 0.1
    m = np.zeros((8, 8), bool)
    m[4:] = True
    assert psnr(a, b, m) == math.inf and psnr(a, b, ~m) == pytest.approx(20.0, abs=1e-3)


def test_global_change_shows_in_psnr_outside(tasks):
    t = tasks[0]
    gt = ground_truth_edit(t)
    noisy = np.clip(gt + np.random.default_rng(0).normal(0, 0.02, gt.shape), 0, 1).astype(np.float32)
    r = judge_edit(t.scene.image, noisy, t)
    assert 30 < r["psnr_outside"] < 38 and r["success"]


def test_seam_flags_a_visible_patch(tasks):
    for t in tasks[:60]:
        x0, y0, x1, y1 = t.target_box
        X0, Y0, X1, Y1 = max(0, x0 - 4), max(0, y0 - 4), min(64, x1 + 4), min(64, y1 + 4)
        bg = render_background(t.scene.background, 64)
        img = t.scene.image.copy()
        img[Y0:Y1, X0:X1] = np.clip(bg[Y0:Y1, X0:X1] + 0.06, 0, 1)  # background redrawn 0.06 too bright
        img, _ = paint_object(img, t.target_shape, t.target_colour, t.target_box)
        assert seam(t.scene.image, img) > 0.04
        assert abs(seam(t.scene.image, ground_truth_edit(t))) < 0.01


# ----------------------------------------------------------------------------- judge_task

def _neighbour_task(prompt_shape="square", prompt_colour="yellow"):
    """A red circle 2 px (the generator's minimum gap) left of a blue cross; edit the circle."""
    from lrlib.toy.scenes import EditTask
    s = render_scene(7, objects=[("circle", "red", (10, 12, 32, 34)),
                                 ("cross", "blue", (34, 12, 56, 34))])
    o = s.objects[0]
    return EditTask(s, "the red circle", f"a {prompt_colour} {prompt_shape}", 0, o.box,
                    prompt_shape, prompt_colour, "multi", 7)


def _paint(task, box):
    """Restore the background in `box`, then paint the prompt's object filling it."""
    x0, y0, x1, y1 = box
    img = task.scene.image.copy()
    img[y0:y1, x0:x1] = render_background(task.scene.background, task.scene.size)[y0:y1, x0:x1]
    return paint_object(img, task.target_shape, task.target_colour, box)[0]


def test_new_judge_sees_an_object_next_to_a_neighbour():
    """Catches the ring defect: judge_region's threshold comes from a ring just outside the box,
    and a box that reaches the neighbour (here: the source box grown by 2 px) puts the vivid
    neighbour in the ring and goes blind. judge_task thresholds on the source's background."""
    from lrlib.toy.judge import judge_task
    t = _neighbour_task()
    edited = ground_truth_edit(t)
    x0, y0, x1, y1 = t.target_box
    grown = (x0 - 2, y0 - 2, x1 + 2, y1 + 2)
    assert judge_region(edited, grown).shape is None        # the old judge, blind
    r = judge_task(t, edited)
    assert r["success"] and (r["verdict"].colour, r["verdict"].shape) == ("yellow", "square"), r


def test_new_judge_fails_a_left_behind_object():
    """Catches the union defect: an edit that paints the right object beside the old one (the
    box missed a third of it) is not a success: the old object must be gone."""
    from lrlib.toy.judge import judge_task
    t = _neighbour_task()
    x0, y0, x1, y1 = t.target_box
    shift = (x1 - x0) // 3
    r = judge_task(t, _paint(t, (x0 - shift, y0, x1 - shift, y1)))
    assert r["present"] and not r["old_gone"] and not r["success"], r


def test_new_judge_fails_an_edit_that_clips_the_neighbour():
    """Catches an edit box reaching into another object: the neighbour must still be itself."""
    from lrlib.toy.judge import judge_task
    t = _neighbour_task()
    x0, y0, x1, y1 = t.target_box
    r = judge_task(t, _paint(t, (x0, y0, x1 + 8, y1)))
    assert r["old_gone"] and not r["others_kept"] and not r["success"], r


def test_new_judge_on_the_benchmark_ground_truth_and_on_doing_nothing(tasks):
    """Catches a judge that is too strict (fails the ideal edit) or fooled (passes no edit, or an
    erased object)."""
    from lrlib.toy.judge import judge_task
    for t in tasks[:80]:
        assert judge_task(t, ground_truth_edit(t))["success"], t
        assert not judge_task(t, t.scene.image)["success"]
        assert not judge_task(t, blanked(t))["present"]
