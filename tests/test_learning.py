"""The learning benchmark's ceiling / floor / random computation (lrlib.bench.learning) and the
ladder proposals (lrlib.additions.proposals_ladder): hand-built tables whose answers are known."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lrlib.additions.proposals_ladder import ASPECTS, ladder_aspects, ladder_boxes, rungs
from lrlib.bench import learning as L
from lrlib.config import LRConfig
from lrlib.additions.proposals import propose


# --- ceiling, floor, random ---------------------------------------------------------------------

SUCCESS = np.array([[1.0, 0.0, 0.0],
                    [0.0, 0.0, 1.0]])


def winner(c):
    """The ranking of this hand-built edit: anchor 1 wins when it shows its proposal 2."""
    return 1 if c[1] == 2 else 0


def test_choice_summary_on_a_hand_built_table():
    """9 choice vectors: anchor 1 wins (and succeeds) in the 3 with c1 = 2; otherwise anchor 0
    wins and succeeds when c0 = 0 (2 more). Catches a transposed index (success[c[k], k]), the
    mean taken per anchor instead of over the ranked outcomes, best / worst swapped."""
    s = L.choice_summary(SUCCESS, winner)
    assert s == {"best": 1.0, "worst": 0.0, "random": pytest.approx(5 / 9), "any": 1.0}
    assert s["random"] != pytest.approx(SUCCESS.mean())          # not the plain mean of the table


def test_choice_summary_respects_valid_candidates():
    """Anchor 1's proposal 2 out of the choice: anchor 0 always wins, 2 of the 6 vectors
    succeed, and `any` looks only at valid candidates. Catches a mask that is ignored."""
    valid = np.ones((2, 3), bool)
    valid[1, 2] = False
    s = L.choice_summary(SUCCESS, winner, valid)
    assert s["random"] == pytest.approx(1 / 3) and s["best"] == 1.0 and s["worst"] == 0.0
    valid[0, 0] = False
    s = L.choice_summary(SUCCESS, winner, valid)
    assert s == {"best": 0.0, "worst": 0.0, "random": 0.0, "any": 0.0}


def test_choice_summary_with_one_anchor_is_the_row_of_the_table():
    row = np.array([[0.0, 1.0, 1.0, 0.0]])
    s = L.choice_summary(row, lambda c: 0)
    assert (s["best"], s["worst"], s["random"]) == (1.0, 0.0, 0.5)


def test_choice_vectors_enumerates_then_samples(monkeypatch):
    valid = np.ones((3, 4), bool)
    valid[2, 1:] = False
    vecs = L.choice_vectors(valid)
    assert len(vecs) == 4 * 4 * 1 and len(set(vecs)) == 16 and all(c[2] == 0 for c in vecs)
    monkeypatch.setattr(L, "MAX_COMBOS", 5)
    a = L.choice_vectors(valid, np.random.default_rng(1))
    b = L.choice_vectors(valid, np.random.default_rng(1))
    assert len(a) == 5 and a == b and all(valid[k, j] for c in a for k, j in enumerate(c))


def test_argmin_choice_skips_invalid():
    Lt = torch.tensor([[0.5, 0.1, 0.3], [0.2, 0.9, 0.2]])
    assert L.argmin_choice(Lt, None) == (1, 0)                    # tie: the lower index
    valid = torch.tensor([[True, False, True], [False, True, True]])
    assert L.argmin_choice(Lt, valid) == (2, 2)


def test_summarise_paired_difference_and_standard_errors():
    """Two tasks: random 0.5 and 0.25, a learned row 1 and 0: difference +0.125, paired se
    sd([0.5, -0.25]) / sqrt(2); the learned row's se binomial sqrt(p(1-p)/n)."""
    recs = [{"kind": "single", "K": 1, "M": 2, "rows": {"random (uniform pick)": 0.5, "RGN": 1.0}},
            {"kind": "multi", "K": 2, "M": 2, "rows": {"random (uniform pick)": 0.25, "RGN": 0.0}}]
    s = L.summarise(recs)
    assert s["RGN"]["success"] == 0.5 and s["RGN"]["se"] == pytest.approx(math.sqrt(0.25 / 2))
    assert s["RGN"]["vs_random"] == pytest.approx(0.125)
    assert s["RGN"]["vs_se"] == pytest.approx(np.std([0.5, -0.25], ddof=1) / math.sqrt(2))
    assert s["random (uniform pick)"]["se"] == pytest.approx(np.std([0.5, 0.25], ddof=1) / math.sqrt(2))
    assert s["RGN"]["by kind"] == {"single": 1.0, "multi": 0.0}
    assert "+0.125" in L.format_learning(recs)


# --- the terms the RGN trains on ----------------------------------------------------------------

def test_weighted_and_cover_term():
    t = {"L_clip": torch.tensor([1.0]), "L_str": torch.tensor([2.0]), "L_dir": torch.tensor([4.0]),
         "L_cover": torch.tensor([8.0])}
    cfg = LRConfig.cpu(world="random", lambda_str=0.0)
    assert float(L.weighted(t, cfg)) == 5.0
    assert float(L.weighted(t, cfg, {"L_cover": 0.5})) == 9.0
    blobs = torch.zeros(1, 8, 8, dtype=torch.bool)
    blobs[0, 2:6, 2:6] = True                                     # 16 px
    masks = torch.zeros(1, 3, 1, 8, 8)
    masks[0, 0, 0] = 1                                            # all of it inside
    masks[0, 1, 0, :, :4] = 1                                     # its left half inside
    cov = L.cover_term(blobs, masks)
    assert cov.tolist() == [[0.0, 0.5, 1.0]]


@pytest.fixture
def one_thread():
    """A few hundred tiny Adam steps: one thread (two threads spin on a loaded machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_train_on_table_finds_the_lowest_loss(one_thread):
    """With enough steps the expected estimator puts the most probability on each anchor's
    lowest-loss candidate. Catches a sign error (maximising L) or a table read per the wrong axis."""
    g = torch.Generator().manual_seed(0)
    pooled = torch.randn(3, 4, 6, 2, 2, generator=g)
    geom = torch.rand(3, 4, 2, generator=g)
    table = torch.tensor([[0.9, 0.1, 0.8, 0.7], [0.2, 0.9, 0.9, 0.9], [0.9, 0.9, 0.9, 0.0]])
    cfg = LRConfig.cpu(world="random", roi_size=2, epochs=6, iters_per_epoch=10, lr=0.05)
    probs = L.train_on_table(pooled, geom, table, None, cfg)
    assert probs.argmax(-1).tolist() == [1, 0, 3]
    assert torch.allclose(probs.sum(-1), torch.ones(3))
    valid = torch.ones(3, 4, dtype=torch.bool)
    valid[0, 1] = False
    probs = L.train_on_table(pooled, geom, table, valid, cfg)
    assert float(probs[0, 1]) == 0.0 and int(probs[0].argmax()) == 3


# --- ladder proposals ----------------------------------------------------------------------------

def test_rungs_are_a_geometric_ladder_with_cycled_aspects():
    r = rungs(5, 0.6, 2.4)
    s = [x for x, _ in r]
    assert s[0] == pytest.approx(0.6) and s[-1] == pytest.approx(2.4)
    assert all(b / a == pytest.approx(2 ** 0.5) for a, b in zip(s, s[1:]))   # (2.4/0.6)^(1/4)
    assert all(x == y for x, y in r)
    r = rungs(4, 1.0, 1.0, aspects=(1.0, 4.0))
    assert r[1] == pytest.approx((2.0, 0.5)) and r[2] == pytest.approx((1.0, 1.0))
    with pytest.raises(ValueError):
        rungs(3, 2.0, 1.0)


def test_ladder_boxes_scale_about_the_centre_and_stay_inside():
    b = torch.tensor([[20, 20, 30, 30]])                           # 10 x 10, centre (25, 25)
    boxes = ladder_boxes(b, [(0.5, 0.5), (1.0, 1.0), (2.0, 1.0), (10.0, 10.0)], 64, 64,
                         content=(0, 10, 64, 54))
    assert boxes.shape == (1, 4, 4)
    assert boxes[0, 0].tolist() == [22, 22, 28, 28]                # 5 px: rounded about 25
    assert boxes[0, 1].tolist() == [20, 20, 30, 30]
    assert boxes[0, 2].tolist() == [15, 20, 35, 30]                # wider, same height
    assert boxes[0, 3].tolist() == [0, 10, 64, 54]                 # clipped to the content
    small = ladder_boxes(b, [(0.1, 0.1)], 64, 64, min_side=6)
    assert (small[0, 0, 2:] - small[0, 0, :2]).tolist() == [6, 6]
    big = ladder_boxes(b, [(3.0, 3.0)], 64, 64, max_side=20)
    assert (big[0, 0, 2:] - big[0, 0, :2]).tolist() == [20, 20]


def test_propose_dispatches_to_the_ladder():
    """proposals="ladder" is a valid knob value, and propose builds the rungs of the config's
    ladder_lo..ladder_hi on the given blob boxes (sides within box_min..box_max of the picture)."""
    cfg = LRConfig.cpu(world="random", proposals="ladder", box_min=0.01, box_max=1.0,
                       ladder_lo=0.6, ladder_hi=2.4).validate()
    a = torch.tensor([[32.0, 32.0]])
    blob = torch.tensor([[26, 28, 38, 36]])
    got = propose(a, torch.randn(1, 8, 8, 8), cfg, 64, 64, blob_boxes=blob)
    want = ladder_boxes(blob, rungs(cfg.M, 0.6, 2.4), 64, 64, 0.01 * 64, None, 64)
    assert torch.equal(got, want) and got.shape == (1, cfg.M, 4)
    w = (got[0, :, 2] - got[0, :, 0]).tolist()
    assert w == sorted(w) and w[0] < 12 < w[-1]                    # a part ... the context
    narrow = propose(a, torch.randn(1, 8, 8, 8), cfg.replace(ladder_lo=1.0, ladder_hi=1.0), 64, 64,
                     blob_boxes=blob)
    assert (narrow == blob[:, None]).all()                         # scale 1: the blob's box
    with pytest.raises(Exception, match="ladder"):
        LRConfig.cpu(world="random", proposals="ladders").validate()
    with pytest.raises(Exception, match="ladder_lo=2.0 is above ladder_hi=1.0"):
        LRConfig.cpu(world="random", ladder_lo=2.0, ladder_hi=1.0).validate()


def test_ladder_aspects_are_restored():
    before = list(ASPECTS)
    with ladder_aspects(1.0, 1.5) as a:
        assert a == (1.0, 1.5) and ASPECTS == [1.0, 1.5]
    assert ASPECTS == before
    with pytest.raises(ValueError):
        with ladder_aspects(0.0):
            pass
    assert ASPECTS == before


def test_load_records_merges_parts_and_refuses_mixtures(tmp_path):
    from lrlib.errors import LRError
    rec = {"kind": "single", "K": 1, "M": 2, "rows": {"random (uniform pick)": 0.5}}
    meta = dict(set="first", start=0, n=2, proposals="fitted", M=2, design={}, seconds=1.0)
    L.save_records(tmp_path / "a.json", [rec, rec], meta)
    L.save_records(tmp_path / "b.json", [rec], {**meta, "start": 2, "n": 3})
    records, metas = L.load_records([tmp_path / "a.json", tmp_path / "b.json"])
    assert len(records) == 3 and len(metas) == 2
    L.save_records(tmp_path / "c.json", [rec], {**meta, "proposals": "squares", "start": 2, "n": 3})
    with pytest.raises(LRError, match="squares"):
        L.load_records([tmp_path / "a.json", tmp_path / "c.json"])
    with pytest.raises(LRError, match="overlap"):
        L.load_records([tmp_path / "a.json", tmp_path / "a.json"])


def test_save_records_keeps_the_inputs_beside_the_json(tmp_path):
    """The tensors a design needs to be retrained offline go to FILE.inputs.pt, not the JSON;
    they come back per task, in order; a run without them writes no sidecar."""
    import json
    rec = {"kind": "single", "K": 1, "M": 2, "rows": {"x": 1.0}}
    inp = [{"pooled": torch.full((1, 2, 3, 1, 1), float(i)), "valid": None} for i in range(2)]
    meta = dict(set="tuning", start=0, n=2, proposals="ladder", M=2, design={}, seconds=1.0)
    L.save_records(tmp_path / "a.json", [{**rec, "inputs": i} for i in inp], meta)
    assert "inputs" not in json.loads((tmp_path / "a.json").read_text())["records"][0]
    back = L.load_inputs(tmp_path / "a.json")
    assert [float(b["pooled"].flatten()[0]) for b in back] == [0.0, 1.0]
    L.save_records(tmp_path / "b.json", [rec], meta)
    assert not (tmp_path / "b.json.inputs.pt").exists()
