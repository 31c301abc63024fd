"""`python -m lrlib.bench toy|learning|speed|draft|blend|scenes|smoke|prepare|estimate|gpu-check`: the benchmarks' command line (lrlib/bench/__init__.py)."""
from __future__ import annotations

import argparse
import time

from lrlib.bench import __doc__ as DOC
from lrlib.config import LRConfig
from lrlib.logs import quiet_libraries


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lrlib.bench", description=DOC,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("toy", help="region strategies and loss ablations in the toy world")
    t.add_argument("--n", type=int, default=200)
    t.add_argument("--set", default="first", choices=["first", "second", "tuning"],
                   help="task seeds: first = BENCHMARK_SEED0 + i (lrlib/bench/README.md's tables), second = "
                        "+50_000 + i (held out, never tuned on), tuning = +100_000 + i")
    t.add_argument("--every", type=int, default=0,
                   help="print the table so far after every N tasks (long runs)")
    t.add_argument("--rows", default=None,
                   help="subset of the rows, separated by | (default: all; see lrlib/bench/toy.py)")
    t.add_argument("--editor", default="sd", choices=["sd", "maskgit"])
    t.add_argument("--world", default="toy", choices=["toy", "random"])
    t.add_argument("--estimator", default=None, choices=["st", "expected"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--scheduler", default=None, choices=["default", "dpm++"],
                   help="SD sampler (default: the checkpoint's; dpm++ = DPM-Solver++)")
    t.add_argument("--steps", type=int, default=None, help="SD sampling steps (toy default: 10)")
    t.add_argument("--aspect", type=float, default=1.0,
                   help="scene width / height (2: landscape 2:1 scenes; default 1, square)")
    t.add_argument("--start", type=int, default=0,
                   help="run only tasks start..n-1 (split a long run over processes)")
    t.add_argument("--save", default=None,
                   help="also write every row's per-task grades to this JSON file (for toy-merge)")
    g = sub.add_parser("toy-merge", help="one table from the --save files of a split toy run")
    g.add_argument("files", nargs="+")
    e = sub.add_parser("learning", help="does the RGN's choice matter? ceiling, floor, random and "
                                        "learned picks among the same candidates (learning.py)")
    e.add_argument("--n", type=int, default=200)
    e.add_argument("--set", default="first", choices=["first", "second", "tuning"])
    e.add_argument("--proposals", default=None, choices=["squares", "fitted", "ladder"],
                   help="the proposal family (default: LRConfig.cpu()'s)")
    e.add_argument("--M", type=int, default=None, help="proposals per anchor (default: the config's)")
    e.add_argument("--ladder", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="ladder scales lo..hi (default: the config's ladder_lo, ladder_hi)")
    e.add_argument("--aspects", type=float, nargs="+", default=None,
                   help="ladder aspects, cycled over the rungs")
    e.add_argument("--st", default="all", choices=["all", "plain", "none"],
                   help="straight-through rows: with each loss removed (all), all losses only "
                        "(plain), none")
    e.add_argument("--start", type=int, default=0)
    e.add_argument("--every", type=int, default=0)
    e.add_argument("--save", default=None, help="write the per-task records to this JSON file, "
                   "and the RGN's inputs, boxes and DINO blobs to FILE.inputs.pt (to retrain "
                   "RGN designs offline: lrlib.bench.learning_replay)")
    f = sub.add_parser("learning-merge", help="one table from several learning --save files")
    f.add_argument("files", nargs="+")
    s = sub.add_parser("speed", help="evaluations / seconds / memory per edit vs the official loop")
    s.add_argument("--size", default="toy", choices=["toy", "small", "full"])
    s.add_argument("--device", default="auto")
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--n", type=int, default=None, help="edits per mode (toy: held-out tasks, 3)")
    s.add_argument("--draft-steps", type=int, default=5, help="DPM++ steps of the draft row")
    d = sub.add_parser("draft", help="toy benchmark: drafts + regenerated winner vs full candidates")
    d.add_argument("--n", type=int, default=200)
    d.add_argument("--draft-steps", type=int, nargs="+", default=[5])
    d.add_argument("--start", type=int, default=0, help="skip the first tasks (split a long run)")
    d.add_argument("--set", default="first", choices=["first", "second", "tuning"])
    d.add_argument("--no-redrawn", action="store_true", help="skip the 'table redrawn' row")
    sub.add_parser("estimate", help="GPU seconds per edit, estimated from counted work x FLOPs")
    c = sub.add_parser("gpu-check", help="one family at full size on a CUDA GPU: s/edit, memory")
    c.add_argument("--family", default="sd2", choices=["sd2", "sd15", "sdxl", "amused"])
    c.add_argument("--drafts", type=int, nargs="+", default=[5, 0],
                   help="draft_steps values to time (5: LRConfig(); 0: no drafts)")
    m = sub.add_parser("smoke", help="every default architecture, random weights, one edit each")
    m.add_argument("--sdxl-resolution", type=int, default=1024,
                   help="SDXL working size (native 1024; CI uses 512 to fit its CPU time)")
    m.add_argument("--size", default="full", choices=["full", "small"])
    m.add_argument("--family", nargs="+", default=None,
                   help="sd2 sd15 sdxl amused (default: all, in that order)")
    b = sub.add_parser("blend", help="seam and success of the paste for several blend_px")
    b.add_argument("--n", type=int, default=50)
    b.add_argument("--blend", type=int, nargs="+", default=[0, 2, 3, 4])
    b.add_argument("--editor", default="sd", choices=["sd", "maskgit"])
    b.add_argument("--tau", type=float, nargs="+", default=[0.0],
                   help="blend_tau values (lrlib.blend.keep_changes; 0: the plain ramp)")
    b.add_argument("--set", default="first", choices=["first", "second", "tuning"])
    r = sub.add_parser("scenes", help="milliseconds to draw a toy scene")
    r.add_argument("--n", type=int, default=100)
    q = sub.add_parser("prepare", help="seconds per stage of prepare before the edits, real-size "
                                       "DINO and CLIP, per canvas size")
    q.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512, 1024])
    q.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    quiet_libraries()
    if args.cmd == "toy":
        cfg = LRConfig.cpu(world=args.world, editor=args.editor, seed=args.seed)
        if args.estimator:
            cfg = cfg.replace(estimator=args.estimator)
        if args.scheduler:
            cfg = cfg.replace(scheduler=args.scheduler)
        if args.steps:
            cfg = cfg.replace(steps=args.steps)
        t0 = time.perf_counter()
        from lrlib.bench.toy import STRATEGIES, format_table, run_toy
        rows = STRATEGIES if args.rows is None else tuple(r.strip() for r in args.rows.split("|"))
        unknown = [r for r in rows if r not in STRATEGIES]
        if unknown:
            ap.error(f"unknown rows {unknown}; choose from {list(STRATEGIES)}")
        if args.save:                                          # refused before the hour of work
            import os

            from lrlib.outputs import check_writable
            if os.path.lexists(args.save):
                ap.error(f"--save {args.save}: the file exists and is never overwritten; name a "
                         "new file.")
            check_writable(os.path.dirname(os.path.abspath(args.save)), args.save)
        raw = {}
        summary = run_toy(args.n, cfg, strategies=rows, tasks=args.set, every=args.every,
                          report=lambda text: print(text, flush=True), aspect=args.aspect,
                          start=args.start, raw=raw)
        span = f"tasks {args.start}..{args.n - 1}" if args.start else f"{args.n} tasks"
        if args.save:
            from lrlib.bench.toy import save_rows
            save_rows(args.save, raw, dict(set=args.set, start=args.start, n=args.n,
                                           seconds=time.perf_counter() - t0))
        print(f"toy benchmark: {span} of the {args.set!r} set, editor={args.editor}, "
              f"world={args.world}, K={cfg.K} M={cfg.M} iterations={cfg.iterations} "
              f"estimator={cfg.estimator} gamma={cfg.gamma} score_scale={cfg.score_scale} "
              f"anchor_pool={cfg.anchor_pool} anchor_view={cfg.anchor_view} "
              f"relation_weight={cfg.relation_weight} delta={cfg.delta} "
              f"prune_margin={cfg.prune_margin} proposals={cfg.proposals} "
              f"ladder={cfg.ladder_lo}-{cfg.ladder_hi} objective={cfg.objective} "
              f"lambda_cover={cfg.lambda_cover}@{cfg.cover_margin} lambda_spill={cfg.lambda_spill} "
              f"fit={cfg.fit_min}-{cfg.fit_max}@{cfg.fit_level} fit_snap={cfg.fit_snap} "
              f"fit_reach={cfg.fit_reach} anchor_cover={cfg.anchor_cover} max_blob={cfg.max_blob} "
              f"sampler={cfg.scheduler}/{cfg.steps} steps, aspect={args.aspect:g}, "
              f"{time.perf_counter() - t0:.0f} s")
        print(format_table(summary))
    elif args.cmd == "learning":
        from lrlib.bench.learning import format_learning, run_learning, save_records
        cfg = LRConfig.cpu(world="toy")
        if args.proposals:
            cfg = cfg.replace(proposals=args.proposals)
        if args.M:
            cfg = cfg.replace(M=args.M)
        if (args.ladder or args.aspects) and cfg.proposals != "ladder":
            ap.error("--ladder / --aspects shape proposals='ladder' only")
        if args.ladder:
            cfg = cfg.replace(ladder_lo=args.ladder[0], ladder_hi=args.ladder[1])
        cfg.validate()
        design = {}
        if cfg.proposals == "ladder":
            design = dict(lo=cfg.ladder_lo, hi=cfg.ladder_hi, aspects=tuple(args.aspects or (1.0,)))
        t0 = time.perf_counter()
        records = run_learning(args.n, cfg, args.set, args.start, st=args.st,
                               design=design or None, every=args.every,
                               report=lambda text: print(text, flush=True),
                               keep_inputs=bool(args.save))
        if args.save:
            save_records(args.save, records, dict(set=args.set, start=args.start, n=args.n,
                                                  proposals=cfg.proposals, M=cfg.M, design=design,
                                                  seconds=time.perf_counter() - t0))
        lad = f" ladder={design}" if design else ""
        print(f"learning benchmark: tasks {args.start}..{args.n - 1} of the {args.set!r} set, "
              f"proposals={cfg.proposals}{lad} K={cfg.K} M={cfg.M} "
              f"iterations={cfg.iterations} lr={cfg.lr} table_views={cfg.table_views} "
              f"seed={cfg.seed}, {time.perf_counter() - t0:.0f} s")
        print(format_learning(records))
    elif args.cmd == "learning-merge":
        from lrlib.bench.learning import format_learning, load_records
        records, metas = load_records(args.files)
        print("learning benchmark, merged: " + ", ".join(
            f"{m['set']} tasks {m['start']}..{m['n'] - 1} proposals={m['proposals']}"
            f"{' ' + str(m['design']) if m['design'] else ''} ({m['seconds']:.0f} s)" for m in metas))
        print(format_learning(records))
    elif args.cmd == "toy-merge":
        from lrlib.bench.toy import format_table, load_rows
        rows, meta = load_rows(args.files)
        print("toy benchmark, merged: " + ", ".join(
            f"{m['set']} tasks {m['start']}..{m['n'] - 1} ({m['seconds']:.0f} s)" for m in meta))
        print(format_table({k: r.summary() for k, r in rows.items()}))
    elif args.cmd == "draft":
        from lrlib.bench.speed import run_draft
        print(run_draft(args.n, draft_steps=tuple(args.draft_steps), start=args.start,
                        tasks=args.set, redrawn=not args.no_redrawn))
    elif args.cmd == "estimate":
        from lrlib.bench.gpu_estimate import table
        print(table())
    elif args.cmd == "gpu-check":
        import torch
        if not torch.cuda.is_available():
            ap.error("gpu-check needs a CUDA GPU (none is visible); `estimate` prints estimates.")
        from lrlib.bench.gpu_check import run_check
        run_check(args.family, tuple(args.drafts))
    elif args.cmd == "smoke":
        from lrlib.bench.smoke import FAMILIES, run_smoke
        run_smoke(args.size, args.family or FAMILIES, args.sdxl_resolution)
    elif args.cmd == "blend":
        from lrlib.bench.blend import format_blend, run_blend
        cfg = LRConfig.cpu(world="toy", editor=args.editor)
        t0 = time.perf_counter()
        summary = run_blend(args.n, args.blend, cfg, taus=tuple(args.tau), tasks=args.set)
        print(f"blend benchmark: {args.n} tasks of the {args.set!r} set, editor={args.editor}, K={cfg.K} "
              f"M={cfg.M}, {time.perf_counter() - t0:.0f} s")
        print(format_blend(summary))
    elif args.cmd == "scenes":
        from lrlib.bench.scenes import run_scenes
        print(run_scenes(args.n))
    elif args.cmd == "prepare":
        from lrlib.bench.prepare import run_prepare
        run_prepare(tuple(args.sizes), args.threads, report=lambda line: print(line, flush=True))
    else:
        from lrlib.bench.speed import run_speed
        print(run_speed(args.size, args.device, args.steps, n=args.n, fast_steps=args.draft_steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
