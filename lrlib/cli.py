"""Command line: one edit, or a batch in the official jobs format.

    python -m lrlib edit IMAGE --prompt "a blue square" --caption "red circle" --out outputs/x
    python -m lrlib batch JOBS.json --images DIR --out outputs/   # {image_name: [caption, prompt]}
    python -m lrlib demo --out outputs/demo                         # one edit on the built-in scene

A batch writes each result folder atomically and skips folders that already hold a result.json,
so a killed run resumes where it stopped.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.logs import quiet_libraries


def _config(args) -> LRConfig:
    """The world by lrlib.world's one rule (--world, then $LRLIB_WORLD, then auto), its settings,
    then the flags given."""
    from lrlib.world import choose_world, config_for
    world = choose_world(args.world, args.editor or "sd", allow_real=not args.cpu)
    cfg = config_for(world)
    over = {k: getattr(args, k) for k in ("K", "M", "seed", "steps", "editor", "device", "size")
            if getattr(args, k, None) is not None}
    if args.epochs is not None:
        over["epochs"] = args.epochs
    return cfg.replace(**over).validate()


def _add_common(p):
    p.add_argument("--world", choices=["auto", "real", "toy", "random"], default=None,
                   help="which models run: real checkpoints (GPU + hub), the shipped toy world, "
                        "or random stand-ins; default $LRLIB_WORLD, else auto (real only on a "
                        "GPU that reaches the hub, else toy)")
    p.add_argument("--cpu", action="store_true",
                   help="never the real checkpoints: auto picks the toy world (CPU-sized settings)")
    p.add_argument("--editor", choices=["sd", "maskgit"])
    p.add_argument("--K", type=int, help="anchors")
    p.add_argument("--M", type=int, help="box proposals per anchor")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int, help="editor denoising steps")
    p.add_argument("--epochs", type=int)
    p.add_argument("--size", type=int, help="working resolution")
    p.add_argument("--device")


def read_jobs(path) -> dict[str, tuple[str, str]]:
    """Read the official `{image_name: [caption, prompt]}` format, with errors that say what is wrong."""
    try:
        jobs = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LRError(f"jobs file '{path}' does not exist.") from None
    except json.JSONDecodeError as e:
        raise LRError(f"jobs file '{path}' is not valid JSON ({e}).") from None
    if not isinstance(jobs, dict) or not all(isinstance(v, list) and len(v) == 2 for v in jobs.values()):
        raise LRError(f"jobs file '{path}' must map image names to [caption, prompt], e.g. "
                      '{"cat.jpg": ["cat", "a tiger"]}.')
    return {k: (v[0], v[1]) for k, v in jobs.items()}


def launcher_shard() -> tuple[int, int, int]:
    """(rank, world size, local rank) set by `accelerate launch` / `torchrun`; (0, 1, 0) alone."""
    env = __import__("os").environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def run_batch(jobs_path, images_dir=None, out_dir="outputs", cfg: LRConfig | None = None,
              shard: tuple[int, int] | None = None, progress: bool = True) -> dict[str, str]:
    """Run every job whose result folder is missing; returns {image_name: 'done'|'skipped'|error}.

    shard=(i, n) runs only jobs i, i+n, i+2n, ... Default: from the launcher, so that

        accelerate launch --multi_gpu --num_processes 4 -m lrlib batch jobs.json --out outputs/

    splits the jobs over 4 processes (one GPU each: cuda:LOCAL_RANK). No process talks to
    another: each result folder is written once, atomically, by the process that owns the job.
    """
    import torch
    from tqdm.auto import tqdm

    from lrlib.models import load_models
    from lrlib.pipeline import edit

    cfg = (cfg or LRConfig()).validate()
    rank, world, local = launcher_shard()
    shard = shard or (rank, world)
    if world > 1 and cfg.device == "auto" and torch.cuda.is_available():
        cfg = cfg.replace(device=f"cuda:{local % torch.cuda.device_count()}")
    jobs = read_jobs(jobs_path)
    images_dir = Path(images_dir) if images_dir else Path(jobs_path).parent
    out_dir = Path(out_dir)
    names = sorted(jobs)[shard[0]::shard[1]]
    status, models = {}, None
    for name in tqdm(names, desc=f"batch {shard[0]}/{shard[1]}", disable=not progress):
        target = out_dir / Path(name).stem
        if (target / "result.json").exists():
            status[name] = "skipped"
            continue
        caption, prompt = jobs[name]
        try:
            models = models or load_models(cfg)
            edit(images_dir / name, prompt, caption=caption, config=cfg, models=models).save(target)
            status[name] = "done"
        except LRError as e:          # bad input for this job: report, go on with the others
            status[name] = f"error: {e}"
    return status


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lrlib", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("edit", help="edit one image")
    e.add_argument("image")
    e.add_argument("--prompt", required=True)
    e.add_argument("--caption", default=None)
    e.add_argument("--out", default="outputs/edit")
    _add_common(e)
    b = sub.add_parser("batch", help="edit every image of a jobs file")
    b.add_argument("jobs")
    b.add_argument("--images", default=None, help="folder of the images (default: the jobs file's)")
    b.add_argument("--out", default="outputs")
    _add_common(b)
    d = sub.add_parser("demo", help="one edit on the built-in scene (world: the same rule)")
    d.add_argument("--out", default="outputs/demo")
    _add_common(d)
    args = ap.parse_args(argv)
    quiet_libraries()
    import warnings
    warnings.formatwarning = lambda msg, *a, **k: f"warning: {msg}\n"   # no file:line for users
    try:
        cfg = _config(args)
        from lrlib.world import banner
        print(banner(cfg), flush=True)
        if args.cmd == "demo":
            from lrlib.demo import run_demo
            print(run_demo(args.out, cfg))
        elif args.cmd == "edit":
            from lrlib.pipeline import edit
            r = edit(args.image, args.prompt, caption=args.caption, config=cfg)
            out = r.save(args.out)
            print(f"best anchor {r.best}, box {r.best_box}, S={r.scores['S'][r.best]:.3f}, "
                  f"{r.seconds:.1f} s -> {out}/final.png")
        else:
            status = run_batch(args.jobs, args.images, args.out, cfg)
            for k, v in status.items():
                print(f"{k}: {v}")
            if any(v.startswith("error") for v in status.values()):
                return 1
    except LRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
