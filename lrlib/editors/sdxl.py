"""Editor (a'): SDXL inpainting through diffusers' `StableDiffusionXLInpaintPipeline`.

The same denoising and guidance as `lrlib.editors.sd` (9-channel UNet, classifier-free guidance);
what SDXL adds is in the conditioning:

* **two text encoders.** The cross-attention context is the penultimate hidden states of both,
  concatenated along the feature axis: c = [h_1(t) ; h_2(t)]  (77 x (768 + 1280) per chunk);
* **a pooled embedding** p(t): the projected [EOS] embedding of the second encoder, added to the
  UNet's time embedding together with
* **size micro-conditioning** (original size, crop top-left, target size) = ((R, R), (0, 0),
  (R, R)) at the working resolution R (1024): the pipeline builds these from height/width.

Long prompts are handled as for SD: each 75-token chunk is encoded by both encoders and the
chunks' hidden states are concatenated along the sequence; the pooled embedding is the mean of the
chunks' pooled embeddings weighted by their numbers of real tokens (one chunk: exactly the
pipeline's own encoding). The unconditional branch is what the pipeline uses for an absent
negative prompt: zeros when the checkpoint sets `force_zeros_for_empty_prompt` (SDXL's do), else
the empty prompt's encoding.

Checkpoint: `diffusers/stable-diffusion-xl-1.0-inpainting-0.1` (1024 px, fp16 on CUDA). It is
chosen automatically (`lrlib.editors.load.load_sd_editor`) when a checkpoint's `model_index.json`
names an SDXL pipeline; `LRConfig.editor` stays "sd".

Sampling starts from pure noise in the box (`strength=1.0`, as SD's inpainting pipeline does by
default): SDXL's pipeline defaults to 0.9999, which at few steps drops the first timestep and
starts from a partly noised source (5 steps with SDXL inpainting's scheduler: timestep 601 of
1000, the source still at 0.4 of its amplitude in the box).
"""
from __future__ import annotations

import torch

from lrlib.editors.prompts import PromptEncoder
from lrlib.editors.sd import StableDiffusionEditor

DEFAULT_SDXL = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"


class StableDiffusionXLEditor(StableDiffusionEditor):
    pipeline_class = "StableDiffusionXLInpaintPipeline"
    honours_force_upcast = True      # as SDXL's pipeline: a VAE config asking for fp32 gets it

    def __init__(self, pipe, **kwargs):
        super().__init__(pipe, **kwargs)
        # both encoders' penultimate layers; the pooled embedding from the second (with projection)
        self.prompts = PromptEncoder(pipe.tokenizer, pipe.text_encoder, penultimate=True)
        self.prompts_2 = PromptEncoder(pipe.tokenizer_2, pipe.text_encoder_2, penultimate=True,
                                       pooled=True)

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]):
        """(cond (B, 77 n, D_1 + D_2), pooled (B, P), uncond (B, 77 n, D), uncond pooled (B, P));
        shorter prompts padded with the empty prompt's chunk, as for SD (both tokenizers share
        CLIP's BPE, so both give the same chunks)."""
        h1, _ = self.prompts(prompts)
        h2, pooled = self.prompts_2(prompts)
        cond = torch.cat([h1, h2], -1)
        if self.pipe.config.get("force_zeros_for_empty_prompt", True):
            return cond, pooled, torch.zeros_like(cond), torch.zeros_like(pooled)
        u1, _ = self.prompts.unconditional(len(prompts), cond.shape[1])
        u2, u_pooled = self.prompts_2.unconditional(len(prompts), cond.shape[1])
        return cond, pooled, torch.cat([u1, u2], -1), u_pooled

    def conditioning(self, prompts: list[str]) -> dict:
        cond, pooled, uncond, u_pooled = self.encode_prompts(prompts)
        return dict(prompt_embeds=cond, pooled_prompt_embeds=pooled,
                    negative_prompt_embeds=uncond, negative_pooled_prompt_embeds=u_pooled)
