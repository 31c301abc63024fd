"""Small random-weight models of the real classes, saved in the real folder layouts.

They exist so that every code path that loads and runs a hub checkpoint (timm ViT, open_clip CLIP,
diffusers SD inpainting, aMUSEd parts) can run here, offline, in seconds: the tests build them
into temporary folders and load them back through `lrlib.models`, and `LRConfig.cpu()` uses them
(world="random") until trained toy models replace them. Their outputs mean nothing: random
weights exercise wiring, not behaviour.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def make_tiny_dino(save_dir, size: int = 64, seed: int = 0) -> str:
    """timm ViT (patch 8, width 64, depth 2) saved with timm.models.save_for_hf."""
    import timm

    torch.manual_seed(seed)
    args = dict(img_size=size, patch_size=8, embed_dim=64, depth=2, num_heads=4, num_classes=0)
    vit = timm.create_model("vit_small_patch8_224", pretrained=False, **args)
    timm.models.save_for_hf(vit, save_dir, model_args=args, safe_serialization=True)
    return str(save_dir)


def make_tiny_clip(save_dir, size: int = 64, seed: int = 0) -> str:
    """open_clip CLIP (ViT patch 16 width 64, text width 32) + open_clip_config.json."""
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    cfg = dict(embed_dim=32,
               vision_cfg=dict(image_size=size, layers=2, width=64, head_width=16, patch_size=16),
               text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2))
    model = open_clip.CLIP(**cfg)
    os.makedirs(save_dir, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(save_dir, "open_clip_model.safetensors"))
    with open(os.path.join(save_dir, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": cfg, "preprocess_cfg": {"mean": CLIP_MEAN, "std": CLIP_STD}}, f,
                  indent=2)
    return str(save_dir)


def _tiny_vae(size: int):
    """The 4x-downsampling AutoencoderKL both tiny SD pipelines share (4 latent channels)."""
    from diffusers import AutoencoderKL
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=["DownEncoderBlock2D"] * 3,
                         up_block_types=["UpDecoderBlock2D"] * 3, block_out_channels=[16, 16, 32],
                         layers_per_block=1, norm_num_groups=8, sample_size=size)


def make_tiny_sd(save_dir, size: int = 64, seed: int = 0) -> str:
    """StableDiffusionInpaintPipeline folder: UNet (9 in-channels), 4x VAE, CLIP text, DDIM."""
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from lrlib.worlds.tokenizers import build_clip_tokenizer

    torch.manual_seed(seed)
    vae = _tiny_vae(size)
    unet = UNet2DConditionModel(sample_size=size // 4, in_channels=9, out_channels=4,
                                block_out_channels=(32, 64), layers_per_block=1,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=32, attention_head_dim=8, norm_num_groups=16)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=2,
                                        max_position_embeddings=77, bos_token_id=49406,
                                        eos_token_id=49407, pad_token_id=49407))
    tok = build_clip_tokenizer(os.path.join(save_dir, "_tok"))
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                          scheduler=DDIMScheduler(steps_offset=1), safety_checker=None,
                                          feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(save_dir)
    return str(save_dir)


def make_tiny_sdxl(save_dir, size: int = 64, seed: int = 0) -> str:
    """StableDiffusionXLInpaintPipeline folder: UNet (9 in-channels, "text_time" added embedding),
    4x VAE, two CLIP text encoders (the second with projection; its tokenizer pads with "!" as
    SDXL's does), Euler; force_zeros_for_empty_prompt as the SDXL checkpoints."""
    from diffusers import (EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from lrlib.worlds.tokenizers import build_clip_tokenizer

    torch.manual_seed(seed)
    time_dim, width = 8, 32
    vae = _tiny_vae(size)
    unet = UNet2DConditionModel(sample_size=size // 4, in_channels=9, out_channels=4,
                                block_out_channels=(32, 64), layers_per_block=1,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=2 * width, attention_head_dim=(2, 4),
                                use_linear_projection=True, norm_num_groups=16,
                                addition_embed_type="text_time", addition_time_embed_dim=time_dim,
                                # 6 size numbers (original, crop, target), each sin/cos embedded,
                                # + the pooled text embedding
                                projection_class_embeddings_input_dim=6 * time_dim + width)
    text_cfg = dict(vocab_size=49408, hidden_size=width, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2, max_position_embeddings=77, bos_token_id=49406,
                    eos_token_id=49407, pad_token_id=49407)
    text = CLIPTextModel(CLIPTextConfig(**text_cfg))
    text_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text_cfg, projection_dim=width))
    tok = build_clip_tokenizer(os.path.join(save_dir, "_tok"))
    tok_2 = CLIPTokenizer.from_pretrained(os.path.join(save_dir, "_tok"), pad_token="!")
    pipe = StableDiffusionXLInpaintPipeline(
        vae=vae, text_encoder=text, text_encoder_2=text_2, tokenizer=tok, tokenizer_2=tok_2,
        unet=unet, scheduler=EulerDiscreteScheduler(steps_offset=1, timestep_spacing="leading"),
        requires_aesthetics_score=False, force_zeros_for_empty_prompt=True)
    pipe.save_pretrained(save_dir)
    shutil.rmtree(os.path.join(save_dir, "_tok"))
    return str(save_dir)


CODEBOOK_SIZE = 64
TEXT_WIDTH = 32


def make_tiny_maskgit(save_dir, size: int = 64, seed: int = 0) -> str:
    """aMUSEd layout (vqvae/ transformer/ text_encoder/ tokenizer/): a 3-level VQ (4 px per token,
    64 codes), a 1-layer U-ViT of width 32, a 2-layer CLIP text encoder (real BPE vocabulary)."""
    resolution = size
    save_dir = str(save_dir)
    from diffusers import UVit2DModel, VQModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from lrlib.worlds.tokenizers import build_clip_tokenizer

    torch.manual_seed(seed)
    levels = 3  # pixels per token = 2 ** (levels - 1) = 4
    vqvae = VQModel(
        in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
        block_out_channels=[8] * levels, layers_per_block=1, norm_num_groups=4, latent_channels=4,
        num_vq_embeddings=CODEBOOK_SIZE, sample_size=resolution, mid_block_add_attention=False,
        lookup_from_codebook=True,  # as aMUSEd: decode() takes token indices
    )
    grid = 2 ** (levels - 1)
    micro_cond_encode_dim = 4
    transformer = UVit2DModel(
        hidden_size=32, use_bias=False, cond_embed_dim=TEXT_WIDTH,
        micro_cond_encode_dim=micro_cond_encode_dim,
        micro_cond_embed_dim=5 * micro_cond_encode_dim,  # 5 micro-conditions, each sin/cos encoded
        encoder_hidden_size=TEXT_WIDTH,
        vocab_size=CODEBOOK_SIZE + 1, codebook_size=CODEBOOK_SIZE,  # + 1: the mask token (last id)
        in_channels=16, block_out_channels=16, num_res_blocks=1, downsample=False, upsample=False,
        block_num_heads=2, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        sample_size=resolution // grid,  # tokens per side, as aMUSEd (16 for amused-256)
    )
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=49408, hidden_size=TEXT_WIDTH, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=77, projection_dim=TEXT_WIDTH,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    ))
    vqvae.save_pretrained(os.path.join(save_dir, "vqvae"))
    transformer.save_pretrained(os.path.join(save_dir, "transformer"))
    text_encoder.save_pretrained(os.path.join(save_dir, "text_encoder"))
    build_clip_tokenizer(os.path.join(save_dir, "tokenizer"))
    return save_dir


BUILDERS = {"dino": make_tiny_dino, "clip": make_tiny_clip, "sd": make_tiny_sd,
            "maskgit": make_tiny_maskgit}
VERSION = "v1"


def random_world(kinds=("dino", "clip", "sd", "maskgit"), root: str | None = None) -> dict[str, str]:
    """Folders of the four small random-weight models, built once (atomically) and reused.

    Default root: $LRLIB_CACHE or ~/.cache/lrlib; returns {"dino": path, "clip": ..., "sd": ...,
    "maskgit": ...}.
    """
    root = Path(root or os.environ.get("LRLIB_CACHE", Path.home() / ".cache" / "lrlib")) / f"random-{VERSION}"
    paths = {}
    for kind in kinds:
        build, p = BUILDERS[kind], root / kind
        if not p.exists():
            # build aside, then one rename: another process building the same folder at the
            # same time either wins (our rename fails, we discard ours) or loses; never a mix
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{kind}.partial-", dir=root))
            try:
                with torch.random.fork_rng():
                    build(tmp)
                os.rename(tmp, p)
            except OSError:
                if not p.exists():
                    raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        paths[kind] = str(p)
    return paths
