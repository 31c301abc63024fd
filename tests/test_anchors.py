import pytest
import torch

from lrlib.anchors import cells_to_pixels, top_k_anchors, upsample_map
from lrlib.errors import LRError


def test_top_k_on_planted_map_respects_order_and_spacing():
    A = torch.zeros(8, 8)
    A[2, 5] = 1.0          # main peak
    A[2, 6] = 0.9          # neighbour of the peak: must be skipped with spacing 2
    A[3, 5] = 0.85         # neighbour too
    A[6, 1] = 0.8          # second object
    A[5, 6] = 0.7          # third, 3 rows below the peak
    cells = top_k_anchors(A, 3, spacing=2)
    assert cells.tolist() == [[2, 5], [6, 1], [5, 6]]
    # without spacing the neighbours win
    assert top_k_anchors(A, 3, spacing=1).tolist() == [[2, 5], [2, 6], [3, 5]]


def test_top_k_spacing_holds_for_random_maps():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        A = torch.rand(14, 14, generator=g)
        cells = top_k_anchors(A, 9, spacing=3)
        d = (cells[:, None, :] - cells[None, :, :]).abs().amax(-1)
        d.fill_diagonal_(99)
        assert int(d.min()) >= 3
        assert float(A[cells[0, 0], cells[0, 1]]) == float(A.max())


def test_too_many_anchors_is_a_clear_error():
    with pytest.raises(LRError, match="lower K"):
        top_k_anchors(torch.rand(4, 4), 5, spacing=2)   # at most 4 cells 2 apart on 4x4


def test_cells_to_pixels_x_is_column_y_is_row():
    xy = cells_to_pixels(torch.tensor([[1, 3]]), (4, 8), H=64, W=128)   # row 1, col 3
    assert xy.tolist() == [[(3 + 0.5) * 16, (1 + 0.5) * 16]]


def test_dino_attention_equals_timm_internal_attention(dino, scene):
    """Our recomputed [CLS] attention must equal what the timm block computes itself."""
    attn_mod = dino.vit.blocks[-1].attn
    seen = {}
    old = attn_mod.fused_attn
    attn_mod.fused_attn = False
    h = attn_mod.attn_drop.register_forward_hook(lambda m, i, o: seen.__setitem__("A", o))
    try:
        out = dino(scene[None])
    finally:
        h.remove()
        attn_mod.fused_attn = old
    ref = seen["A"][:, :, 0, dino.n_prefix:].reshape(out.attn.shape)
    torch.testing.assert_close(out.attn, ref)
    assert out.attn.shape == (1, 4, 8, 8)
    torch.testing.assert_close(out.attn.sum((-1, -2)), torch.ones(1, 4) - seen["A"][:, :, 0, 0], atol=1e-5, rtol=0)
    assert out.feats.shape == (1, 64, 8, 8)
    assert out.keys.shape == (1, 65, 64)


def test_dino_normalises_input(dino, scene):
    """ImageNet normalisation (the official code forgot it) changes the features."""
    a = dino(scene[None]).feats
    raw = dino.vit.forward_features(scene[None])[:, 1:].transpose(1, 2).reshape(a.shape)
    assert not torch.allclose(a, raw)


def test_upsample_map_shape():
    assert upsample_map(torch.rand(4, 4), 32, 48).shape == (32, 48)


def test_refine_anchors_moves_to_the_local_centroid():
    from lrlib.anchors import refine_anchors
    A = torch.zeros(8, 8)
    A[3, 3], A[3, 4] = 1.0, 1.0          # a blob straddling two cells: the centroid is between
    A[6, 1] = 1.0                         # a lone peak: stays at its cell centre
    cells = torch.tensor([[3, 3], [6, 1]])
    pts = refine_anchors(A, cells, 64, 64)
    torch.testing.assert_close(pts[0], torch.tensor([32.0, 28.0]))   # x between cols 3 and 4
    torch.testing.assert_close(pts[1], cells_to_pixels(cells[1:], (8, 8), 64, 64)[0])
    flat = refine_anchors(torch.ones(8, 8), cells, 64, 64)           # flat window: cell centre
    torch.testing.assert_close(flat, cells_to_pixels(cells, (8, 8), 64, 64))
