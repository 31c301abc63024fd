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


def test_dino_normalises_with_the_models_own_constants(dino, scene):
    """The features are those of the ViT on (x - mean) / std, with the mean and std of the
    model's pretrained config (ImageNet's when it has none), laid out so that feats[:, :, r, c]
    is patch token r * w + c. Bugs caught: the normalisation forgotten (the official code's
    bug), applied as (x - mean) * std, ImageNet constants forced on a model trained with others,
    rows and columns of the patch grid swapped."""
    import copy

    from lrlib.anchors import Dino
    x = scene[None]
    for mean, std in (((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                      ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))):
        vit = copy.deepcopy(dino.vit)
        vit.pretrained_cfg = {**(getattr(vit, "pretrained_cfg", {}) or {}), "mean": mean, "std": std}
        d = Dino(vit)
        out = d(x)
        z = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        tokens = vit.forward_features(z)[0, d.n_prefix:]                 # (h * w, d)
        h, w = out.feats.shape[-2:]
        for r, c in ((0, 0), (1, 5), (h - 1, w - 2)):
            torch.testing.assert_close(out.feats[0, :, r, c], tokens[r * w + c], atol=1e-5, rtol=0)


def test_upsample_map_reproduces_a_ramp_exactly():
    """Bilinear, half-pixel aligned: a map equal to its column index on a 4 x 8 grid, shown at
    32 x 64 (8 px a cell), is (x + 0.5) / 8 - 0.5 at pixel x (clamped to the end cells); the row
    ramp the same along y. Bugs caught: height and width swapped, align_corners=True (a stretched
    map, off by up to half a cell at the edges), nearest-neighbour blocks."""
    cols = torch.arange(8.0).expand(4, 8)
    rows = torch.arange(4.0)[:, None].expand(4, 8)
    x = ((torch.arange(64.0) + 0.5) / 8 - 0.5).clamp(0, 7)
    y = ((torch.arange(32.0) + 0.5) / 8 - 0.5).clamp(0, 3)
    torch.testing.assert_close(upsample_map(cols, 32, 64), x.expand(32, 64))
    torch.testing.assert_close(upsample_map(rows, 32, 64), y[:, None].expand(32, 64))


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
