"""Does the RGN's choice matter? `python -m lrlib.bench learning --n 200 --set first --proposals fitted`.

For each toy task the method runs once up to its candidates (`pipeline.prepare`: anchors, the
K x M proposals of one family, every candidate edit), and every candidate C_ij is pasted as
`lrlib.edit` pastes it and graded by the toy judge (`judge_task`, no model): a (K, M) table of
successes. The ranking picks the winner among the K anchors' chosen results, so a choice is a
vector c (one proposal per anchor) and its outcome is the success of the ranked winner's
candidate. From the same candidates, enumerating every c (M^K of them, K <= 3 on the toy
config):

| row | choice |
|---|---|
| best of M (ceiling) | the c whose ranked winner the judge grades best: what a perfect choice gains |
| worst of M (floor) | the c the judge grades worst |
| random (uniform pick) | the mean over all c: the expected success of DINO-anchor-random-size |
| any candidate | some C_ij succeeds, ranking aside (what a perfect choice *and* ranking reach) |
| always proposal j | c = (j, ..., j): a fixed rung, no learning |
| argmin L / L_clip / L_dir / L_str | per anchor the candidate with the lowest loss term in the loss table (where the "expected" estimator converges, given time) |
| RGN expected [variant] | the RGN trained on the cached loss table (exact gradient of E_p[L]); variants drop a loss term, change the training, add a term (DESIGNS: L_cover, L_spill, L_src) or fit the table's softmin instead (objective="softmin") |
| lrlib train_and_choose, CHOSEN | the CHOSEN design's choice made by lrlib's own path (its own loss table): checks the cached-table row |
| RGN st [variant] | the RGN trained by straight-through Gumbel-Softmax (the paper's estimator), with CLIP in the loop |

The loss table is computed once per task (`train.loss_table`, the config's table_views) with
every term unweighted; each "expected" variant trains a fresh RGN (seeded as
`pipeline.train_and_choose` seeds it) on its own weighted sum, so the variants cost a few
milliseconds each. Every row is a fraction of tasks; `se` is the binomial standard error
sqrt(p (1 - p) / n) (for the random row, whose per-task value is a mean, the standard error of
the mean over tasks); `- random` is the row minus the random row, with the standard error of the
paired per-task differences.
"""
from __future__ import annotations

import itertools
import math
import time
from contextlib import nullcontext

import numpy as np
import torch

from lrlib.additions.box_terms import anchor_blobs, cover_term, object_blobs, spill_term
from lrlib.config import LRConfig

FAMILIES = ("squares", "fitted", "ladder")
LOSSES = {"": {}, "w/o L_clip": dict(lambda_clip=0.0), "w/o L_dir": dict(lambda_dir=0.0),
          "w/o L_str": dict(lambda_str=0.0)}
TERMS = ("L_clip", "L_dir", "L_str")
#: RGN training variants on the cached table (all loss terms): name -> LRConfig fields
TRAINING = {"200 iterations": dict(epochs=20), "lr 0.03": dict(lr=0.03),
            "200 iterations, lr 0.03": dict(epochs=20, lr=0.03)}
#: loss designs beyond the paper's three, trained on the same table: name -> extra term weights
#: (and LRConfig fields). L_cover: the share of the anchor's DINO blob (additions.fitted.fitted_blobs,
#: the blob the fitted boxes come from) left outside the box (the old object stays);
#: L_src: cos(E_I(e), E_T(caption)) (the result still shows what the caption names).
DESIGNS = {"L + L_cover": dict(L_cover=1.0), "L + L_cover, w/o L_str": dict(L_cover=1.0, lambda_str=0.0),
           "L + L_src": dict(L_src=1.0), "L + L_cover + L_src": dict(L_cover=1.0, L_src=1.0),
           "L + L_cover, 10 L_str": dict(L_cover=1.0, lambda_str=10.0),
           "L + L_cover, 30 L_str": dict(L_cover=1.0, lambda_str=30.0),
           "L + 10 L_cover, 10 L_str": dict(L_cover=10.0, lambda_str=10.0),
           "L + 10 L_cover, 10 L_str, 200 iterations, lr 0.03": dict(
               L_cover=10.0, lambda_str=10.0, epochs=20, lr=0.03),
           "L + 100 L_cover, 30 L_str": dict(L_cover=100.0, lambda_str=30.0),
           "L + 100 L_cover, 30 L_str, 200 iterations, lr 0.03": dict(
               L_cover=100.0, lambda_str=30.0, epochs=20, lr=0.03)}
#: designs through the library (LRConfig's lambda_cover, lambda_spill, cover_margin, objective:
#: lrlib.pipeline.box_terms, lrlib.train.table_objective), tuned on the tuning set
DESIGNS.update({
    "L + 10 L_cover, 10 L_str, softmin": dict(L_cover=10.0, lambda_str=10.0, objective="softmin"),
    "L + 10 L_cover + 1 L_spill": dict(lambda_cover=10.0, lambda_spill=1.0),
    "L + 10 L_cover + 1 L_spill, softmin": dict(lambda_cover=10.0, lambda_spill=1.0,
                                                objective="softmin"),
    "L + 3 L_cover (margin 0.25) + 1 L_spill": dict(lambda_cover=3.0, lambda_spill=1.0,
                                                    cover_margin=0.25),
    "L + 3 L_cover (margin 0.25) + 1 L_spill, softmin": dict(
        lambda_cover=3.0, lambda_spill=1.0, cover_margin=0.25, objective="softmin")})
#: the design whose choice is also made by lrlib's own path (pipeline.train_and_choose, its own
#: loss table), to check that the cached-table rows are what lrlib.edit would choose
CHOSEN = "L + 3 L_cover (margin 0.25) + 1 L_spill, softmin"
EXTRA_TERMS = ("L_cover", "L_spill", "L_src")
#: enumerate every choice vector up to this many; above it, best / worst / random come from a
#: seeded sample of this many vectors (random: unbiased; best, worst: bounds)
MAX_COMBOS = 50_000


# ------------------------------------------------------------------------- choices and outcomes
def choice_vectors(valid: np.ndarray, rng: np.random.Generator | None = None) -> list[tuple]:
    """Every choice vector c (one valid proposal j per anchor) of the (K, M) bool `valid`, in
    lexicographic order; more than MAX_COMBOS: a sample of MAX_COMBOS drawn with `rng`."""
    options = [np.flatnonzero(v).tolist() for v in np.asarray(valid, bool)]
    n = math.prod(len(o) for o in options)
    if n <= MAX_COMBOS:
        return list(itertools.product(*options))
    rng = rng or np.random.default_rng(0)
    return [tuple(int(rng.choice(o)) for o in options) for _ in range(MAX_COMBOS)]


def outcome(success: np.ndarray, winner, c: tuple) -> float:
    """The grade of choice vector c: success[k, c[k]] of the anchor k = winner(c) the ranking picks."""
    k = winner(c)
    return float(success[k, c[k]])


def choice_summary(success: np.ndarray, winner, valid: np.ndarray | None = None,
                   rng: np.random.Generator | None = None) -> dict[str, float]:
    """(K, M) grades of every candidate and the ranking `winner(c) -> k` -> {"best", "worst",
    "random"}: max, min and mean of the outcome over every choice vector (`choice_vectors`),
    and "any": the best grade of any valid candidate, ranking aside."""
    success = np.asarray(success, float)
    valid = np.ones(success.shape, bool) if valid is None else np.asarray(valid, bool)
    vals = np.array([outcome(success, winner, c) for c in choice_vectors(valid, rng)])
    return {"best": float(vals.max()), "worst": float(vals.min()), "random": float(vals.mean()),
            "any": float(success[valid].max())}


def ranker(E: torch.Tensor, p, clip, cfg: LRConfig):
    """winner(c) for a prepared edit p: the ranking (`pipeline.rank`: quality_scores, pick_best)
    of the K results c picks, read from E (K, M, D), the CLIP image embeddings of every
    candidate computed once."""
    from lrlib.scoring import pick_best, quality_scores
    scale = clip.logit_scale if cfg.score_scale is None else cfg.score_scale
    K = E.shape[0]
    cache = {}

    def winner(c: tuple) -> int:
        if c not in cache:
            with torch.no_grad():
                s = quality_scores(E[torch.arange(K), torch.tensor(c)], p.emb.E_T, p.emb.E_I_src,
                                   cfg.alpha, cfg.beta, scale, p.emb.E_T_caption, cfg.gamma,
                                   p.grounding, cfg.delta)
            cache[c] = pick_best(s, cfg.rank_top)
        return cache[c]
    return winner


# ------------------------------------------------------------------------- training on a table
def weighted(table: dict, cfg: LRConfig, extra: dict | None = None) -> torch.Tensor:
    """L = lambda_clip L_clip + lambda_str L_str + lambda_dir L_dir (+ sum w_t L_t of `extra`
    {term: weight}) from a table of unweighted terms ((K*M,) or (K, M) each)."""
    L = (cfg.lambda_clip * table["L_clip"] + cfg.lambda_str * table["L_str"]
         + cfg.lambda_dir * table["L_dir"])
    for t, w in (extra or {}).items():
        L = L + w * table[t]
    return L




def design_terms(p, E: torch.Tensor, cfg: LRConfig,
                 blobs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The extra terms of DESIGNS for a prepared edit p: L_cover and L_spill
    (lrlib.additions.box_terms: the anchors' DINO blobs, fitted as "fitted" proposals fit them,
    and the picture's other objects) and L_src (from E (K, M, D), the candidates' CLIP
    embeddings); (K, M) each."""
    if blobs is None:
        blobs = anchor_blobs(p, cfg)
    src = (E.float() @ p.emb.E_T_caption.float().to(E.device)).cpu()
    objs = object_blobs(p.attn.float().mean(0), p.feats, p.x, p.content, cfg, p.regions)
    return {"L_cover": cover_term(blobs, p.masks), "L_spill": spill_term(blobs, objs, p.masks),
            "L_src": src}


def train_on_table(pooled: torch.Tensor, geom: torch.Tensor, L: torch.Tensor,
                   valid: torch.Tensor | None, cfg: LRConfig) -> torch.Tensor:
    """The "expected" estimator on a cached loss table L (K, M): a fresh RGN, initialised as
    `pipeline.train_and_choose` initialises it (cfg.seed), trained by Adam (cfg.lr) for
    cfg.iterations steps on cfg.objective (E_p[L], or the cross-entropy to its softmin); returns
    the probabilities (K, M) after training (the same as train_and_choose with
    estimator="expected" when L is its table)."""
    from lrlib.regions import RGN
    from lrlib.train import masked_logits, table_objective
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        rgn = RGN(pooled.shape[2], cfg.roi_size, cfg.rgn_channels, cfg.rgn_hidden).to(pooled.device)
    K, M = L.shape
    ok = torch.ones(K, M, dtype=torch.bool) if valid is None else valid.cpu()
    L = torch.where(ok, L.cpu(), 0.0).to(pooled.device)
    opt = torch.optim.Adam(rgn.parameters(), lr=cfg.lr)
    for _ in range(cfg.iterations):
        logits = masked_logits(rgn(pooled, geom), None if valid is None else valid)
        loss = table_objective(logits, L, ok.to(pooled.device), cfg.objective, cfg.softmin_tau)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return torch.softmax(masked_logits(rgn(pooled, geom), valid), -1)


def argmin_choice(L: torch.Tensor, valid: torch.Tensor | None) -> tuple:
    """Per anchor the valid candidate with the lowest L (K, M) (ties: the lower index)."""
    if valid is not None:
        L = torch.where(valid.cpu(), L.cpu(), torch.inf)
    return tuple(int(j) for j in L.argmin(-1))


# ------------------------------------------------------------------------- one task
def judge_candidates(p, task, cfg: LRConfig) -> np.ndarray:
    """(K, M) 1.0 / 0.0: the judge's success of each candidate pasted as lrlib.edit pastes it."""
    from lrlib.bench.toy import user_paste
    from lrlib.toy.judge import judge_task
    ox, oy, ox1, oy1 = p.content
    out = np.zeros((p.K, p.M))
    for k in range(p.K):
        for j in range(p.M):
            final = user_paste(p, p.C[k, j], p.masks[k, j], cfg)
            out[k, j] = float(judge_task(task, final[:, oy:oy1, ox:ox1])["success"])
    return out


def study_task(task, cfg: LRConfig, models, st: str = "all", training=TRAINING,
               losses=LOSSES, designs=DESIGNS, keep_inputs: bool = False) -> dict:
    """Every row's grade on one task (see the module doc): {"kind", "K", "M", "success" (K, M),
    "rows": {row: grade}, "table": {term: (K, M)} (the unweighted loss terms), "outcomes":
    [[choice vector, grade], ...] (every vector: other choice rules can be graded later)}.
    keep_inputs: also "inputs", the tensors an RGN design needs to be retrained offline
    (`task_inputs`; save_records writes them to a sidecar file, not into the JSON)."""
    from lrlib.images import to_pil
    from lrlib.pipeline import box_terms, loss_fn, prepare, train_and_choose
    from lrlib.train import loss_table
    img = to_pil(torch.from_numpy(task.scene.image).permute(2, 0, 1).float())
    p = prepare(img, task.prompt, task.source_caption, cfg, models)
    success = judge_candidates(p, task, cfg)
    with torch.no_grad():
        E = models.clip.encode_image(p.C.flatten(0, 1)).view(p.K, p.M, -1)
    winner = ranker(E, p, models.clip, cfg)
    valid = p.valid.cpu() if p.valid is not None else None
    rows = {}
    summ = choice_summary(success, winner, None if valid is None else valid.numpy(),
                          np.random.default_rng(cfg.seed))
    rows["best of M (ceiling)"] = summ["best"]
    rows["worst of M (floor)"] = summ["worst"]
    rows["random (uniform pick)"] = summ["random"]
    rows["any candidate (no ranking)"] = summ["any"]
    for j in range(p.M):
        c = tuple(j if valid is None or valid[k, j] else int(valid[k].nonzero()[0, 0])
                  for k in range(p.K))
        rows[f"always proposal {j}"] = outcome(success, winner, c)
    C = p.C
    if valid is not None and not valid.all():
        C = torch.where(valid.to(C.device)[..., None, None, None], C, torch.zeros((), device=C.device))
    gen = torch.Generator().manual_seed(cfg.seed)           # as train_and_choose seeds it
    full = cfg.replace(lambda_clip=1.0, lambda_str=1.0, lambda_dir=1.0)
    table = loss_table(loss_fn(p, full), C, gen, cfg.table_views,
                       getattr(models.clip, "chunk", 64))
    table = {k: v.view(p.K, p.M).cpu() for k, v in table.items()}
    blobs = None
    if designs or keep_inputs:
        blobs = anchor_blobs(p, cfg)
    if designs:
        table.update(design_terms(p, E, cfg, blobs))
    rows["argmin L"] = outcome(success, winner, argmin_choice(weighted(table, cfg), valid))
    for t in TERMS + (EXTRA_TERMS if designs else ()):
        rows[f"argmin {t}"] = outcome(success, winner, argmin_choice(table[t], valid))
    if designs:
        rows["argmin L_cover + L_str"] = outcome(success, winner, argmin_choice(
            table["L_cover"] + table["L_str"], valid))
    variants = [(lname, lchange) for lname, lchange in losses.items()]
    variants += [(tname, tchange) for tname, tchange in training.items()]
    variants += [(dname, dchange) for dname, dchange in designs.items()]
    for name, change in variants:
        extra = {t: w for t, w in change.items() if t in EXTRA_TERMS}
        c = cfg.replace(estimator="expected", **{k: v for k, v in change.items() if k not in extra})
        Lw = weighted(table, c, extra)
        for _, (w, T) in box_terms(p, c).items():         # lambda_cover / lambda_spill > 0
            Lw = Lw + w * T.cpu()
        probs = train_on_table(p.pooled, p.geom, Lw, p.valid, c)
        rows["RGN expected" + (f", {name}" if name else "")] = outcome(
            success, winner, tuple(probs.argmax(-1).tolist()))
        if name in designs:                       # where the estimator converges, given time
            rows[f"argmin {name}"] = outcome(success, winner, argmin_choice(Lw, valid))
        if name == CHOSEN:
            probs, _ = train_and_choose(p, c)
            rows[f"lrlib train_and_choose, {name}"] = outcome(
                success, winner, tuple(probs.argmax(-1).tolist()))
    if st != "none":
        for lname, lchange in (losses if st == "all" else {"": {}}).items():
            probs, _ = train_and_choose(p, cfg.replace(estimator="st", **lchange))
            rows["RGN st" + (f", {lname}" if lname else "")] = outcome(
                success, winner, tuple(probs.argmax(-1).tolist()))
    outcomes = [[list(c), outcome(success, winner, c)] for c in choice_vectors(
        np.ones(success.shape, bool) if valid is None else valid.numpy())]
    rec = {"kind": task.kind, "K": p.K, "M": p.M, "success": success.tolist(), "rows": rows,
           "table": {k: v.tolist() for k, v in table.items()}, "outcomes": outcomes}
    if keep_inputs:
        rec["inputs"] = task_inputs(p, blobs)
    return rec


def task_inputs(p, blobs: torch.Tensor) -> dict[str, torch.Tensor]:
    """What retraining an RGN on a saved task needs beyond its loss table, on the CPU: the RGN's
    inputs (pooled, geom), the boxes and masks' validity, the anchors and their DINO blobs, the
    DINO features and [CLS] attention, the working canvas and its content rectangle."""
    return {"pooled": p.pooled.detach().float().cpu(), "geom": p.geom.detach().float().cpu(),
            "boxes": p.boxes.cpu(), "anchors": p.anchors.cpu(),
            "valid": None if p.valid is None else p.valid.cpu(), "blobs": blobs.cpu(),
            "feats": p.feats.detach().float().cpu(), "attn": p.attn.float().cpu(),
            "x": p.x[0].detach().float().cpu(),
            "content": torch.tensor(p.content)}


def run_learning(n: int, cfg: LRConfig | None = None, tasks: str = "first", start: int = 0,
                 st: str = "all", models=None, progress: bool = True, design: dict | None = None,
                 every: int = 0, report=print, training=TRAINING,
                 keep_inputs: bool = False) -> list[dict]:
    """`study_task` on tasks start..n-1 of the set `tasks` (lrlib.bench.toy.task_set); st: "all"
    (the straight-through RGN with each loss removed), "plain" (all losses only), "none"; design:
    a ladder design for proposals="ladder": {"lo", "hi"} (the config's ladder_lo, ladder_hi) and
    "aspects" (lrlib.additions.proposals_ladder.ladder_aspects).
    every > 0: report(format_learning(...)) after every `every` tasks."""
    from tqdm.auto import tqdm

    from lrlib.bench.toy import task_set
    from lrlib.models import load_models
    cfg = (cfg or LRConfig.cpu(world="toy")).replace(progress=False)
    models = models or load_models(cfg)
    design = dict(design or {})
    unknown = set(design) - {"lo", "hi", "aspects"}
    if unknown:
        raise ValueError(f"unknown ladder settings {sorted(unknown)}; use lo, hi, aspects")
    if "lo" in design or "hi" in design:
        cfg = cfg.replace(ladder_lo=design.get("lo", cfg.ladder_lo),
                          ladder_hi=design.get("hi", cfg.ladder_hi)).validate()
    if design.get("aspects"):
        from lrlib.additions.proposals_ladder import ladder_aspects
        ctx = ladder_aspects(*design["aspects"])
    else:
        ctx = nullcontext()
    out = []
    with ctx:
        for i, task in enumerate(tqdm(task_set(n, tasks, cfg.size)[start:], desc="learning",
                                      disable=not progress), start=start):
            t0 = time.perf_counter()
            rec = study_task(task, cfg, models, st=st, training=training, keep_inputs=keep_inputs)
            rec["seconds"] = time.perf_counter() - t0
            out.append(rec)
            if every and (i + 1) % every == 0 and i + 1 < n:
                report(f"after {i + 1} tasks:\n" + format_learning(out))
    return out


# ------------------------------------------------------------------------- the table
def summarise(records: list[dict]) -> dict[str, dict]:
    """{row: {"success", "se", "vs_random", "vs_se", "by kind"}} over the tasks' records."""
    names = list(dict.fromkeys(k for r in records for k in r["rows"]))
    rnd = np.array([r["rows"]["random (uniform pick)"] for r in records])
    kinds = list(dict.fromkeys(r["kind"] for r in records))
    out = {}
    for name in names:
        v = np.array([r["rows"].get(name, math.nan) for r in records], float)
        keep = ~np.isnan(v)
        m = float(v[keep].mean()) if keep.any() else math.nan
        k = int(keep.sum())
        sd = float(v[keep].std(ddof=1)) if name == "random (uniform pick)" and k > 1 else None
        se = (sd / math.sqrt(k) if sd is not None else math.sqrt(max(m * (1 - m), 0) / k)) \
            if k else math.nan
        d = v[keep] - rnd[keep]
        out[name] = {"success": m, "se": se, "n": k,
                     "vs_random": float(d.mean()) if k else math.nan,
                     "vs_se": float(d.std(ddof=1) / math.sqrt(k)) if k > 1 else math.nan,
                     "by kind": {kk: float(np.nanmean([x for x, r in zip(v, records)
                                                       if r["kind"] == kk])) for kk in kinds}}
    return out


def format_learning(records: list[dict]) -> str:
    """The table: success, its standard error, the difference to the random pick (paired
    standard error), success per edit kind."""
    s = summarise(records)
    kinds = list(next(iter(s.values()))["by kind"])
    w = max(len(k) for k in s) + 2
    head = "row".ljust(w) + "success".rjust(9) + "se".rjust(7) + "- random".rjust(10) \
        + "se".rjust(7) + "".join(k.rjust(10) for k in kinds)
    lines = [head]
    for name, r in s.items():
        diff = "" if name == "random (uniform pick)" else f"{r['vs_random']:+.3f}"
        dse = "" if name == "random (uniform pick)" else f"{r['vs_se']:.3f}"
        lines.append(name.ljust(w) + f"{r['success']:.3f}".rjust(9) + f"{r['se']:.3f}".rjust(7)
                     + diff.rjust(10) + dse.rjust(7)
                     + "".join(f"{r['by kind'][k]:.2f}".rjust(10) for k in kinds))
    K = np.mean([r["K"] for r in records])
    sec = np.mean([r.get("seconds", math.nan) for r in records])
    lines.append(f"{len(records)} tasks, mean K after pruning {K:.2f}, M {records[0]['M']}, "
                 f"{sec:.2f} s per task (all rows)")
    return "\n".join(lines)


def inputs_path(path) -> str:
    """The sidecar file of a `save_records` JSON file that holds the records' "inputs"."""
    return str(path) + ".inputs.pt"


def save_records(path, records: list[dict], meta: dict) -> None:
    """The records as JSON at `path`; their "inputs" tensors (if any) in `inputs_path(path)`."""
    import json

    from lrlib.outputs import atomic_write_text
    inputs = [r.get("inputs") for r in records]
    atomic_write_text(path, json.dumps({"meta": meta, "records": [
        {k: v for k, v in r.items() if k != "inputs"} for r in records]}))
    if any(i is not None for i in inputs):
        torch.save(inputs, inputs_path(path))


def load_inputs(path) -> list[dict]:
    """The per-task "inputs" `save_records` wrote next to the JSON file `path`."""
    return torch.load(inputs_path(path), weights_only=False)


def load_records(paths) -> tuple[list[dict], list[dict]]:
    """The records of several `save_records` files, in file order, and their metas. Raises
    LRError when the files are of different proposal families / ladders / task sets, or overlap."""
    import json

    from lrlib.errors import LRError
    records, metas = [], []
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        m = data["meta"]
        for o in metas:
            key = ("proposals", "design", "M", "set")
            if [o[k] for k in key] != [m[k] for k in key]:
                raise LRError(f"{p} holds {m['proposals']} proposals of the {m['set']!r} set, "
                              f"another file {o['proposals']} of {o['set']!r}: merge parts of one run.")
            if m["start"] < o["n"] and o["start"] < m["n"]:
                raise LRError(f"{p}: tasks {m['start']}..{m['n'] - 1} overlap another file's.")
        records += data["records"]
        metas.append(m)
    return records, metas
