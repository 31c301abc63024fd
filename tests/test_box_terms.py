"""The box terms (lrlib.additions.box_terms: L_cover, L_spill) and the 'softmin' objective of the
RGN on a loss table (lrlib.train.table_objective), against closed forms."""
from __future__ import annotations

import pytest
import torch

from lrlib.additions.box_terms import cover_term, neighbours, spill_term
from lrlib.config import LRConfig
from lrlib.regions import RGN, boxes_to_masks
from lrlib.train import table_objective, train_rgn

S = 32


def square(x0, y0, x1, y1):
    m = torch.zeros(S, S, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def masks_of(*boxes):
    """(1, M, 1, S, S) masks of M boxes of one anchor."""
    return boxes_to_masks(torch.tensor([list(boxes)]), S, S)


def test_cover_is_zero_for_a_box_holding_the_blob_and_grows_as_the_box_shrinks():
    blob = square(8, 8, 24, 24)[None]                                  # 16 x 16 = 256 px
    # a box holding it, boxes cut to 12, 8, 4 of its 16 columns, one missing it entirely
    cov = cover_term(blob, masks_of((4, 4, 28, 28), (8, 8, 20, 24), (8, 8, 16, 24),
                                    (8, 8, 12, 24), (0, 0, 4, 4)))
    closed = [0.0, 1 - 12 / 16, 1 - 8 / 16, 1 - 4 / 16, 1.0]
    assert cov.shape == (1, 5)
    assert cov[0].tolist() == pytest.approx(closed)
    assert all(a < b for a, b in zip(cov[0, :4], cov[0, 1:]))       # strictly growing


def test_cover_of_an_empty_blob_is_zero():
    assert cover_term(torch.zeros(1, S, S, dtype=torch.bool), masks_of((0, 0, 4, 4))).tolist() == [[0.0]]


def test_spill_is_the_largest_share_of_a_neighbour_inside_the_box():
    blob = square(8, 8, 16, 16)[None]                                 # the anchor's object
    left = square(0, 8, 4, 16)                                        # 4 x 8 = 32 px
    right = square(20, 8, 28, 16)                                     # 8 x 8 = 64 px
    objs = torch.stack([blob[0], left, right])                       # its own blob is one too
    spill = spill_term(blob, objs, masks_of((8, 8, 16, 16),          # tight: touches nothing
                                            (2, 8, 22, 16),          # 2 of left's 4 columns, 2 of right's 8
                                            (10, 0, 32, 32),         # 8 of right's 8 columns
                                            (0, 0, 32, 32)))         # everything
    assert spill.shape == (1, 4)
    assert spill[0].tolist() == pytest.approx([0.0, max(2 / 4, 2 / 8), 1.0, 1.0])
    assert spill_term(blob, objs[:0], masks_of((0, 0, 32, 32))).tolist() == [[0.0]]


def test_an_object_mostly_inside_the_anchor_blob_is_not_a_neighbour():
    blob = square(8, 8, 16, 16)[None]
    same = square(8, 8, 17, 16)                                       # the same object, 1 column more
    nb = neighbours(blob, same[None])
    assert not nb.any()
    assert spill_term(blob, same[None], masks_of((0, 0, 32, 32))).tolist() == [[0.0]]


def test_softmin_objective_is_the_cross_entropy_to_the_softmin_target():
    logits = torch.tensor([[0.3, -0.2, 1.0], [0.0, 0.5, 0.1]])
    L = torch.tensor([[1.0, 2.0, 4.0], [3.0, 0.0, 1.0]])
    valid = torch.ones(2, 3, dtype=torch.bool)
    q = torch.softmax(-L / 0.5, -1)
    closed = -(q * torch.log_softmax(logits, -1)).sum(-1).mean()
    assert float(table_objective(logits, L, valid, "softmin", 0.5)) == pytest.approx(float(closed))
    expected = (torch.softmax(logits, -1) * L).sum(-1).mean()
    assert float(table_objective(logits, L, valid, "expected")) == pytest.approx(float(expected))
    valid[0, 2] = False                  # out of the choice: no target mass, no log p read
    out = logits.masked_fill(~valid, float("-inf"))
    q = torch.softmax((-L / 0.5).masked_fill(~valid, float("-inf")), -1)
    closed = -(q * torch.log_softmax(out, -1).masked_fill(~valid, 0.0)).sum(-1).mean()
    assert float(table_objective(out, L, valid, "softmin", 0.5)) == pytest.approx(float(closed))


class Table:
    """A loss with a fixed value per candidate: the candidates are constant images whose value
    is the loss (so the table is known exactly)."""

    def __call__(self, e, generator):
        v = e.flatten(1)[:, 0]
        return {"L": v, "L_clip": v}


def test_softmin_gradient_does_not_vanish_on_an_unlikely_best_box():
    """The ladder's failure, in closed form: the RGN already favours a large box (p ~ 1), the
    best box has p ~ 0. The expected loss's gradient on the best box's logit,
    p_j (L_j - E_p[L]), is ~0; the cross-entropy's, p_j - q_j, is ~ -1 (pushes it up)."""
    L = torch.tensor([[8.0, 4.0, 1.0, 1.2, 1.3]])
    valid = torch.ones(1, 5, dtype=torch.bool)
    logits = torch.tensor([[0.0, 0.0, 0.0, 4.0, 12.0]], requires_grad=True)
    table_objective(logits, L, valid, "expected").backward()
    p = torch.softmax(logits.detach(), -1)
    closed = p * (L - (p * L).sum(-1, keepdim=True))
    assert torch.allclose(logits.grad, closed, atol=1e-6)
    assert abs(float(logits.grad[0, 2])) < 1e-4
    logits.grad = None
    table_objective(logits, L, valid, "softmin", 0.1).backward()
    q = torch.softmax(-L / 0.1, -1)
    assert torch.allclose(logits.grad, p - q, atol=1e-6)
    assert float(logits.grad[0, 2]) < -0.8


def test_softmin_rgn_reaches_the_per_anchor_argmin():
    """A fresh RGN on random features, 20 steps at the paper's lr: softmin puts its argmax on
    each anchor's lowest-loss box (the tables are the ladder's shape: tight boxes very bad)."""
    g = torch.Generator().manual_seed(0)
    K, M = 3, 5
    values = torch.tensor([[8.0, 4.0, 1.0, 1.2, 1.3], [7.0, 3.0, 2.0, 1.0, 1.5],
                           [6.0, 1.0, 1.4, 2.0, 3.0]])
    C = values.view(K, M, 1, 1, 1).expand(K, M, 3, 2, 2).clone()
    pooled = torch.randn(K, M, 8, 2, 2, generator=g)
    geom = torch.rand(K, M, 2, generator=g)
    torch.manual_seed(0)
    rgn = RGN(8, 2, 16, 32)
    train_rgn(rgn, pooled, geom, C, Table(), 20, 0.003, progress=False, estimator="expected",
              table_views=1, objective="softmin", softmin_tau=0.1)
    assert rgn(pooled, geom).argmax(-1).tolist() == [2, 3, 1]


def test_extra_terms_enter_the_table_with_their_weight():
    """A box term added with weight w moves the argmin exactly as w * T added to the table does."""
    K, M = 1, 3
    C = torch.tensor([1.0, 1.1, 1.2]).view(K, M, 1, 1, 1).expand(K, M, 3, 2, 2).clone()
    T = torch.tensor([[1.0, 0.0, 0.0]])                               # box 0 leaves the object
    pooled, geom = torch.randn(K, M, 4, 1, 1), torch.rand(K, M, 2)
    torch.manual_seed(0)
    rgn = RGN(4, 1, 4, 8)
    h = train_rgn(rgn, pooled, geom, C, Table(), 60, 0.05, progress=False, estimator="expected",
                  table_views=1, objective="softmin", extra_terms={"L_cover": (2.0, T)})
    assert int(rgn(pooled, geom).argmax()) == 1                      # 1.1 < 1.0 + 2
    assert "L_cover" in h.terms


def test_default_trains_with_the_box_terms_and_the_paper_without():
    """LRConfig() (and cpu()) choose among ladder boxes with the box terms and the softmin
    objective (the design measured in lrlib/bench/LEARNING.md); the paper's method has none of
    them, so pipeline.box_terms computes nothing for it."""
    for c in (LRConfig(), LRConfig.cpu()):
        assert (c.proposals, c.objective, c.lambda_cover, c.cover_margin, c.lambda_spill) == (
            "ladder", "softmin", 3.0, 0.25, 1.0)
    p = LRConfig.paper()
    assert (p.proposals, p.objective, p.lambda_cover, p.lambda_spill) == (
        "squares", "expected", 0.0, 0.0)
    from lrlib.pipeline import box_terms
    assert box_terms(None, p) == {}                # returns before touching the prepared edit
    with pytest.raises(Exception):
        LRConfig(objective="mean").validate()
    with pytest.raises(Exception):
        LRConfig(softmin_tau=0.0).validate()


def test_edit_with_box_terms_reuses_dino_and_chooses_the_box_holding_the_blob(toy, monkeypatch):
    """Through lrlib's own path (prepare, train_and_choose) with a large lambda_cover: training
    runs DINO on no source canvas (the box terms read the features prepare kept; the structure
    loss's DINO passes are on the candidates), and each
    anchor's chosen box leaves the least of its blob outside, counted here pixel by pixel from
    the box coordinates (not from the masks the term reads)."""
    from lrlib.additions.box_terms import anchor_blobs
    from lrlib.pipeline import prepare, train_and_choose
    from lrlib.toy import make_edit_task
    cfg, models = toy
    cfg = cfg.replace(K=3, proposals="ladder", lambda_cover=100.0, objective="softmin",
                      progress=False)
    calls = []
    real = models.dino.forward
    monkeypatch.setattr(models.dino, "forward", lambda x, *a, **k: calls.append(x) or real(x, *a, **k))
    task = make_edit_task(7, 64, "multi")
    p = prepare(task.scene.image, task.prompt, task.source_caption, cfg, models)
    calls.clear()
    probs, hist = train_and_choose(p, cfg)
    on_source = [x for x in calls if x.shape == p.x.shape and torch.equal(x, p.x)]
    assert len(on_source) == 0 and "L_cover" in hist.terms
    blobs = anchor_blobs(p, cfg)                                       # (K, S, S)
    ys, xs = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    for k in range(p.K):
        outside = []
        for x0, y0, x1, y1 in p.boxes[k].tolist():
            inside = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
            outside.append(int((blobs[k] & ~inside).sum()))
        assert outside[int(probs[k].argmax())] == min(outside), (k, outside)


def test_box_terms_read_the_regions_prepare_found(toy, monkeypatch):
    """With caption anchors prepare has already found the pool's regions; L_spill's objects are
    those regions, so training recomputes no pool (cover_pool is not called again) and the terms
    equal the ones computed from a fresh pool."""
    import dataclasses

    import lrlib.additions.grounding as grounding
    from lrlib.additions.box_terms import geometry
    from lrlib.pipeline import prepare, train_and_choose
    from lrlib.toy import make_edit_task
    cfg, models = toy
    cfg = cfg.replace(K=3, progress=False)                       # the default's box terms
    task = make_edit_task(7, 64, "multi")
    p = prepare(task.scene.image, task.prompt, task.source_caption, cfg, models)
    assert p.regions is not None and p.regions.shape[-2:] == p.x.shape[-2:]
    calls = []
    real = grounding.cover_pool
    monkeypatch.setattr(grounding, "cover_pool", lambda *a, **k: calls.append(1) or real(*a, **k))
    train_and_choose(p, cfg)
    assert calls == []
    kept = geometry(p, cfg)
    fresh = geometry(dataclasses.replace(p, regions=None), cfg)
    assert len(calls) == 1                                       # the fresh pool, computed here
    for k in ("L_cover", "L_spill"):
        torch.testing.assert_close(kept[k], fresh[k], rtol=0, atol=0)
    assert fresh["L_spill"].abs().sum() > 0                      # a neighbour is in the pool
