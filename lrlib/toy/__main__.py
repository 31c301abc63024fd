"""Command line of the toy world: train its models, evaluate the shipped ones.

    python -m lrlib.toy train clip                 # -> lrlib/toy/weights/clip (the shipped model)
    python -m lrlib.toy train dino --steps 100 --out /tmp/dino
    python -m lrlib.toy train sd --tiny --out /tmp/sd   # a few-second run of any trainer
    python -m lrlib.toy train clip --help          # every TrainConfig field is an option
    python -m lrlib.toy eval                       # metrics of the shipped models, as a table

The trainers live in `lrlib.toy.train` (one module each, and `common.py`).
"""
from __future__ import annotations

import sys

from lrlib.toy.train import TRAINERS


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"] and len(argv) >= 2 and argv[1] in TRAINERS:
        from lrlib.toy.train import main as train_main

        train_main(argv[1], argv[2:])
        return 0
    if argv[:1] == ["eval"]:
        from lrlib.toy.evaluate import main as eval_main
        return eval_main(argv[1:])
    print(__doc__.strip() + f"\n\ntrainers: {', '.join(TRAINERS)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
