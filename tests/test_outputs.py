"""Output folders: lrlib never deletes what it did not write, refuses bad places before any work,
writes atomically with the user's umask, and cleans up after processes killed while saving."""
import errno
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

import lrlib
from lrlib import outputs as lio
from lrlib.cli import main
from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.outputs import atomic_dir, check_output, is_result_dir, remove_stale

TINY = LRConfig.cpu(world="random", K=1, M=2, epochs=1, iters_per_epoch=1, steps=1, progress=False)


@pytest.fixture(scope="module")
def result(models):
    img = (np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)
    return lrlib.edit(img, "a red circle", config=TINY, models=models("sd"))


@pytest.fixture
def no_edit(monkeypatch):
    """Any edit reaching the pipeline fails the test: the refusal must come before the models."""
    import lrlib.pipeline

    def boom(*a, **k):
        raise AssertionError("the edit ran: the output was not checked first")
    monkeypatch.setattr(lrlib.pipeline, "edit", boom)


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_existing_file_is_refused_and_kept(tmp_path, result):
    """Bug: `--out PATH` with PATH a file deleted the file and put a result folder there."""
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    with pytest.raises(LRError, match="existing file"):
        check_output(f)
    with pytest.raises(LRError, match="existing file"):
        result.save(f, figure=False)
    assert f.read_text() == "mine" and listing(tmp_path) == ["notes.txt"]


def test_user_folder_is_refused_and_kept(tmp_path, result):
    """Bug: `--out Pictures/` emptied the user's folder and put a result there."""
    pics = tmp_path / "Pictures"
    pics.mkdir()
    (pics / "holiday.jpg").write_text("photo")
    with pytest.raises(LRError, match="did not write.*holiday.jpg"):
        result.save(pics, figure=False)
    assert listing(pics) == ["holiday.jpg"] and listing(tmp_path) == ["Pictures"]


def test_own_result_folder_is_replaced_but_not_with_user_files_in_it(tmp_path, result):
    """An earlier lrlib result is replaced (and check_output says so); one the user added a file
    to is not (replacing it would delete that file)."""
    out = tmp_path / "r"
    assert check_output(out) is False
    result.save(out, figure=False)
    meta = json.loads((out / "result.json").read_text())
    assert meta["lrlib"] == lrlib.__version__ and set(meta["files"]) == set(listing(out))
    assert is_result_dir(out) and check_output(out) is True
    result.save(out, figure=False)                           # replaced, nothing left aside
    assert listing(tmp_path) == ["r"] and is_result_dir(out)
    (out / "my-notes.txt").write_text("keep me")
    with pytest.raises(LRError, match="my-notes.txt"):
        result.save(out, figure=False)
    assert (out / "my-notes.txt").read_text() == "keep me"
    result.save(tmp_path / "r2", figure=False)
    with pytest.raises(LRError, match="overwrite"):
        result.save(tmp_path / "r2", overwrite=False)


def test_out_dot_is_refused_and_leaves_nothing(tmp_path, monkeypatch, result):
    """Bug: `--out .` crashed after the whole edit and left a `..old-XXXX` folder behind."""
    (tmp_path / "a.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    for out in (".", str(tmp_path), "sub/.."):
        with pytest.raises(LRError, match="current folder"):
            result.save(out, figure=False)
    assert listing(tmp_path) == ["a.txt"]


def _deny_mkdir_in(monkeypatch, folder, err):
    """Make creating anything in `folder` fail with `err` (root ignores chmod, so as root a
    read-only folder is simulated; otherwise chmod alone makes it read-only)."""
    real = os.mkdir

    def mkdir(path, *a, **k):
        if os.path.dirname(os.path.abspath(path)) == str(folder):
            raise OSError(err, os.strerror(err), str(path))
        return real(path, *a, **k)
    monkeypatch.setattr(os, "mkdir", mkdir)


@pytest.mark.parametrize("case", ["parent is a file", "/proc", "read-only folder", "full disk"])
def test_unwritable_places_fail_before_the_edit_with_one_line(tmp_path, monkeypatch, capsys,
                                                              no_edit, case):
    """Bug: a read-only folder, a parent that is a file, /proc or a full disk crashed with a
    traceback, and only after the whole edit ran."""
    img = tmp_path / "in.png"
    Image.new("RGB", (64, 64), (9, 9, 9)).save(img)
    out = {"parent is a file": img / "out", "/proc": "/proc/lrlib-out/x",
           "read-only folder": tmp_path / "ro" / "out", "full disk": tmp_path / "out"}[case]
    if case == "read-only folder":
        (tmp_path / "ro").mkdir()
        os.chmod(tmp_path / "ro", 0o555)
        if os.geteuid() == 0:
            _deny_mkdir_in(monkeypatch, tmp_path / "ro", errno.EACCES)
    if case == "full disk":
        def write(fd, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(os, "write", write)
    with pytest.raises(LRError):
        check_output(out)
    assert main(["edit", str(img), "--prompt", "a cat", "--cpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert {"parent is a file": "is a file", "/proc": "cannot write", "read-only folder":
            "Permission denied", "full disk": "No space left"}[case] in err
    assert listing(tmp_path) in (["in.png"], ["in.png", "ro"])   # no probe or partial left


@pytest.mark.parametrize("make", ["file", "user folder", "dot"])
def test_cli_refuses_bad_out_before_any_model(tmp_path, monkeypatch, capsys, no_edit, make):
    """Bug: the CLI lost the user's file or folder (exit 0), or crashed on `--out .`."""
    img = tmp_path / "in.png"
    Image.new("RGB", (64, 64)).save(img)
    monkeypatch.chdir(tmp_path)
    if make == "file":
        out = "notes.txt"
        (tmp_path / out).write_text("mine")
    elif make == "user folder":
        out = "Pictures"
        (tmp_path / out).mkdir()
        (tmp_path / out / "a.jpg").write_text("mine")
    else:
        out = "."
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert main(["edit", str(img), "--prompt", "a cat", "--cpu", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_full_disk_while_saving_is_an_lrerror_and_keeps_the_old_result(tmp_path, monkeypatch,
                                                                       result):
    """Bug: the disk filling up during the save raised a bare OSError; now an LRError, with the
    earlier result intact and no partial folder left."""
    out = tmp_path / "r"
    result.save(out, figure=False)
    before = (out / "final.png").read_bytes()
    real, calls = Image.Image.save, []

    def save(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *a, **k)
    monkeypatch.setattr(Image.Image, "save", save)
    with pytest.raises(LRError, match="No space left.*Nothing was written"):
        result.save(out, figure=False)
    assert listing(tmp_path) == ["r"] and (out / "final.png").read_bytes() == before


@pytest.mark.parametrize("umask,mode", [(0o022, 0o755), (0o077, 0o700), (0o002, 0o775)])
def test_result_folder_honours_the_umask(tmp_path, result, umask, mode):
    """Bug: result folders were always mode 0700 (from mkdtemp), whatever the umask."""
    old = os.umask(umask)
    try:
        out = result.save(tmp_path / "r", figure=False)
    finally:
        os.umask(old)
    assert os.stat(out).st_mode & 0o777 == mode


def test_partial_folder_of_a_killed_process_is_removed_next_time(tmp_path):
    """Bug: a process killed while saving left `.NAME.partial-XXXX` (a truncated final.png)
    forever. The next save of NAME removes it; one owned by a live process is kept."""
    script = textwrap.dedent(f"""
        import os, signal
        from lrlib.outputs import atomic_dir
        with atomic_dir({str(tmp_path / 'r')!r}) as d:
            (d / "final.png").write_bytes(b"\\x89PNG trunc")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    p = subprocess.run([sys.executable, "-c", script])
    assert p.returncode == -9
    [partial] = [d for d in tmp_path.iterdir() if d.name.startswith(".r.partial-")]
    assert (partial / "final.png").exists() and (partial / ".lrlib-owner").exists()
    live = tmp_path / ".r.partial-live0001"
    live.mkdir()
    (live / ".lrlib-owner").write_text(json.dumps(lio.owner_record()))   # this (live) process
    with atomic_dir(tmp_path / "r") as d:
        (d / "final.png").write_bytes(b"complete")
    assert listing(tmp_path) == [".r.partial-live0001", "r"]
    assert listing(tmp_path / "r") == ["final.png"]                       # no owner record left


def test_orphans_without_owner_and_an_old_result_left_aside(tmp_path):
    """A work folder with no owner record (older lrlib) is removed once it is a minute old, not
    while it may be just made; an old result a kill left aside between the two renames, with
    nothing in its place, is put back rather than deleted."""
    fresh, stale = tmp_path / ".a.partial-new", tmp_path / ".a.partial-old"
    fresh.mkdir()
    stale.mkdir()
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    old = tmp_path / ".b.old-1234abcd"
    (old / "b").mkdir(parents=True)
    (old / "b" / "final.png").write_text("the earlier result")
    (old / ".lrlib-owner").write_text(json.dumps(dict(lio.owner_record(), pid=int(dead.stdout))))
    removed = remove_stale(tmp_path)
    assert sorted(p.name for p in removed) == [".a.partial-old", ".b.old-1234abcd"]
    assert listing(tmp_path) == [".a.partial-new", "b"]
    assert (tmp_path / "b" / "final.png").read_text() == "the earlier result"


def test_result_from_before_the_marker_is_still_lrlibs(tmp_path, result):
    """A result folder whose result.json carries no marker (the fields prompt, best_box, config
    only) is still replaced; with a file of the user's in it, it is not."""
    old = tmp_path / "demo"
    old.mkdir()
    (old / "final.png").write_bytes(b"old")
    (old / "anchor_0.png").write_bytes(b"old")
    (old / "result.json").write_text(json.dumps({"prompt": "p", "best_box": [0, 0, 1, 1], "config": {}}))
    assert check_output(old) is True
    (old / "thesis.tex").write_text("mine")
    with pytest.raises(LRError, match=r"did not write \(thesis.tex\)"):
        result.save(old, figure=False)
    (old / "thesis.tex").unlink()
    result.save(old, figure=False)
    assert is_result_dir(old) and (old / "final.png").read_bytes() != b"old"
