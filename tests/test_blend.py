"""Blending the paste (lrlib.blend): a ramp inside the box border, the input exactly outside."""
import numpy as np
import torch

import lrlib
from lrlib.blend import feather, keep_changes
from lrlib.config import LRConfig
from lrlib.regions import boxes_to_masks

CFG = LRConfig.cpu(progress=False, epochs=1, iters_per_epoch=2)


def ramp_by_hand(box, H, W, b, edge_inside=True):
    """w = min(d + 1, b) / b inside the box, d = pixels to the nearest box side that is not the
    image edge; 0 outside."""
    x0, y0, x1, y1 = box
    w = np.zeros((H, W))
    for y in range(y0, y1):
        for x in range(x0, x1):
            d = [x - x0 if x0 > 0 else 99, x1 - 1 - x if x1 < W else 99,
                 y - y0 if y0 > 0 else 99, y1 - 1 - y if y1 < H else 99]
            w[y, x] = min(min(d) + 1, b) / b
    return w


def test_feather_is_a_ramp_inside_and_zero_outside():
    """Catches a ramp that leaks outside the box (a halo changes kept pixels), that runs the wrong
    way, or that fades against the image edge where there is no seam to hide."""
    for box in [(4, 5, 16, 15), (0, 3, 9, 20)]:            # inside; touching left and bottom edges
        m = boxes_to_masks(torch.tensor([box]), 20, 20)     # (1, 1, 20, 20)
        w = feather(m, 3)
        assert w.shape == m.shape
        np.testing.assert_allclose(w[0, 0].numpy(), ramp_by_hand(box, 20, 20, 3), atol=1e-6)
        assert torch.equal(w[m == 0], torch.zeros_like(w[m == 0]))
    assert torch.equal(feather(m, 0), m) and torch.equal(feather(m, 1), m)


def test_edit_blends_inside_the_border_and_keeps_the_outside_exactly(models, scene):
    """With blend_px on, `lrlib.edit` must (1) leave every pixel outside the box bit-exact and
    (2) mix the winner into the input with the ramp on the border rows (catches a blend that is
    not applied, applied to the wrong box, or applied outside it)."""
    b = 3
    r = lrlib.edit(scene, "a blue square", config=CFG.replace(blend_px=b, blend_tau=0.0),
                   models=models("sd"))
    x0, y0, x1, y1 = r.best_box
    src = np.asarray(lrlib.images.to_pil(scene)).astype(float)
    res, out = np.asarray(r.results[r.best]).astype(float), np.asarray(r.image).astype(float)
    inside = np.zeros(src.shape[:2], bool)
    inside[y0:y1, x0:x1] = True
    assert np.array_equal(out[~inside], src[~inside])                   # outside: the input
    w = ramp_by_hand(r.best_box, 64, 64, b)[..., None]
    assert np.abs(out - (w * res + (1 - w) * src)).max() <= 1.0         # 8-bit rounding only
    ring = inside & (w[..., 0] < 1)
    assert ring.any() and np.abs(res - src)[ring].max() > 10            # a real difference...
    assert np.abs(out - res)[ring].max() > 3                            # ...that was blended


def keep_by_hand(w, m, E, x, tau):
    """w' = max(w, m * min(1, D / tau)), D = the 3 x 3 maximum of max_c |E - x| (zero padding
    is harmless: D >= 0)."""
    d = np.abs(E - x).max(0)
    H, W = d.shape
    D = np.array([[d[max(0, i - 1):i + 2, max(0, j - 1):j + 2].max() for j in range(W)]
                  for i in range(H)])
    return np.maximum(w, m * np.minimum(1.0, D / tau))


def test_keep_changes_matches_the_formula_and_keeps_the_outside_zero():
    """Catches a weight that ignores the change (a plain ramp), one that leaks outside the box,
    a D over the wrong axis, or a missing clamp at 1."""
    g = torch.Generator().manual_seed(0)
    m = boxes_to_masks(torch.tensor([(3, 4, 15, 14)]), 18, 18)[0]      # (1, 18, 18)
    x = torch.rand(3, 18, 18, generator=g)
    E = x + 0.05 * torch.randn(3, 18, 18, generator=g)                  # background: small change
    E[:, 6:9, 3:6] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]       # an object on the border
    w = feather(m, 3)
    out = keep_changes(w, m, E, x, 0.5)
    np.testing.assert_allclose(out[0].numpy(), keep_by_hand(w[0].numpy(), m[0].numpy(),
                                                             E.numpy(), x.numpy(), 0.5), atol=1e-6)
    assert torch.equal(out[m == 0], torch.zeros_like(out[m == 0]))     # outside: still 0
    assert (out[0, 6:9, 3] == 1).all() and (w[0, 6:9, 3] < 1).all()    # the object: kept whole
    assert (out <= 1).all() and (out >= w).all()
    assert torch.equal(keep_changes(w, m, E, x, 0.0), w)               # tau = 0: the plain ramp


def test_edit_keeps_the_new_object_whole_at_the_box_border(models, scene):
    """With blend_tau, `lrlib.edit` pastes y = w' E + (1 - w') x (w' above) inside the box and
    the input exactly outside; where the winner differs from the input by tau or more the
    output is the winner itself (the object is not faded as the plain ramp fades it)."""
    cfg = CFG.replace(blend_px=3, blend_tau=0.5)
    r = lrlib.edit(scene, "a blue square", config=cfg, models=models("sd"))
    x0, y0, x1, y1 = r.best_box
    src = np.asarray(lrlib.images.to_pil(scene)).astype(float) / 255
    res = np.asarray(r.results[r.best]).astype(float) / 255
    out = np.asarray(r.image).astype(float) / 255
    m = np.zeros((1, 64, 64))
    m[0, y0:y1, x0:x1] = 1
    w = ramp_by_hand(r.best_box, 64, 64, 3)[None]
    wk = keep_by_hand(w, m, res.transpose(2, 0, 1), src.transpose(2, 0, 1), 0.5)[0][..., None]
    assert np.abs(out - (wk * res + (1 - wk) * src)).max() <= 1.5 / 255
    assert np.array_equal(out[m[0] == 0], src[m[0] == 0])
    moved = (wk[..., 0] > w[0] + 0.1)                                    # where tau kept the edit
    assert moved.any(), "the winner changed nothing by tau at the border: a vacuous test"
