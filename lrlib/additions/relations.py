"""Spatial relations in the caption: "the red circle left of the blue square".

CLIP reads a caption much like a bag of words (Yuksekgonul et al., "When and why vision-language
models behave like bags-of-words", ICLR 2023): "the circle left of the square" and "the square
left of the circle" embed almost alike, and a crop of either of two red circles matches "the red
circle" equally well. So when the caption says *where* its object is relative to another, lrlib
does not ask CLIP to read the relation; it splits the caption into subject, relation and
reference,

    caption = <subject> <relation> <reference>      e.g. "the red circle" | "left of" | "the blue square"

finds the reference among the candidate regions with CLIP, and checks the relation on the
regions' centres. With c_a the centre of region a, b* the region that best matches the reference,
d = c_a - c_b* and u_rel the relation's direction (left of: (-1, 0); above: (0, -1); image y down):

    rel(a)  = (d . u_rel) / (|d|_1 + 1)          in (-1, 1): +1 fully on that side, -1 opposite
    g(a)    = cos(view(a), E_T(subject)) + rho * rel(a)          (rho = LRConfig.relation_weight)

g is the region's *grounding* score: the caption-aware anchors keep the K regions of highest g,
and the ranking's S_cap term prefers the result whose anchor has the highest g. A caption with no
relation word is its own subject (rel = 0). Only English spatial words are read (RELATIONS).
"""
from __future__ import annotations

import re

import torch

# phrase -> direction (x, y) in image axes (x right, y down); longer phrases first
RELATIONS = {
    "to the left of": (-1, 0), "on the left of": (-1, 0), "left of": (-1, 0),
    "to the right of": (1, 0), "on the right of": (1, 0), "right of": (1, 0),
    "on top of": (0, -1), "above": (0, -1), "over": (0, -1),
    "underneath": (0, 1), "beneath": (0, 1), "below": (0, 1), "under": (0, 1),
}
_WORDS = "|".join(re.escape(r) for r in sorted(RELATIONS, key=len, reverse=True))
_PATTERN = re.compile(rf"^(?P<subject>.+?)\s+(?:(?:that|which)\s+is\s+|is\s+)?(?P<relation>{_WORDS})"
                      rf"\s+(?P<reference>.+?)\s*[.!]?$", re.IGNORECASE)


def parse_relation(caption: str) -> tuple[str, str, str] | None:
    """(subject, relation, reference) of a caption like "the cup left of the plate", or None when
    it holds no spatial relation (or one side would be empty)."""
    m = _PATTERN.match(" ".join(caption.split()))
    if not m:
        return None
    return m.group("subject"), m.group("relation").lower(), m.group("reference")


def relation_scores(centres: torch.Tensor, ref: int, relation: str) -> torch.Tensor:
    """(P, 2) region centres (x, y), the index of the reference region, a RELATIONS key ->
    (P,) rel(a) (equation above); the reference itself scores 0."""
    u = torch.tensor(RELATIONS[relation], dtype=torch.float32)
    d = centres.float() - centres[ref].float()
    return (d @ u) / (d.abs().sum(-1) + 1.0)


def grounding(subject_cos: torch.Tensor, reference_cos: torch.Tensor | None,
              centres: torch.Tensor, relation: str | None, rho: float) -> torch.Tensor:
    """(P,) cosines of each region with the subject [and the reference], (P, 2) centres ->
    (P,) g(a). The reference region b* is the best match of the reference text."""
    if relation is None or reference_cos is None or len(centres) < 2:
        return subject_cos.float()
    ref = int(torch.argmax(reference_cos))
    return subject_cos.float() + rho * relation_scores(centres, ref, relation)
