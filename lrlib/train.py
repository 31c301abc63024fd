"""Stage 3+4: test-time optimisation of the RGN, with a gradient that really reaches it.

The editor is expensive and not differentiable in the box, so lrlib generates each anchor's M
candidate edits E_ij once (no gradient), and trains the RGN on the composite

    e_i = sum_j g_ij * (m_ij * E_ij + (1 - m_ij) * x),      g_i = GumbelSoftmax(pi_i)  (hard, ST)

The forward value is exactly the chosen candidate; the backward gives
dL/dpi through dL/dg_ij = <dL/de_i, C_ij>, a first-order estimate of how the loss would change if
the choice moved to box j. (The official code turns the box into integer slices and the edit
into a PIL image: the loss is detached and the RGN never learns.)

That estimate is biased: when the candidates differ a lot and the loss is far from linear in the
pixels, it can point to the wrong box (tests/test_train.py measures this on small models). So
lrlib offers a second estimator, exact for cached candidates:

    estimator="expected":   L = sum_j p_ij * L(C_ij),   p_i = softmax(pi_i)

Fitting E_p[L] from a random start can stall on a wrong box: its gradient in pi_ij is
p_ij (L_ij - E_p[L]), which vanishes for every box the RGN has already made unlikely, so an RGN
that moves early toward a box that is merely better than the worst (on the toy benchmark's
ladder: a large box, much better than the tight ones) stays there. lrlib offers a second
objective on the same table (objective="softmin"): the cross-entropy to the target
q_i = softmax(-L_i / tau_q), whose gradient p_i - q_i does not vanish, so the RGN reaches the
per-anchor argmin of L within a few steps (tau_q: softmin_tau, in units of the weighted loss).

Terms that need no image, only the box (lrlib.additions.box_terms: L_cover, L_spill), enter as
a fixed (K, M) table `extra_terms` with their weights: added to the loss table's L, and to the
straight-through loss as sum_j g_ij T_ij (exact: they are linear in the choice).

The candidates never change, so their loss table L(C_ij) is computed once, before the first
step, with `table_views` augmented views for L_clip (more than a training step's n_aug, since it
is paid for once): K*M*(table_views + 1) CLIP image forwards per edit (1,071 at K = 9, M = 7,
16 views), against K*M*(n_aug + 1) at *every* iteration when the table is redrawn with fresh
views (`table_views=0`; 15,750 at the paper's 50 iterations and 4 views). The
gradient of the expected loss reaches the RGN exactly and no backward pass runs through CLIP.
The table is computed in chunks of candidates so that CLIP's batch stays bounded (Clip.chunk).

A candidate the editor could not make finite (NaN / Inf: lrlib.editors.candidates.generate_candidates) is
out of the choice: its logit is -inf in both estimators (probability 0, no gradient through it),
its composite and its loss-table entry are zeros (never averaged in: its weight is exactly 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch

from lrlib.blend import paste
from lrlib.progress import bar as progress_bar
from lrlib.regions import gumbel_softmax


@dataclass
class History:
    loss: list[float] = field(default_factory=list)          # mean L over anchors, per iteration
    terms: dict[str, list[float]] = field(default_factory=dict)  # L_clip, L_dir, L_str means
    chosen: list[list[int]] = field(default_factory=list)     # sampled box index per anchor
    probs: list[list[list[float]]] = field(default_factory=list)  # softmax(pi), (K, M) per iteration

    def to_dict(self) -> dict:
        return {"loss": self.loss, "terms": self.terms, "chosen": self.chosen, "probs": self.probs}


def composites(candidates: torch.Tensor, masks: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """C_ij = m_ij * E_ij + (1 - m_ij) * x inside the box, x outside: (K, M, 3, H, W); outside
    the box exactly the source, whatever E_ij holds there (lrlib.blend.paste)."""
    return paste(masks, candidates, x)


def masked_logits(logits: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """(K, M) logits with the candidates that are not `valid` (K, M) bool at -inf: probability 0
    under softmax, never the argmax, never a Gumbel sample. A row with no valid candidate is left
    as it is (nothing to choose among; lrlib.pipeline.prepare drops such anchors)."""
    if valid is None:
        return logits
    valid = valid.to(logits.device)
    out = ~valid & valid.any(-1, keepdim=True)
    return logits.masked_fill(out, float("-inf"))


def bound(loss_fn, name: str, default=None):
    """The keyword `name` bound into a partial loss (lrlib.pipeline.loss_fn: n_aug, clip), else default."""
    return getattr(loss_fn, "keywords", {}).get(name, default)


def table_objective(logits: torch.Tensor, L: torch.Tensor, valid: torch.Tensor,
                    objective: str = "expected", softmin_tau: float = 0.1) -> torch.Tensor:
    """What the RGN minimises on a loss table L (K, M) (0 where not `valid`), from its masked
    logits (K, M), averaged over anchors: "expected": E_p[L] = sum_j p_ij L_ij (exact gradient);
    "softmin": the cross-entropy -sum_j q_ij log p_ij to q_i = softmax(-L_i / softmin_tau) over
    the valid boxes (module doc)."""
    if objective == "expected":
        return (torch.softmax(logits, -1) * L).sum(-1).mean()
    q = torch.softmax(masked_logits(-L / softmin_tau, valid), -1)
    logp = torch.log_softmax(logits, -1).masked_fill(~valid.to(logits.device), 0.0)
    return -(q * logp).sum(-1).mean()


@torch.no_grad()
def loss_table(loss_fn, C: torch.Tensor, generator, views: int, chunk: int = 64) -> dict:
    """L(C_ij) of every candidate (K, M, 3, H, W) -> dict of (K*M,) tensors, with `views`
    augmented views for L_clip (a loss without a bound n_aug keeps its own), `chunk` images of
    CLIP per forward at most (each candidate costs views + 1)."""
    if bound(loss_fn, "n_aug") is not None:
        loss_fn = partial(loss_fn, n_aug=views)
    per = max(1, chunk // (views + 1))
    parts = [loss_fn(c, generator) for c in C.flatten(0, 1).split(per)]
    return {k: torch.cat([q[k] for q in parts]) for k in parts[0]}


def train_rgn(rgn, pooled, geom, C, loss_fn, iterations: int, lr: float = 0.003, tau: float = 1.0,
              hard: bool = True, generator: torch.Generator | None = None,
              progress: bool = True, estimator: str = "st", table_views: int = 16,
              valid: torch.Tensor | None = None, objective: str = "expected",
              softmin_tau: float = 0.1, extra_terms: dict | None = None) -> History:
    """Adam on the RGN for `iterations` steps; `loss_fn(e (B,3,H,W), generator) -> dict` with "L".

    C are the composites (K, M, 3, H, W) (see `composites`). estimator: "st" (straight-through
    Gumbel composite) or "expected" (a loss table computed once with `table_views` views; 0:
    redrawn every iteration), on which the RGN fits `objective`: "expected" (the exact gradient
    of E_p[L]) or "softmin" (the cross-entropy to softmax(-L / softmin_tau)). valid (K, M) bool:
    the candidates the RGN may choose (None: all); a composite that is not finite is never valid.
    extra_terms: {name: (weight, (K, M) table)}, box terms added to L (module doc).
    Returns the History.
    """
    if estimator not in ("st", "expected"):
        raise ValueError(f"estimator={estimator!r}; use 'st' or 'expected'.")
    if objective not in ("expected", "softmin"):
        raise ValueError(f"objective={objective!r}; use 'expected' or 'softmin'.")
    hist = History()
    opt = torch.optim.Adam(rgn.parameters(), lr=lr)
    C = C.detach()
    K, M = C.shape[:2]
    finite = torch.isfinite(C).flatten(2).all(-1)                     # (K, M)
    valid = finite if valid is None else valid.to(C.device) & finite
    if not valid.all():     # zeros stand in for what is out: its weight is exactly 0 below
        C = torch.where(valid[..., None, None, None], C, torch.zeros((), dtype=C.dtype,
                                                                        device=C.device))
    extra = {k: (float(w), t.to(C.device).float().view(K, M)) for k, (w, t) in (extra_terms or {}).items()}
    box = sum((w * torch.where(valid, t, 0.0) for w, t in extra.values()),
              torch.zeros(K, M, device=C.device))                      # sum_t w_t T_t, (K, M)
    chunk = getattr(bound(loss_fn, "clip"), "chunk", 64)
    table = (loss_table(loss_fn, C, generator, table_views, chunk)
             if estimator == "expected" and table_views else None)
    for _ in progress_bar(range(iterations), desc="training RGN", disable=not progress):
        logits = masked_logits(rgn(pooled, geom), valid)              # (K, M)
        if estimator == "st":
            g = gumbel_softmax(logits, tau=tau, hard=hard, generator=generator)
            e = torch.einsum("km,kmchw->kchw", g, C)                  # e_i = sum_j g_ij C_ij
            terms = loss_fn(e, generator)
            terms.update({k: (g * t).sum(-1) for k, (_, t) in extra.items()})
            L = (terms["L"] + (g * box).sum(-1)).mean()
        else:
            tab = table or loss_table(loss_fn, C, generator,          # every candidate's loss
                                      bound(loss_fn, "n_aug", 1), chunk)
            # an entry out of the choice counts 0 (p is 0 there, and 0 * NaN would be NaN)
            tab = {k: torch.where(valid, v.view(K, M), 0.0) for k, v in tab.items()}
            tab.update({k: torch.where(valid, t, 0.0) for k, (_, t) in extra.items()})
            tab["L"] = tab["L"] + box
            p = torch.softmax(logits, -1)
            g = p.detach()
            terms = {k: (p.detach() * v).sum(-1) for k, v in tab.items()}
            L = table_objective(logits, tab["L"], valid, objective, softmin_tau)
        opt.zero_grad(set_to_none=True)
        L.backward()
        opt.step()
        shown = L if estimator == "st" or objective == "expected" else terms["L"].mean()
        hist.loss.append(float(shown.detach()))               # the mean L, under either objective
        for k, v in terms.items():
            if k != "L":
                hist.terms.setdefault(k, []).append(float(v.detach().mean()))
        hist.chosen.append(g.argmax(-1).tolist())
        hist.probs.append(torch.softmax(logits.detach(), -1).tolist())
    return hist
