"""lrlib's proposals and anchors: boxes fitted to the object (regions.fitted_boxes, scale_boxes,
blob_box) and anchors chosen by the caption (anchors.caption_anchors)."""
import pytest
import torch

from lrlib.config import LRConfig
from lrlib.additions.fitted import blob_box, fitted_boxes, grow, scale_boxes
from lrlib.additions.proposals import propose


def test_blob_box_is_the_connected_blob_around_the_seed_only():
    """Catches a blob that leaks into a second, unconnected blob (the neighbour's box) or that
    uses 8-connectivity through a diagonal touch."""
    m = torch.zeros(20, 30)
    m[2:6, 3:9] = 1.0                      # the seed's blob
    m[6:10, 9:14] = 1.0                    # touches it only diagonally at (5, 8) / (6, 9)
    m[12:18, 20:28] = 1.0                  # far away
    assert blob_box(m, (4, 3), 0.5) == [3, 2, 9, 6]
    assert blob_box(m, (25, 15), 0.5) == [20, 12, 28, 18]
    assert blob_box(m, (0, 0), 0.5) == [0, 0, 1, 1]         # below the level: its own pixel
    seed = torch.zeros(20, 30, dtype=torch.bool)
    seed[3, 4] = True
    assert int(grow(seed, m > 0.5).sum()) == 24


def test_scale_boxes_scales_about_the_centre_and_clips():
    """Catches scaling about the corner instead of the centre, and boxes leaving the image."""
    b = torch.tensor([[10, 20, 30, 30]])
    out = scale_boxes(b, [1.0, 2.0, 10.0], 64, 64)
    assert out.shape == (1, 3, 4)
    assert out[0, 0].tolist() == [10, 20, 30, 30]
    assert out[0, 1].tolist() == [0, 15, 40, 35]
    assert out[0, 2].tolist() == [0, 0, 64, 64]
    tiny = scale_boxes(torch.tensor([[5, 5, 6, 6]]), [1.0], 64, 64, min_side=8)
    assert (tiny[0, 0, 2:] - tiny[0, 0, :2]).tolist() == [8, 8]


def test_propose_gives_M_boxes_of_either_kind_and_rejects_unknown():
    """Catches a proposals field that is ignored, or a wrong M."""
    from lrlib.errors import LRError
    cfg = LRConfig.cpu(world="random")
    a = torch.tensor([[32.0, 32.0]])                           # centre: nothing clipped
    feats = torch.randn(1, 8, 8, 8)
    sq = propose(a, feats, cfg.replace(proposals="squares"), 64, 64)
    fit = propose(a, feats, cfg.replace(proposals="fitted"), 64, 64)
    assert sq.shape == fit.shape == (1, cfg.M, 4)
    w = sq[0, :, 2] - sq[0, :, 0]
    assert torch.equal(w, sq[0, :, 3] - sq[0, :, 1])          # squares are square
    with pytest.raises(LRError, match="squares"):
        propose(a, feats, cfg.replace(proposals="circles"), 64, 64)


def _tasks(n):
    from lrlib.bench.toy import task_set
    return task_set(n, "tuning")


def test_fitted_boxes_fit_the_object(toy):
    """Catches fitted boxes that ignore the features (a fixed square) or mix up x and y: from an
    anchor at the object's centre, the fitted box of the toy DINO's features must fit the object
    (measured mean IoU 0.70 on these 24 tuning tasks) better than one fixed square of the middle
    proposal side does, and each box must hold the anchor."""
    from lrlib.bench.toy import iou
    from lrlib.additions.fitted import fitted_boxes
    from lrlib.regions import make_proposals
    cfg, models = toy
    fit, sq = [], []
    side = cfg.replace(proposals="squares").box_sides()[cfg.M // 2]
    for t in _tasks(24):
        x = torch.from_numpy(t.scene.image).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            feats = models.dino(x).feats
        x0, y0, x1, y1 = t.target_box
        a = torch.tensor([[(x0 + x1) / 2, (y0 + y1) / 2]])
        b = fitted_boxes(feats[0], a, cfg.fit_level, 64, 64)[0].tolist()
        assert b[0] <= a[0, 0] < b[2] and b[1] <= a[0, 1] < b[3], (b, a)
        fit.append(iou(b, t.target_box))
        sq.append(iou(make_proposals(a, [side], 64, 64)[0, 0].tolist(), t.target_box))
    mean = lambda v: sum(v) / len(v)
    assert mean(fit) > 0.6 and mean(fit) > mean(sq) + 0.05, (mean(fit), mean(sq))


def test_caption_anchors_find_the_named_object_more_often(toy):
    """Catches caption scoring that is ignored or inverted: with several objects, the K anchors
    chosen by the caption must hold an anchor on the named object at least as often as the
    paper's top-K peaks, and on every one-object task."""
    from lrlib.additions.grounding import caption_anchors
    from lrlib.anchors import cells_to_pixels, top_k_anchors
    from lrlib.additions.grounding import anchor_pool
    from lrlib.bench.toy import inside
    cfg, models = toy
    cfg = cfg.replace(anchor_pool=8)
    hit_cap, hit_top = 0, 0
    for t in _tasks(24):
        x = torch.from_numpy(t.scene.image).permute(2, 0, 1)[None].float()
        d = models.dino(x)
        A = d.attn_mean[0]
        pool, blobs = anchor_pool(A, (0, 0, 64, 64), 64, cfg, d.feats, x)
        cap, g, b = caption_anchors(pool, d.feats, x, models.clip, t.source_caption, cfg,
                                    None, blobs)
        assert torch.equal(b, fitted_boxes(d.feats[0], cap, cfg.fit_level, 64, 64, None, x[0],
                                           cfg.fit_snap, cfg.fit_reach))   # propose reuses them
        assert g.shape == (cfg.K,) and float(g[0]) == float(g.max())   # the best-grounded first
        top = cells_to_pixels(top_k_anchors(A, cfg.K, cfg.anchor_spacing), A.shape, 64, 64)
        assert cap.shape == (cfg.K, 2)
        on_cap = any(inside(a, t.target_box) for a in cap.tolist())
        hit_cap += on_cap
        hit_top += any(inside(a, t.target_box) for a in top.tolist())
        if t.kind == "single":
            assert on_cap, t
    assert hit_cap >= hit_top, (hit_cap, hit_top)



def test_fitted_boxes_never_exceed_box_max():
    """Bug caught (seen on the demo scene): an anchor on the background grows a blob over the
    whole image and all its 'fitted' proposals became the whole picture (0, 0, 64, 64), so an
    edit could repaint everything; sides must stay within box_max of the picture's short side."""
    import torch

    from lrlib.config import LRConfig
    from lrlib.additions.proposals import propose
    cfg = LRConfig.cpu(proposals="fitted")
    feats = torch.ones(1, 8, 8, 8)                    # every patch alike: one blob = the image
    for content in (None, (0, 16, 64, 48)):
        boxes = propose(torch.tensor([[32.0, 32.0]]), feats, cfg, 64, 64, content)
        short = 64 if content is None else 32
        sides = torch.stack([boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]], -1)
        assert sides.max() <= round(cfg.box_max * short) + 1, boxes
