"""The toy world's scenes, captions and edit tasks: deterministic, exact, and true to the geometry."""
import re

import numpy as np
import pytest
import torch

from lrlib.errors import LRError
from lrlib.toy.scenes import (BENCHMARK_SEED0, COLOURS, EDIT_KINDS, GAP, SHAPES,
                              TRAIN_SEED_LIMIT, benchmark_tasks, caption_object, caption_scene,
                              ground_truth_edit, make_edit_task, paint_object, render_background,
                              render_batch, render_scene, rerender, side_range)


@pytest.fixture(scope="module")
def tok():
    import open_clip
    return open_clip.get_tokenizer("ViT-B-32")


# --- an independent reading of referring expressions, from box centres -------------------------

def fits(desc, o):
    words = desc.split()
    if words == ["object"]:
        return True
    if len(words) == 2 and words[1] == "object":
        return o.colour == words[0]
    if len(words) == 1:
        return o.shape == words[0]
    return (o.colour, o.shape) == (words[0], words[1])


def holds(rel, a, b):
    ax, ay = (a.box[0] + a.box[2]) / 2, (a.box[1] + a.box[3]) / 2
    bx, by = (b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2
    return {"left of": ax < bx, "right of": ax > bx, "above": ay < by, "below": ay > by}[rel]


def referents(caption, objs):
    """Indices of the objects a 'the X <rel> the Y' caption can mean (Y must be unique)."""
    m = re.fullmatch(r"the (.+?) (left of|right of|above|below) the (.+)", caption)
    assert m, caption
    subj, rel, anc = m.groups()
    anchors = [o for o in objs if fits(anc, o)]
    assert len(anchors) == 1, caption
    return [i for i, o in enumerate(objs)
            if o is not anchors[0] and fits(subj, o) and holds(rel, o, anchors[0])]


# --- scenes ------------------------------------------------------------------------------------

def test_render_is_deterministic_by_seed_and_seeds_differ():
    a, b, c = render_scene(7), render_scene(7), render_scene(8)
    assert np.array_equal(a.image, b.image)
    assert [o.box for o in a.objects] == [o.box for o in b.objects]
    assert np.abs(a.image - c.image).mean() > 0.01
    assert a.image.dtype == np.float32 and a.image.shape == (64, 64, 3)
    assert 0 <= a.image.min() and a.image.max() <= 1


@pytest.mark.parametrize("size", [64, 128])
def test_masks_fill_their_boxes_exactly(size):
    lo, hi = side_range(size)
    for seed in range(40):
        for o in render_scene(seed, size).objects:
            x0, y0, x1, y1 = o.box
            inside = np.zeros((size, size), bool)
            inside[y0:y1, x0:x1] = True
            assert not (o.mask & ~inside).any()          # mask inside its box
            assert not (o.alpha[~inside] > 0).any()      # nothing painted outside the box
            m = o.mask[y0:y1, x0:x1]
            assert m[0].any() and m[-1].any() and m[:, 0].any() and m[:, -1].any()  # touches all 4 edges
            assert np.array_equal(o.mask, o.alpha >= 0.5)
            assert lo - 3 <= min(x1 - x0, y1 - y0) and max(x1 - x0, y1 - y0) <= hi


def test_objects_keep_apart_and_vary():
    sides, counts = [], set()
    for seed in range(150):
        s = render_scene(seed)
        counts.add(len(s.objects))
        for i, a in enumerate(s.objects):
            sides.append(a.box[2] - a.box[0])
            assert min(a.box[:2]) >= GAP and max(a.box[2:]) <= 64 - GAP
            for b in s.objects[i + 1:]:
                assert not (a.mask & b.mask).any()
                assert (a.box[2] + GAP <= b.box[0] or b.box[2] + GAP <= a.box[0] or
                        a.box[3] + GAP <= b.box[1] or b.box[3] + GAP <= a.box[1])
    assert counts == {1, 2, 3}
    assert min(sides) <= 15 and max(sides) >= 26


def test_vocabulary_is_used_and_backgrounds_are_soft():
    from lrlib.toy.judge import saturation
    seen = set()
    for seed in range(120):
        s = render_scene(seed)
        seen |= {(o.shape, o.colour) for o in s.objects}
        free = np.ones((64, 64), bool)
        for o in s.objects:
            free &= o.alpha == 0
        assert saturation(s.image[free]).max() < 0.4  # grey-ish: only objects are vivid
    assert {sh for sh, _ in seen} == set(SHAPES) and {c for _, c in seen} == set(COLOURS)
    assert len(SHAPES) >= 3 and len(COLOURS) >= 5


def test_paint_object_paints_inside_the_box_only():
    img = render_background(render_scene(3).background, 64)
    before = img.copy()
    out, mask = paint_object(img, "triangle", "blue", (10, 12, 30, 34))
    assert np.array_equal(img, before)                   # input untouched
    changed = np.abs(out - img).max(-1) > 0
    assert changed[12:34, 10:30].any() and not changed[:12].any() and not changed[:, 30:].any()
    assert np.allclose(out[mask].mean(0), COLOURS["blue"], atol=0.05)
    with pytest.raises(LRError):
        paint_object(img, "hexagon", "blue", (10, 12, 30, 34))
    with pytest.raises(LRError):
        paint_object(img, "circle", "blue", (50, 50, 70, 60))


def test_rerender_keeps_objects_and_changes_background():
    s = render_scene(11, n_objects=3)
    t = rerender(s, 12)
    assert [(o.shape, o.colour, o.box) for o in t.objects] == [(o.shape, o.colour, o.box) for o in s.objects]
    solid = np.zeros((64, 64), bool)
    free = np.ones((64, 64), bool)
    for o in s.objects:
        solid |= o.alpha == 1
        free &= o.alpha == 0
    assert np.allclose(s.image[solid], t.image[solid], atol=1e-6)
    assert np.abs(s.image[free] - t.image[free]).mean() > 0.03
    # and the explicit form reproduces the scene exactly
    again = render_scene(0, objects=s.objects, background=s.background)
    assert np.array_equal(again.image, s.image)


def test_render_batch_matches_render_scene_for_every_seed_and_option():
    """Each item of a batch is the scene of its own seed, with the options passed through.
    Bugs caught: one rng shared across the batch (item i is not scene i), channels-last data
    reinterpreted as channels-first, size / n_objects ignored. (Speed: a benchmark figure,
    `python -m lrlib.bench scenes`.)"""
    seeds = [1, 2, 3]
    x, scenes = render_batch(seeds)
    assert x.shape == (3, 3, 64, 64) and x.dtype == torch.float32
    for i, s in enumerate(seeds):
        one = render_scene(s)
        assert torch.equal(x[i], torch.from_numpy(one.image).permute(2, 0, 1))
        assert [o.box for o in scenes[i].objects] == [o.box for o in one.objects]
    y, small = render_batch([7, 8], size=32, n_objects=1)
    assert y.shape == (2, 3, 32, 32) and all(len(s.objects) == 1 for s in small)
    assert torch.equal(y[1], torch.from_numpy(render_scene(8, 32, n_objects=1).image).permute(2, 0, 1))


def test_scenes_benchmark_prints_its_figure(capsys):
    from lrlib.bench.__main__ import main
    assert main(["scenes", "--n", "5"]) == 0
    assert re.fullmatch(r"toy scenes: 5 scenes of 64 px in [0-9.]+ s \([0-9.]+ ms a scene, best of 3\)\n",
                        capsys.readouterr().out)


# --- captions ----------------------------------------------------------------------------------

def test_caption_kinds(tok):
    names = {f"{c} {s}" for s in SHAPES for c in COLOURS}
    for seed in range(40):
        s = render_scene(seed)
        objs = s.objects
        single = caption_scene(s, seed, "single")
        assert single in {caption_object(o) for o in objs}
        multi = caption_scene(s, seed, "multi")
        assert sorted(re.findall(r"a (\w+ \w+)", multi)) == sorted(o.name for o in objs)
        assert set(re.findall(r"a (\w+ \w+)", multi)) <= names
        long = caption_scene(s, seed, "long")
        assert len(tok.encode(long)) > 77 and len(long.split()) >= 70
        assert all(f"{o.colour} {o.shape}" in long for o in objs)
    s = render_scene(5, n_objects=2)
    assert caption_scene(s, 3) == caption_scene(s, 3)
    lengths = {len(caption_scene(s, k).split()) for k in range(30)}   # kind=None: any kind
    assert min(lengths) == 3 and max(lengths) >= 70
    with pytest.raises(LRError):
        caption_scene(render_scene(5), 0, "poem")


def test_relation_captions_are_true_of_the_geometry():
    checked, generic = 0, 0
    for seed in range(150):
        s = render_scene(seed, n_objects=(2, 3))
        for k in range(3):
            cap = caption_scene(s, seed * 10 + k, "relation")
            if " the " not in cap[4:]:      # fell back to 'multi' (all names alike)
                continue
            assert len(referents(cap, s.objects)) == 1, cap
            checked += 1
            generic += cap.startswith("the object ")
    assert checked > 300 and generic > 10


# --- edit tasks --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_edit_tasks_have_consistent_ground_truth(kind, tok):
    for seed in range(12):
        t = make_edit_task(seed, kind=kind)
        objs = t.scene.objects
        target = objs[t.target_index]
        assert t.target_box == target.box and t.kind == kind and t.seed == seed
        assert (t.target_shape, t.target_colour) != (target.shape, target.colour)
        if kind == "relation":
            assert sum(o.name == target.name for o in objs) == 2   # the name alone is ambiguous
            assert referents(t.source_caption, objs) == [t.target_index]
        else:
            assert t.source_caption == f"the {target.name}"
            assert sum(o.name == target.name for o in objs) == 1
        if kind == "long":
            assert len(tok.encode(t.prompt)) > 77
            assert f"{t.target_colour} {t.target_shape}" in t.prompt
        else:
            assert t.prompt == f"a {t.target_colour} {t.target_shape}"
        u = make_edit_task(seed, kind=kind)
        assert np.array_equal(u.scene.image, t.scene.image) and u.prompt == t.prompt


def test_ground_truth_edit_changes_only_the_box():
    for seed in range(20):
        t = make_edit_task(seed, kind="multi")
        out = ground_truth_edit(t)
        x0, y0, x1, y1 = t.target_box
        outside = np.ones((64, 64), bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(out[outside], t.scene.image[outside])
        assert np.abs(out[~outside] - t.scene.image[~outside]).max() > 0.3
        assert not np.array_equal(out, t.scene.image)


def test_benchmark_is_fixed_and_held_out():
    a, b = benchmark_tasks(24), benchmark_tasks(24)
    assert [t.seed for t in a] == [BENCHMARK_SEED0 + i for i in range(24)]
    assert BENCHMARK_SEED0 >= TRAIN_SEED_LIMIT and min(t.seed for t in a) >= TRAIN_SEED_LIMIT
    assert [t.kind for t in a[:4]] == list(EDIT_KINDS)
    for t, u in zip(a, b):
        assert np.array_equal(t.scene.image, u.scene.image)
        assert (t.source_caption, t.prompt, t.target_box) == (u.source_caption, u.prompt, u.target_box)
    assert [t.prompt for t in benchmark_tasks(6)] == [t.prompt for t in a[:6]]  # prefix-stable
    train = {render_scene(s).image.tobytes() for s in range(24)}
    assert not any(t.scene.image.tobytes() in train for t in a)
    with pytest.raises(LRError):
        make_edit_task(0, kind="sketch")
