"""Command line of the toy world: train its models, evaluate the shipped ones.

    python -m lrlib.toy train clip                 # -> lrlib/toy/weights/clip (the shipped model)
    python -m lrlib.toy train dino --steps 100 --out /tmp/dino
    python -m lrlib.toy train clip --help          # every TrainConfig field is an option
    python -m lrlib.toy eval                       # metrics of the shipped models, as a table

A trainer is a module listed in TRAINERS. If it has `main(argv)`, `train NAME ARGS...` calls it;
otherwise it needs a `TrainConfig` dataclass, `DEFAULT_OUT` and `train(cfg, out_dir, progress)`,
and every TrainConfig field becomes an option (plus --out and --quiet).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys

TRAINERS = {"clip": "lrlib.toy.train_clip", "dino": "lrlib.toy.train_dino",
            "sd": "lrlib.toy.train_sd", "maskgit": "lrlib.toy.train_maskgit"}


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def config_from_args(cls, argv, prog: str):
    """Parse `--field value` for every field of the dataclass `cls`; returns (cfg, out, quiet)."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--out", help="output folder (default: the shipped weights folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    for f in dataclasses.fields(cls):
        typ = {bool: _bool}.get(type(f.default), type(f.default))
        p.add_argument(f"--{f.name}", type=typ, default=f.default, help=f"default {f.default}")
    a = vars(p.parse_args(argv))
    out, quiet = a.pop("out"), a.pop("quiet")
    return cls(**a), out, quiet


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"] and len(argv) >= 2 and argv[1] in TRAINERS:
        mod = importlib.import_module(TRAINERS[argv[1]])
        if hasattr(mod, "main"):
            mod.main(argv[2:])
            return 0
        cfg, out, quiet = config_from_args(mod.TrainConfig, argv[2:], f"lrlib.toy train {argv[1]}")
        print(mod.train(cfg, out or mod.DEFAULT_OUT, progress=not quiet))
        return 0
    if argv[:1] == ["eval"]:
        from lrlib.toy.evaluate import main as eval_main
        return eval_main(argv[1:])
    print(__doc__.strip() + f"\n\ntrainers: {', '.join(TRAINERS)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
