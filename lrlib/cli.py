"""Command line: one edit, or a batch in the official jobs format.

    python -m lrlib edit IMAGE --prompt "a blue square" --caption "red circle" --out outputs/x
    python -m lrlib batch JOBS.json --images DIR --out outputs/   # {image_name: [caption, prompt]}
    python -m lrlib demo --out outputs/demo                         # one edit on the built-in scene

A batch writes each job's result atomically to OUT/<image name with "." as "_"> (a.png -> a_png),
records in its result.json what produced it (image file and sha256, caption, prompt, config), and
on a rerun skips the jobs whose result is up to date and redoes the ones whose job changed. A
killed run resumes where it stopped; several processes on one output folder share the jobs
(each claims a job before running it). Model choice (real checkpoints): --dino, --clip,
--clip-pretrained, --sd-model, --maskgit-model, each a hub id or a local folder.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from pathlib import Path

from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.io import check_output, check_writable, claim, input_record, remove_stale
from lrlib.logs import quiet_libraries
from lrlib.text import check_prompt

MODEL_FLAGS = ("dino", "clip", "clip_pretrained", "sd_model", "maskgit_model")


def _config(args) -> LRConfig:
    """The world by lrlib.world's one rule (--world, then $LRLIB_WORLD, then auto), its settings,
    then the flags given."""
    from lrlib.world import choose_world, config_for
    world = choose_world(args.world, args.editor or "sd", allow_real=not args.cpu)
    cfg = config_for(world)
    over = {k: getattr(args, k) for k in ("K", "M", "seed", "editor", "device", "size")
            if getattr(args, k, None) is not None}
    if args.epochs is not None:
        over["epochs"] = args.epochs
    # model choices (--dino, --clip, --clip-pretrained, --sd-model, --maskgit-model)
    over.update({k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k, None) is not None})
    cfg = cfg.replace(**over)
    if getattr(args, "steps", None) is not None:    # the steps of the editor that runs
        cfg = cfg.replace(**{"maskgit_steps" if cfg.editor == "maskgit" else "steps": args.steps})
    return cfg.validate()


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
    p.add_argument("--steps", type=int, help="the editor's steps: SD denoising steps, or MaskGIT "
                                              "decoding steps with --editor maskgit")
    p.add_argument("--epochs", type=int)
    p.add_argument("--size", type=int, help="working resolution")
    p.add_argument("--device")
    m = p.add_argument_group("models (used with real checkpoints; each a hub id or a local folder)")
    m.add_argument("--dino", help="DINO, timm (default vit_base_patch16_224.dino)")
    m.add_argument("--clip", help="CLIP, open_clip architecture (default ViT-B-16)")
    m.add_argument("--clip-pretrained", help="open_clip pretrained tag (default openai)")
    m.add_argument("--sd-model", help="SD 1.x/2.x/SDXL inpainting id or folder (default sd2-community/stable-diffusion-2-inpainting)")
    m.add_argument("--maskgit-model", help="MaskGIT, aMUSEd (default amused/amused-256)")


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


IGNORED = ("progress", "device")   # config fields that do not change what a job computes


def job_folder(name: str) -> str:
    """The result folder of the job `name`: every "/", "\\" and "." made "_" (a.png -> a_png,
    sub/a.png -> sub_a_png), so a.png and a.jpg never share one."""
    return re.sub(r"[/\\.]", "_", name)


def job_record(image: Path, caption: str, prompt: str, cfg: LRConfig) -> dict:
    """What a job's result.json must record for the result to count as this job's."""
    return {"input": input_record(image), "caption": check_prompt(caption, "caption"),
            "prompt": check_prompt(prompt),
            "config": {k: v for k, v in cfg.to_dict().items() if k not in IGNORED}}


def changed(target: Path, want: dict) -> list[str] | None:
    """None if target holds no result; else what its result.json records differently from `want`
    ([] when it is this job's result)."""
    try:
        have = json.loads((target / "result.json").read_text())
    except (OSError, ValueError):
        return None
    diff = [k for k in ("input", "caption", "prompt") if have.get(k) != want[k]]
    have_cfg = have.get("config") or {}
    return diff + [f"config.{k}" for k, v in want["config"].items() if have_cfg.get(k) != v]


def find_images(jobs_path, jobs, images_dir=None) -> Path:
    """The folder of the jobs' images: `images_dir` if given, else the jobs file's folder or its
    images/ subfolder (the official layout: images.json beside images/), the one holding more."""
    if images_dir is not None:
        if not Path(images_dir).is_dir():
            raise LRError(f"--images '{images_dir}' is not a folder.")
        return Path(images_dir)
    here = Path(jobs_path).parent
    return max((here, here / "images"), key=lambda d: sum((d / n).is_file() for n in jobs))


def run_batch(jobs_path, images_dir=None, out_dir="outputs", cfg: LRConfig | None = None,
              shard: tuple[int, int] | None = None, progress: bool = True) -> dict[str, str]:
    """Run every job without an up-to-date result; returns {image_name: status}.

    Status: 'done'; 'redone (prompt changed)' (what differs from the job that made the old
    result); 'skipped' (up to date); 'claimed by pid P on HOST' (another live process runs it);
    'error: ...' (bad input or an output problem: the other jobs go on).

    Before any model is loaded: the jobs, every image path and prompt, and the output folder are
    checked. If the models cannot be loaded, the batch stops at once with an LRError.

    shard=(i, n) runs only jobs i, i+n, i+2n, ... Default: from the launcher, so that

        accelerate launch --multi_gpu --num_processes 4 -m lrlib batch jobs.json --out outputs/

    splits the jobs over 4 processes (one GPU each: cuda:LOCAL_RANK). Processes started without
    shards on one output folder share the jobs through claim files (OUT/.<folder>.claim: pid,
    host, time, while the job runs); a dead process's claim is taken over.
    """
    import torch
    from tqdm.auto import tqdm

    from lrlib.io import load_image
    from lrlib.models import load_models
    from lrlib.pipeline import edit

    cfg = (cfg or LRConfig()).validate()
    rank, world, local = launcher_shard()
    shard = shard or (rank, world)
    if world > 1 and cfg.device == "auto" and torch.cuda.is_available():
        cfg = cfg.replace(device=f"cuda:{local % torch.cuda.device_count()}")
    jobs = read_jobs(jobs_path)
    folders = {n: job_folder(n) for n in jobs}
    seen = {}
    for n in sorted(jobs):
        other = seen.setdefault(folders[n].casefold(), n)
        if other != n:
            raise LRError(f"jobs '{other}' and '{n}' would share the result folder "
                          f"'{folders[n]}'; rename one of the images.")
    images = find_images(jobs_path, jobs, images_dir)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LRError(f"--out '{out_dir}' is a file; batch writes one folder per job into a "
                      "folder: name one (it is created), e.g. outputs/.")
    check_writable(out_dir)
    names = sorted(jobs)[shard[0]::shard[1]]
    status = {}
    here = Path(jobs_path).parent
    where = (f"is not in '{images}'" if images_dir is not None else
             f"is neither beside the jobs file in '{here}' nor in '{here / 'images'}'")
    for n in names:                                  # every image and prompt, before any model
        try:
            if not (images / n).is_file():
                raise LRError(f"image '{n}' {where}; pass the images' folder with "
                              "--images.")
            check_prompt(jobs[n][0], "caption")
            check_prompt(jobs[n][1])
        except LRError as e:
            status[n] = f"error: {e}"
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale(out_dir)
    models = None
    for name in tqdm(names, desc=f"batch {shard[0]}/{shard[1]}", disable=not progress):
        if name in status:
            continue
        target, path = out_dir / folders[name], images / name
        caption, prompt = jobs[name]
        with claim(out_dir / f".{folders[name]}.claim") as holder:
            if holder is not None:
                status[name] = (f"claimed by pid {holder.get('pid')} on {holder.get('host')}; if "
                                f"that process is gone, delete {out_dir / f'.{folders[name]}.claim'}")
                continue
            diff = changed(target, job_record(path, caption, prompt, cfg))
            if diff == []:
                status[name] = "skipped"
                continue
            try:
                load_image(path)                     # a bad image fails before any model loads
                check_output(target)                 # so does a bad output folder
            except LRError as e:
                status[name] = f"error: {e}"
                continue
            if models is None:
                try:
                    models = load_models(cfg)
                except Exception as e:               # stop: every other job would fail the same
                    raise LRError(f"the models could not be loaded, so the batch stopped before "
                                  f"its first edit: {e}") from e
            try:
                edit(path, prompt, caption=caption, config=cfg, models=models).save(target)
                status[name] = "done" if diff is None else f"redone ({', '.join(diff)} changed)"
            except LRError as e:
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
    warnings.formatwarning = lambda msg, *_a, **_k: f"warning: {msg}\n"   # one line, no source
    try:
        cfg = _config(args)
        from lrlib.world import banner
        print(banner(cfg), flush=True)
        given = [f"--{k.replace('_', '-')}" for k in MODEL_FLAGS if getattr(args, k) is not None]
        if given and cfg.world != "real":
            print(f"note: {', '.join(given)} choose real checkpoints; this run uses the "
                  f"{cfg.world} world, which ignores them.", file=sys.stderr)
        replaces = args.cmd != "batch" and check_output(args.out)  # before any model runs
        if replaces:
            print(f"'{args.out}' holds an earlier lrlib result: it will be replaced.",
                  file=sys.stderr)
        if args.cmd == "demo":
            from lrlib.demo import run_demo
            print(run_demo(args.out, cfg))
        elif args.cmd == "edit":
            from lrlib.pipeline import edit
            r = edit(args.image, args.prompt, caption=args.caption, config=cfg)
            out = r.save(args.out)
            print(f"best anchor {r.best}, box {r.best_box_image} (x0, y0, x1, y1 in the input "
                  f"image's pixels), S={r.scores['S'][r.best]:.3f}, {r.seconds:.1f} s "
                  f"-> {out}/final.png")
        else:
            status = run_batch(args.jobs, args.images, args.out, cfg)
            for k, v in status.items():
                print(f"{k}: {v}")
            if any(v.startswith("error") for v in status.values()):
                return 1
    except (LRError, OSError) as err:        # OSError: a file problem lrlib did not foresee
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing half-written was left (results are written atomically).",
              file=sys.stderr)
        return 130
    return 0
