"""Cheap candidates for choosing, one good image for showing (`LRConfig.draft_steps`).

Training the RGN and ranking the K results need only rough candidates; the user sees one image.
With draft_steps = d > 0 the K * M candidates are sampled with DPM-Solver++ at d steps, the box
and the anchor are chosen on them as usual, and only the winner is generated again with the
configured sampler at the full `steps`, from the same initial noise as its draft:

    UNet image-evaluations per edit (guidance doubles each):
        full:   2 * K * M * n(steps)          draft:  2 * (K * M * d + n(steps))

with n(steps) the scheduler's UNet calls (PNDM: steps + 1). At K = 9, M = 7, d = 4 and PNDM at
50 steps: 606 instead of 6,426 (the official loop: 2 * 51 * 11 * 9 = 10,098). What this costs in
quality is measured on the toy benchmark (`python -m lrlib.bench draft`, README "Speed").
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from lrlib.errors import LRError
from lrlib.train import composites


@contextmanager
def drafting(editor, draft_steps: int):
    """Inside: the editor samples with DPM-Solver++ at `draft_steps` (0: unchanged)."""
    if not draft_steps:
        yield
        return
    if not hasattr(editor, "set_scheduler"):
        raise LRError(f"draft_steps={draft_steps} needs a diffusion editor (editor='sd'); the "
                      "MaskGIT editor has no fast sampler: set draft_steps=0 (use maskgit_steps).")
    scheduler, steps = editor.pipe.scheduler, editor.steps
    editor.set_scheduler("dpm++")
    editor.steps = draft_steps
    try:
        yield
    finally:
        editor.pipe.scheduler, editor.steps = scheduler, steps


def batch_generator(seed: int, b: int) -> torch.Generator:
    """The generator of candidate batch b (lrlib.pipeline.generate_candidates)."""
    return torch.Generator().manual_seed(seed * 100_003 + b)


def regenerate(editor, x: torch.Tensor, mask: torch.Tensor, prompt: str, seed: int, index: int,
               batch_size: int) -> torch.Tensor:
    """Candidate `index` of generate_candidates(editor, x, ..., seed, batch_size) again, with the
    editor's current sampler, from the same noise -> the composite (3, S, S).

    The SD editor draws one seed per image from its batch's generator, in order, so the winner's
    batch generator advanced by its position in the batch gives the winner's seed back.
    """
    b, i = divmod(index, batch_size)
    gen = batch_generator(seed, b)
    for _ in range(i):
        torch.randint(0, 2**62, (1,), generator=gen)
    m = mask[None]
    return composites(editor.inpaint(x, m, [prompt], gen), m, x)[0]
