r"""# Prompt conditioning for the editors: prompts of any length, one code for running and training

A CLIP text encoder reads 77 tokens; the paper edits from paragraphs. `lrlib.text` cuts a prompt's
BPE ids into chunks of 75 and wraps each as `bos c_k eos pad*` (77 ids). Cross-attention takes a
context of any length, so the editor's context is the chunks' hidden states, concatenated along
the sequence:

$$H(p) = [\,h(c_1);\ h(c_2);\ \dots;\ h(c_n)\,] \in \mathbb R^{77 n \times D}.$$

A batch is padded to its longest prompt ($n_{\max}$ chunks) with the *empty prompt's* chunk
$h(\varnothing)$, and the unconditional context of classifier-free guidance is that chunk
$n_{\max}$ times: duplicated keys with equal values leave attention's output unchanged, so padding
changes nothing a short prompt says.
For aMUSEd (the MaskGIT editor) the transformer also takes a global vector: the projected pooled
embeddings of the chunks, averaged with weights $n_k$ = real tokens in chunk $k$,

$$\bar e(p) = \sum_k \frac{n_k}{\sum_j n_j}\, e(c_k),$$

and the micro-conditions `[width, height, crop_top, crop_left, aesthetic]` = `[R, R, 0, 0, 6]`.
$h$ is the last hidden state (after the final layer norm) for Stable Diffusion, the penultimate
layer's for aMUSEd.

`PromptEncoder` does this for the editors and for the toy trainers that trained the shipped
models, so they cannot drift apart. Two ways to run the text encoder, the same result:

* `grad=False` (editors): each distinct prompt is encoded on its own, under `no_grad`, and cached,
  so a prompt's embedding does not depend on the rest of the batch;
* `grad=True` (trainers): all chunks of the batch and the empty chunk in one call, with the
  gradient flowing into the text encoder (trained jointly with the denoiser).
"""
from __future__ import annotations

from collections import OrderedDict

import torch

from lrlib.text import hf_chunk_ids

#: aMUSEd's default micro-conditioning aesthetic score and crop coordinates
AESTHETIC_SCORE = 6
CROP_COORD = (0, 0)


def micro_conds(batch: int, size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """aMUSEd's micro-conditioning `[width, height, crop_top, crop_left, aesthetic]`, (B, 5)."""
    v = torch.tensor([size, size, CROP_COORD[0], CROP_COORD[1], AESTHETIC_SCORE], device=device,
                     dtype=dtype)
    return v[None].expand(batch, -1)


class PromptEncoder:
    """A transformers `CLIPTokenizer` + CLIP text encoder -> (context (B, 77 n, D), pooled (B, P)).

    `penultimate`: the context is the penultimate layer's hidden states (aMUSEd), else the last
    hidden state (SD). `pooled`: also return $\bar e$ (needs `CLIPTextModelWithProjection`),
    else None. `grad`: see the module docstring. `cache_size`: prompts whose encodings are kept
    (grad=False only).
    """

    def __init__(self, tokenizer, text_encoder, *, penultimate: bool = False, pooled: bool = False,
                 grad: bool = False, cache_size: int = 128):
        self.tokenizer, self.text_encoder = tokenizer, text_encoder
        self.penultimate, self.pooled, self.grad = penultimate, pooled, grad
        self.cache_size = cache_size
        self._ids: dict[str, tuple] = {}              # prompt -> (ids (n, 77), lengths (n,))
        self._encoded: OrderedDict[str, tuple] = OrderedDict()

    def ids(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        if prompt not in self._ids:
            self._ids[prompt] = hf_chunk_ids(self.tokenizer, prompt)
        return self._ids[prompt]

    def _run(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, 77) chunk ids -> hidden (N, 77, D) and projected pooled (N, P) float32 (or None)."""
        enc = self.text_encoder
        out = enc(ids.to(enc.device), output_hidden_states=self.penultimate)
        hidden = out.hidden_states[-2] if self.penultimate else out[0]
        return hidden, (out.text_embeds.float() if self.pooled else None)

    def _join(self, hidden: torch.Tensor, pooled, lengths: torch.Tensor) -> tuple:
        """One prompt's n chunks -> H (77 n, D) and its weighted pooled embedding (P,)."""
        h = hidden.reshape(-1, hidden.shape[-1])
        if pooled is None:
            return h, None
        w = (lengths / lengths.sum()).to(pooled.device)[:, None]
        return h, (w * pooled).sum(0).to(hidden.dtype)

    def _one(self, prompt: str) -> tuple:
        """One prompt encoded on its own (grad=False), through the cache."""
        if prompt in self._encoded:
            self._encoded.move_to_end(prompt)
            return self._encoded[prompt]
        ids, lengths = self.ids(prompt)
        with torch.no_grad():
            result = self._join(*self._run(ids), lengths)
        self._encoded[prompt] = result
        if len(self._encoded) > self.cache_size:
            self._encoded.popitem(last=False)
        return result

    def _batch(self, prompts: list[str]) -> tuple[list, tuple]:
        """All chunks of the batch and the empty chunk in one call (grad=True)."""
        items = [self.ids(p) for p in prompts] + [self.ids("")]
        hidden, pooled = self._run(torch.cat([ids for ids, _ in items]))
        out, k = [], 0
        for ids, lengths in items:
            c = ids.shape[0]
            out.append(self._join(hidden[k:k + c], None if pooled is None else pooled[k:k + c],
                                  lengths))
            k += c
        return out[:-1], out[-1]

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Context (B, 77 n_max, D), shorter prompts padded with the empty chunk; pooled (B, P)."""
        if self.grad:
            encoded, (empty, _) = self._batch(prompts)
        else:
            encoded, (empty, _) = [self._one(p) for p in prompts], self._one("")
        seq = max(h.shape[0] for h, _ in encoded)
        context = torch.stack([torch.cat([h] + [empty] * ((seq - h.shape[0]) // empty.shape[0]))
                               for h, _ in encoded])
        pooled = torch.stack([p for _, p in encoded]) if self.pooled else None
        return context, pooled

    def unconditional(self, batch: int, seq: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The empty prompt's context, repeated to `seq` tokens, (B, seq, D); its pooled (B, P)."""
        empty, pooled = self._one("")
        context = empty.repeat(seq // empty.shape[0], 1)[None].expand(batch, -1, -1)
        return context, (pooled[None].expand(batch, -1) if self.pooled else None)
