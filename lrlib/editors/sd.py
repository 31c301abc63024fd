"""Editor (a): Stable Diffusion inpainting through diffusers' `StableDiffusionInpaintPipeline`.

The pipeline denoises latents z_T -> z_0 with a UNet that sees [z_t, mask, VAE(x * (1 - m))]
(9 input channels) and the prompt through cross-attention, with classifier-free guidance

    eps = eps(z_t, empty) + w * (eps(z_t, prompt) - eps(z_t, empty)),    w = guidance_scale.

lrlib encodes the prompt itself (`lrlib.editors.prompts`) so that prompts over 77 tokens are not
cut: each 75-token chunk is encoded by the pipeline's own CLIP text encoder and the hidden states
are concatenated along the sequence (cross-attention takes any length); the empty prompt is padded
to the same length.
Default checkpoint `sd2-community/stable-diffusion-2-inpainting`: the official code's SD 2
inpainting weights (the `stabilityai/` repository was removed from the hub in Nov 2025), fp16 on
CUDA. Any SD 1.x / 2.x inpainting checkpoint in the diffusers layout works (e.g.
`stable-diffusion-v1-5/stable-diffusion-inpainting`); an SDXL one
(`diffusers/stable-diffusion-xl-1.0-inpainting-0.1`) is recognised by the pipeline class in its
`model_index.json` (`lrlib.editors.load`) and served by `lrlib.editors.sdxl`. Images are resized to `resolution` (the
UNet's own size: 512 for SD 1.x / 2, 1024 for SDXL) and back.

**Mask crop** (optional, `crop_margin`; off by default, as for SD2): instead of the whole image,
each image is cropped to a square around its mask's bounding box, side = `crop_margin` times the
box's longer side (capped at the image, shifted to stay inside it), resized to `resolution`,
inpainted, resized back and pasted into the crop window (outside it: the source, untouched). This
is diffusers' `padding_mask_crop` idea done per image in a batch; it makes a small model see every
box at the scale it was trained at (the toy SD in `lrlib/toy/weights/sd` is trained this way).
A local checkpoint folder may carry `lrlib_editor.json` with defaults for the constructor's
options (e.g. `{"crop_margin": 1.5}`); keyword arguments override it.
"""
from __future__ import annotations

import json
import os
import warnings

from pathlib import Path

import torch
import torch.nn.functional as F

from lrlib.editors.base import (EDITOR_DEFAULTS_FILE, Editor, check_inpaint_args, crop_resize,
                                crop_windows, paste_back)
from lrlib.editors.prompts import PromptEncoder
from lrlib.errors import LRError, checkpoint_error

DEFAULT_SD = "sd2-community/stable-diffusion-2-inpainting"
#: LRConfig.scheduler -> (diffusers class, options over the checkpoint's scheduler config)
SCHEDULERS = {"dpm++": ("DPMSolverMultistepScheduler", dict(algorithm_type="dpmsolver++")),
              "pndm": ("PNDMScheduler", dict(skip_prk_steps=True)),
              "lcm": ("LCMScheduler", {})}


def pipeline_class_name(name_or_path: str) -> str:
    """The pipeline class a diffusers checkpoint names in its model_index.json (hub id or folder)."""
    from diffusers import DiffusionPipeline
    return DiffusionPipeline.load_config(name_or_path)["_class_name"]


def image_generators(generator: torch.Generator, n: int) -> list[torch.Generator]:
    """One CPU generator per image, seeded from `generator`: an image's noise does not depend on
    the batch it is generated in."""
    seeds = [int(torch.randint(0, 2**62, (1,), generator=generator)) for _ in range(n)]
    return [torch.Generator().manual_seed(s) for s in seeds]


class StableDiffusionEditor(Editor):
    kind = "sd"
    pipeline_class = "StableDiffusionInpaintPipeline"   # the diffusers class that runs it

    def __init__(self, pipe, steps: int = 50, guidance_scale: float = 7.5,
                 prompt_template: str | None = None, resolution: int | None = None,
                 crop_margin: float | None = None):
        self.pipe = pipe
        self.crop_margin = crop_margin  # None: whole image (see the module docstring)
        self.pipe.set_progress_bar_config(disable=True)
        self.steps, self.guidance_scale, self.prompt_template = steps, guidance_scale, prompt_template
        self.grid = pipe.vae_scale_factor
        unet_size = pipe.unet.config.sample_size * pipe.vae_scale_factor
        self.resolution = resolution or unet_size
        self.device = pipe.unet.device
        self.prompts = PromptEncoder(pipe.tokenizer, pipe.text_encoder)

    @classmethod
    def from_pretrained(cls, name_or_path: str = DEFAULT_SD, device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None, **kwargs) -> "StableDiffusionEditor":
        import diffusers

        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
        defaults = os.path.join(os.path.expanduser(str(name_or_path)), EDITOR_DEFAULTS_FILE)
        if os.path.isfile(defaults):
            with open(defaults) as f:
                kwargs = {**json.load(f), **kwargs}
        extra = (dict(safety_checker=None, requires_safety_checker=False)
                 if cls.pipeline_class == "StableDiffusionInpaintPipeline" else {})
        try:   # no variant=: the community mirrors do not all carry an fp16 variant
            pipe = getattr(diffusers, cls.pipeline_class).from_pretrained(
                name_or_path, torch_dtype=dtype, **extra)
        except Exception as e:
            raise checkpoint_error("Stable Diffusion inpainting", str(name_or_path), e,
                                   option="sd_model") from e
        if pipe.unet.config.in_channels != 9:
            raise LRError(f"'{name_or_path}' is not an inpainting checkpoint (its UNet takes "
                          f"{pipe.unet.config.in_channels} channels, inpainting ones take 9: "
                          "latents, mask, masked image); use e.g. " + DEFAULT_SD + ".")
        return cls(pipe.to(device), **kwargs)

    def set_scheduler(self, name: str = "default") -> None:
        """"default": the checkpoint's scheduler; "dpm++": DPM-Solver++ 2M (fewer steps);
        "pndm": PNDM (SD 2's own, the official code's: steps + 1 UNet calls); "lcm":
        LCMScheduler, for an LCM-LoRA (`load_lora`, 4 steps)."""
        import diffusers

        if not hasattr(self, "_default_scheduler"):
            self._default_scheduler = self.pipe.scheduler
        if name == "default":
            self.pipe.scheduler = self._default_scheduler
            return
        cls, kw = SCHEDULERS[name]
        self.pipe.scheduler = getattr(diffusers, cls).from_config(self._default_scheduler.config, **kw)

    def load_lora(self, name_or_path: str) -> "StableDiffusionEditor":
        """Fuse a LoRA into the UNet (diffusers `load_lora_weights`, needs `peft`), e.g.
        `latent-consistency/lcm-lora-sdv1-5` for SD 1.5 inpainting with scheduler "lcm", 4 steps."""
        import importlib.util

        if importlib.util.find_spec("peft") is None:
            raise LRError(f"lora={name_or_path!r} needs the `peft` package (diffusers loads LoRAs "
                          "with it): `pip install peft` or `pip install lrlib[lora]`.")
        kwargs = {}
        folder = Path(str(name_or_path)).expanduser()
        files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
        if len(files) == 1:            # a local folder: name the file (diffusers < 0.31 needs it
            kwargs["weight_name"] = files[0].name          # offline, newer ones find it)
        try:
            self.pipe.load_lora_weights(str(folder) if files else name_or_path, **kwargs)
        except Exception as e:
            raise checkpoint_error("LoRA", str(name_or_path), e, option="lora") from e
        self.pipe.fuse_lora()
        self.pipe.unload_lora_weights()      # the fused weights stay; the adapters go
        return self

    def encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Chunked prompt embeddings (B, 77 * n, D) and matching empty-prompt embeddings
        (`lrlib.editors.prompts`)."""
        cond, _ = self.prompts(prompts)
        uncond, _ = self.prompts.unconditional(len(prompts), cond.shape[1])
        return cond, uncond

    def conditioning(self, prompts: list[str]) -> dict:
        """The text keyword arguments of the diffusers pipeline call for these prompts."""
        cond, uncond = self.encode_prompts(prompts)
        return dict(prompt_embeds=cond, negative_prompt_embeds=uncond)

    @torch.no_grad()
    def inpaint(self, images, masks, prompts, generator):
        check_inpaint_args(images, masks, prompts)
        if self.prompt_template:
            prompts = [self.prompt_template.format(p) for p in prompts]
        H, W = images.shape[-2:]
        R = self.resolution
        if self.crop_margin:
            windows = crop_windows(masks, self.crop_margin)
            x, m = crop_resize(images.float(), windows, R), crop_resize(masks.float(), windows, R)
        else:
            x = F.interpolate(images.float(), size=(R, R), mode="bilinear", antialias=True,
                              align_corners=False) if (H, W) != (R, R) else images.float()
            m = F.interpolate(masks.float(), size=(R, R), mode="nearest") if (H, W) != (R, R) else masks.float()
        cond = self.conditioning(prompts)
        gens = image_generators(generator, len(prompts))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.pipe(**cond, image=x.to(self.device), mask_image=m.to(self.device), height=R,
                            width=R, num_inference_steps=self.steps,
                            guidance_scale=self.guidance_scale, generator=gens,
                            output_type="pt").images
        out = out.float()
        if self.crop_margin:
            out = paste_back(images.float().to(out.device), out, windows)
        elif (H, W) != (R, R):
            out = F.interpolate(out, size=(H, W), mode="bilinear", antialias=True, align_corners=False)
        return out.clamp(0, 1).to(images.device)
