"""The paper's stage functions against independent references, on many random cases.

Each reference is written from the definition (pure Python / numpy loops, or the library the
stage wraps called directly), not from lrlib's code, so a changed operator, a dropped term or an
off-by-one in lrlib disagrees with it somewhere. Cases are seeded; each test runs a few hundred
small inputs in well under a second.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from lrlib.anchors import cells_to_pixels, content_cells, top_k_anchors
from lrlib.errors import LRError
from lrlib.regions import (RGN, box_geometry, boxes_to_masks, gumbel_softmax, make_proposals,
                           roi_pool)
from lrlib.scoring import pick_best, quality_scores

rng = np.random.default_rng(0)


# --- scoring: S = alpha S_t2i + beta S_i2i + gamma S_dir + delta S_cap -------------------------

def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _scores_reference(E_I, E_T, E_src, alpha, beta, scale, E_cap, gamma, g, delta):
    """The ranking score written from its definition, one result at a time."""
    K = len(E_I)
    s_t2i = _softmax(np.array([scale * float(E_I[k] @ E_T) for k in range(K)]))
    s_i2i = _softmax(np.array([scale * float(E_I[k] @ E_src) for k in range(K)]))
    S = alpha * s_t2i + beta * s_i2i
    out = {"S_t2i": s_t2i, "S_i2i": s_i2i}
    if gamma:
        d_txt = _unit(E_T - E_cap)
        s_dir = _softmax(np.array([scale * float(_unit(E_I[k] - E_src) @ d_txt) for k in range(K)]))
        S, out["S_dir"] = S + gamma * s_dir, s_dir
    if delta and g is not None:
        s_cap = _softmax(scale * np.asarray(g))
        S, out["S_cap"] = S + delta * s_cap, s_cap
    out["S"] = S
    return out


@pytest.mark.parametrize("case", range(40))
def test_quality_scores_equal_the_definition(case):
    """Bugs caught: the logit scale dropped from one term (S_i2i), a term's weight swapped
    (alpha <-> beta), a softmax over the wrong axis, S_dir's direction reversed (caption - prompt),
    an unnormalised direction, S_cap added without its weight or without the scale."""
    K, E = int(rng.integers(2, 7)), 8
    E_I = _unit(rng.normal(size=(K, E)))
    E_T, E_src, E_cap = (_unit(rng.normal(size=E)) for _ in range(3))
    alpha, beta, gamma, delta = (float(v) for v in rng.uniform(0.1, 3, size=4))
    scale = float(rng.choice([1.0, 7.0, 100.0]))
    g = rng.uniform(-1, 1, size=K)
    use_dir, use_cap = case % 2 == 0, case % 3 == 0
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    got = quality_scores(t(E_I), t(E_T), t(E_src), alpha, beta, scale,
                         t(E_cap) if use_dir else None, gamma if use_dir else 0.0,
                         t(g) if use_cap else None, delta if use_cap else 0.0)
    want = _scores_reference(E_I, E_T, E_src, alpha, beta, scale, E_cap,
                             gamma if use_dir else 0.0, g if use_cap else None,
                             delta if use_cap else 0.0)
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k].numpy(), want[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_quality_scores_refuse_gamma_without_the_caption_embedding():
    E = torch.eye(3)
    with pytest.raises(ValueError, match="E_T_caption"):
        quality_scores(E, E[0], E[1], 1.0, 1.0, 1.0, None, 0.5)


@pytest.mark.parametrize("case", range(200))
def test_pick_best_equals_the_official_rule_by_brute_force(case):
    """The official rule: among the `top` results with the highest S_t2i (ties: lower index
    first), the highest S (ties: the one ranked higher by S_t2i). Bugs caught: sorting ascending,
    top off by one, the argmax taken over all K, ties resolved the other way."""
    K = int(rng.integers(1, 8))
    top = int(rng.integers(1, 6))
    # coarse values so that ties happen often
    t2i = rng.integers(0, 4, size=K).astype(float)
    S = rng.integers(0, 4, size=K).astype(float)
    order = sorted(range(K), key=lambda k: (-t2i[k], k))[:min(top, K)]
    want = max(order, key=lambda k: (S[k], -order.index(k)))
    got = pick_best({"S_t2i": torch.tensor(t2i), "S": torch.tensor(S)}, top)
    assert got == want, (t2i, S, top)


# --- stage 2: square proposals, masks, geometry, ROI-align ---------------------------------------

def _square_reference(cx, cy, side_frac, H, W, content):
    """One proposal from its definition: the square of side s * min(h, w) centred on the anchor,
    rounded to pixels, clipped to the picture, at least one pixel wide."""
    X0, Y0, X1, Y1 = content or (0, 0, W, H)
    half = side_frac * min(X1 - X0, Y1 - Y0) / 2

    def clip(lo, hi, a, b):
        lo = min(max(round(lo), a), b - 1)
        hi = max(min(max(round(hi), a + 1), b), lo + 1)
        return lo, hi
    x0, x1 = clip(cx - half, cx + half, X0, X1)
    y0, y1 = clip(cy - half, cy + half, Y0, Y1)
    return [x0, y0, x1, y1]


@pytest.mark.parametrize("case", range(60))
def test_make_proposals_equals_the_definition(case):
    """Bugs caught: x and y swapped (the official code's swap), the side taken from the longer
    side, boxes shifted instead of cut at the border, a box of zero width, the letterbox padding
    inside a box."""
    H, W = int(rng.integers(16, 80)), int(rng.integers(16, 80))
    content = None
    if case % 2:
        x0, y0 = int(rng.integers(0, W // 3)), int(rng.integers(0, H // 3))
        content = (x0, y0, int(rng.integers(x0 + 8, W + 1)), int(rng.integers(y0 + 8, H + 1)))
    X0, Y0, X1, Y1 = content or (0, 0, W, H)
    K = int(rng.integers(1, 5))
    anchors = torch.tensor([[float(rng.uniform(X0, X1)), float(rng.uniform(Y0, Y1))]
                            for _ in range(K)])
    sides = sorted(float(s) for s in rng.uniform(0.05, 1.3, size=int(rng.integers(2, 6))))
    got = make_proposals(anchors, sides, H, W, content)
    assert got.dtype == torch.long and got.shape == (K, len(sides), 4)
    for k in range(K):
        for j, s in enumerate(sides):
            want = _square_reference(float(anchors[k, 0]), float(anchors[k, 1]), s, H, W, content)
            assert got[k, j].tolist() == want, (k, j, content)


@pytest.mark.parametrize("case", range(30))
def test_boxes_to_masks_and_box_geometry_equal_pixel_loops(case):
    """Bugs caught: an inclusive x1 / y1, rows and columns swapped, geometry divided by the wrong
    side."""
    H, W = int(rng.integers(5, 30)), int(rng.integers(5, 30))
    boxes = []
    for _ in range(6):
        x0, y0 = int(rng.integers(0, W)), int(rng.integers(0, H))
        boxes.append([x0, y0, int(rng.integers(x0 + 1, W + 1)), int(rng.integers(y0 + 1, H + 1))])
    b = torch.tensor(boxes).view(2, 3, 4)
    masks = boxes_to_masks(b, H, W)
    assert masks.shape == (2, 3, 1, H, W)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        want = np.zeros((H, W))
        for y in range(H):
            for x in range(W):
                want[y, x] = float(x0 <= x < x1 and y0 <= y < y1)
        np.testing.assert_array_equal(masks.view(6, H, W)[i].numpy(), want)
    geom = box_geometry(b, H, W).view(6, 2)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        assert geom[i].tolist() == pytest.approx([(x1 - x0) / W, (y1 - y0) / H])


@pytest.mark.parametrize("case", range(10))
def test_roi_pool_equals_torchvision_on_feature_coordinates(case):
    """The pixel boxes mapped to feature cells by hand (x by w / W, y by h / H) and given to
    torchvision's roi_align with the batch index column. Bugs caught: one scale for both axes on
    a non-square grid, aligned=False (a half-cell shift), the boxes' x and y swapped."""
    d, h, w = 3, int(rng.integers(3, 9)), int(rng.integers(3, 9))
    H, W = h * int(rng.integers(4, 9)), w * int(rng.integers(4, 9))
    feats = torch.tensor(rng.normal(size=(1, d, h, w)), dtype=torch.float32)
    boxes = torch.stack([make_proposals(torch.tensor([[float(rng.uniform(0, W)),
                                                       float(rng.uniform(0, H))]]),
                                        [0.3, 0.6], H, W)[0] for _ in range(2)])   # (2, 2, 4)
    got = roi_pool(feats, boxes, H, W, 3)
    rois = [[0.0, x0 * w / W, y0 * h / H, x1 * w / W, y1 * h / H]
            for x0, y0, x1, y1 in boxes.view(-1, 4).tolist()]
    want = roi_align(feats, torch.tensor(rois), output_size=3, spatial_scale=1.0,
                     sampling_ratio=2, aligned=True)
    torch.testing.assert_close(got.view(-1, d, 3, 3), want)


def test_rgn_scores_every_box_with_the_same_weights_and_sees_box_size():
    """Each logit depends only on its own box (features and size): permuting the M boxes
    permutes the logits; changing one box's size changes only its logit."""
    torch.manual_seed(0)
    rgn = RGN(4, 2, channels=5, hidden=7)
    pooled, geom = torch.randn(2, 4, 4, 2, 2), torch.rand(2, 4, 2)
    base = rgn(pooled, geom)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(rgn(pooled[:, perm], geom[:, perm]), base[:, perm])
    geom2 = geom.clone()
    geom2[1, 2] += 0.5
    moved = rgn(pooled, geom2)
    changed = (moved - base).abs() > 1e-7
    assert changed[1, 2] and changed.sum() == 1


def test_gumbel_softmax_samples_follow_the_softmax_and_the_temperature():
    """Gumbel-max: argmax(pi + G) is distributed as softmax(pi); the soft sample's entropy grows
    with tau; hard=True gives one-hot values with the soft sample's gradient. Bugs caught: a
    sign error in G = -log(-log U), dividing by tau before adding G, hard without
    straight-through."""
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0])
    gen = torch.Generator().manual_seed(0)
    n = 20000
    counts = torch.zeros(4)
    for _ in range(n // 500):
        y = gumbel_softmax(logits.expand(500, 4), 1.0, True, gen)
        counts += y.sum(0)
    freq = (counts / n).numpy()
    np.testing.assert_allclose(freq, torch.softmax(logits, 0).numpy(), atol=0.015)
    gen = torch.Generator().manual_seed(1)
    ent = []
    for tau in (0.2, 1.0, 5.0):
        y = gumbel_softmax(logits.expand(2000, 4), tau, False, torch.Generator().manual_seed(1))
        ent.append(float(-(y * y.clamp_min(1e-12).log()).sum(-1).mean()))
    assert ent[0] < ent[1] < ent[2]
    x = logits.clone().requires_grad_(True)
    y = gumbel_softmax(x, 0.5, True, torch.Generator().manual_seed(3))
    assert sorted(y.detach().tolist()) == [0.0, 0.0, 0.0, 1.0]
    soft = gumbel_softmax(x, 0.5, False, torch.Generator().manual_seed(3))
    w = torch.tensor([0.3, -1.0, 2.0, 0.5])
    g_hard, = torch.autograd.grad((y * w).sum(), x)
    g_soft, = torch.autograd.grad((soft * w).sum(), x)
    torch.testing.assert_close(g_hard, g_soft)


# --- stage 1: anchors on the attention map ------------------------------------------------------

def _top_k_reference(A, K, spacing):
    """Greedy: the highest cell (ties: row-major first), then the highest at Chebyshev distance
    >= spacing from every cell taken; stops when none is left."""
    h, w = A.shape
    taken = []
    order = sorted(((float(A[i, j]), -(i * w + j)) for i in range(h) for j in range(w)), reverse=True)
    for v, neg in order:
        if len(taken) == K or v == -math.inf:
            break
        i, j = divmod(-neg, w)
        if all(max(abs(i - a), abs(j - b)) >= spacing for a, b in taken):
            taken.append((i, j))
    return taken


@pytest.mark.parametrize("case", range(60))
def test_top_k_anchors_equals_greedy_spacing(case):
    """Bugs caught: spacing by Manhattan or Euclidean distance, a strict '>' where '>=' is meant,
    the first peak skipped, (row, col) returned as (col, row), too few anchors returned silently."""
    h, w = int(rng.integers(3, 9)), int(rng.integers(3, 9))
    A = torch.tensor(rng.permutation(h * w).reshape(h, w).astype(np.float32))   # no ties
    K, spacing = int(rng.integers(1, 5)), int(rng.integers(1, 3))
    want = _top_k_reference(A, K, spacing)
    if len(want) < K:                       # the grid holds fewer spaced anchors: said, not padded
        with pytest.raises(LRError, match="lower K"):
            top_k_anchors(A, K, spacing)
        return
    assert [tuple(c) for c in top_k_anchors(A, K, spacing).tolist()] == want


@pytest.mark.parametrize("case", range(30))
def test_cells_to_pixels_and_content_cells_equal_patch_centres(case):
    """A cell (i, j) of an h x w grid over H x W pixels is centred at ((j + 0.5) W / w,
    (i + 0.5) H / h); a cell is on the picture when that centre lies inside the content
    rectangle (half-open). Bugs caught: a corner instead of the centre, x and y swapped,
    a closed right edge."""
    h, w = int(rng.integers(2, 9)), int(rng.integers(2, 9))
    H, W = h * int(rng.integers(2, 9)), w * int(rng.integers(2, 9))
    cells = torch.tensor([[int(rng.integers(0, h)), int(rng.integers(0, w))] for _ in range(5)])
    px = cells_to_pixels(cells, (h, w), H, W)
    for (i, j), (x, y) in zip(cells.tolist(), px.tolist()):
        assert (x, y) == pytest.approx(((j + 0.5) * W / w, (i + 0.5) * H / h))
    S = 8 * int(rng.integers(2, 6))
    x0, y0 = int(rng.integers(0, S // 2)), int(rng.integers(0, S // 2))
    content = (x0, y0, int(rng.integers(x0 + 1, S + 1)), int(rng.integers(y0 + 1, S + 1)))
    inside = content_cells(h, w, S, content)
    for i in range(h):
        for j in range(w):
            cx, cy = (j + 0.5) * S / w, (i + 0.5) * S / h
            assert bool(inside[i, j]) == (content[0] <= cx < content[2] and content[1] <= cy < content[3])


# --- edges the random cases rarely reach -------------------------------------------------------

def test_make_proposals_at_the_picture_s_last_pixel_with_tiny_boxes():
    """Anchors on the first and last pixel row / column and boxes under a pixel wide: every box
    stays inside the picture (x0 <= X1 - 1, x1 <= X1) and is at least one pixel wide. Bugs
    caught: the upper clamp of x0 / y0 dropped or off by one, the one-pixel minimum width lost."""
    for content in [None, (3, 5, 40, 29)]:
        H, W = 32, 48
        X0, Y0, X1, Y1 = content or (0, 0, W, H)
        anchors = torch.tensor([[X1 - 0.1, Y1 - 0.1], [X0 + 0.0, Y0 + 0.0], [X1 - 0.6, Y0 + 0.4],
                                [X0 + 10.45, Y0 + 7.45]])
        sides = [0.001, 0.01, 0.02, 0.5]
        got = make_proposals(anchors, sides, H, W, content)
        for k in range(len(anchors)):
            for j, s in enumerate(sides):
                want = _square_reference(float(anchors[k, 0]), float(anchors[k, 1]), s, H, W,
                                         content)
                assert got[k, j].tolist() == want, (k, j, content)
                x0, y0, x1, y1 = want
                assert X0 <= x0 < x1 <= X1 and Y0 <= y0 < y1 <= Y1


def test_defaults_are_the_paper_s():
    """The defaults a caller relies on: the official top-3 rule, anchors one cell apart, and no
    S_cap unless its weight delta is given. Bugs caught: a changed default (top 4, spacing 2,
    delta 1), S_cap computed with weight 0 (an extra term in every result)."""
    t2i = torch.tensor([0.9, 0.8, 0.7, 0.6])
    S = torch.tensor([0.0, 0.1, 0.2, 5.0])
    assert pick_best({"S_t2i": t2i, "S": S}) == 2           # #3 is outside the top 3 by S_t2i
    A = torch.tensor([[3.0, 2.0], [1.0, 0.0]])
    assert top_k_anchors(A, 2).tolist() == [[0, 0], [0, 1]]  # neighbours allowed at spacing 1
    E = torch.eye(3, dtype=torch.float64)
    g = torch.tensor([0.5, -0.5, 0.1], dtype=torch.float32)
    out = quality_scores(E, E[0], E[1], 1.0, 1.0, 1.0, grounding=g)
    assert "S_cap" not in out
    out = quality_scores(E, E[0], E[1], 1.0, 1.0, 1.0, grounding=g, delta=0.0)
    assert "S_cap" not in out
    out = quality_scores(E, E[0], E[1], 1.0, 1.0, 1.0, grounding=g, delta=2.0)
    assert out["S_cap"].dtype == torch.float64                # the grounding in the scores' dtype


def test_top_k_anchors_refuses_anything_but_one_map():
    """A batch of maps or a flat vector: one line naming the shape, before any anchor is picked."""
    for bad in (torch.zeros(2, 4, 4), torch.zeros(16)):
        with pytest.raises(LRError, match=r"one \(h, w\) map, got shape"):
            top_k_anchors(bad, 1)
