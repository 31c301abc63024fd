"""Every candidate edit E_ij, once: the K * M boxes inpainted in batches, without gradient.

The RGN is trained on these cached candidates (the editor never runs inside the training loop),
so this is where nearly all of an edit's GPU time goes. Three things make it safe at the real
size: the batch follows the free GPU memory (halved and retried on OutOfMemoryError), each
candidate's noise depends only on (seed, its index, batch_size) so any split makes the same
candidates, and a candidate with NaN / Inf in its box is made again with the autoencoder in
float32, else returned all NaN for the caller to drop.
"""
from __future__ import annotations

import warnings

import torch

from lrlib.editors.base import EditorSettings
from lrlib.errors import LRError
from lrlib.progress import bar as progress_bar


def batch_generator(seed: int, b: int) -> torch.Generator:
    """The generator of candidate batch b (`generate_candidates`)."""
    return torch.Generator().manual_seed(seed * 100_003 + b)


def candidate_generator(seed: int, index: int, batch_size: int) -> torch.Generator:
    """The generator that makes candidate `index` of a run at `batch_size` again when it is the
    first image of an editor call: its batch's generator advanced by the candidate's position in
    that batch. The SD editor draws one seed per image from the generator it is given, in
    order, so a call on candidates index, index + 1, ... (within one batch) given this generator
    draws exactly their seeds; MaskGIT draws from one generator for all its images, so for it
    this gives the same noise only to a whole batch (index a multiple of batch_size)."""
    b, i = divmod(index, batch_size)
    gen = batch_generator(seed, b)
    for _ in range(i):
        torch.randint(0, 2**62, (1,), generator=gen)
    return gen


#: GPU memory one candidate takes while the editor runs, at 1024 px in fp16 (an estimate for
#: SDXL's UNet with guidance, the batch doubled; scaled by pixels and by 2 for fp32): what
#: `editor_batch` divides the free memory by. Too low an estimate is caught by the halving retry.
BYTES_PER_IMAGE_1024 = 1.5 * 2**30


def editor_batch(editor, batch_size: int) -> int:
    """How many candidates one editor call may hold: `batch_size`, or on CUDA fewer when the free
    GPU memory (torch.cuda.mem_get_info) over 80% does not hold that many at
    BYTES_PER_IMAGE_1024 scaled to the editor's resolution and dtype; at least 1."""
    dev = torch.device(getattr(editor, "device", "cpu"))
    if dev.type != "cuda" or not torch.cuda.is_available():
        return batch_size
    free, _ = torch.cuda.mem_get_info(dev)
    dtype = getattr(editor, "dtype", None) or getattr(getattr(editor, "pipe", None), "dtype", None)
    per = BYTES_PER_IMAGE_1024 * (getattr(editor, "resolution", 512) / 1024) ** 2 \
        * (2 if dtype == torch.float32 else 1)
    return max(1, min(batch_size, int(0.8 * free // per)))


def finite_inside(E: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N,) bool: candidate E (N, 3, H, W) is finite wherever its mask (N, 1, H, W) is > 0 (what
    the composite takes of it)."""
    return (torch.isfinite(E) | (masks <= 0)).flatten(1).all(1)


_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def generate_candidates(editor, x, masks, prompt, seed, batch_size, progress=True,
                        settings: EditorSettings | None = None, max_batch: int | None = None):
    """E_ij for all K*M boxes, once, without gradient, with the editor's `settings` (None: its
    defaults). Returns (K*M, 3, H, W).

    Noise: candidate i is made as in editor calls on consecutive batches of `batch_size`, batch b
    with the generator seeded from (seed, b): deterministic for a config. A call holds at most
    `max_batch` candidates (None: `editor_batch`, from the free GPU memory on CUDA); a call that
    runs out of GPU memory is halved and retried. A batch split over calls starts each call from
    `candidate_generator`, so the SD editor (one seed per image) makes the same
    candidates whatever the split; MaskGIT's noise changes when its batch is split.

    Finite or dropped: a candidate with NaN / Inf inside its mask (an fp16 autoencoder
    overflowing) is made once more, alone, from the same noise with the autoencoder in float32
    (EditorSettings.upcast_vae); if it is still not finite it is returned all NaN, with a warning,
    and the caller drops it (`prepare`: Prepared.valid).
    """
    n = masks.shape[0]
    call_size = min(batch_size, max_batch or editor_batch(editor, batch_size))
    kwargs = {} if settings is None else {"settings": settings}
    upcast = (settings or EditorSettings()).replace(upcast_vae=True)

    def run(i: int, k: int, **kw) -> torch.Tensor:      # candidates i .. i + k - 1, one call
        gen = candidate_generator(seed, i, batch_size)
        return editor.inpaint(x.expand(k, -1, -1, -1), masks[i:i + k], [prompt] * k, gen, **kw)

    out, dropped = [], 0
    bar = progress_bar(total=n, desc="candidate edits", disable=not progress)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        i = start
        while i < stop:
            k = min(call_size, stop - i)
            try:
                E = run(i, k, **kwargs)
            except _OOM as e:
                if k == 1:
                    raise LRError("the editor ran out of GPU memory on a single candidate; free "
                                  "GPU memory (other processes, other loaded models), or use a "
                                  "smaller editor (e.g. SD 2 instead of SDXL).") from e
                call_size = k // 2
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            bad = torch.nonzero(~finite_inside(E, masks[i:i + k]).cpu())[:, 0].tolist()
            E = E.clone() if bad else E
            for j in bad:
                again = run(i + j, 1, settings=upcast)
                if bool(finite_inside(again, masks[i + j:i + j + 1]).all()):
                    E[j] = again[0].to(E.dtype)
                else:
                    E[j] = float("nan")
                    dropped += 1
            out.append(E)
            bar.update(k)
            i += k
    bar.close()
    if dropped:
        warnings.warn(f"{dropped} of {n} candidate edits held NaN / Inf even with the autoencoder "
                      "in float32; they are out of the choice. If many are, run the editor in "
                      "float32 (LRConfig(dtype='float32')).", stacklevel=2)
    return torch.cat(out)
