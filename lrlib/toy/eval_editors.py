"""Measure the toy world's editors on the held-out benchmark, with the procedural judge.

For each task of `benchmark_tasks()` the editor is asked to paint the task's prompt into the task's
box (`target_box`: the box of the object to change). The edit is composited the way lrlib does,
`m * E + (1 - m) * x` with `m = editor.snap_mask(box mask)` (the box itself for SD, the token cells
the box touches for MaskGIT), and judged by `lrlib.toy.judge.judge_edit`: colour right, shape
right, success (both), PSNR outside the box, seam. Reported with and without classifier-free
guidance. `--blend 0 2 4` composites with `lrlib.blend.feather(m, b)` instead (the paste of
`LRConfig.blend_px`) and compares the seams.

    python -m lrlib.toy.eval_editors sd                      # the shipped toy SD, 200 tasks
    python -m lrlib.toy.eval_editors maskgit --n 100 --guidance 4 1 --steps 12
    python -m lrlib.toy.eval_editors sd --dir /tmp/sd --json /tmp/sd.json
    python -m lrlib.toy.eval_editors sd --square 1.4     # square boxes, as the RGN proposes
    python -m lrlib.toy.eval_editors sd --n 50 --square 1.4 --guidance 3 --blend 0 2 3 4

`evaluate(editor, tasks)` returns the same numbers as a dict.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from lrlib.blend import feather, paste
from lrlib.editors.base import EditorSettings
from lrlib.regions import boxes_to_masks
from lrlib.toy.judge import judge_edit, psnr
from lrlib.toy.scenes import EDIT_KINDS, benchmark_tasks

WEIGHTS = Path(__file__).parent / "weights"


def load_editor(kind: str, folder: str | None = None, **kwargs):
    """The shipped toy editor ('sd' or 'maskgit'), or one from `folder`, on the CPU."""
    folder = str(folder or WEIGHTS / kind)
    if kind == "sd":
        from lrlib.editors.sd import StableDiffusionEditor
        return StableDiffusionEditor.from_pretrained(folder, device="cpu", **kwargs)
    if kind == "maskgit":
        from lrlib.editors.maskgit import MaskGITEditor
        return MaskGITEditor.from_pretrained(folder, device="cpu", **kwargs)
    raise ValueError(f"unknown editor '{kind}': use 'sd' or 'maskgit'.")


def square_boxes(tasks, scale: float) -> list:
    """The tasks with each target box replaced by a centred square of `scale` times its longer
    side, clipped to the image: the kind of box the region generator proposes around an anchor."""
    out = []
    for t in tasks:
        x0, y0, x1, y1 = t.target_box
        n = t.scene.size
        side = min(n, round(max(x1 - x0, y1 - y0) * scale))
        sx = min(max(round((x0 + x1 - side) / 2), 0), n - side)
        sy = min(max(round((y0 + y1 - side) / 2), 0), n - side)
        out.append(dataclasses.replace(t, target_box=(sx, sy, sx + side, sy + side)))
    return out


def task_tensors(tasks) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, S, S), box masks (N, 1, S, S)) of the tasks."""
    x = torch.from_numpy(np.stack([t.scene.image for t in tasks])).permute(0, 3, 1, 2).contiguous()
    boxes = torch.tensor([t.target_box for t in tasks])
    return x, boxes_to_masks(boxes, x.shape[-2], x.shape[-1])


@torch.no_grad()
def edit_tasks(editor, tasks, seed: int = 0, batch: int = 20, blend_px: int = 0,
               settings: EditorSettings | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Composited edits (N, 3, S, S) and the masks used (N, 1, S, S). Batch i draws its noise from
    `torch.Generator().manual_seed(seed + i)`, so results do not depend on anything else.
    `blend_px` feathers the composite mask (lrlib.blend); the returned masks stay binary.
    settings: the editor's sampler settings (steps, guidance; None: its defaults)."""
    x, boxes = task_tensors(tasks)
    m = editor.snap_mask(boxes)
    w = feather(m, blend_px)
    outs = []
    for i in range(0, len(tasks), batch):
        sl = slice(i, i + batch)
        e = editor.inpaint(x[sl], boxes[sl], [t.prompt for t in tasks[sl]],
                           torch.Generator().manual_seed(seed + i // batch), settings=settings)
        outs.append(paste(w[sl], e, x[sl]))
    return torch.cat(outs), m


def evaluate(editor, tasks, seed: int = 0, batch: int = 20, blend_px: int = 0,
             settings: EditorSettings | None = None) -> dict:
    """Success / colour / shape rates (overall and per task kind), PSNR outside the box and
    outside the composite mask, seam, seconds per edit, with the editor's `settings`."""
    t0 = time.perf_counter()
    comp, m = edit_tasks(editor, tasks, seed, batch, blend_px, settings)
    sec = (time.perf_counter() - t0) / len(tasks)
    rows = []
    for t, c, mk in zip(tasks, comp, m):
        r = judge_edit(t.scene.image, c, t)
        r["psnr_outside_mask"] = psnr(t.scene.image, c, mk[0].numpy() < 0.5)
        r["kind"] = t.kind
        rows.append(r)

    def rate(key, sel=rows):
        return float(np.mean([r[key] for r in sel])) if sel else float("nan")

    po = [r["psnr_outside"] for r in rows]
    finite = [p for p in po if math.isfinite(p)]
    return {
        "n": len(rows), "success": rate("success"), "colour": rate("colour_ok"),
        "shape": rate("shape_ok"),
        "success_by_kind": {k: rate("success", [r for r in rows if r["kind"] == k])
                            for k in EDIT_KINDS},
        "outside_box_unchanged": float(np.mean([not math.isfinite(p) for p in po])),
        "psnr_outside_box_mean_finite": float(np.mean(finite)) if finite else float("inf"),
        "outside_mask_unchanged": float(np.mean([not math.isfinite(r["psnr_outside_mask"])
                                                 for r in rows])),
        "seam": float(np.mean([r["seam"] for r in rows])),
        "no_object": float(np.mean([r["verdict"].colour is None for r in rows])),
        "seconds_per_edit": sec,
    }


def save_grid(tasks, edits: torch.Tensor, path, n: int = 16, scale: int = 2) -> str:
    """PNG of n (source, edit) pairs, 4 pairs a row, the box outlined in white on the source."""
    from PIL import Image

    x, _ = task_tensors(tasks[:n])
    tiles = []
    for t, src, e in zip(tasks[:n], x, edits[:n]):
        s = src.clone()
        x0, y0, x1, y1 = t.target_box
        s[:, y0 - 1 if y0 else 0, x0:x1] = 1
        s[:, min(y1, s.shape[1] - 1), x0:x1] = 1
        s[:, y0:y1, x0 - 1 if x0 else 0] = 1
        s[:, y0:y1, min(x1, s.shape[2] - 1)] = 1
        pad = torch.ones(3, s.shape[1], 2)
        tiles.append(torch.cat([s, pad * 0.0, e, pad], 2))
    rows = [torch.cat(tiles[i:i + 4], 2) for i in range(0, len(tiles), 4)]
    w = max(r.shape[2] for r in rows)
    rows = [torch.cat([r, torch.ones(3, r.shape[1], w - r.shape[2])], 2) for r in rows]
    img = torch.cat([torch.cat([r, torch.ones(3, 2, w)], 1) for r in rows], 1)
    arr = (img.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    pil = Image.fromarray(arr)
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    pil.save(path)
    return str(path)


def _fmt(r: dict) -> str:
    kinds = " ".join(f"{k} {v:.2f}" for k, v in r["success_by_kind"].items())
    return (f"success {r['success']:.3f}  colour {r['colour']:.3f}  shape {r['shape']:.3f}  "
            f"no-object {r['no_object']:.3f}  outside-box-unchanged {r['outside_box_unchanged']:.3f} "
            f"(mean finite PSNR {r['psnr_outside_box_mean_finite']:.1f} dB)  "
            f"outside-mask-unchanged {r['outside_mask_unchanged']:.3f}  seam {r['seam']:.4f}  "
            f"{r['seconds_per_edit']:.2f} s/edit\n      by kind: {kinds}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m lrlib.toy.eval_editors",
                                description="Benchmark a toy editor with the procedural judge.")
    p.add_argument("editor", choices=("sd", "maskgit"))
    p.add_argument("--dir", default=None, help="checkpoint folder (default: the shipped one)")
    p.add_argument("--n", type=int, default=200, help="number of benchmark tasks")
    p.add_argument("--steps", type=int, nargs="+", default=None,
                   help="denoising / decoding steps (default: SD 10, MaskGIT 12)")
    p.add_argument("--guidance", type=float, nargs="+", default=None,
                   help="guidance scales to compare (default: SD 3 1, MaskGIT 4 1; 1 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--square", type=float, default=None,
                   help="edit a centred square box of this many times the object's side instead")
    p.add_argument("--blend", type=int, nargs="+", default=[0],
                   help="feather the composite over this many px (lrlib.blend); several compare")
    p.add_argument("--grid", default=None, help="save a PNG of 16 edits (first setting) here")
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    steps = a.steps or ([10] if a.editor == "sd" else [12])
    guidance = a.guidance or ([3.0, 1.0] if a.editor == "sd" else [4.0, 1.0])
    editor = load_editor(a.editor, a.dir)
    tasks = benchmark_tasks(a.n)
    if a.square:
        tasks = square_boxes(tasks, a.square)
    results = {}
    print(f"{a.editor} editor from {a.dir or WEIGHTS / a.editor}, {a.n} benchmark tasks, seed {a.seed}"
          + (f", square boxes x{a.square}" if a.square else ""))
    for s in steps:
        for g in guidance:
            for b in a.blend:
                settings = EditorSettings(steps=s, guidance_scale=g)
                r = evaluate(editor, tasks, a.seed, a.batch, b, settings)
                results[f"steps={s} guidance={g} blend={b}"] = r
                print(f"steps {s:3d} guidance {g:4.1f} blend {b}: {_fmt(r)}", flush=True)
                if a.grid and len(results) == 1:
                    comp, _ = edit_tasks(editor, tasks[:16], a.seed, 16, b, settings)
                    print("grid:", save_grid(tasks, comp, a.grid))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
