"""The fitted proposals' fast arithmetic (lrlib.regions: integral-image window means, the guide's
statistics computed once, similarity maps on the patch grid, blobs by connected-component
labelling) against the direct computations, written out here as references: a sliding-window
average, the blob grown one pixel ring at a time, the features upsampled to every pixel."""
import pytest
import torch
import torch.nn.functional as F

from lrlib.additions import fitted, grounding
from lrlib.additions import guided_filter as gf
from lrlib.additions.fitted import FIT_PEAK
from lrlib.additions.guided_filter import SNAP_EPS, guide_stats, guided_filter, snap_radius
from lrlib.additions.fitted import blob, fitted_blobs, grow, pixel_norms, similarity, unit_features


# ----------------------------------------------------------------------------- references
def ref_box_mean(x, r):
    """Sliding (2r+1)^2 window average over the edge-replicated map."""
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1, stride=1)


def ref_guided_filter(I, q, r, eps=SNAP_EPS):
    """The colour guided filter, every statistic recomputed, with the sliding-window means."""
    I, q = I.float()[None], q.float()[:, None]                # (1, 3, H, W), (P, 1, H, W)
    H, W = I.shape[-2:]
    mI, mq = ref_box_mean(I, r), ref_box_mean(q, r)
    pairs = torch.stack([I[:, i] * I[:, j] for i in range(3) for j in range(3)], 1)
    Sigma = (ref_box_mean(pairs, r) - torch.stack([mI[:, i] * mI[:, j] for i in range(3)
                                                    for j in range(3)], 1))[0]         # (9, H, W)
    inv = torch.linalg.inv(Sigma.permute(1, 2, 0).reshape(H, W, 3, 3) + eps * torch.eye(3))
    cov = ref_box_mean(I * q, r) - mI * mq                               # (P, 3, H, W)
    a = torch.einsum("hwij,pjhw->pihw", inv, cov)
    b = mq - (a * mI).sum(1, keepdim=True)
    return (ref_box_mean(a, r) * I).sum(1) + ref_box_mean(b, r)[:, 0]


def ref_grow(seed, allowed):
    """Grow seed & allowed by one 4-neighbour ring at a time until nothing changes."""
    m = seed & allowed
    while True:
        g = m.clone()
        g[1:] |= m[:-1]
        g[:-1] |= m[1:]
        g[:, 1:] |= m[:, :-1]
        g[:, :-1] |= m[:, 1:]
        g &= allowed
        if torch.equal(g, m):
            return m
        m = g


def ref_blob(allowed, xy, reach=0):
    """`fitted.blob` on `ref_grow`: the nearest allowed pixel within reach seeds the blob."""
    H, W = allowed.shape
    x, y = min(W - 1, max(0, int(xy[0]))), min(H - 1, max(0, int(xy[1])))
    if reach > 0 and not allowed[y, x]:
        best = None
        for yy in range(max(0, y - reach), min(H, y + reach + 1)):        # row-major: ties go
            for xx in range(max(0, x - reach), min(W, x + reach + 1)):    # to the first
                if allowed[yy, xx]:
                    d = (yy - y) ** 2 + (xx - x) ** 2
                    if best is None or d < best[0]:
                        best = (d, yy, xx)
        if best:
            y, x = best[1], best[2]
    seed = torch.zeros(H, W, dtype=torch.bool)
    seed[y, x] = True
    m = ref_grow(seed, allowed)
    return m if m.any() else seed


def ref_fitted_blobs(feats, anchors_xy, level, H, W, content=None, image=None, snap=0.0,
                     reach=0.0, Fp=None, **per_image):
    """Fitted blobs from the (d, H, W) unit features of every pixel, the guided filter
    recomputed for the maps, blobs grown ring by ring (per_image: ignored, recomputed)."""
    X0, Y0, X1, Y1 = content or (0, 0, W, H)
    feats = feats.cpu()
    Fp = F.normalize(F.interpolate(feats[None].float(), size=(H, W), mode="bilinear",
                                   align_corners=False)[0], dim=0)       # (d, H, W)
    pts = [(min(X1 - 1, max(X0, int(x))), min(Y1 - 1, max(Y0, int(y))))
           for x, y in anchors_xy.tolist()]
    if not pts:
        return torch.zeros(0, H, W, dtype=torch.bool)
    xs, ys = torch.tensor(pts).T
    sims = torch.einsum("dp,dhw->phw", Fp[:, ys, xs], Fp)                  # (K, H, W)
    if snap > 0 and image is not None:
        r = max(1, round(snap * H / feats.shape[-2]))
        sims = ref_guided_filter(image.float().cpu(), sims, r)
    inside = torch.zeros(H, W, dtype=torch.bool)
    inside[Y0:Y1, X0:X1] = True
    px = round(reach * H / feats.shape[-2])
    out = []
    for (x, y), sim in zip(pts, sims):
        cut = level
        if px > 0:
            peak = float(sim[max(0, y - px):y + px + 1, max(0, x - px):x + px + 1].max())
            cut = min(level, FIT_PEAK * peak)
        out.append(ref_blob((sim >= cut) & inside, (x, y), px))
    return torch.stack(out)


def iou(a, b):
    return float((a & b).sum()) / max(1.0, float((a | b).sum()))


# ----------------------------------------------------------------------------- window means
@pytest.mark.parametrize("r", [1, 4, 13, 40])
def test_box_mean_equals_the_sliding_window_and_the_closed_form(r):
    """Random maps (non-square, r up to past the map's half and its full side) equal the sliding
    window (summed in float64) to 1e-6, borders included; on a ramp x(i, j) = j every column's
    mean is the closed form mean_k clamp(j + k, 0, W - 1), k = -r..r. Catches a window one
    pixel too wide, short or shifted (the ramp's mean moves by 0.5 px), and a border not
    replicated."""
    g = torch.Generator().manual_seed(r)
    x = torch.rand(2, 3, 37, 52, generator=g)
    want = ref_box_mean(x.double(), r).float()             # the window summed in float64
    torch.testing.assert_close(gf._box_mean(x, r), want, atol=1e-6, rtol=0)
    H, W = 9, 30
    ramp = torch.arange(W, dtype=torch.float32).expand(1, 1, H, W)
    want = torch.tensor([sum(min(max(j + k, 0), W - 1) for k in range(-r, r + 1)) / (2 * r + 1)
                         for j in range(W)])
    got = gf._box_mean(ramp, r)[0, 0]
    torch.testing.assert_close(got, want.expand(H, W), atol=1e-4, rtol=0)
    torch.testing.assert_close(gf._box_mean(ramp.transpose(-1, -2), r)[0, 0],
                               want[:, None].expand(W, H), atol=1e-4, rtol=0)


def test_guided_filter_with_precomputed_guide_equals_the_reference():
    """Several maps at once, with and without the guide's statistics computed beforehand, equal
    the filter recomputed from sliding windows (to 1e-4: (Sigma + eps)^-1 scales the means'
    rounding by up to 1 / eps); statistics of another radius are refused. Catches statistics
    stale for the radius, or a guide mixed up with the maps."""
    g = torch.Generator().manual_seed(0)
    H, W = 48, 70
    I = torch.rand(3, H, W, generator=g)
    I[:, :, 30:] *= 0.3                                                   # an edge to keep
    q = torch.rand(3, H, W, generator=g)
    for r in (2, 9):
        want = ref_guided_filter(I, q, r)
        torch.testing.assert_close(guided_filter(I, q, r), want, atol=1e-4, rtol=0)
        stats = guide_stats(I, r)
        torch.testing.assert_close(guided_filter(I, q, r, guide=stats), want, atol=1e-4, rtol=0)
        one = torch.cat([guided_filter(I, q[i:i + 1], r, guide=stats) for i in range(3)])
        torch.testing.assert_close(one, want, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="radius"):
        guided_filter(I, q, 3, guide=guide_stats(I, 2))


# ----------------------------------------------------------------------------- blobs
def _serpentine(H, W):
    """An H x W bool mask: every other row, joined at alternate ends into one 1-px path that
    winds over the whole map (the longest way a blob can grow: ~H W / 2 rings)."""
    m = torch.zeros(H, W, dtype=torch.bool)
    m[::2] = True
    for i in range(1, H, 2):
        m[i, W - 1 if i % 4 == 1 else 0] = True
    return m


def _masks():
    g = torch.Generator().manual_seed(1)
    out = [(torch.rand(40, 57, generator=g) < p) for p in (0.45, 0.55, 0.6, 0.7)]
    yy, xx = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    out.append((yy + xx) % 2 == 0)                        # a checkerboard: diagonal touches only
    out.append(_serpentine(41, 36))
    out.append(torch.zeros(20, 30, dtype=torch.bool))                     # nothing allowed
    return out


def test_grow_and_blob_equal_the_pixel_rings():
    """Random masks near the percolation threshold (winding, branching blobs), a checkerboard
    (pixels that touch only diagonally), a winding path and an empty mask: grow from several seeds,
    and blob from allowed and not-allowed pixels with reach 0, 2 and 5, equal the ring-by-ring
    reference pixel for pixel. Catches 8-connectivity, a blob that stops early or leaks into
    another component, and a reach seeded at the wrong pixel."""
    g = torch.Generator().manual_seed(2)
    checked = 0
    for allowed in _masks():
        H, W = allowed.shape
        seed = torch.rand(H, W, generator=g) < 0.003
        seed[H // 2, W // 2] = True
        assert torch.equal(grow(seed, allowed), ref_grow(seed, allowed))
        for _ in range(6):
            xy = (int(torch.randint(W, (1,), generator=g)),
                  int(torch.randint(H, (1,), generator=g)))
            for reach in (0, 2, 5):
                got, want = blob(allowed, xy, reach), ref_blob(allowed, xy, reach)
                assert got.dtype == torch.bool and torch.equal(got, want), (xy, reach)
                checked += int(want.sum() > 1)
    path = _serpentine(41, 36)
    assert int(blob(path, (0, 0)).sum()) == int(path.sum()) > 700          # one winding blob
    assert int(blob(_masks()[4], (0, 0)).sum()) == 1                        # no diagonal steps
    assert checked > 20


@pytest.mark.parametrize("r", [1, 3, 9, 25])
def test_dilate_equals_the_square_window(r):
    """anchors._dilate (the blob views' rim) by row and column shifts equals the (2r+1)^2
    max-pool window, r past the map's side included. Catches a plus-shaped (row and column
    from the original mask, not composed) or one-sided dilation."""
    from lrlib.additions.grounding import _dilate
    g = torch.Generator().manual_seed(r)
    for m in (torch.rand(31, 44, generator=g) > 0.98, torch.zeros(8, 9, dtype=torch.bool)):
        want = F.max_pool2d(m[None, None].float(), 2 * r + 1, stride=1, padding=r)[0, 0] > 0
        assert torch.equal(_dilate(m, r), want)


# ----------------------------------------------------------------------------- similarity maps
@pytest.mark.parametrize("H, W", [(64, 64), (50, 90), (200, 256), (5, 6)])
def test_similarity_on_the_grid_equals_the_upsampled_features(H, W):
    """|up(F)(p)| from the Gram matrix and sim_a from the grid equal the (d, H, W) unit features'
    norms and dot products to 1e-5, on a non-square grid, up- and downsampled (5 x 6 from
    7 x 9), at anchors in the corners and inside. Catches bilinear taps off by half a pixel
    (align_corners), rows and columns swapped, a missing cross term of the norm."""
    g = torch.Generator().manual_seed(H)
    feats = torch.randn(24, 7, 9, generator=g) + 0.5
    up = F.interpolate(feats[None], size=(H, W), mode="bilinear", align_corners=False)[0]
    norms = pixel_norms(feats, H, W)
    torch.testing.assert_close(norms, up.norm(dim=0), atol=1e-5, rtol=1e-5)
    Fp = unit_features(feats, H, W)
    for x, y in [(0, 0), (W - 1, H - 1), (W - 1, 0), (W // 3, H // 2)]:
        want = torch.einsum("d,dhw->hw", Fp[:, y, x], Fp)
        torch.testing.assert_close(similarity(feats, (x, y), H, W, norms), want, atol=1e-5, rtol=0)
        torch.testing.assert_close(similarity(feats, (x, y), H, W), want, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- toy world
def _toy_inputs(models, tasks, S):
    """(task, x (1, 3, S, S) the scene scaled to S, DINO output) per task."""
    out = []
    for t in tasks:
        x = torch.from_numpy(t.scene.image).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            d = models.dino(x)
        xs = F.interpolate(x, size=(S, S), mode="bilinear", align_corners=False).clamp(0, 1)
        out.append((t, xs, d))
    return out


@pytest.mark.parametrize("S, n", [(64, 5), (100, 4), (128, 2)])   # the reference is slow
def test_fitted_blobs_equal_the_reference_on_toy_tasks(toy, S, n):
    """The toy DINO's features on n tuning tasks, the pool's anchors (attention peaks), at
    canvas sizes 64-128 px, snapped (fit_snap) and with reach (fit_reach), on a letterboxed
    content rectangle: every blob has IoU >= 0.99 with the reference's and most are identical,
    with the per-image statistics computed by fitted_blobs itself or handed in (as cover_pool
    does). Not all identical: the reference's float32 sliding sums, scaled by up to 1 / eps in
    the filter, are off by up to 1e-3 (the fast filter: 1e-6, both against float64), so a few
    pixels right at the cut fall the other way (measured: 1-8 pixels in 5 of 40 blobs at 128
    and 160 px). Catches a guide of the wrong radius, norms of another size, a blob reaching
    the padding."""
    from lrlib.bench.toy import task_set
    from lrlib.additions.grounding import anchor_pool
    cfg, models = toy
    content = (0, 8 * S // 64, S, 56 * S // 64)
    same = total = 0
    for t, x, d in _toy_inputs(models, task_set(n, "tuning"), S):
        pool = anchor_pool(d.attn_mean[0], content, S, cfg)                # (P, 2)
        f = d.feats[0]
        want = ref_fitted_blobs(f, pool, cfg.fit_level, S, S, content, x[0], cfg.fit_snap,
                                cfg.fit_reach)
        got = fitted_blobs(f, pool, cfg.fit_level, S, S, content, x[0], cfg.fit_snap,
                           cfg.fit_reach)
        handed = fitted_blobs(f, pool, cfg.fit_level, S, S, content, x[0], cfg.fit_snap,
                              cfg.fit_reach, norms=pixel_norms(f, S, S),
                              guide=guide_stats(x[0], snap_radius(cfg.fit_snap, S, f.shape[-2])))
        assert torch.equal(got, handed)
        assert got.shape == want.shape and got.device.type == "cpu"
        assert not got[:, :content[1]].any() and not got[:, content[3]:].any()
        for a, b in zip(got, want):
            assert iou(a, b) >= 0.99, (t.source_caption, iou(a, b))
            same += bool(torch.equal(a, b))
            total += 1
    assert same >= 0.75 * total, (same, total)


def test_fitted_blobs_with_full_res_features_handed_in_equal_the_reference(toy):
    """The Fp argument (unit features of every pixel, the notebooks' way) still gives the
    reference's blobs, unsnapped and snapped."""
    from lrlib.bench.toy import task_set
    cfg, models = toy
    for t, x, d in _toy_inputs(models, task_set(3, "tuning"), 64):
        c = torch.tensor([[(t.target_box[0] + t.target_box[2]) / 2,
                           (t.target_box[1] + t.target_box[3]) / 2]])
        f = d.feats[0]
        for snap in (0.0, cfg.fit_snap):
            want = ref_fitted_blobs(f, c, 0.7, 64, 64, None, x[0], snap)
            got = fitted_blobs(f, c, 0.7, 64, 64, None, x[0], snap, Fp=unit_features(f, 64, 64))
            assert iou(got[0], want[0]) >= 0.99


class _Stop(Exception):
    pass


class _StopEditor:
    """Ends prepare where the candidate edits would begin."""
    resolution = 64

    def snap_mask(self, masks):
        raise _Stop


def _prepare_anchors_boxes(models, cfg, task, aspect_image):
    """(anchors (K, 2), boxes (K, M, 4)) that pipeline.prepare proposes for the task."""
    import lrlib.pipeline as pipeline
    from lrlib.models import Models
    seen = {}
    real = pipeline.propose

    def propose(anchors, *args, **kwargs):
        seen["anchors"] = anchors.clone()
        seen["boxes"] = real(anchors, *args, **kwargs)
        return seen["boxes"]
    m = Models(dino=models.dino, clip=models.clip, editor=_StopEditor(), device=torch.device("cpu"),
               world="toy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "propose", propose)
        with pytest.raises(_Stop):
            pipeline.prepare(aspect_image, task.prompt, task.source_caption, cfg, m)
    return seen["anchors"], seen["boxes"]


def _patch_everywhere(mp, name, fn):
    """Replace `name` in every additions module that holds it (each imports what it calls by
    name, so a patch in one module alone would leave the others calling the original)."""
    held = [m for m in (fitted, grounding, gf) if hasattr(m, name)]
    assert held, name
    for m in held:
        mp.setattr(m, name, fn)


@pytest.mark.parametrize("aspect", [1.0, 1.5])
def test_prepare_proposes_the_same_anchors_and_boxes_as_the_reference(toy, monkeypatch, aspect):
    """pipeline.prepare on 4 tuning tasks (square, and 3:2 letterboxed), caption-aware anchors,
    the covering pool, snapped fitted boxes: the same anchors and the same (K, M, 4) boxes as
    with the reference blobs (monkeypatched in). Catches any change of the method's regions."""
    from lrlib.bench.toy import task_set
    cfg, models = toy
    assert cfg.anchor_pool > cfg.K and cfg.anchor_cover and cfg.fit_snap > 0 and cfg.fit_reach > 0
    for t in task_set(4, "tuning", aspect=aspect):
        image = t.scene.image
        a_new, b_new = _prepare_anchors_boxes(models, cfg, t, image)
        with monkeypatch.context() as mp:
            _patch_everywhere(mp, "fitted_blobs", ref_fitted_blobs)
            _patch_everywhere(mp, "grow", ref_grow)
            _patch_everywhere(mp, "_box_mean", ref_box_mean)
            a_ref, b_ref = _prepare_anchors_boxes(models, cfg, t, image)
        assert torch.equal(a_new, a_ref), (t.source_caption, a_new, a_ref)
        assert torch.equal(b_new, b_ref), (t.source_caption, b_new, b_ref)


def test_prepare_computes_the_guide_once_and_never_the_full_feature_map(toy, monkeypatch):
    """A caption-aware prepare on a toy task: the guide's statistics (window means and inverted
    covariances of the picture) are computed once per image, not once per pool peak, and the
    (d, S, S) map of upsampled features is never built (at 512 px with DINO ViT-B it is 805 MB,
    at 1024 px 3.2 GB). Catches the per-peak recomputation and the full-resolution einsum."""
    from lrlib.pipeline import prepare
    from lrlib.toy import make_edit_task

    cfg, models = toy
    calls = []
    real = gf.guide_stats
    _patch_everywhere(monkeypatch, "guide_stats", lambda *a, **k: calls.append(1) or real(*a, **k))

    def forbidden(*a, **k):
        raise AssertionError("the full-resolution feature map was built")
    _patch_everywhere(monkeypatch, "unit_features", forbidden)
    task = make_edit_task(7, 64, "multi")
    p = prepare(task.scene.image, task.prompt, task.source_caption, cfg.replace(K=3), models)
    assert p.K >= 1 and len(calls) == 1
