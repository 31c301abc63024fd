"""The M box proposals per anchor, by family (`LRConfig.proposals`):

| family | boxes around anchor a | where |
|---|---|---|
| "squares" (paper) | M squares of sides `box_sides()` centred on a | `lrlib.regions.make_proposals` |
| "ladder" (lrlib's default) | the box of a's DINO blob scaled by `ladder_lo`..`ladder_hi`: from a tight part of the object to the object with context | `lrlib.additions.proposals_ladder` |
| "fitted" | the box of a's DINO blob, scaled by `fit_min`..`fit_max`: every box holds the object | `lrlib.additions.fitted` |

Every box lies inside the picture (the image, or the letterboxed canvas's `content`).
"""
from __future__ import annotations

import torch

from lrlib.additions.fitted import fitted_proposals
from lrlib.additions.proposals_ladder import ladder_proposals
from lrlib.errors import LRError
from lrlib.regions import make_proposals


def propose(anchors_xy: torch.Tensor, feats: torch.Tensor, cfg, H: int, W: int,
            content=None, image: torch.Tensor | None = None,
            blob_boxes: torch.Tensor | None = None) -> torch.Tensor:
    """(K, 2) anchors and (1, d, h, w) DINO features -> the (K, M, 4) proposals cfg.proposals asks
    for; image (1, 3, H, W): the canvas, for cfg.fit_snap; blob_boxes (K, 4): the anchors' blob
    boxes when already fitted (caption anchors), used instead of fitting them again."""
    if cfg.proposals == "squares":
        return make_proposals(anchors_xy, cfg.box_sides(), H, W, content)
    if cfg.proposals == "fitted":
        return fitted_proposals(anchors_xy, feats, cfg, H, W, content, image, blob_boxes)
    if cfg.proposals == "ladder":
        return ladder_proposals(anchors_xy, feats, cfg, H, W, content, image, blob_boxes)
    raise LRError(f"proposals={cfg.proposals!r}; use 'squares' (paper), 'fitted' or 'ladder' "
                  "(lrlib).")
