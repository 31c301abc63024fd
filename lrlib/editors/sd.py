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

import copy
import json
import os
import warnings

from pathlib import Path

import torch
import torch.nn.functional as F

from lrlib.editors.base import (EDITOR_DEFAULTS_FILE, Editor, EditorSettings, check_inpaint_args,
                                crop_resize, crop_windows, dtype_kwarg, paste_crops)
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
    schedulers = ("default",) + tuple(SCHEDULERS)
    #: decode in float32 when the VAE's config says `force_upcast` (SDXL's pipeline does; SD 1.x /
    #: 2.x pipelines decode in the VAE's own dtype whatever the config says)
    honours_force_upcast = False

    def __init__(self, pipe, steps: int = 50, guidance_scale: float = 7.5,
                 prompt_template: str | None = None, resolution: int | None = None,
                 crop_margin: float | None = None, scheduler: str = "default"):
        self.pipe = pipe
        self.crop_margin = crop_margin  # None: whole image (see the module docstring)
        self.pipe.set_progress_bar_config(disable=True)
        self.defaults = self.check_settings(EditorSettings(
            steps=steps, guidance_scale=guidance_scale, scheduler=scheduler,
            prompt_template=prompt_template or ""))
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
                name_or_path, **dtype_kwarg(dtype), **extra)
        except Exception as e:
            raise checkpoint_error("Stable Diffusion inpainting", str(name_or_path), e,
                                   option="sd_model") from e
        if pipe.unet.config.in_channels != 9:
            raise LRError(f"'{name_or_path}' is not an inpainting checkpoint (its UNet takes "
                          f"{pipe.unet.config.in_channels} channels, inpainting ones take 9: "
                          "latents, mask, masked image); use e.g. " + DEFAULT_SD + ".")
        return cls(pipe.to(device), **kwargs)

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in self.pipe.components.values() if isinstance(m, torch.nn.Module)]

    def pipeline(self, scheduler: str = "default"):
        """The diffusers pipeline that samples with `scheduler`: "default" the checkpoint's own
        (`self.pipe` itself); "dpm++" DPM-Solver++ 2M (fewer steps); "pndm" PNDM (SD 2's own, the
        official code's: steps + 1 UNet calls); "lcm" LCMScheduler, for an LCM-LoRA
        (`load_lora`, 4 steps). Another scheduler gets a new pipeline object of the same class
        around the same components (no weight is copied) and a fresh scheduler built from the
        checkpoint's scheduler config: `self.pipe` is never changed, so no call leaves a sampler
        behind for the next, even one that fails."""
        if scheduler == "default":
            return self.pipe
        import inspect

        import diffusers

        cls_name, options = SCHEDULERS[scheduler]
        sched = getattr(diffusers, cls_name).from_config(self.pipe.scheduler.config, **options)
        cls = type(self.pipe)
        params = inspect.signature(cls.__init__).parameters
        # the pipeline's own options (requires_safety_checker, SDXL's force_zeros_for_empty_prompt,
        # requires_aesthetics_score...) as the loaded pipeline registered them in its config
        options = {k: self.pipe.config[k] for k in params
                   if k not in self.pipe.components and k in self.pipe.config}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe = cls(**{**self.pipe.components, "scheduler": sched}, **options)
        pipe.set_progress_bar_config(disable=True)
        return pipe

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
    def inpaint(self, images, masks, prompts, generator,
                settings: EditorSettings | None = None) -> torch.Tensor:
        """Inpaint each image in its mask (the module docstring) with `settings` (None fields:
        `self.defaults`): the pipeline denoises to latents, which are decoded one image at a time
        (`decode`)."""
        s = self.resolve(settings)
        check_inpaint_args(images, masks, prompts)
        self.place()                    # back on the GPU if another editor's load moved it off
        if s.prompt_template:
            prompts = [s.prompt_template.format(p) for p in prompts]
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
        pipe = self.pipeline(s.scheduler)
        # an asymmetric VAE decodes with the image and mask: leave that to the pipeline
        own_decode = type(self.pipe.vae).__name__ == "AsymmetricAutoencoderKL"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # strength=1.0: the box starts from pure noise (SDXL's default 0.9999 drops the
            # first timestep at few steps and leaves part of the source in the box)
            out = pipe(**cond, image=x.to(self.device), mask_image=m.to(self.device), height=R,
                       width=R, num_inference_steps=s.steps, guidance_scale=s.guidance_scale,
                       generator=gens, strength=1.0,
                       output_type="pt" if own_decode else "latent").images
        out = out.float() if own_decode else self.decode(out, upcast=s.upcast_vae)
        if self.crop_margin:
            out = paste_crops(images.float().to(out.device), out, windows)
        elif (H, W) != (R, R):
            out = F.interpolate(out, size=(H, W), mode="bilinear", antialias=True, align_corners=False)
        return out.clamp(0, 1).to(images.device)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, upcast: bool = False) -> torch.Tensor:
        """(B, C, h, w) denoised latents -> (B, 3, h * grid, w * grid) float32 in [0, 1], as the
        pipeline decodes them (unscaled by the VAE's scaling factor, or its latents mean and std
        when the config has them; SDXL's invisible watermark when the pipeline has one), one
        image at a time: a batch decoded at once needs several GiB at 1024 px.

        upcast: decode with a float32 copy of the VAE (made for this call, dropped after), the
        cure for an fp16 VAE that overflows to NaN / Inf (SDXL inpainting's config says
        `force_upcast: false`); the VAE the pipeline holds stays as it is."""
        vae = self.pipe.vae
        cfg = vae.config
        if vae.dtype != torch.float32 and (
                upcast or (self.honours_force_upcast and cfg.get("force_upcast", False))):
            vae = copy.deepcopy(vae).to(torch.float32)
        mean, std = cfg.get("latents_mean"), cfg.get("latents_std")
        if mean is not None and std is not None:
            mean = torch.tensor(mean).view(1, -1, 1, 1).to(latents.device, latents.dtype)
            std = torch.tensor(std).view(1, -1, 1, 1).to(latents.device, latents.dtype)
            latents = latents * std / cfg.scaling_factor + mean
        else:
            latents = latents / cfg.scaling_factor
        watermark = getattr(self.pipe, "watermark", None)
        out = []
        for z in latents.split(1):
            img = vae.decode(z.to(vae.dtype), return_dict=False)[0]
            if watermark is not None:
                img = watermark.apply_watermark(img)
            out.append((img.float() * 0.5 + 0.5).clamp(0, 1))   # [-1, 1] -> [0, 1]
        return torch.cat(out)
