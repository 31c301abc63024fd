import torch
import torch.nn.functional as F

from lrlib.scoring import pick_best, quality_scores


def test_scores_are_softmaxes_over_K_and_combine_linearly():
    E = F.normalize(torch.randn(5, 8), dim=-1)
    T, X = F.normalize(torch.randn(8), dim=0), F.normalize(torch.randn(8), dim=0)
    s = quality_scores(E, T, X, alpha=2.0, beta=1.0, scale=100.0)
    torch.testing.assert_close(s["S_t2i"].sum(), torch.tensor(1.0))
    torch.testing.assert_close(s["S_i2i"].sum(), torch.tensor(1.0))
    torch.testing.assert_close(s["S"], 2 * s["S_t2i"] + s["S_i2i"])
    assert int(s["S_t2i"].argmax()) == int((E @ T).argmax())


def test_pick_best_keeps_best_S_among_top_t2i():
    # result 3 has the best S only thanks to S_i2i (it barely changed the image): it is not in
    # the top-3 by S_t2i, so the official rule must not pick it.
    scores = {"S_t2i": torch.tensor([0.30, 0.25, 0.20, 0.05, 0.20]),
              "S_i2i": torch.tensor([0.05, 0.30, 0.10, 0.90, 0.00])}
    scores["S"] = 2 * scores["S_t2i"] + scores["S_i2i"]
    assert int(scores["S"].argmax()) == 3
    assert pick_best(scores, top=3) == 1        # 0.80 beats 0.65 and 0.50 among {0, 1, 2}
    assert pick_best(scores, top=5) == 3
    assert pick_best(scores, top=1) == 0


def test_S_dir_prefers_the_edit_that_moves_from_caption_to_prompt():
    """Two results equally like the prompt and the source; only S_dir (gamma > 0) can tell which
    one changed the object the caption names."""
    src, cap, prompt, other = torch.eye(4)[:4]
    X, T, C = src, prompt, cap
    # result 0 replaced the captioned object (source - caption + prompt), result 1 a neighbour
    E = F.normalize(torch.stack([src - 0.5 * cap + prompt, src - 0.5 * other + prompt]), dim=-1)
    base = quality_scores(E, T, X, 2.0, 1.0, 10.0)
    torch.testing.assert_close(base["S"][0], base["S"][1])
    with_dir = quality_scores(E, T, X, 2.0, 1.0, 10.0, E_T_caption=C, gamma=3.0)
    assert "S_dir" in with_dir and with_dir["S"][0] > with_dir["S"][1]
    torch.testing.assert_close(with_dir["S"] - base["S"], 3.0 * with_dir["S_dir"])
    try:
        quality_scores(E, T, X, 2.0, 1.0, 10.0, gamma=1.0)
    except ValueError as e:
        assert "E_T_caption" in str(e)
    else:
        raise AssertionError("gamma without a caption embedding must raise")


def test_official_scale_is_the_raw_cosines_and_changes_the_trade_off_not_the_order():
    """Catches a score that still multiplies by CLIP's logit scale by default (the official
    code's softmax is over raw cosines), and a scale that reorders one softmax: the scale may
    only change which result wins the alpha / beta trade-off."""
    # result 0: clearly the best prompt match, far from the source; result 1: a little worse on
    # the prompt, much closer to the source
    cos_t, cos_i = torch.tensor([0.30, 0.27, 0.10]), torch.tensor([0.50, 0.80, 0.20])
    g = torch.Generator().manual_seed(0)
    E = F.normalize(torch.randn(3, 8, generator=g), dim=-1)
    T, X = (F.normalize(torch.randn(8, generator=g), dim=0) for _ in range(2))
    s1 = quality_scores(E, T, X, 2.0, 1.0)
    torch.testing.assert_close(s1["S_t2i"], torch.softmax(E @ T, 0))        # default scale 1
    torch.testing.assert_close(s1["S_i2i"], torch.softmax(E @ X, 0))
    # hand-made cosines through quality_scores' own formula, at two scales
    sc = lambda s: {"S_t2i": torch.softmax(s * cos_t, 0), "S_i2i": torch.softmax(s * cos_i, 0)}
    for s in (1.0, 100.0):
        d = sc(s)
        assert torch.argsort(d["S_t2i"]).tolist() == torch.argsort(cos_t).tolist()
    lo, hi = sc(1.0), sc(100.0)
    lo["S"], hi["S"] = 2 * lo["S_t2i"] + lo["S_i2i"], 2 * hi["S_t2i"] + hi["S_i2i"]
    # s = 1: linear trade-off, 2 * 0.03 < 0.30, the source-like result 1 wins;
    # s = 100: result 0 takes nearly all of S_t2i (weight 2) and wins
    assert pick_best(lo, top=3) == 1 and pick_best(hi, top=3) == 0
