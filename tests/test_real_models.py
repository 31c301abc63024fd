"""The real DINO and CLIP are built as their weights need, checked on networks built without
weights through the same decision code as lrlib.models."""
import pytest
import torch

from lrlib.anchors import Dino


def test_openai_clip_is_built_with_quickgelu():
    """Catches `ViT-B-16` + `openai` being built with GELU (open_clip only warns): every CLIP
    embedding of the OpenAI weights would come from a slightly different network."""
    import open_clip
    from lrlib.models import clip_arch_kwargs, clip_model

    model = clip_model("ViT-B-16", "openai", weights=False)
    acts = {type(b.mlp.gelu).__name__ for b in model.visual.transformer.resblocks}
    acts |= {type(b.mlp.gelu).__name__ for b in model.transformer.resblocks}
    assert acts == {"QuickGELU"}
    x = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(model.visual.transformer.resblocks[0].mlp.gelu(x),
                               x * torch.sigmoid(1.702 * x))
    # the decision follows the pretrained config: LAION weights were trained with GELU
    assert clip_arch_kwargs("ViT-B-16", "laion2b_s34b_b88k") == {}
    assert open_clip.pretrained.get_pretrained_cfg("ViT-B-16", "openai")["quick_gelu"]


@pytest.mark.parametrize("size,patch,grid", [(448, 16, 28), (256, 8, 32), (None, 16, 14)])
def test_dino_input_size_sets_the_patch_grid(size, patch, grid):
    """Catches the DINO grid staying 14 x 14 (input resized to 224) when a larger input is
    asked for, or attention / features / keys of mismatched shapes at the new size."""
    import timm

    vit = timm.create_model(f"vit_small_patch{patch}_224", pretrained=False, num_classes=0,
                            embed_dim=64, depth=2, num_heads=4)
    d = Dino(vit, size)
    assert d.grid == (grid, grid) and d.input_size == ((size, size) if size else (224, 224))
    out = d(torch.rand(2, 3, 300, 500))              # any input size: resized to input_size
    assert out.attn.shape == (2, 4, grid, grid)
    assert out.feats.shape == (2, 64, grid, grid)
    assert out.keys.shape == (2, 1 + grid * grid, 64)
    to_patches = out.attn.sum((-2, -1))              # the rest of the softmax row: [CLS]
    assert ((to_patches > 0) & (to_patches < 1)).all()


def test_dino_at_448_equals_timms_own_resized_vit():
    """Catches the position embeddings being cut or padded instead of resampled (a 28 x 28 grid
    read with the 14 x 14 table): lrlib's DINO at 448 px equals timm's own dynamic-size ViT
    with the same weights fed 448 px."""
    import timm

    args = dict(pretrained=False, num_classes=0, embed_dim=64, depth=2, num_heads=4)
    torch.manual_seed(0)
    vit = timm.create_model("vit_small_patch16_224", **args)
    ref = timm.create_model("vit_small_patch16_224", dynamic_img_size=True, **args)
    ref.load_state_dict(vit.state_dict())
    d = Dino(vit, 448)
    x = torch.rand(1, 3, 448, 448)
    out = d(x)
    feats = ref.forward_features((x - d.mean) / d.std)[:, 1:]
    torch.testing.assert_close(out.feats.flatten(2).transpose(1, 2), feats, atol=1e-4, rtol=1e-4)


def test_real_world_loads_dino_at_the_configured_size(monkeypatch):
    """Catches LRConfig.dino_size not reaching the real DINO (or reaching the toy one, which
    was trained at 64 px)."""
    import lrlib.models as models
    from lrlib.config import LRConfig

    seen = {}
    monkeypatch.setattr(models, "load_dino", lambda name, device, size: seen.setdefault("size", size))
    monkeypatch.setattr(models, "load_clip", lambda *a: None)
    with pytest.warns(UserWarning, match="real checkpoints on the CPU"):
        models.load_models(LRConfig(device="cpu"), parts=("dino", "clip"))
    assert seen["size"] == LRConfig().dino_size == 448
    seen.clear()
    models.load_models(LRConfig.cpu(world="random"), parts=("dino", "clip"))
    assert seen["size"] is None
