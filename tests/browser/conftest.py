"""Browser tests: notebook 10's panel driven in headless Chromium, in JupyterLab and in Voila.

They need Debian's chromium (`apt-get install -y chromium`; Playwright's own browser download is
not used) and the test extra (playwright, jupyterlab, voila). They run only when asked for:

    LRLIB_BROWSER_TEST=1 .venv/bin/python -m pytest -q -s tests/browser     # .ci/run does this

Without LRLIB_BROWSER_TEST they are reported as skipped (with this reason), so a plain
`pytest tests` on a machine without a browser neither fails nor hides them. Asked for on a
machine that lacks chromium or playwright, they fail and say what to install.
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LRLIB_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "outputs" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def pytest_collection_modifyitems(config, items):
    if os.environ.get("LRLIB_BROWSER_TEST") == "1":
        return
    skip = pytest.mark.skip(reason="browser test: run with LRLIB_BROWSER_TEST=1 (needs Debian's "
                                   "chromium and the test extra; .ci/run runs it)")
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    """Until `url` answers (any HTTP status: the server is up); fail with the server's log if it
    exits or the time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started in its own session, and its kernels, by its process group id."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def ipywidgets7_dir() -> Path:
    """Where ipywidgets 7 lies, installed apart from the venv (`make test-browser` does it:
    pip install --no-deps --target .venv/ipywidgets7 'ipywidgets>=7.7,<8' 'jupyterlab_widgets<2'
    ipython_genutils). LRLIB_IPYWIDGETS7 names another folder. A missing folder fails the tests
    that need it, saying how to make it."""
    # absolute: the kernel's PYTHONPATH is read from the notebook's folder, where a relative
    # path (make passes .venv/ipywidgets7) finds nothing and the venv's ipywidgets 8 is imported
    path = Path(os.environ.get("LRLIB_IPYWIDGETS7", ROOT / ".venv" / "ipywidgets7")).resolve()
    if not (path / "ipywidgets").is_dir():
        pytest.fail(f"no ipywidgets 7 in {path}: `make test-browser` installs it there, or "
                    "pip install --no-deps --target FOLDER 'ipywidgets>=7.7,<8' "
                    "'jupyterlab_widgets>=1.1,<2' ipython_genutils and set "
                    "LRLIB_IPYWIDGETS7=FOLDER")
    return path


def make_jupyter_env(home: Path, ipywidgets7: Path | None = None) -> dict:
    """A copy of notebook 10 and fresh Jupyter config, data, runtime and settings folders
    (nothing from this machine's Jupyter set-up, no tabs from earlier runs). With `ipywidgets7`
    (a folder holding ipywidgets 7 and jupyterlab_widgets 1): the kernel named python3 imports
    ipywidgets 7 from it and the front end loads its widget manager, as a JupyterLab set up with
    ipywidgets 7 does."""
    root = home / "notebooks"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "10_widgets.ipynb", root)
    settings = home / "settings"
    for path, text in (("@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
                        '{"windowingMode": "none"}'),
                       ("@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                        '{"fetchNews": "false", "checkForUpdates": false}')):
        (settings / path).parent.mkdir(parents=True, exist_ok=True)
        (settings / path).write_text(text)
    env = dict(os.environ, LRLIB_WORLD="toy", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
               JUPYTER_PLATFORM_DIRS="1")
    if ipywidgets7 is not None:
        manager = "labextensions/@jupyter-widgets/jupyterlab-manager"
        shutil.copytree(ipywidgets7 / "share" / "jupyter" / manager, home / "data" / manager)
        kernel = home / "data" / "kernels" / "python3"
        kernel.mkdir(parents=True)
        path = os.pathsep.join(filter(None, [str(ipywidgets7), os.environ.get("PYTHONPATH")]))
        (kernel / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipywidgets 7)", "language": "python",
            "env": {"PYTHONPATH": path}}))
        env["JUPYTER_PREFER_ENV_PATH"] = "0"      # these data folders before the venv's
    return {"home": home, "root": root, "settings": settings, "env": env}


@pytest.fixture
def jupyter_env(tmp_path_factory):
    """Notebook 10 with ipywidgets 8 (the venv's), in folders of its own for each test."""
    return make_jupyter_env(tmp_path_factory.mktemp("jupyter"))


def start(cmd, env, log: Path, url: str, timeout: float = 90) -> subprocess.Popen:
    out = log.open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_http(url, proc, timeout, log)
    except BaseException:
        stop(proc)
        raise
    return proc


@contextlib.contextmanager
def jupyter_server(e: dict, app: str):
    """`python -m APP` (jupyterlab or notebook) on 127.0.0.1 (a free port, no token), stopped
    by its pid afterwards."""
    port = free_port()
    cls = {"jupyterlab": "LabApp", "notebook": "JupyterNotebookApp"}[app]
    cmd = [sys.executable, "-m", app, "--no-browser", "--allow-root",
           "--ip=127.0.0.1", f"--port={port}", "--IdentityProvider.token=",
           "--ServerApp.password=", f"--ServerApp.root_dir={e['root']}",
           f"--{cls}.workspaces_dir={e['home'] / 'workspaces'}",
           f"--{cls}.user_settings_dir={e['settings']}"]
    log = e["home"] / f"{app}.log"
    proc = start(cmd, e["env"], log, f"http://127.0.0.1:{port}/api/status")
    try:
        yield {"url": f"http://127.0.0.1:{port}", "root": e["root"], "log": log}
    finally:
        stop(proc)


@pytest.fixture
def jupyterlab(jupyter_env):
    """JupyterLab serving notebook 10 (ipywidgets 8)."""
    with jupyter_server(jupyter_env, "jupyterlab") as server:
        yield server


@pytest.fixture
def notebook7(jupyter_env):
    """Jupyter Notebook 7 serving notebook 10 (ipywidgets 8)."""
    with jupyter_server(jupyter_env, "notebook") as server:
        yield server


@pytest.fixture
def jupyterlab_ipywidgets7(tmp_path_factory):
    """JupyterLab serving notebook 10 with ipywidgets 7 in the kernel and its widget manager
    (jupyterlab_widgets 1) in the front end."""
    e = make_jupyter_env(tmp_path_factory.mktemp("jupyter-ipywidgets7"), ipywidgets7_dir())
    # the kernel as JupyterLab starts it (its kernel.json's env, in the notebook's folder) must
    # import ipywidgets 7: otherwise every widget fails to render and the test waits it out
    spec = json.loads((e["home"] / "data" / "kernels" / "python3" / "kernel.json").read_text())
    got = subprocess.run([spec["argv"][0], "-c", "import ipywidgets; print(ipywidgets.__version__)"],
                         env=dict(e["env"], **spec["env"]), cwd=e["root"], capture_output=True,
                         text=True).stdout.strip()
    assert got.startswith("7."), f"the ipywidgets-7 kernel imports ipywidgets {got!r}"
    with jupyter_server(e, "jupyterlab") as server:
        yield server


@pytest.fixture
def voila(jupyter_env):
    """Voila serving notebook 10 on 127.0.0.1 (a free port), stopped by its pid afterwards."""
    port, e = free_port(), jupyter_env
    cmd = [sys.executable, "-m", "voila", str(e["root"] / "10_widgets.ipynb"), "--no-browser",
           f"--port={port}", "--Voila.ip=127.0.0.1"]
    log = e["home"] / "voila.log"
    proc = start(cmd, e["env"], log, f"http://127.0.0.1:{port}/voila/static/")
    try:
        yield {"url": f"http://127.0.0.1:{port}", "log": log}
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium under Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install -y chromium (as root), or set "
                    "LRLIB_CHROMIUM to its path")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def ipywidgets7():
    """The folder holding ipywidgets 7 (ipywidgets7_dir)."""
    return ipywidgets7_dir()
