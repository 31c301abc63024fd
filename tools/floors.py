"""The declared minimum versions (pyproject.toml), as pins for the minimum-versions CI step.

    python tools/floors.py            # prints "diffusers==0.30.0 timm==1.0.29 ..." (pip arguments)
    python tools/floors.py --check    # exit 1 unless this environment has exactly those versions

Every floor is installed as is, torch and torchvision included (2.4 / 0.19: PyPI's CUDA 12.1
wheels, about 2.9 GB, run on the CPU), so each floor is a version CI has run.
"""
import re
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP: set[str] = set()


def floors() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    pins = dict(re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9][^",]*)"', deps))
    return {k: v for k, v in pins.items() if k not in SKIP}


def same(a: str, b: str) -> bool:
    """0.30 == 0.30.0 (release numbers only, trailing zeros ignored)."""
    def norm(v):
        parts = [int(x) for x in re.match(r"[0-9.]*[0-9]", v).group(0).split(".")]
        while parts and parts[-1] == 0:
            parts.pop()
        return parts
    return norm(a) == norm(b)


if __name__ == "__main__":
    want = floors()
    if "--check" not in sys.argv:
        print(" ".join(f"{k}=={v}" for k, v in want.items()))
        sys.exit(0)
    got = {k: version(k) for k in want}
    bad = [k for k in want if not same(got[k], want[k])]
    for k in want:
        print(f"{k:18s} floor {want[k]:10s} installed {got[k]:10s}{'' if k not in bad else 'DIFFERS'}")
    sys.exit(1 if bad else 0)
