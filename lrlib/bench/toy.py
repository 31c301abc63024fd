"""The method in the toy world, judged: `python -m lrlib.bench toy --n 200`.

Each held-out task (`lrlib.toy.benchmark_tasks`) says which object to change and into what; the
procedural judge (`lrlib.toy.judge`, no model) grades the result. Strategies, on the same scene:

| row | region |
|---|---|
| ours | DINO anchors, RGN-chosen box per anchor, ranked by S (the config's settings) |
| ours, paper settings | the same with the paper's choices where lrlib differs: straight-through estimator, S without S_dir, anchors at peak-cell centres |
| ours without L_dir / without L_str | the same candidates, the RGN trained without that term |
| DINO-anchor-random-size | DINO anchors, a uniformly random box size per anchor, ranked by S |
| random-anchor-random-size | uniformly random anchors and sizes, ranked by S |
| oracle | the ground-truth box of the source object |

Columns: `anchor_on_obj` (the winning anchor lies inside the source object's box), `IoU` (final
box vs the source object's box), `success` (the judge finds the prompt's colour and shape in the
union of the final box and the source object's box: an object painted elsewhere while the
source object stays does not count), `psnr_out` (source vs result outside the source object's
box, dB; higher = better preserved; inf = untouched), `s/edit` (wall seconds; the candidate
edits are shared by ours and its ablations and counted in each).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from lrlib.config import LRConfig
from lrlib.io import to_pil
from lrlib.regions import boxes_to_masks, make_proposals
from lrlib.train import composites

PAPER = dict(estimator="st", gamma=0.0, anchor_refine=False)  # the paper's choices, where lrlib differs
STRATEGIES = ("ours", "ours, paper settings", "ours w/o L_dir", "ours w/o L_str", "DINO-anchor-random-size",
              "random-anchor-random-size", "oracle (GT box)")


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
    psnr_out: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    images: list | None = None

    def add(self, task, final, box, anchor, seconds):
        from lrlib.toy.judge import judge_edit
        if self.images is not None:
            self.images.append((final, list(box)))
        src = task.scene.image
        t = task.target_box
        union = (min(t[0], box[0]), min(t[1], box[1]), max(t[2], box[2]), max(t[3], box[3]))
        j = judge_edit(src, final, _Target(union, task.target_shape, task.target_colour))
        j_out = judge_edit(src, final, task)                 # psnr outside the source object
        self.anchor_on_obj.append(float(inside(anchor, t)) if anchor is not None else math.nan)
        self.iou.append(iou(box, t))
        self.success.append(float(j["success"]))
        self.psnr_out.append(min(j_out["psnr_outside"], 99.0))   # inf (untouched) shown as 99
        self.seconds.append(seconds)

    def summary(self) -> dict:
        m = lambda v: float(np.nanmean(v)) if len(v) and not all(map(math.isnan, v)) else math.nan
        return {"anchor_on_obj": m(self.anchor_on_obj), "IoU": m(self.iou),
                "success": m(self.success), "psnr_out": m(self.psnr_out), "s/edit": m(self.seconds)}


@dataclass
class _Target:
    target_box: tuple
    target_shape: str
    target_colour: str


def _edit_boxes(p, boxes_k, models, cfg, seed):
    """One candidate per box (K, 4) on p's source; rank them; return (final (3,S,S), k)."""
    from lrlib.pipeline import generate_candidates, rank
    S = p.x.shape[-1]
    masks = models.editor.snap_mask(boxes_to_masks(boxes_k, S, S).to(p.x.device))
    E = generate_candidates(models.editor, p.x, masks, p.prompt, seed, cfg.editor_batch_size, False)
    results = composites(E, masks, p.x)
    scores, best = rank(p, results, models.clip, cfg)
    return results[best], best


def run_toy(n: int = 200, cfg: LRConfig | None = None, models=None, progress: bool = True,
            strategies=STRATEGIES, images: dict | None = None,
            aspect: float = 1.0) -> dict[str, dict]:
    """Run every strategy on the first n benchmark tasks; {strategy: summary}.

    aspect: scene width / height (longer side cfg.size, so the letterboxed canvas holds the scene
    at scale 1 and a box only shifts by the content's corner). Pass a dict as `images` to
    receive {strategy: [(final (3, H, W), box), ...]} per task, in scene pixels."""
    from tqdm.auto import tqdm

    from lrlib.models import load_models
    from lrlib.pipeline import prepare, rank, train_and_choose
    from lrlib.toy import benchmark_tasks

    cfg = (cfg or LRConfig.cpu(world="toy")).replace(progress=False)
    models = models or load_models(cfg)
    rows = {s: Row(images=[] if images is not None else None) for s in strategies}
    for i, task in enumerate(tqdm(benchmark_tasks(n, cfg.size, aspect), desc="toy benchmark",
                                  disable=not progress)):
        rng = np.random.default_rng(i)
        img = to_pil(torch.from_numpy(task.scene.image).permute(2, 0, 1).float())
        t0 = time.perf_counter()
        p = prepare(img, task.prompt, task.source_caption, cfg, models)
        t_prep = time.perf_counter() - t0
        K, M = p.K, p.M
        ox, oy, ox1, oy1 = p.content                      # the scene on the canvas, at scale 1

        def add(name, final, box, anchor, seconds):       # canvas -> scene pixels
            rows[name].add(task, final[:, oy:oy1, ox:ox1], [box[0] - ox, box[1] - oy, box[2] - ox,
                           box[3] - oy], anchor and [anchor[0] - ox, anchor[1] - oy], seconds)
        learned = [("ours", cfg, p), ("ours w/o L_dir", cfg.replace(lambda_dir=0.0), p),
                   ("ours w/o L_str", cfg.replace(lambda_str=0.0), p)]
        if "ours, paper settings" in rows:   # its own anchors, hence its own candidates
            t1 = time.perf_counter()
            c = cfg.replace(**PAPER)
            learned.append(("ours, paper settings", c,
                            prepare(img, task.prompt, task.source_caption, c, models)))
            t_paper = time.perf_counter() - t1
        for name, c, pc in learned:
            if name not in rows:
                continue
            t1 = time.perf_counter()
            probs, _ = train_and_choose(pc, c)
            chosen = probs.argmax(-1)
            results = pc.C[torch.arange(K), chosen]
            _, best = rank(pc, results, models.clip, c)
            add(name, results[best].cpu(), pc.boxes[best, chosen[best]].tolist(),
                pc.anchors[best].tolist(),
                (t_paper if pc is not p else t_prep) + time.perf_counter() - t1)
        if "DINO-anchor-random-size" in rows:
            t1 = time.perf_counter()
            chosen = torch.from_numpy(rng.integers(0, M, K))
            results = p.C[torch.arange(K), chosen]
            _, best = rank(p, results, models.clip, cfg)
            add("DINO-anchor-random-size", results[best].cpu(),
                p.boxes[best, chosen[best]].tolist(), p.anchors[best].tolist(),
                t_prep + time.perf_counter() - t1)
        S = cfg.size
        if "random-anchor-random-size" in rows:
            t1 = time.perf_counter()
            anchors = torch.from_numpy(rng.uniform(0, S, (K, 2))).float()
            if aspect != 1:                                # on the scene, not the padding
                anchors = torch.tensor([ox, oy]) + anchors * torch.tensor([ox1 - ox, oy1 - oy]) / S
            sides = rng.choice(cfg.box_sides(), K)
            boxes = torch.stack([make_proposals(anchors[k:k + 1], [float(sides[k])], S, S,
                                                p.content)[0, 0] for k in range(K)])
            final, best = _edit_boxes(p, boxes, models, cfg, cfg.seed + 1)
            add("random-anchor-random-size", final.cpu(), boxes[best].tolist(),
                anchors[best].tolist(), time.perf_counter() - t1)
        if "oracle (GT box)" in rows:
            t1 = time.perf_counter()
            gt = torch.tensor([list(task.target_box)]) + torch.tensor([ox, oy, ox, oy])
            final, _ = _edit_boxes(p, gt, models, cfg, cfg.seed + 2)
            add("oracle (GT box)", final.cpu(), gt[0].tolist(), None, time.perf_counter() - t1)
    if images is not None:
        images.update({k: r.images for k, r in rows.items()})
    return {k: r.summary() for k, r in rows.items()}


def format_table(summary: dict[str, dict]) -> str:
    cols = ["anchor_on_obj", "IoU", "success", "psnr_out", "s/edit"]
    w = max(len(k) for k in summary) + 2
    lines = ["strategy".ljust(w) + "".join(c.rjust(14) for c in cols)]
    for k, r in summary.items():
        cells = ["-" if math.isnan(r[c]) else (f"{r[c]:.2f}" if c != "psnr_out" else f"{r[c]:.1f}")
                 for c in cols]
        lines.append(k.ljust(w) + "".join(c.rjust(14) for c in cells))
    return "\n".join(lines)
