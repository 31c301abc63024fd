"""The smoke benchmark of the real path: its written-out configurations are the real
architectures, and its loop runs lrlib.edit on every family (small variant)."""
import pytest
import torch

from lrlib.bench import smoke


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_written_out_configs_have_the_real_parameter_counts():
    """Catches a typo in a hand-written config (a wrong head dim, layer count or width builds a
    different network that still runs): the counts are those of the published checkpoints
    (UNets: the text-to-image count + 14,400 for the 5 extra input channels of inpainting)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.device("meta"):     # no memory, no time: only the shapes
        assert _params(UNet2DConditionModel(**smoke.SD2_UNET)) == 865_910_724 + 14_400
        assert _params(UNet2DConditionModel(**smoke.SD15_UNET)) == 859_520_964 + 14_400
        assert _params(UNet2DConditionModel(**smoke.SDXL_UNET)) == 2_567_463_684 + 14_400
        assert _params(AutoencoderKL(**smoke.SD_VAE)) == 83_653_863
        assert _params(CLIPTextModel(CLIPTextConfig(**smoke.CLIP_L_TEXT))) == 123_060_480
        assert _params(CLIPTextModel(CLIPTextConfig(**smoke.OPENCLIP_H_TEXT))) == 340_387_840
        assert _params(CLIPTextModelWithProjection(
            CLIPTextConfig(**smoke.OPENCLIP_BIGG_TEXT))) == 694_659_840


@pytest.mark.parametrize("family", ["sdxl", "amused"])
def test_smoke_runs_each_family_end_to_end_and_frees_it(family):
    """Catches a family that cannot run lrlib.edit with models passed in (wrong editor kind for
    the config, DINO size not applied, the non-square photo not coming back at its size)."""
    row = smoke.run_family(family, "small")
    assert row["editor"] == {"sd2": "StableDiffusionEditor", "sdxl": "StableDiffusionXLEditor",
                             "amused": "MaskGITEditor"}[family]
    assert row["out_size"] == (96, 64) and row["dino_grid"] == (16, 16)
    assert row["peak_gb"] > 0 and row["edit_s"] > 0


def test_photo_is_non_square_and_deterministic():
    a, b = smoke.photo(), smoke.photo()
    assert a.size == (768, 512) and list(a.getdata())[:50] == list(b.getdata())[:50]
