"""Fail when a notebook pair has drifted: every .py under notebooks/ (jupytext percent, the
reviewed source; subfolders such as notebooks/solutions/ included) must equal its .ipynb
converted back to percent, and no .ipynb may carry outputs.

    python tools/nbpairs.py notebooks        # exit 1 and a list of drifted pairs
Fix: `make notebooks-sync` (jupytext --sync), then commit both files.
"""
import json
import subprocess
import sys
from pathlib import Path


def strip_formats(text: str) -> list[str]:
    return [l for l in text.splitlines() if not l.startswith("#     formats:")]


def notebook_files(folder: Path, pattern: str) -> list[Path]:
    """The files matching `pattern` in folder and its subfolders, Jupyter's checkpoints left out."""
    return sorted(p for p in folder.rglob(pattern) if ".ipynb_checkpoints" not in p.parts)


def check(folder: Path) -> list[str]:
    problems = []
    jupytext = [sys.executable, "-m", "jupytext"]
    for py in notebook_files(folder, "*.py"):
        nb = py.with_suffix(".ipynb")
        if not nb.exists():
            problems.append(f"{py} has no {nb.name}")
            continue
        back = subprocess.run(jupytext + ["--to", "py:percent", "-o", "-", str(nb)],
                              capture_output=True, text=True, check=True).stdout
        if strip_formats(back) != strip_formats(py.read_text()):
            problems.append(f"{py} and {nb.name} differ")
        cells = json.loads(nb.read_text())["cells"]
        if any(c.get("outputs") for c in cells if c["cell_type"] == "code"):
            problems.append(f"{nb.name} is stored with outputs (clear them)")
    for nb in notebook_files(folder, "*.ipynb"):
        if not nb.with_suffix(".py").exists():
            problems.append(f"{nb} has no .py source")
    return problems


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "notebooks")
    problems = check(folder)
    for p in problems:
        print("notebook pair:", p)
    if problems:
        print("fix: make notebooks-sync, then commit both files of each pair")
    sys.exit(1 if problems else 0)
