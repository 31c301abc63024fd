import torch

from lrlib.regions import RGN, box_geometry, boxes_to_masks, gumbel_softmax, make_proposals, roi_pool


def test_proposals_are_centred_squares_growing_and_clipped():
    anchors = torch.tensor([[32.0, 32.0], [4.0, 60.0]])
    boxes = make_proposals(anchors, [0.25, 0.5, 1.0], H=64, W=64)
    assert boxes.shape == (2, 3, 4)
    assert boxes[0].tolist() == [[24, 24, 40, 40], [16, 16, 48, 48], [0, 0, 64, 64]]
    # near the bottom-left corner: clipped, never outside the image
    assert boxes[1, 0].tolist() == [0, 52, 12, 64]
    assert int(boxes[..., :2].min()) >= 0 and int(boxes[..., 2].max()) <= 64


def test_boxes_to_masks_exact_pixels():
    m = boxes_to_masks(torch.tensor([[2, 1, 5, 3]]), H=6, W=8)
    assert m.shape == (1, 1, 6, 8)
    assert m.sum() == 3 * 2
    assert m[0, 0, 1:3, 2:5].all() and m[0, 0, 0].sum() == 0 and m[0, 0, :, 5].sum() == 0


def test_roi_align_orientation_and_scale():
    """Plant a feature map whose channel 0 is the x coordinate and channel 1 the y coordinate
    (in pixels of a 128 x 64 image, W x H): pooling a box must return its centre, x from x."""
    h, w, H, W = 8, 16, 64, 128                      # non-square: catches swapped scales
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    feats = torch.stack([xs * W / w, ys * H / h])[None]   # (1, 2, h, w): pixel coordinates
    box = torch.tensor([[[40, 8, 72, 40]]])          # x0, y0, x1, y1 (x wide, y tall)
    pooled = roi_pool(feats, box, H, W, out=4)       # (1, 1, 2, 4, 4)
    cx, cy = pooled[0, 0, 0].mean(), pooled[0, 0, 1].mean()
    assert abs(float(cx) - 56) < 1e-4 and abs(float(cy) - 24) < 1e-4
    # x varies along the output's last axis (columns), y along rows
    assert (pooled[0, 0, 0, 0, 1:] > pooled[0, 0, 0, 0, :-1]).all()
    assert (pooled[0, 0, 1, 1:, 0] > pooled[0, 0, 1, :-1, 0]).all()
    # a linear ramp is reproduced exactly: each 8 x 8 px bin holds the coordinates of its centre
    # (off by half a cell without aligned=True, stretched with one scale for both axes)
    centres_x = torch.tensor([44.0, 52.0, 60.0, 68.0]).expand(4, 4)
    torch.testing.assert_close(pooled[0, 0, 0], centres_x, atol=1e-4, rtol=0)
    torch.testing.assert_close(pooled[0, 0, 1], torch.tensor([12.0, 20.0, 28.0, 36.0])[:, None].expand(4, 4),
                               atol=1e-4, rtol=0)


def test_gumbel_hard_is_one_hot_with_soft_gradient():
    logits = torch.tensor([[0.1, 2.0, -1.0]], requires_grad=True)
    g = gumbel_softmax(logits, tau=1.0, hard=True, generator=torch.Generator().manual_seed(0))
    assert sorted(g.detach().flatten().tolist()) == [0.0, 0.0, 1.0]
    w = torch.tensor([1.0, 2.0, 3.0])
    (g * w).sum().backward()
    # straight-through: gradient of the soft sample, non-zero for every logit, sums to zero
    assert (logits.grad.abs() > 0).all()
    assert abs(float(logits.grad.sum())) < 1e-6


def test_gumbel_samples_follow_softmax_and_temperature():
    logits = torch.tensor([0.0, 1.0, 2.0]).log_softmax(0)
    gen = torch.Generator().manual_seed(1)
    g = gumbel_softmax(logits.expand(20000, 3), hard=True, generator=gen)
    freq = g.mean(0)
    torch.testing.assert_close(freq, logits.softmax(0), atol=0.015, rtol=0)
    soft_hot = gumbel_softmax(logits.expand(2000, 3), tau=10.0, hard=False, generator=gen)
    soft_cold = gumbel_softmax(logits.expand(2000, 3), tau=0.1, hard=False, generator=gen)
    assert soft_hot.max(-1).values.mean() < soft_cold.max(-1).values.mean()


def test_gumbel_is_deterministic_given_generator():
    l = torch.randn(4, 7)
    a = gumbel_softmax(l, generator=torch.Generator().manual_seed(3))
    b = gumbel_softmax(l, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def planted_rgn(d, r, wf, wg):
    """An RGN whose logit is known: pi = wf * (mean of feature channel 0) + wg . [w, h].

    Identity 1x1 convs (features are >= 0, so the ReLUs pass them), a first Linear that puts
    the channel-0 mean in hidden unit 0 and w, h in units 1, 2, a last Linear with (wf, wg)."""
    rgn = RGN(d=d, roi_size=r, channels=d, hidden=3)
    with torch.no_grad():
        for p in rgn.parameters():
            p.zero_()
        rgn.convs[0].weight[:, :, 0, 0] = torch.eye(d)
        rgn.convs[2].weight[:, :, 0, 0] = torch.eye(d)
        lin = rgn.mlp[0].weight                      # (3, d * r * r + 2), features flattened c, y, x
        lin[0, :r * r] = 1.0 / (r * r)
        lin[1, -2], lin[2, -1] = 1.0, 1.0
        rgn.mlp[2].weight[0] = torch.tensor([wf, *wg])
    return rgn


def test_rgn_scores_each_box_from_its_own_features_and_size():
    """Planted weights make the logit of box (k, m) a known function of that box's pooled
    features and its (w, h): the RGN's output must be exactly that, in the (K, M) layout. Bugs
    caught: features or sizes of one box scored under another (a (M, K) reshape, geometry of
    the wrong anchor), width and height swapped (in box_geometry or the RGN), size dropped."""
    K, M, d, r = 2, 5, 3, 2
    g = torch.Generator().manual_seed(0)
    pooled = torch.rand(K, M, d, r, r, generator=g)
    boxes = make_proposals(torch.tensor([[16.0, 16.0], [4.0, 40.0]]), [0.1, 0.3, 0.5, 0.7, 0.9], 48, 64)
    geom = box_geometry(boxes, 48, 64)
    wh = (boxes[..., 2:] - boxes[..., :2]).float()
    torch.testing.assert_close(geom, wh / torch.tensor([64.0, 48.0]))   # [w / W, h / H]
    assert not torch.equal(geom[..., 0], geom[..., 1])          # clipped boxes: w != h
    rgn = planted_rgn(d, r, 2.0, (3.0, -1.0))
    want = 2.0 * pooled[:, :, 0].mean((-1, -2)) + 3.0 * geom[..., 0] - 1.0 * geom[..., 1]
    torch.testing.assert_close(rgn(pooled, geom), want, atol=1e-6, rtol=0)
    # the same weights for every box: permuting the boxes permutes the logits
    perm = torch.randperm(M, generator=g)
    torch.testing.assert_close(rgn(pooled[:, perm], geom[:, perm]), want[:, perm], atol=1e-6, rtol=0)


def test_rgn_sees_size():
    """After ROI-align a big and a small box over a flat region look identical: only the size
    input tells them apart. Bug caught: the size input dropped or constant."""
    torch.manual_seed(0)
    rgn = RGN(d=6, roi_size=3, channels=4, hidden=8)
    pooled = torch.randn(2, 5, 6, 3, 3)
    boxes = make_proposals(torch.tensor([[16.0, 16.0], [40.0, 40.0]]), [0.1, 0.2, 0.3, 0.4, 0.5], 64, 64)
    geom = box_geometry(boxes, 64, 64)
    same = pooled[:, :1].expand(-1, 5, -1, -1, -1)   # identical features, different sizes
    assert rgn(same, geom)[0].unique().numel() == 5
    assert rgn(same, geom.flip(1))[0].tolist() == rgn(same, geom)[0].flip(0).tolist()
