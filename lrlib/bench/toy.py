"""The method in the toy world, judged: `python -m lrlib.bench toy --n 200 [--set second]`.

Each held-out task says which object to change and into what; the procedural judge
(`lrlib.toy.judge`, no model) grades the result. Task sets (seeds, `task_set`): "first" =
BENCHMARK_SEED0 + i (lrlib/bench/README.md's tables), "second" = BENCHMARK_SEED0 + 50_000 + i (held out:
no tuning ever ran on it), "tuning" = BENCHMARK_SEED0 + 100_000 + i (where every design choice
was measured). Rows, on the same scene, editor and judge:

| row | region |
|---|---|
| ours | the config's settings (lrlib's choices: caption-aware anchors, fitted boxes, ...) |
| ours, paper settings | the paper / official code's choices (`LRConfig.paper()`'s method fields) |
| ours w/o X | ours with one lrlib choice (or loss term) switched back: its ablation |
| DiffEdit / CLIPSeg / DINO box | the peers (`lrlib.bench.peers`): one box from a map, one edit |
| DINO-anchor-random-size | ours' anchors and proposals, a uniformly random proposal per anchor |
| random-anchor-random-size | uniformly random anchors and square sizes, ranked by S |
| oracle (GT box) | the ground-truth box of the source object |

Columns: `anchor_on_obj` (the winning anchor lies inside the source object's box), `IoU` (final
box vs the source object's box), `success` (`judge_task`: the prompt's object is where the source
object was, the old object is gone, every other object is still itself), `old success` (the
previous metric: colour and shape judged in the union of the final and the source box; it
credits an edit that leaves the old object beside the new, and goes blind next to a neighbour),
`psnr_out` (source vs result outside the source object's box, dB; inf shown as 99), `s/edit`
(wall seconds; shared candidate edits are counted in every row that uses them).
Under the table: success per edit kind, and ours' failures by their first cause.
Every row is judged on the paste `lrlib.edit` returns (`lrlib.blend.paste_weight`: the row's
`blend_px` feather, kept whole where the edit changed a pixel by `blend_tau`); the paper row
pastes hard (`blend_px=0`), as the paper does.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from lrlib.config import PAPER_METHOD as PAPER  # the paper's method fields
from lrlib.config import LRConfig
from lrlib.images import to_pil
from lrlib.regions import boxes_to_masks, make_proposals
from lrlib.train import composites

SETS = {"first": 0, "second": 50_000, "tuning": 100_000}   # seed offsets from BENCHMARK_SEED0
# one row per lrlib choice switched back (or loss term dropped); each shares ours' work when it can
ABLATIONS = {"ours w/o caption anchors": dict(anchor_pool=0),
             "ours, pool by spacing only": dict(anchor_cover=False),
             "ours, background blobs kept": dict(max_blob=None),
             "ours, caption view = box": dict(anchor_view="keep"),
             "ours w/o relations": dict(relation_weight=0.0),
             "ours w/o S_cap (delta=0)": dict(delta=0.0),
             "ours, every anchor edited (no pruning)": dict(prune_margin=None),
             "ours w/o blob boxes (squares)": dict(proposals="squares"),
             "ours, fitted boxes, paper's losses": dict(proposals="fitted", objective="expected",
                                                        lambda_cover=0.0, lambda_spill=0.0),
             "ours w/o box terms (L_cover, L_spill)": dict(lambda_cover=0.0, lambda_spill=0.0),
             "ours, expected-loss objective": dict(objective="expected"),
             "ours w/o edge snapping": dict(fit_snap=0.0),
             "ours, blob from the anchor pixel only": dict(fit_reach=0.0),
             "ours w/o S_dir (gamma=0)": dict(gamma=0.0),
             "ours, score scale = CLIP's (100)": dict(score_scale=None),
             "ours, straight-through": dict(estimator="st"),
             "ours w/o L_dir": dict(lambda_dir=0.0),
             "ours w/o L_str": dict(lambda_str=0.0)}
PEER_ROWS = ("DiffEdit-style mask", "CLIPSeg-style mask", "DINO attention box")
STRATEGIES = ("ours", "ours, paper settings", *ABLATIONS, *PEER_ROWS, "DINO-anchor-random-size",
              "random-anchor-random-size", "oracle (GT box)")
# the fields prepare() reads: variants that agree on them share one prepare (and its edits)
PREPARE_FIELDS = ("K", "M", "anchor_spacing", "anchor_refine", "anchor_pool", "anchor_context",
                  "anchor_view", "anchor_cover", "max_blob", "relation_weight", "prune_margin",
                  "proposals", "fit_level", "fit_snap", "fit_reach", "fit_min", "fit_max",
                  "ladder_lo", "ladder_hi",
                  "box_min", "box_max", "seed", "roi_size", "n_aug", "structure")
TRAIN_FIELDS = ("estimator", "lambda_clip", "lambda_str", "lambda_dir", "epochs", "iters_per_epoch",
                "lr", "tau", "hard", "rgn_channels", "rgn_hidden", "table_views", "objective",
                "softmin_tau", "lambda_cover", "cover_margin", "lambda_spill")
CAUSES = ("no anchor on the object", "ranking chose another anchor", "right anchor, IoU < 0.5",
          "box fine, edit judged wrong")


def task_set(n: int, which: str = "first", size: int = 64, aspect: float = 1.0) -> list:
    """n tasks of the set `which` (SETS): task i = make_edit_task(BENCHMARK_SEED0 + offset + i),
    kinds in turn (the first set is exactly lrlib.toy.benchmark_tasks)."""
    from lrlib.errors import LRError
    from lrlib.toy.scenes import BENCHMARK_SEED0, EDIT_KINDS, aspect_size, make_edit_task
    if which not in SETS:
        raise LRError(f"task set {which!r} is unknown; use one of {', '.join(SETS)}.")
    size = aspect_size(size, aspect)
    return [make_edit_task(BENCHMARK_SEED0 + SETS[which] + i, size, EDIT_KINDS[i % len(EDIT_KINDS)])
            for i in range(n)]


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: max(0, r[2] - r[0]) * max(0, r[3] - r[1])
    return inter / max(area(a) + area(b) - inter, 1e-9)


def inside(pt, box) -> bool:
    return box[0] <= pt[0] < box[2] and box[1] <= pt[1] < box[3]


@dataclass
class Row:
    anchor_on_obj: list = field(default_factory=list)
    iou: list = field(default_factory=list)
    success: list = field(default_factory=list)
    old_success: list = field(default_factory=list)
    psnr_out: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    kinds: list = field(default_factory=list)
    causes: list = field(default_factory=list)     # per task: None (success) or one of CAUSES
    images: list | None = None

    def add(self, task, final, box, anchor, seconds, anchors=None):
        """Grade one result; `anchors` (all K) lets a failure be put down to its first cause."""
        from lrlib.toy.judge import judge_edit, judge_task
        if self.images is not None:
            self.images.append((final, list(box)))
        src = task.scene.image
        t = task.target_box
        union = (min(t[0], box[0]), min(t[1], box[1]), max(t[2], box[2]), max(t[3], box[3]))
        old = judge_edit(src, final, _Target(union, task.target_shape, task.target_colour))
        ok = judge_task(task, final)["success"]
        self.anchor_on_obj.append(float(inside(anchor, t)) if anchor is not None else math.nan)
        self.iou.append(iou(box, t))
        self.success.append(float(ok))
        self.old_success.append(float(old["success"]))
        self.psnr_out.append(min(judge_edit(src, final, task)["psnr_outside"], 99.0))
        self.seconds.append(seconds)
        self.kinds.append(task.kind)
        cause = None
        if not ok and anchors is not None:
            cause = (CAUSES[0] if not any(inside(a, t) for a in anchors) else
                     CAUSES[1] if not inside(anchor, t) else
                     CAUSES[2] if self.iou[-1] < 0.5 else CAUSES[3])
        self.causes.append(cause)

    def summary(self) -> dict:
        m = lambda v: float(np.nanmean(v)) if len(v) and not all(map(math.isnan, v)) else math.nan
        out = {"anchor_on_obj": m(self.anchor_on_obj), "IoU": m(self.iou), "success": m(self.success),
               "old success": m(self.old_success), "psnr_out": m(self.psnr_out),
               "s/edit": m(self.seconds)}
        out["by kind"] = {k: m([s for s, kk in zip(self.success, self.kinds) if kk == k])
                          for k in dict.fromkeys(self.kinds)}
        out["causes"] = {c: sum(x == c for x in self.causes) for c in CAUSES}
        return out


@dataclass
class _Target:
    target_box: tuple
    target_shape: str
    target_colour: str


def user_paste(p, result: torch.Tensor, mask: torch.Tensor, cfg: LRConfig) -> torch.Tensor:
    """The composite `result` (3, S, S) of p's canvas, pasted as `lrlib.edit` pastes it with
    cfg's blend_px / blend_tau (lrlib.blend.paste_weight), on the canvas (3, S, S), CPU."""
    from lrlib.blend import paste_weight
    x, result = p.x[0].cpu(), result.cpu()
    w = paste_weight(mask.cpu(), result, p.x.cpu(), cfg.blend_px, cfg.blend_tau, p.content)
    return w * result + (1 - w) * x


def _edit_boxes(p, boxes_k, models, cfg, seed):
    """One candidate per box (K, 4) on p's source; rank them; return (composite (3,S,S), k,
    its mask (1, S, S))."""
    from lrlib.editors.base import EditorSettings
    from lrlib.editors.candidates import generate_candidates
    from lrlib.pipeline import rank
    S = p.x.shape[-1]
    masks = models.editor.snap_mask(boxes_to_masks(boxes_k, S, S).to(p.x.device))
    E = generate_candidates(models.editor, p.x, masks, p.prompt, seed, cfg.editor_batch_size, False,
                            EditorSettings.from_config(cfg))
    results = composites(E, masks, p.x)
    scores, best = rank(p, results, models.clip, cfg)
    return results[best], best, masks[best]


def run_toy(n: int = 200, cfg: LRConfig | None = None, models=None, progress: bool = True,
            strategies=STRATEGIES, images: dict | None = None, tasks: str = "first",
            every: int = 0, report=print, aspect: float = 1.0, start: int = 0,
            raw: dict | None = None) -> dict[str, dict]:
    """Run every strategy on the first n tasks of the set `tasks` (see SETS); {strategy: summary}.

    aspect: scene width / height (longer side cfg.size, so the letterboxed canvas holds the scene
    at scale 1 and a box only shifts by the content's corner). Pass a dict as `images` to
    receive {strategy: [(final (3, H, W), box), ...]} per task, in scene pixels.
    every > 0: `report(text)` the table so far after every `every` tasks (long runs).
    start > 0: only tasks start..n-1 (split a long run; pass a dict as `raw` to receive the
    {strategy: Row} and merge the parts' lists before `Row.summary`)."""
    from tqdm.auto import tqdm

    from lrlib.bench.peers import peer_boxes
    from lrlib.models import load_models
    from lrlib.pipeline import prepare, rank, train_and_choose

    cfg = (cfg or LRConfig.cpu(world="toy")).replace(progress=False)
    models = models or load_models(cfg)
    rows = {s: Row(images=[] if images is not None else None) for s in strategies}
    variants = {"ours": cfg, "ours, paper settings": cfg.replace(**PAPER),
                **{k: cfg.replace(**v) for k, v in ABLATIONS.items()}}
    for i, task in enumerate(tqdm(task_set(n, tasks, cfg.size, aspect)[start:],
                                  desc="toy benchmark", disable=not progress), start=start):
        rng = np.random.default_rng(i)
        img = to_pil(torch.from_numpy(task.scene.image).permute(2, 0, 1).float())
        prepared = {}                                     # PREPARE_FIELDS values -> (p, seconds)
        trained = {}                                      # ... + TRAIN_FIELDS -> (probs, seconds)

        def get_prepared(c):
            key = tuple(getattr(c, f) for f in PREPARE_FIELDS)
            if key not in prepared:
                t0 = time.perf_counter()
                prepared[key] = (prepare(img, task.prompt, task.source_caption, c, models),
                                 time.perf_counter() - t0)
            return key, prepared[key]

        def add(name, p, final, box, anchor, seconds, anchors=None, mask=None, c=cfg):
            if mask is not None:                          # the paste lrlib.edit returns (c's blend)
                final = user_paste(p, final, mask, c)
            ox, oy, ox1, oy1 = p.content                  # canvas -> scene pixels, at scale 1
            shift = lambda a: a and [a[0] - ox, a[1] - oy]
            rows[name].add(task, final[:, oy:oy1, ox:ox1], [box[0] - ox, box[1] - oy, box[2] - ox,
                           box[3] - oy], shift(anchor), seconds,
                           anchors and [shift(a) for a in anchors])

        for name, c in variants.items():
            if name not in rows:
                continue
            key, (pc, t_prep) = get_prepared(c)
            t1 = time.perf_counter()
            tkey = key + tuple(getattr(c, f) for f in TRAIN_FIELDS)
            if tkey not in trained:                       # ranking-only variants share it
                trained[tkey] = (train_and_choose(pc, c)[0], time.perf_counter() - t1)
            probs, t_train = trained[tkey]
            t1 = time.perf_counter() - t_train
            chosen = probs.argmax(-1)
            results = pc.C[torch.arange(pc.K), chosen]
            _, best = rank(pc, results, models.clip, c)
            add(name, pc, results[best].cpu(), pc.boxes[best, chosen[best]].tolist(),
                pc.anchors[best].tolist(), t_prep + time.perf_counter() - t1, pc.anchors.tolist(),
                pc.masks[best, chosen[best]], c)
        _, (p, t_prep) = get_prepared(cfg)
        K, M = p.K, p.M
        ox, oy, ox1, oy1 = p.content
        if any(r in rows for r in PEER_ROWS):
            t1 = time.perf_counter()
            boxes = peer_boxes(p, models, cfg)
            t_map = (time.perf_counter() - t1) / len(boxes)
            for name, box in boxes.items():
                if name in rows:
                    t1 = time.perf_counter()
                    final, _, m = _edit_boxes(p, torch.tensor([box]), models, cfg, cfg.seed + 3)
                    add(name, p, final.cpu(), box, None, t_map + time.perf_counter() - t1, None, m)
        if "DINO-anchor-random-size" in rows:
            t1 = time.perf_counter()
            chosen = torch.from_numpy(rng.integers(0, M, K))
            results = p.C[torch.arange(K), chosen]
            _, best = rank(p, results, models.clip, cfg)
            add("DINO-anchor-random-size", p, results[best].cpu(),
                p.boxes[best, chosen[best]].tolist(), p.anchors[best].tolist(),
                t_prep + time.perf_counter() - t1, None, p.masks[best, chosen[best]])
        S = cfg.size
        if "random-anchor-random-size" in rows:
            t1 = time.perf_counter()
            anchors = torch.from_numpy(rng.uniform(0, S, (K, 2))).float()
            if aspect != 1:                                # on the scene, not the padding
                anchors = torch.tensor([ox, oy]) + anchors * torch.tensor([ox1 - ox, oy1 - oy]) / S
            sides = rng.choice(cfg.replace(proposals="squares").box_sides(), K)
            boxes = torch.stack([make_proposals(anchors[k:k + 1], [float(sides[k])], S, S,
                                                p.content)[0, 0] for k in range(K)])
            final, best, m = _edit_boxes(p, boxes, models, cfg, cfg.seed + 1)
            add("random-anchor-random-size", p, final.cpu(), boxes[best].tolist(),
                anchors[best].tolist(), time.perf_counter() - t1, None, m)
        if "oracle (GT box)" in rows:
            t1 = time.perf_counter()
            gt = torch.tensor([list(task.target_box)]) + torch.tensor([ox, oy, ox, oy])
            final, _, m = _edit_boxes(p, gt, models, cfg, cfg.seed + 2)
            add("oracle (GT box)", p, final.cpu(), gt[0].tolist(), None, time.perf_counter() - t1,
                None, m)
        if every and (i + 1) % every == 0 and i + 1 < n:
            report(f"after {i + 1} tasks:\n" + format_table({k: r.summary() for k, r in rows.items()}))
    if images is not None:
        images.update({k: r.images for k, r in rows.items()})
    if raw is not None:
        raw.update(rows)
    return {k: r.summary() for k, r in rows.items()}


ROW_LISTS = ("anchor_on_obj", "iou", "success", "old_success", "psnr_out", "seconds", "kinds",
             "causes")


def save_rows(path, rows: dict[str, Row], meta: dict) -> None:
    """Write {strategy: Row}'s per-task lists and `meta` to a JSON file (atomic)."""
    import json

    from lrlib.outputs import atomic_write_text
    data = {"meta": meta, "rows": {k: {f: getattr(r, f) for f in ROW_LISTS} for k, r in rows.items()}}
    atomic_write_text(path, json.dumps(data, allow_nan=True))


def load_rows(paths) -> tuple[dict[str, Row], list[dict]]:
    """The rows of several `save_rows` files, each strategy's tasks concatenated in file order,
    and their metas. Raises LRError when the files hold different strategies or overlap."""
    import json

    from lrlib.errors import LRError
    rows, metas, seen = {}, [], set()
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        m = data["meta"]
        span = (m["set"], m["start"], m["n"])
        if any(s == m["set"] and m["start"] < n and start < m["n"] for s, start, n in seen):
            raise LRError(f"{p}: tasks {m['start']}..{m['n'] - 1} of the {m['set']!r} set overlap "
                          "another file's; merge the parts of one split run only.")
        seen.add(span)
        if rows and set(rows) != set(data["rows"]):
            raise LRError(f"{p} holds rows {sorted(data['rows'])}, the first file {sorted(rows)}: "
                          "merge runs of the same --rows.")
        for k, lists in data["rows"].items():
            r = rows.setdefault(k, Row())
            for f in ROW_LISTS:
                getattr(r, f).extend(lists[f])
        metas.append(m)
    return rows, metas


def format_table(summary: dict[str, dict]) -> str:
    """The main table, then success per edit kind, then ours' failures by cause."""
    cols = ["anchor_on_obj", "IoU", "success", "old success", "psnr_out", "s/edit"]
    fmt = lambda v, c: "-" if math.isnan(v) else (f"{v:.1f}" if c == "psnr_out" else f"{v:.2f}")
    w = max(len(k) for k in summary) + 2
    lines = ["strategy".ljust(w) + "".join(c.rjust(13) for c in cols)]
    lines += [k.ljust(w) + "".join(fmt(r[c], c).rjust(13) for c in cols) for k, r in summary.items()]
    kinds = list(next(iter(summary.values()))["by kind"])
    lines += ["", "success by kind".ljust(w) + "".join(k.rjust(13) for k in kinds)]
    lines += [k.ljust(w) + "".join(fmt(r["by kind"][kk], "").rjust(13) for kk in kinds)
              for k, r in summary.items()]
    for name in ("ours", "ours, paper settings"):
        if name in summary:
            r = summary[name]
            fails = sum(r["causes"].values())
            lines += ["", f"{name}: failures by first cause ({fails})"]
            lines += [f"  {c:32s} {v}" for c, v in r["causes"].items()]
    return "\n".join(lines)
