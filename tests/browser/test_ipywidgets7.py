"""The panel under ipywidgets 7 (Colab ships 7), in a subprocess that imports ipywidgets 7
from a folder of its own (conftest.ipywidgets7_dir; `make test-browser` installs it)."""
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_panel_builds_and_runs_with_ipywidgets7(ipywidgets7):
    t0 = time.monotonic()
    path = os.pathsep.join(filter(None, [str(ipywidgets7), str(HERE.parents[1]),
                                         os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    p = subprocess.run([sys.executable, str(HERE / "ipywidgets7_panel.py")], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.startswith("ok 7."), p.stdout + p.stderr[-4000:]
    print(f"[{time.monotonic() - t0:6.1f} s] {p.stdout.strip()}")
