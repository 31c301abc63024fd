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

Every LRConfig setting has a flag (its name with dashes: --anchor-pool, --fit-min; on/off ones
as --full-res / --no-full-res), checked against its declared range before any model loads;
--paper starts from the paper's method (LRConfig.paper()), --config result.json from an earlier
edit's settings. Errors are one line (exit status 2); Ctrl-C and SIGTERM stop cleanly (no
half-written folder or claim is left; exit status 130 and 143).
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import signal
import sys
import warnings
from pathlib import Path

from lrlib.config import KNOBS, PAPER_METHOD, LRConfig, unknown_setting
from lrlib.errors import LRError
from lrlib.text import check_prompt, check_utf8

# Only light modules are imported here (no torch, numpy, PIL): `python -m lrlib` reaches main()
# and its Ctrl-C handling within a fraction of a second; the rest is imported inside main().

MODEL_FLAGS = ("dino", "clip", "clip_pretrained", "sd_model", "maskgit_model")
#: flags of their own: --world takes 'auto' too; --steps sets the steps of the editor that runs
OWN_FLAGS = ("world", "steps")
#: recorded settings that belong to the machine that ran, not to the edit (--config skips them)
MACHINE = ("device", "progress")
EXIT_ERROR, EXIT_INTERNAL, EXIT_SIGINT, EXIT_SIGTERM = 2, 70, 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, timeout, schedulers, container stops), raised where the program is so that
    it unwinds as Ctrl-C does: every `finally` removes what it was writing."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) that name the closest flag for a misspelt one."""

    flags: tuple = ()

    def error(self, message):
        m = re.search(r"unrecognized arguments: (\S+)", message)
        if m:
            near = difflib.get_close_matches(m.group(1).split("=")[0], self.flags, 1, 0.6)
            message += f"; did you mean {near[0]}?" if near else ""
        self.exit(EXIT_ERROR, f"error: {message} (see: {self.prog} --help)\n")


def _parse_flags(args) -> dict:
    """{field: value} of every LRConfig flag given, each read as its declaration says."""
    out = {}
    for name, k in KNOBS.items():
        v = getattr(args, name, None)
        if v is not None and name not in OWN_FLAGS:
            out[name] = k.parse(v) if isinstance(v, str) else v
    return out


def read_config(path) -> dict:
    """The settings of an earlier edit: its result.json (the "config" recorded there) or a JSON
    object of LRConfig fields. The machine's own settings (device, progress) are left out;
    names this lrlib does not know are left out with a warning."""
    data = read_json(path, "config file")
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise LRError(f"config file '{path}' must be an edit's result.json or a JSON object of "
                      'LRConfig settings, e.g. {"K": 5, "steps": 30}.')
    unknown = [k for k in data if k not in KNOBS]
    if unknown:
        warnings.warn(f"config file '{path}': ignored what this lrlib does not know: "
                      + "; ".join(unknown_setting(k) for k in unknown[:3]))
    return {k: v for k, v in data.items() if k in KNOBS and k not in MACHINE}


def _config(args) -> LRConfig:
    """The world by lrlib.worlds' one rule (--world, then --config's, then $LRLIB_WORLD, then
    auto), its settings, then --config's, then --paper's method, then the flags given."""
    from lrlib.worlds import choose_world, config_for
    flags = _parse_flags(args)
    saved = read_config(args.config) if getattr(args, "config", None) else {}
    editor = flags.get("editor", saved.get("editor", "sd"))
    if args.world is None and "world" in saved:
        world = saved["world"]
    else:
        world = choose_world(args.world, editor if editor in ("sd", "maskgit") else "sd",
                             allow_real=not args.cpu)
    if world not in ("real", "toy", "random"):
        raise LRError(f"config file '{args.config}': world={world!r} is unknown; use --world "
                      "real, toy or random.")
    cfg = config_for(world)
    if saved:
        cfg = cfg.replace(**{k: v for k, v in saved.items() if k != "world"})
    if getattr(args, "paper", False):
        cfg = cfg.replace(**PAPER_METHOD)
    cfg = cfg.replace(**flags)
    if getattr(args, "steps", None) is not None:    # the steps of the editor that runs
        name = "maskgit_steps" if cfg.editor == "maskgit" else "steps"
        cfg = cfg.replace(**{name: KNOBS[name].parse(args.steps) if isinstance(args.steps, str)
                             else args.steps})
    return cfg.validate()


def _help(k) -> str:
    return f"{k.meaning} [{k.short()}]".replace("%", "%%")


def _add_common(p):
    p.add_argument("--world", choices=["auto", "real", "toy", "random"], default=None,
                   help="which models run: real checkpoints (GPU + hub), the shipped toy world, "
                        "or random stand-ins; default $LRLIB_WORLD, else auto (real only on a "
                        "GPU that reaches the hub, else toy)")
    p.add_argument("--cpu", action="store_true",
                   help="never the real checkpoints: auto picks the toy world (CPU-sized settings)")
    p.add_argument("--paper", action="store_true",
                   help="the paper / official code's method (LRConfig.paper()): straight-through "
                        "Gumbel, S = 2 S_t2i + S_i2i, top-K peaks, M squares; flags apply on top")
    p.add_argument("--config", metavar="RESULT_JSON",
                   help="rerun with an earlier edit's settings: its result.json (or a JSON object "
                        "of LRConfig settings); --world, --paper and flags apply on top")
    p.add_argument("--steps", help="the editor's steps: SD denoising steps, or MaskGIT decoding "
                                   f"steps with --editor maskgit [{KNOBS['steps'].short()}]")
    groups = {"model": p.add_argument_group("models (used with real checkpoints; each a hub id "
                                            "or a local folder)"),
              "method": p.add_argument_group("method (LRConfig fields; `python -c \"import lrlib; "
                                             "print(lrlib.LRConfig.describe())\"` lists them)"),
              "output": p.add_argument_group("output"),
              "runtime": p.add_argument_group("runtime")}
    for name, k in KNOBS.items():
        if name in OWN_FLAGS:
            continue
        g = groups[k.kind]
        if k.type is bool:
            g.add_argument(k.flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=_help(k))
        else:
            metavar = "{" + ",".join(k.choices) + "}" if k.choices else name.upper()
            g.add_argument(k.flag, dest=name, default=None, metavar=metavar, help=_help(k))


def read_json(path, what: str = "jobs file"):
    """A JSON file's content, read whatever encoding a tool saved it in that can be told for
    sure (UTF-8 with or without a BOM, UTF-16 or UTF-32 with or without one); any other (cp1252,
    Latin-1) is refused with the fix. An object naming a key twice is refused (JSON would keep
    only the last)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise LRError(f"{what} '{path}' does not exist.") from None
    except IsADirectoryError:
        raise LRError(f"{what} '{path}' is a folder; name the JSON file.") from None
    except OSError as e:
        raise LRError(f"{what} '{path}' cannot be read ({e.strerror or e}).") from None
    encoding = json.detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise LRError(f"{what} '{path}' is not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                      f"{e.start}; saved as cp1252 / Latin-1?): save it as UTF-8 (in Notepad: "
                      "Save as, Encoding: UTF-8).") from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise LRError(f"{what} '{path}' is empty; write the jobs as "
                      '{"image.png": ["caption", "prompt"], ...}.')

    def no_repeats(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                raise LRError(f"{what} '{path}' names {_safe(k)!r} twice; JSON keeps only the "
                              "last, so one would be lost: merge the two entries (or rename one "
                              "image).")
            seen[k] = v
        return seen
    try:
        return json.loads(text, object_pairs_hook=no_repeats)
    except json.JSONDecodeError as e:
        raise LRError(f"{what} '{path}' is not valid JSON ({e}).") from None
    except RecursionError:
        raise LRError(f"{what} '{path}' is nested too deeply to be a {what}.") from None
    except ValueError as e:            # e.g. an integer with more digits than Python reads
        if isinstance(e, LRError):
            raise
        raise LRError(f"{what} '{path}' is not valid JSON ({e}).") from None


def _safe(text) -> str:
    """`text` as it can be printed and written (a byte that was not UTF-8 shown as \\udcxx)."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def read_jobs(path) -> dict[str, tuple[str, str]]:
    """Read the official `{image_name: [caption, prompt]}` format, with errors that say what is
    wrong: not there, not text in a known encoding, not JSON, empty, an image named twice."""
    jobs = read_json(path, "jobs file")
    if not isinstance(jobs, dict) or not all(isinstance(v, list) and len(v) == 2
                                             for v in jobs.values()):
        raise LRError(f"jobs file '{path}' must map image names to [caption, prompt], e.g. "
                      '{"cat.jpg": ["cat", "a tiger"]}.')
    if not jobs:
        raise LRError(f"jobs file '{path}' holds no jobs ({{}}); write them as "
                      '{"image.png": ["caption", "prompt"], ...}.')
    for name in jobs:
        if not name.strip():
            raise LRError(f"jobs file '{path}' has a job with an empty image name; name the "
                          "image file.")
        try:
            check_utf8(name, "image name")
        except LRError as e:
            raise LRError(f"jobs file '{path}': {_safe(name)!r}: {e}") from None
    return {k: (v[0], v[1]) for k, v in jobs.items()}


def launcher_shard() -> tuple[int, int, int]:
    """(rank, world size, local rank) set by `accelerate launch` / `torchrun`; (0, 1, 0) alone."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


IGNORED = ("progress", "device")   # config fields that do not change what a job computes


def job_folder(name: str) -> str:
    """The result folder of the job `name`: every "/", "\\" and "." made "_" (a.png -> a_png,
    sub/a.png -> sub_a_png), so a.png and a.jpg never share one."""
    return re.sub(r"[/\\.]", "_", name)


def job_record(image: Path, caption: str, prompt: str, cfg: LRConfig) -> dict:
    """What a job's result.json must record for the result to count as this job's."""
    from lrlib.images import input_record
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
    if not isinstance(have, dict):
        return None
    diff = [k for k in ("input", "caption", "prompt") if have.get(k) != want[k]]
    have_cfg = have.get("config") if isinstance(have.get("config"), dict) else {}
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

    from lrlib.outputs import check_output, check_writable, claim, remove_stale
    from lrlib.images import load_image
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
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
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
            _stop_if_signalled()
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
                _stop_if_signalled()
                status[name] = f"error: {e}"
                continue
            if models is None:
                try:
                    models = load_models(cfg)
                except Exception as e:               # stop: every other job would fail the same
                    _stop_if_signalled()
                    raise LRError(f"the models could not be loaded, so the batch stopped before "
                                  f"its first edit: {e}") from e
            try:
                edit(path, prompt, caption=caption, config=cfg, models=models).save(target)
                status[name] = "done" if diff is None else f"redone ({', '.join(diff)} changed)"
            except LRError as e:
                _stop_if_signalled()
                status[name] = f"error: {e}"
    return status


def _parser() -> _Parser:
    ap = _Parser(prog="python -m lrlib", description=__doc__, allow_abbrev=False,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("edit", help="edit one image", allow_abbrev=False)
    e.add_argument("image")
    e.add_argument("--prompt", required=True)
    e.add_argument("--caption", default=None)
    e.add_argument("--out", default="outputs/edit")
    _add_common(e)
    b = sub.add_parser("batch", help="edit every image of a jobs file", allow_abbrev=False)
    b.add_argument("jobs")
    b.add_argument("--images", default=None, help="folder of the images (default: the jobs file's)")
    b.add_argument("--out", default="outputs")
    _add_common(b)
    d = sub.add_parser("demo", help="one edit on the built-in scene (world: the same rule)",
                       allow_abbrev=False)
    d.add_argument("--out", default="outputs/demo")
    _add_common(d)
    flags = sorted({s for p in (e, b, d) for a in p._actions for s in a.option_strings})
    for p in (ap, e, b, d):
        p.flags = tuple(flags)
    return ap


def _one_line(text) -> str:
    """An error message as one printable line."""
    return " ".join(_safe(text).split())


def main(argv=None) -> int:
    """The command line; returns the exit status: 0 done, 1 some batch jobs failed (each said),
    2 bad input (one line), 70 a failure lrlib did not foresee (one line: a bug to report),
    130 Ctrl-C, 143 SIGTERM."""
    for stream in (sys.stdout, sys.stderr):           # a name that was not UTF-8 still prints
        if hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass
    previous, formatwarning = _catch_signals(), warnings.formatwarning
    try:
        return _main(argv)
    except Terminated:
        print("terminated (SIGTERM): stopped; nothing half-written was left (results are "
              "written atomically, claims released).", file=sys.stderr)
        return EXIT_SIGTERM
    except KeyboardInterrupt:
        print("interrupted: stopped; nothing half-written was left (results are written "
              "atomically, claims released).", file=sys.stderr)
        return EXIT_SIGINT
    finally:                                            # main() in a process of the caller's
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _SIGNALLED.clear()
        warnings.formatwarning = formatwarning


_SIGNALLED: list = []          # the signal _catch_signals received, if any


def _stop_if_signalled() -> None:
    """Raise the received signal again. Called where an error is caught: a library may turn the
    KeyboardInterrupt raised inside its code into its own error (diffusers' lazy imports wrap
    whatever an import raised in a RuntimeError), which must not be reported as that error, nor
    let a batch go on to its next job."""
    if _SIGNALLED:
        raise Terminated() if _SIGNALLED[0] == signal.SIGTERM else KeyboardInterrupt()


def _catch_signals() -> dict:
    """Ctrl-C and SIGTERM raised as KeyboardInterrupt / Terminated (once: a second one while
    cleaning up is ignored, so the cleanup ends); a signal the process was started ignoring
    stays ignored. Returns the handlers they replace ({} off the main thread, where Python
    cannot set handlers)."""
    def stop(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _SIGNALLED.append(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    _SIGNALLED.clear()
    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is not signal.SIG_IGN:   # kept ignored (nohup, a & job)
                previous[sig] = signal.signal(sig, stop)
    except ValueError:                                  # not the main thread
        pass
    return previous


def _main(argv) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:                             # --help, or a one-line usage error
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    warnings.formatwarning = lambda msg, *_a, **_k: f"warning: {_one_line(msg)}\n"
    try:
        if args.cmd == "edit":                          # the texts, before anything is loaded
            check_prompt(args.prompt)
            if args.caption is not None:
                check_prompt(args.caption, "caption")
        cfg = _config(args)
        from lrlib.outputs import check_output
        from lrlib.logs import quiet_libraries
        from lrlib.worlds import banner
        quiet_libraries()
        print(banner(cfg), flush=True)
        given = [f"--{k.replace('_', '-')}" for k in MODEL_FLAGS if getattr(args, k) is not None]
        if given and cfg.world != "real":
            print(f"note: {', '.join(given)} choose real checkpoints; this run uses the "
                  f"{cfg.world} world, which ignores them.", file=sys.stderr)
        replaces = args.cmd != "batch" and check_output(args.out)  # before any model runs
        if replaces:
            print(f"'{_safe(args.out)}' holds an earlier lrlib result: it will be replaced.",
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
                print(f"{k}: {_one_line(v)}")
            if any(v.startswith("error") for v in status.values()):
                return 1
    except (LRError, OSError) as err:        # OSError: a file problem lrlib did not foresee
        _stop_if_signalled()
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:                 # a bug: one line, the traceback only when asked
        _stop_if_signalled()
        if os.environ.get("LRLIB_TRACEBACK"):
            raise
        first = str(err).splitlines()[0][:300] if str(err) else ""
        print(f"error: lrlib failed unexpectedly ({type(err).__name__}: {_one_line(first)}); "
              "this is a bug in lrlib: please report it with the command line (LRLIB_TRACEBACK=1 "
              "shows where it happened).", file=sys.stderr)
        return EXIT_INTERNAL
    return 0
