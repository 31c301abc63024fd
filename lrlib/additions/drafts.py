"""Cheap candidates for choosing, one good image for showing (`LRConfig.draft_steps`).

Training the RGN and ranking the K results need only rough candidates; the user sees one image.
With draft_steps = d > 0 the K * M candidates are sampled with DPM-Solver++ at d steps, the box
and the anchor are chosen on them as usual, and only the winner is generated again with the
configured sampler at the full `steps`, from the same initial noise as its draft:

    UNet image-evaluations per edit (guidance doubles each):
        full:   2 * K * M * n(steps)          draft:  2 * (K * M * d + n(steps))

with n(steps) the scheduler's UNet calls (PNDM: steps + 1). At K = 9, M = 7, d = 4 and PNDM at
50 steps: 606 instead of 6,426 (the official loop: 2 * 51 * 11 * 9 = 10,098). What this costs in
quality is measured on the toy benchmark (`python -m lrlib.bench draft`, lrlib/bench/README.md, "Speed").
"""
from __future__ import annotations

import torch

from lrlib.editors.base import EditorSettings
from lrlib.editors.candidates import candidate_generator
from lrlib.train import composites


def draft_settings(cfg) -> EditorSettings:
    """The sampler of cheap candidates: DPM-Solver++ at cfg.draft_steps when > 0, else cfg's own
    (`EditorSettings.from_config`). Raises an LRError for drafts with the MaskGIT editor (it has
    no fast sampler)."""
    return EditorSettings.from_config(cfg, draft_steps=cfg.draft_steps)


def regenerate(editor, x: torch.Tensor, mask: torch.Tensor, prompt: str, seed: int, index: int,
               batch_size: int, settings: EditorSettings | None = None) -> torch.Tensor:
    """Candidate `index` of generate_candidates(editor, x, ..., seed, batch_size) again with
    `settings` (e.g. the full-quality sampler after drafts; None: the editor's defaults), from
    the same noise -> the composite (3, S, S). A result with NaN / Inf in the box is made once
    more with the autoencoder in float32 (as generate_candidates does); the caller checks the
    second one (lrlib.pipeline.edit keeps the draft when it is not finite either)."""
    m = mask[None]
    out = composites(editor.inpaint(x, m, [prompt], candidate_generator(seed, index, batch_size),
                                    settings=settings), m, x)
    if not bool(torch.isfinite(out).all()):
        upcast = (settings or EditorSettings()).replace(upcast_vae=True)
        out = composites(editor.inpaint(x, m, [prompt],
                                        candidate_generator(seed, index, batch_size),
                                        settings=upcast), m, x)
    return out[0]
