"""Smoke test of the real path: every default architecture, random weights, `lrlib.edit` end to end.

No checkpoint can be downloaded here, but speed, memory and wiring do not depend on weight
values. `--size full` builds each real architecture from its configuration, written out below
from the checkpoints' config files, with random weights, and runs one whole edit on a
non-square photo-like picture at the real working size (tiny K, M, steps and iterations):

| family  | editor                                   | DINO               | CLIP                |
|---------|------------------------------------------|--------------------|---------------------|
| sd2     | SD 2 inpainting (UNet 866M, OpenCLIP-H)  | ViT-B/16 at 448 px | ViT-B/16 QuickGELU  |
| sd15    | SD 1.5 inpainting (UNet 860M, CLIP-L)    | ViT-B/16 at 448 px | ViT-B/16 QuickGELU  |
| sdxl    | SDXL inpainting 0.1 (UNet 2.6B, L + bigG) at 1024 px | ViT-B/16 at 448 | ViT-B/16 QuickGELU |
| amused  | aMUSEd-256 (VQ + U-ViT, CLIP-L)          | ViT-B/8 at 224 px  | ViT-B/16 QuickGELU  |

One family at a time, freed (and the freed memory handed back to the OS) before the next: an
SDXL UNet alone is ~10 GB in fp32. For each it prints the seconds to build and to edit and the
peak resident memory (RSS, sampled every 20 ms). `--size small` runs the same loop on the small
random-weight models of `lrlib.worlds.random_world`, loaded through lrlib's own loaders (seconds; the tests).

    python -m lrlib.bench smoke --size full            # ~10 CPU-min on 2 cores (see lrlib/README.md)
    python -m lrlib.bench smoke --size small --family sd2 sdxl
"""
from __future__ import annotations

import ctypes
import gc
import tempfile
import threading
import time

import numpy as np
import torch
from PIL import Image

from lrlib.config import LRConfig

FAMILIES = ("sd2", "sd15", "amused", "sdxl")
#: free RAM a family needs at full size in fp32 (weights + activations, rounded up from the
#: peaks this smoke measured); a family with less available is skipped with a message
FULL_NEEDS_GB = {"sd2": 7, "sd15": 6, "amused": 5, "sdxl": 17}

# ------------------------------------------------------------ the real configurations
_DOWN, _UP = "DownEncoderBlock2D", "UpDecoderBlock2D"
SD_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
              down_block_types=(_DOWN,) * 4, up_block_types=(_UP,) * 4, sample_size=512)
SDXL_VAE = dict(SD_VAE, sample_size=1024, scaling_factor=0.13025, force_upcast=False)  # as the
# real SDXL inpainting checkpoint's VAE config: fp16 decoding, where NaNs come from
SD2_UNET = dict(sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
                block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
                cross_attention_dim=1024, use_linear_projection=True)
SD15_UNET = dict(sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), attention_head_dim=8,
                 cross_attention_dim=768)
SDXL_UNET = dict(sample_size=128, in_channels=9, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280),
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
                 cross_attention_dim=2048, use_linear_projection=True,
                 addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816)   # 6 * 256 + 1280 (pooled bigG)
CLIP_L_TEXT = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                   num_attention_heads=12, hidden_act="quick_gelu", projection_dim=768)
OPENCLIP_H_TEXT = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                       num_attention_heads=16, hidden_act="gelu", projection_dim=512)
OPENCLIP_BIGG_TEXT = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                          num_attention_heads=20, hidden_act="gelu", projection_dim=1280)
AMUSED_VQ = dict(block_out_channels=(128, 256, 256, 512, 768), down_block_types=(_DOWN,) * 5,
                 up_block_types=(_UP,) * 5, layers_per_block=2, latent_channels=64,
                 num_vq_embeddings=8192, norm_num_groups=32, sample_size=32,
                 lookup_from_codebook=True, force_upcast=True, mid_block_add_attention=False)
AMUSED_UVIT = dict(hidden_size=1024, use_bias=False, cond_embed_dim=768,
                   micro_cond_encode_dim=256, micro_cond_embed_dim=1280, encoder_hidden_size=768,
                   vocab_size=8256, codebook_size=8192, in_channels=768, block_out_channels=768,
                   num_res_blocks=3, block_num_heads=12, num_hidden_layers=22,
                   num_attention_heads=16, intermediate_size=2816, sample_size=16)
SD_BETAS = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)


def photo(width: int = 768, height: int = 512, seed: int = 0) -> Image.Image:
    """A 3:2 picture with a photo's statistics: sky and ground gradients, a few objects with
    soft edges, sensor noise. Deterministic."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    sky = np.stack([0.45 + 0.2 * y, 0.6 + 0.2 * y, 0.9 - 0.1 * y], -1)
    ground = np.stack([0.35 + 0.1 * x, 0.45 - 0.1 * y, 0.2 + 0.0 * x], -1)
    img = np.where((y > 0.6)[..., None], ground, sky)
    for cx, cy, r, col in [(0.3, 0.62, 0.12, (0.8, 0.2, 0.15)), (0.7, 0.55, 0.08, (0.95, 0.9, 0.3))]:
        d = np.sqrt(((x - cx) * width / height) ** 2 + (y - cy) ** 2)
        a = np.clip((r - d) / 0.01, 0, 1)[..., None]
        img = a * np.array(col) + (1 - a) * img
    img = img + rng.normal(0, 0.02, img.shape)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))


# ------------------------------------------------------------ building the models
def _tokenizer(pad: str | None = None):
    from transformers import CLIPTokenizer

    from lrlib.worlds.tokenizers import build_clip_tokenizer
    path = tempfile.mkdtemp(prefix="lrlib-tok-")
    build_clip_tokenizer(path)
    return CLIPTokenizer.from_pretrained(path, **({"pad_token": pad} if pad else {}))


def _text(cfg: dict, projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(CLIPTextConfig(**cfg))


def build_editor(family: str, sdxl_resolution: int = 1024):
    """The family's editor, built from the real configuration, random weights, fp32, CPU
    (SDXL at `sdxl_resolution`: its native 1024, or 512 where CPU time is short, as in CI)."""
    from diffusers import (AutoencoderKL, EulerDiscreteScheduler, PNDMScheduler,
                           StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline,
                           UNet2DConditionModel, UVit2DModel, VQModel)

    from lrlib.editors.maskgit import MaskGITEditor
    from lrlib.editors.sd import StableDiffusionEditor
    from lrlib.editors.sdxl import StableDiffusionXLEditor

    torch.manual_seed(0)
    if family in ("sd2", "sd15"):
        sd2 = family == "sd2"
        pipe = StableDiffusionInpaintPipeline(
            vae=AutoencoderKL(**SD_VAE), unet=UNet2DConditionModel(**(SD2_UNET if sd2 else SD15_UNET)),
            text_encoder=_text(OPENCLIP_H_TEXT if sd2 else CLIP_L_TEXT),
            tokenizer=_tokenizer("!" if sd2 else None),                # SD 2 pads with "!"
            scheduler=PNDMScheduler(skip_prk_steps=True, **SD_BETAS), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)
        return StableDiffusionEditor(pipe)
    if family == "sdxl":
        pipe = StableDiffusionXLInpaintPipeline(
            vae=AutoencoderKL(**SDXL_VAE), unet=UNet2DConditionModel(**SDXL_UNET),
            text_encoder=_text(CLIP_L_TEXT), text_encoder_2=_text(OPENCLIP_BIGG_TEXT, True),
            tokenizer=_tokenizer(), tokenizer_2=_tokenizer("!"),
            scheduler=EulerDiscreteScheduler(timestep_spacing="leading", **SD_BETAS),
            requires_aesthetics_score=False, force_zeros_for_empty_prompt=True)
        return StableDiffusionXLEditor(pipe, resolution=sdxl_resolution)
    return MaskGITEditor(VQModel(**AMUSED_VQ), UVit2DModel(**AMUSED_UVIT),
                         _text(CLIP_L_TEXT, True), _tokenizer(), device="cpu",
                         dtype=torch.float32, name="amused/amused-256")


def build_full(family: str, sdxl_resolution: int = 1024):
    """(Models, LRConfig) at full size: the family's editor, DINO (B/16 at 448 px; B/8 at 224
    for aMUSEd: the official DINO), CLIP ViT-B/16 built as for the `openai` weights."""
    import open_clip
    import timm

    from lrlib.anchors import Dino
    from lrlib.clip import Clip
    from lrlib.models import Models, clip_model
    from lrlib.worlds.random_world import CLIP_MEAN, CLIP_STD

    patch, size = (8, 224) if family == "amused" else (16, 448)
    dino = Dino(timm.create_model(f"vit_base_patch{patch}_224", pretrained=False, num_classes=0),
                size)
    clip = Clip(clip_model("ViT-B-16", "openai", weights=False), open_clip.get_tokenizer("ViT-B-16"),
                CLIP_MEAN, CLIP_STD)
    editor = build_editor(family, sdxl_resolution)
    cfg = LRConfig(editor="maskgit" if family == "amused" else "sd", dino_size=size)
    return Models(dino=dino, clip=clip, editor=editor, device=torch.device("cpu"),
                  world="random-full"), cfg


def build_small(family: str):
    """(Models, LRConfig) from lrlib.worlds.random_world's small models, through lrlib's loaders."""
    from lrlib.models import Models, load_clip, load_dino, load_editor
    from lrlib.worlds.random_world import (make_tiny_clip, make_tiny_dino, make_tiny_maskgit, make_tiny_sd, make_tiny_sdxl)

    root = tempfile.mkdtemp(prefix="lrlib-smoke-")
    make = {"sd2": make_tiny_sd, "sd15": make_tiny_sd, "sdxl": make_tiny_sdxl,
            "amused": make_tiny_maskgit}[family]
    cfg = LRConfig(editor="maskgit" if family == "amused" else "sd", size=64, dino_size=128)
    models = Models(dino=load_dino(make_tiny_dino(f"{root}/dino"), "cpu", cfg.dino_size),
                    clip=load_clip(make_tiny_clip(f"{root}/clip"), None, "cpu"),
                    editor=load_editor(cfg, "cpu", make(f"{root}/{family}")),
                    device=torch.device("cpu"), world="random-small")
    return models, cfg


# ------------------------------------------------------------ measuring
class PeakRSS:
    """Peak resident memory of this process during a block (sampled every 20 ms), in GiB."""

    def __enter__(self):
        import psutil
        self._proc, self._stop, self.peak = psutil.Process(), False, 0

        def sample():
            while not self._stop:
                self.peak = max(self.peak, self._proc.memory_info().rss)
                time.sleep(0.02)
        self._t = threading.Thread(target=sample, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._t.join()
        self.peak_gb = max(self.peak, self._proc.memory_info().rss) / 2**30


def release_memory() -> float:
    """Collect garbage and hand freed heap pages back to the OS; returns the RSS after, GiB."""
    import psutil
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:   # not glibc: the memory is reused by the next family anyway
        pass
    return psutil.Process().memory_info().rss / 2**30


def run_family(family: str, size: str = "full", seed: int = 0, sdxl_resolution: int = 1024) -> dict:
    """Build one family, run one `lrlib.edit` on `photo()`, free it; returns the figures."""
    import lrlib

    image = photo() if size == "full" else photo(96, 64)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        models, cfg = (build_full(family, sdxl_resolution) if size == "full" else build_small(family))
        cfg = cfg.replace(device="cpu", progress=False, seed=seed, K=1, M=2, epochs=1,
                          iters_per_epoch=2, n_aug=1, steps=2, maskgit_steps=2,
                          editor_batch_size=2, draft_steps=1)   # the default path, drafted
        ed = models.editor                 # edit passes cfg's steps and guidance per call
        t1 = time.perf_counter()
        result = lrlib.edit(image, "a bowl of ramen", caption="a red ball", config=cfg,
                            models=models)
        t2 = time.perf_counter()
        row = dict(family=family, editor=type(ed).__name__, resolution=ed.resolution,
                   dino_grid=models.dino.grid, out_size=result.image.size,
                   build_s=t1 - t0, edit_s=t2 - t1)
        del models, ed, result
    row["peak_gb"] = mem.peak_gb
    row["after_free_gb"] = release_memory()
    return row


def run_smoke(size: str = "full", families=FAMILIES, sdxl_resolution: int = 1024) -> str:
    """Run each family in turn, print a row as each finishes, return the table."""
    torch.manual_seed(0)
    head = (f"smoke: size={size}, random weights, CPU ({torch.get_num_threads()} threads), "
            f"K=1 M=2 steps=2 (drafts 1) iterations=2, photo {photo().size if size == 'full' else (96, 64)}")
    lines = [head, f"{'family':8s}{'editor':26s}{'res':>6s}{'DINO grid':>11s}{'build s':>9s}"
             f"{'edit s':>9s}{'peak RSS GB':>13s}{'after free GB':>15s}"]
    print(lines[0], flush=True)
    print(lines[1], flush=True)
    import psutil
    t0 = time.perf_counter()
    for fam in families:
        free = psutil.virtual_memory().available / 2**30
        if size == "full" and free < FULL_NEEDS_GB[fam]:
            lines.append(f"{fam:8s}skipped: needs ~{FULL_NEEDS_GB[fam]} GB free RAM, "
                         f"{free:.1f} GB available")
            print(lines[-1], flush=True)
            continue
        r = run_family(fam, size, sdxl_resolution=sdxl_resolution)
        assert r["out_size"] == (photo().size if size == "full" else (96, 64))
        lines.append(f"{fam:8s}{r['editor']:26s}{r['resolution']:6d}"
                     f"{'%dx%d' % r['dino_grid']:>11s}{r['build_s']:9.1f}{r['edit_s']:9.1f}"
                     f"{r['peak_gb']:13.2f}{r['after_free_gb']:15.2f}")
        print(lines[-1], flush=True)
    lines.append(f"total {time.perf_counter() - t0:.0f} s")
    print(lines[-1], flush=True)
    return "\n".join(lines)
