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
chosen automatically (`lrlib.editors.sd.load_sd_editor`) when a checkpoint's `model_index.json`
names an SDXL pipeline; `LRConfig.editor` stays "sd".
"""
from __future__ import annotations

import torch

from lrlib.editors.sd import StableDiffusionEditor
from lrlib.text import hf_chunk_ids

DEFAULT_SDXL = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"


class StableDiffusionXLEditor(StableDiffusionEditor):
    pipeline_class = "StableDiffusionXLInpaintPipeline"

    @torch.no_grad()
    def _encode_one(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One prompt -> hidden (n * 77, D_1 + D_2) and pooled (P,), n = its number of chunks."""
        pipe = self.pipe
        pairs = [(t, e) for t, e in ((pipe.tokenizer, pipe.text_encoder),
                                     (pipe.tokenizer_2, pipe.text_encoder_2)) if e is not None]
        hidden = []
        for tok, enc in pairs:
            ids, lengths = hf_chunk_ids(tok, prompt)                      # (n, 77), (n,)
            out = enc(ids.to(enc.device), output_hidden_states=True)
            hidden.append(out.hidden_states[-2])                          # (n, 77, D_e)
        h = torch.cat(hidden, -1)
        w = (lengths / lengths.sum()).to(h.device)[:, None]
        pooled = (w * out.text_embeds.float()).sum(0).to(h.dtype)         # the last encoder's
        return h.reshape(-1, h.shape[-1]), pooled

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]):
        """(cond (B, 77 n, D), pooled (B, P), uncond (B, 77 n, D), uncond pooled (B, P));
        shorter prompts padded with the empty prompt's chunk, as for SD."""
        enc = {p: self._encode_one(p) for p in dict.fromkeys(prompts)}
        e_h, e_p = self._encode_one("")                                   # (77, D), (P,)
        n = max(h.shape[0] for h, _ in enc.values())
        cond = torch.stack([torch.cat([enc[p][0]] + [e_h] * ((n - enc[p][0].shape[0]) // len(e_h)))
                            for p in prompts])
        pooled = torch.stack([enc[p][1] for p in prompts])
        if self.pipe.config.get("force_zeros_for_empty_prompt", True):
            return cond, pooled, torch.zeros_like(cond), torch.zeros_like(pooled)
        uncond = e_h.repeat(n // len(e_h), 1)[None].expand(len(prompts), -1, -1)
        return cond, pooled, uncond, e_p[None].expand(len(prompts), -1)

    def conditioning(self, prompts: list[str]) -> dict:
        cond, pooled, uncond, u_pooled = self.encode_prompts(prompts)
        return dict(prompt_embeds=cond, pooled_prompt_embeds=pooled,
                    negative_prompt_embeds=uncond, negative_pooled_prompt_embeds=u_pooled)
