"""CLIP, wrapped for guidance: differentiable image embeddings and long-prompt text embeddings.

    E_I(x) = normalize(CLIP_image(normalise_clip(resize(x))))     x in [0, 1], gradient flows to x
    E_T(t) = normalize(sum_c n_c * CLIP_text(chunk_c(t)))          any prompt length (lrlib.text)

`tokens(x)` returns the visual tokens entering the last transformer block (CLS included): the
official code's structure features.

Image forwards run in chunks of `Clip.chunk` images (memory bounded: the loss table of 63
candidates x 17 views is 1,071 images at once otherwise), under fp16 autocast on CUDA; the
results are the same as one big batch (a test checks it), and gradients flow through the chunks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lrlib.text import MAX_PROMPT_TOKENS, check_prompt, open_clip_chunk_ids, weighted_mean_normalized


def chunked(fn, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """fn over x in pieces of `chunk` along the batch axis, concatenated (same result, bounded
    memory; differentiable)."""
    if x.shape[0] <= chunk:
        return fn(x)
    return torch.cat([fn(x[i:i + chunk]) for i in range(0, x.shape[0], chunk)])


def autocast(x: torch.Tensor):
    """fp16 autocast for forwards on CUDA tensors; a no-op elsewhere."""
    return torch.autocast("cuda", dtype=torch.float16, enabled=x.is_cuda)


class Clip(torch.nn.Module):
    chunk = 64                      # images per visual forward (memory bound)

    def __init__(self, model, tokenizer, mean, std):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        size = model.visual.image_size
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        self.context = getattr(model, "context_length", 77) or 77

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp())

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False,
                              antialias=True)
        return (x - self.mean.to(x)) / self.std.to(x)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, E) unit vectors, differentiable in x."""
        dtype = next(self.model.parameters()).dtype

        def one(z):
            with autocast(z):
                return F.normalize(self.model.encode_image(self._prep(z).to(dtype)).float(), dim=-1)
        return chunked(one, x, self.chunk)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """List of B prompts of any length -> (B, E) unit vectors (chunks of 75 BPE tokens averaged)."""
        dev = self.mean.device
        out = []
        for t in texts:
            rows, lengths = open_clip_chunk_ids(self.tokenizer, check_prompt(t), self.context)
            with torch.no_grad():
                e = self.model.encode_text(rows.to(dev))
            out.append(weighted_mean_normalized(e, lengths))
        return torch.stack(out)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, D): visual tokens entering the last block (CLS first)."""
        blocks = self.model.visual.transformer.resblocks
        dtype = next(self.model.parameters()).dtype

        def one(z):
            seen = {}
            hook = blocks[-1].register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0]))
            try:
                with autocast(z):
                    self.model.encode_image(self._prep(z).to(dtype))
            finally:
                hook.remove()
            t = seen["x"]
            if t.shape[0] != z.shape[0]:        # (N, B, D) layout of older open_clip
                t = t.transpose(0, 1)
            return t.float()
        return chunked(one, x, self.chunk)


__all__ = ["Clip", "MAX_PROMPT_TOKENS", "autocast", "chunked"]
