"""Does blending hide the pasted box? `python -m lrlib.bench blend --n 50`.

The method runs once per held-out toy task (prepare, train, rank: the steps of `lrlib.edit`),
then its winner is pasted as `lrlib.edit` pastes it (`lrlib.blend.paste_weight`) with each
`blend_px` (`lrlib.blend.feather`) and each `blend_tau` (`lrlib.blend.keep_changes`: full weight
wherever the edit changed a pixel by tau or more) and judged:

    seam      `lrlib.toy.judge.seam`: the colour step across the border of the change, beyond
              the background's own grain (0 = the box does not show)
    success   `lrlib.toy.judge.judge_task`, as `python -m lrlib.bench toy`: the prompt's object
              is there, the old one is gone, the others are kept
    psnr_out  source vs result outside the source object's box, dB (99 = untouched)

Blending changes nothing but the paste, so the rows differ only by it. `--set tuning` measures
on the tuning tasks (where `blend_tau` was chosen), `--set first` on the reported tables (lrlib/bench/README.md).
"""
from __future__ import annotations

import numpy as np
import torch

from lrlib.bench.toy import Row
from lrlib.config import LRConfig
from lrlib.images import to_pil


def run_blend(n: int = 50, blends=(0, 2, 3, 4), cfg: LRConfig | None = None, models=None,
              progress: bool = True, taus=(0.0,), tasks: str = "first") -> dict[tuple, dict]:
    """{(blend_px, blend_tau): {"seam", "success", "psnr_out"}} over the first n tasks of the
    set `tasks` (lrlib.bench.toy.SETS)."""
    from tqdm.auto import tqdm

    from lrlib.models import load_models
    from lrlib.canvas import paste_back
    from lrlib.blend import paste_weight
    from lrlib.pipeline import prepare, rank, train_and_choose
    from lrlib.bench.toy import task_set
    from lrlib.toy import seam

    cfg = (cfg or LRConfig.cpu(world="toy")).replace(progress=False)
    models = models or load_models(cfg)
    rows = {(b, t): (Row(), []) for b in blends for t in (taus if b > 1 else (0.0,))}
    for task in tqdm(task_set(n, tasks, cfg.size), desc="blend benchmark", disable=not progress):
        img = to_pil(torch.from_numpy(task.scene.image).permute(2, 0, 1).float())
        p = prepare(img, task.prompt, task.source_caption, cfg, models)
        probs, _ = train_and_choose(p)
        chosen = probs.argmax(-1)
        results = p.C[torch.arange(p.K), chosen]
        _, best = rank(p, results, models.clip)
        box, mask = p.boxes[best, chosen[best]].tolist(), p.masks[best, chosen[best]]
        for (b, t), (row, seams) in rows.items():
            w = paste_weight(mask, results[best], p.x, b, t,
                             p.content)                       # lrlib.edit's paste
            final = paste_back(p.x_full, results[best], w, p.content)[0]
            row.add(task, final, box, p.anchors[best].tolist(), 0.0)
            seams.append(seam(task.scene.image, final))
    return {bt: {"seam": float(np.mean(s)), "success": row.summary()["success"],
                "psnr_out": row.summary()["psnr_out"]} for bt, (row, s) in rows.items()}


def format_blend(summary: dict[tuple, dict]) -> str:
    lines = ["blend_px  blend_tau        seam     success    psnr_out"]
    lines += [f"{b:8d}  {t:9.2f}  {r['seam']:10.4f}  {r['success']:10.2f}  {r['psnr_out']:10.1f}"
              for (b, t), r in summary.items()]
    return "\n".join(lines)
