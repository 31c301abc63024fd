"""Retrain RGN designs on saved learning-benchmark tasks, in seconds, without the editor.

`python -m lrlib.bench learning ... --save FILE.json` keeps, per task, the unweighted loss table
(K, M), the grade of every choice vector ("outcomes": the ranked winner's judge success) and, in
FILE.json.inputs.pt, the RGN's inputs (pooled DINO features, box sizes), the boxes, the anchors'
DINO blobs, the DINO features, attention and the canvas. From those a design (loss weights, the
geometric terms of lrlib.additions.box_terms, RGN input features, training settings) is trained
and graded as `learning.study_task` grades its rows, with no candidate recomputed.
"""
from __future__ import annotations

import numpy as np
import torch

from lrlib.additions.box_terms import cover_term, object_blobs, spill_term
from lrlib.bench.learning import load_inputs, load_records
from lrlib.config import LRConfig
from lrlib.regions import boxes_to_masks


def saved_objects(inp: dict, cfg: LRConfig) -> torch.Tensor:
    """The object blobs (lrlib.additions.box_terms.object_blobs) of a saved task, from its saved
    attention, features and canvas (a canvas saved as uint8 is read back as /255)."""
    x = inp["x"].float()
    x = (x / 255.0 if inp["x"].dtype == torch.uint8 else x)[None]
    return object_blobs(inp["attn"].mean(0), inp["feats"], x,
                        tuple(int(v) for v in inp["content"]), cfg)


def load_tasks(path, cfg: LRConfig | None = None) -> list[dict]:
    """The saved tasks of one `--save` file: each {"rec", "inp", "grades": {choice: grade},
    "table": {term: (K, M)}} with L_cover and L_spill (lrlib.additions.box_terms) added."""
    cfg = cfg or LRConfig.cpu(world="toy")
    records, _ = load_records([path])
    out = []
    for r, i in zip(records, load_inputs(path)):
        S = i["x"].shape[-1]
        masks = boxes_to_masks(i["boxes"], S, S)
        table = {k: torch.tensor(v, dtype=torch.float32) for k, v in r["table"].items()}
        objs = saved_objects(i, cfg)
        table["L_cover"] = cover_term(i["blobs"], masks)
        table["L_spill"] = spill_term(i["blobs"], objs, masks)
        out.append({"rec": r, "inp": i, "objs": objs, "table": table,
                    "grades": {tuple(c): g for c, g in r["outcomes"]}})
    return out


def grade(task: dict, c) -> float:
    return float(task["grades"][tuple(int(j) for j in c)])


def design_loss(table: dict, w: dict) -> torch.Tensor:
    """sum_t w[t] * table[t] (K, M) over the terms named in w."""
    return sum(float(v) * table[t] for t, v in w.items() if v)


def train_design(task: dict, L: torch.Tensor, cfg: LRConfig, features=(), normalise: bool = False,
                 objective: str = "expected", target_tau: float = 0.1) -> torch.Tensor:
    """A fresh RGN (seeded as pipeline.train_and_choose seeds it) trained on the (K, M) loss L of
    a saved task; features: table terms appended to the RGN's [w, h] input; normalise: L
    standardised per anchor over its valid boxes; objective "expected" (E_p[L], Adam, cfg.lr,
    cfg.iterations) or "softmin" (cross-entropy to softmax(-L / target_tau)). Returns the
    probabilities (K, M)."""
    from lrlib.regions import RGN
    from lrlib.train import masked_logits
    inp = task["inp"]
    pooled, geom, valid = inp["pooled"], inp["geom"], inp["valid"]
    if features:
        geom = torch.cat([geom] + [task["table"][f][..., None].float() for f in features], -1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        rgn = RGN(pooled.shape[2], cfg.roi_size, cfg.rgn_channels, cfg.rgn_hidden, geom.shape[-1])
    ok = torch.ones_like(L, dtype=torch.bool) if valid is None else valid
    L = torch.where(ok, L, 0.0)
    if normalise:
        n = ok.sum(-1, keepdim=True).clamp(min=1)
        mu = (L * ok).sum(-1, keepdim=True) / n
        sd = (((L - mu) * ok) ** 2).sum(-1, keepdim=True).div(n).sqrt().clamp(min=1e-6)
        L = torch.where(ok, (L - mu) / sd, 0.0)
    target = torch.softmax(masked_logits(-L / target_tau, valid), -1)
    opt = torch.optim.Adam(rgn.parameters(), lr=cfg.lr)
    for _ in range(cfg.iterations):
        logits = masked_logits(rgn(pooled, geom), valid)
        if objective == "expected":
            loss = (torch.softmax(logits, -1) * L).sum(-1).mean()
        else:
            logp = torch.log_softmax(logits, -1).masked_fill(~ok, 0.0)
            loss = -(target * logp).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return torch.softmax(masked_logits(rgn(pooled, geom), valid), -1)


def evaluate(tasks: list[dict], w: dict, cfg: LRConfig, **train) -> dict:
    """Mean success over tasks of the trained RGN's argmax ("learned"), of the per-anchor argmin
    of the design's loss ("argmin"), and the number of anchors where the two differ."""
    from lrlib.bench.learning import argmin_choice
    learned, amin, differ, anchors = [], [], 0, 0
    for t in tasks:
        L = design_loss(t["table"], w)
        probs = train_design(t, L, cfg, **train)
        c = tuple(probs.argmax(-1).tolist())
        a = argmin_choice(L, t["inp"]["valid"])
        learned.append(grade(t, c))
        amin.append(grade(t, a))
        differ += sum(x != y for x, y in zip(c, a))
        anchors += len(c)
    return {"learned": float(np.mean(learned)), "argmin": float(np.mean(amin)),
            "differ": differ, "anchors": anchors}


def reference(tasks: list[dict]) -> dict:
    """Ceiling, random and fixed-rung rows, read from the saved records."""
    keys = ["best of M (ceiling)", "random (uniform pick)"] + [
        f"always proposal {j}" for j in range(tasks[0]["rec"]["M"])]
    return {k: float(np.mean([t["rec"]["rows"][k] for t in tasks])) for k in keys}
