"""Stage 5: rank the K edited images with the quality score (paper Sec. 3, official code).

With CLIP unit embeddings of the K results e_k, the prompt t and the source x, and a score
scale s (`LRConfig.score_scale`; the official code uses the raw cosines, s = 1):

    S_t2i = softmax_k( s * cos(E_I(e_k), E_T(t)) )     how well each result matches the prompt
    S_i2i = softmax_k( s * cos(E_I(e_k), E_I(x)) )     how much of the source each result keeps
    S     = alpha * S_t2i + beta * S_i2i               (official: alpha = 2, beta = 1)

lrlib adds an optional third term (gamma = 0, the paper's score, by default):

    S_dir = softmax_k( s * cos(E_I(e_k) - E_I(x), E_T(t) - E_T(c)) )   c: the caption
    S     = alpha * S_t2i + beta * S_i2i + gamma * S_dir

The paper's S never reads the caption, so when a scene holds several objects it cannot tell
an edit of the object the caption names from the same edit of its neighbour; S_dir (the
directional score L_dir is built on) can. So can a fourth term, read off the *source*: how well
the region each anchor stands on matches the caption (its grounding g_k, computed when the
caption-aware anchors were chosen, relations included: lrlib.additions.relations):

    S_cap = softmax_k( s * g_k )                 S += delta * S_cap     (lrlib; paper: delta = 0)

See the toy benchmark in the README for the effect of each.

The scale never changes an order within one softmax (softmax is monotone); it changes how the
two terms trade off. At s = 1 both softmaxes stay near 1/K and S ~ const + (alpha cos_t2i +
beta cos_i2i) / K, a linear trade-off of the cosines; at s = 100 (CLIP's logit scale,
`score_scale=None`) each is nearly one-hot and S is a vote between the result most like the
prompt and the one most like the source. The toy benchmark measures both (lrlib/bench/README.md).

The official rule keeps the best S among the `top` (= 3) results with the highest S_t2i, so a
result that barely changed the image (high S_i2i) cannot win without matching the prompt.
"""
from __future__ import annotations

import torch


def quality_scores(E_I: torch.Tensor, E_T: torch.Tensor, E_I_src: torch.Tensor, alpha: float,
                   beta: float, scale: float = 1.0, E_T_caption: torch.Tensor | None = None,
                   gamma: float = 0.0, grounding: torch.Tensor | None = None,
                   delta: float = 0.0) -> dict[str, torch.Tensor]:
    """(K, E) results, (E,) prompt, (E,) source [, (E,) caption, (K,) grounding] -> dict of (K,)
    S_t2i, S_i2i, S (and S_dir when gamma != 0, S_cap when delta != 0 and grounding is given)."""
    S_t2i = torch.softmax(scale * (E_I @ E_T), 0)
    S_i2i = torch.softmax(scale * (E_I @ E_I_src), 0)
    out = {"S_t2i": S_t2i, "S_i2i": S_i2i, "S": alpha * S_t2i + beta * S_i2i}
    if gamma:
        if E_T_caption is None:
            raise ValueError("gamma != 0 needs the caption's text embedding E_T_caption.")
        d_img = torch.nn.functional.normalize(E_I - E_I_src, dim=-1)
        d_txt = torch.nn.functional.normalize(E_T - E_T_caption, dim=-1)
        out["S_dir"] = torch.softmax(scale * (d_img @ d_txt), 0)
        out["S"] = out["S"] + gamma * out["S_dir"]
    if delta and grounding is not None:
        out["S_cap"] = torch.softmax(scale * grounding.to(E_I), 0)
        out["S"] = out["S"] + delta * out["S_cap"]
    return out


def pick_best(scores: dict[str, torch.Tensor], top: int = 3) -> int:
    """Index of the highest S among the `top` highest S_t2i. Ties in S_t2i keep the lower index;
    a tie in S among the kept results goes to the one ranked higher by S_t2i."""
    top = min(top, scores["S"].numel())
    cand = torch.argsort(scores["S_t2i"], descending=True, stable=True)[:top]
    return int(cand[torch.argmax(scores["S"][cand])])
