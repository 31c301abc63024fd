"""Files out: result folders written whole or not at all, never deleting what lrlib did not write.

Output folders. lrlib writes a result as a whole folder or nothing, and never deletes what it did
not write:

- `check_output(path)` refuses, before any model runs, a path that is a file, a link, the current
  folder, a folder holding anything lrlib did not write, a name too long for the file system
  (with room for the work folder's suffix), or a place where no folder can be made (read-only, a
  parent that is a file or a dangling symbolic link, /proc, a full disk). An earlier lrlib
  result folder (its result.json carries the "lrlib" marker and lists every file in it) may be
  replaced.
- `atomic_dir(path)` yields a hidden sibling `.NAME.partial-XXXX` (mode 0o777 minus the umask)
  that one rename puts in place; a process killed meanwhile leaves it behind with an owner record
  (pid, host), and the next save of NAME (or batch on the folder) removes the ones whose process
  is gone.
- `claim(path)` lets concurrent batch processes share jobs: one claim file per job, taken under a
  lock on the folder; a dead process's claim is taken over.

Two mechanisms share a batch (`python -m lrlib batch`): the CLI shards the job list over processes by launcher rank
(each process takes jobs i, i + n, ...), and the claims make any overlap safe (two batches on one
folder, a restarted shard, a different world size): a job runs once, whoever starts it first.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path

from lrlib.errors import LRError

try:
    import fcntl
except ImportError:            # Windows: claims fall back to no lock (do not share a folder there)
    fcntl = None

RESULT_JSON = "result.json"
OWNER = ".lrlib-owner"      # in a work folder: {"pid", "host", "time"} of the process writing it
ORPHAN_AGE = 60.0           # s; a work folder without an owner record this old is an orphan
_LEGACY = re.compile(r"^((final|source|boxes|figure)\.png|anchor_\d+\.png|result\.json)$")
_WORK = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-[0-9a-z_]+$")


def owner_record() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "time": round(time.time(), 3)}


def _read_owner(path) -> dict | None:
    try:
        rec = json.loads(Path(path).read_text())
        return rec if isinstance(rec.get("pid"), int) and isinstance(rec.get("host"), str) else None
    except (OSError, ValueError, AttributeError):
        return None


def _dead(rec: dict) -> bool:
    """True only when the owner's process is surely gone: it ran on this host and its pid is not
    alive. A process on another host is never declared dead (we cannot see it)."""
    if rec["host"] != socket.gethostname():
        return False
    try:
        os.kill(rec["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:             # PermissionError: alive, another user's
        pass
    return False


def _write_new(path: Path, text: str) -> None:
    """Create `path` (it must not exist) holding `text`; os-level writes (a full disk fails here)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _make_work_dir(parent: Path, prefix: str) -> Path:
    """A new folder `prefix`XXXXXXXX in parent, mode 0o777 minus the umask, with our owner record."""
    while True:
        d = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(d, 0o777)
        except FileExistsError:
            continue
        try:
            _write_new(d / OWNER, json.dumps(owner_record()))
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        return d


def check_writable(folder, what=None) -> None:
    """LRError unless a folder can be made at `folder` (tried for real in its deepest existing
    ancestor: catches read-only places, a parent that is a file, /proc, a full disk), naming the
    cause: a dangling symbolic link on the way (its target is missing or loops) is said so."""
    what = what or folder
    a = Path(os.path.abspath(folder))
    while not os.path.lexists(a) and a != a.parent:
        a = a.parent
    if os.path.islink(a) and not os.path.exists(a):
        try:
            target = os.readlink(a)
        except OSError:
            target = "?"
        raise LRError(f"cannot write '{what}': '{a}' is a symbolic link to '{target}', which does "
                      "not exist (or is a loop of links). Create that folder, fix the link, or "
                      "choose another output folder.")
    if not os.path.isdir(a):
        raise LRError(f"cannot write '{what}': '{a}' is a file, not a folder. Choose another "
                      "output folder.")
    try:
        shutil.rmtree(_make_work_dir(a, ".lrlib-probe-"))
    except OSError as e:
        raise LRError(f"cannot write '{what}': making a folder in '{a}' failed "
                      f"({e.strerror or e}). Choose an output folder you can write to.") from None


#: what lrlib adds to an output folder's name while writing it ('.NAME.partial-XXXXXXXX')
WORK_SUFFIX = len("..partial-") + 8


def _check_names(p: Path, path) -> None:
    """LRError for a path the file system cannot hold: a NUL character, or a name longer than
    its limit (255 bytes on most), the last one with room for the work folder's suffix."""
    if "\x00" in str(p):
        raise LRError(f"the output path {str(path)!r} holds a NUL character; no file system "
                      "accepts it. Choose another output folder.")
    limit = 255
    with contextlib.suppress(OSError, ValueError, AttributeError):
        anc = p
        while not os.path.isdir(anc) and anc != anc.parent:
            anc = anc.parent
        limit = os.pathconf(anc, "PC_NAME_MAX")
    for i, part in enumerate(p.parts[1:], 1):
        room = limit - (WORK_SUFFIX if i == len(p.parts) - 1 else 0)
        n = len(os.fsencode(part))
        if n > room:
            suffix = " and lrlib adds a suffix while writing" if room < limit else ""
            raise LRError(f"the output path's name '{part[:40]}...' is {n} bytes; the file system "
                          f"takes {limit}{suffix}: use a name of at most {room} bytes.")


def _foreign(folder: Path) -> list[str]:
    """The entries of `folder` that lrlib did not write: those its result.json (with lrlib's
    marker) does not list (for a result from before the marker: not one of the files lrlib
    wrote then); all of them when there is no such result.json."""
    names = sorted(e.name for e in folder.iterdir())
    try:
        meta = json.loads((folder / RESULT_JSON).read_text())
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        return names
    if "lrlib" in meta and isinstance(meta.get("files"), list):
        return [n for n in names if n not in {RESULT_JSON, *meta["files"]}]
    if {"prompt", "best_box", "config"} <= meta.keys():    # a result.json without the marker
        return [n for n in names if not _LEGACY.match(n)]
    return names


def is_result_dir(path) -> bool:
    """True if `path` is a folder lrlib wrote: its result.json carries the "lrlib" marker and the
    folder holds nothing but the files that result.json lists."""
    path = Path(path)
    return (path / RESULT_JSON).is_file() and not _foreign(path)


def check_output(path, overwrite: bool = True) -> bool:
    """Refuse, before any work, an output folder lrlib cannot write or must not replace.

    Accepted: a new path, an empty folder, an earlier lrlib result folder (returns True: it will
    be replaced, unless overwrite=False, which refuses it). Refused with an LRError: a file, a
    symbolic link, the current folder, a folder holding anything lrlib did not write, and a place
    where no folder can be made.
    """
    p = Path(os.path.abspath(path))
    _check_names(p, path)
    if p == Path.cwd() or p == p.parent:
        raise LRError(f"the output folder '{path}' is the current folder (or /): lrlib writes its "
                      "result as a folder of its own; name a new one, e.g. outputs/edit.")
    if os.path.islink(p):
        raise LRError(f"the output folder '{path}' is a symbolic link; lrlib does not replace it. "
                      "Choose another output folder.")
    replaces = False
    if os.path.lexists(p):
        if not os.path.isdir(p):
            raise LRError(f"the output '{path}' is an existing file; lrlib never overwrites it. "
                          "Name a folder for the result (it is created), e.g. outputs/edit.")
        if not overwrite:
            raise LRError(f"'{path}' already exists; pass overwrite=True or choose another folder.")
        try:
            foreign = _foreign(p)
            replaces = any(p.iterdir())
        except OSError as e:
            raise LRError(f"cannot read the output folder '{path}' ({e.strerror or e}); choose "
                          "an output folder you can read and write.") from None
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise LRError(f"'{path}' is a folder holding files lrlib did not write ({shown}); "
                          "lrlib replaces only its own result folders. Choose a new folder, e.g. "
                          f"'{Path(path) / 'lrlib-result'}'.")
    check_writable(p.parent, path)
    return replaces


def remove_stale(folder, name: str | None = None) -> list[Path]:
    """Remove the work folders (`.NAME.partial-*`, `.NAME.old-*`) that processes killed while
    saving left in `folder` (only NAME's when given). One whose process may be alive is kept; an
    old result a kill left aside, with nothing in its place, is put back. Returns those removed."""
    folder, removed = Path(folder), []
    for d in (sorted(folder.iterdir()) if folder.is_dir() else []):
        m = _WORK.match(d.name)
        if not m or not d.is_dir() or (name is not None and m["name"] != name):
            continue
        rec = _read_owner(d / OWNER)
        if rec is not None and not _dead(rec):
            continue
        if rec is None and time.time() - d.stat().st_mtime < ORPHAN_AGE:
            continue                                # just made: its owner record is on its way
        kept, home = d / m["name"], folder / m["name"]
        if m["kind"] == "old" and kept.exists() and not home.exists():
            os.replace(kept, home)                  # killed between the two renames of atomic_dir
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


@contextlib.contextmanager
def signals_held():
    """SIGINT and SIGTERM held back for the block (delivered when it ends), around file
    operations that must not be split by Ctrl-C or a `kill`: a rename pair, a claim's write.
    Only the main thread receives Python's signals, so elsewhere this holds nothing."""
    import signal
    import threading
    if (not hasattr(signal, "pthread_sigmask")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def atomic_dir(path, overwrite: bool = True):
    """Yield a temporary folder; on success it replaces `path` in one rename, on error it is removed.

    `path` is checked first (`check_output`: lrlib replaces only its own result folders). The
    temporary folder is a hidden sibling (`.name.partial-XXXX`) on the same file system, so the
    final `os.replace` is atomic: `path` either holds a complete result or is left as it was. An
    OSError while writing (a full disk) becomes an LRError, with nothing left behind.
    """
    path = Path(os.path.abspath(path))
    check_output(path, overwrite)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(path.parent, path.name)
        tmp = _make_work_dir(path.parent, f".{path.name}.partial-")
        yield tmp
        (tmp / OWNER).unlink()
        check_output(path, overwrite)               # the place may have changed meanwhile
        with signals_held():                        # the renames happen together or not at all
            if path.exists():
                old = _make_work_dir(path.parent, f".{path.name}.old-")
                os.replace(path, old / path.name)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
    except LRError:
        raise
    except OSError as e:
        raise LRError(f"could not write '{path}': {e.strerror or e}. Nothing was written; free "
                      "some space or choose another output folder.") from e
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_result(folder, data: dict) -> None:
    """folder/result.json: `data` with lrlib's marker and the list of the folder's files (what
    `is_result_dir` checks before lrlib replaces a folder)."""
    from lrlib.version import __version__
    folder = Path(folder)
    files = sorted({e.name for e in folder.iterdir() if e.name != OWNER} | {RESULT_JSON})
    (folder / RESULT_JSON).write_text(json.dumps({"lrlib": __version__, "files": files, **data},
                                                 indent=1))


@contextlib.contextmanager
def _locked(folder: Path):
    """An exclusive lock on `folder` itself (flock on its descriptor), held for a few file
    operations. A lock on the folder, not on a lock file in it (filelock's way), leaves nothing
    behind in the user's output folder."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        if fcntl is not None:
            with contextlib.suppress(OSError):      # a file system without locks: none
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                                # releases the lock


@contextlib.contextmanager
def claim(path):
    """Claim the job whose claim file is `path` for this process, for the duration of the block.

    Yields None when this process holds the claim (removed on exit), else the owner record of the
    live process that holds it ({"pid", "host", "time"}; {} if unreadable). A claim whose process
    is dead (same host, pid gone) is taken over. Check and take run under a lock on the folder,
    so two processes never both hold one claim.
    """
    path = Path(path)
    with _locked(path.parent):
        holder = None
        if path.exists():
            rec = _read_owner(path)
            holder = {} if rec is None else (None if _dead(rec) else rec)
        if holder is None:
            tmp = path.with_name(f"{path.name}.{os.getpid()}")
            with signals_held():                    # no half-made claim file left behind
                tmp.write_text(json.dumps(owner_record()))
                os.replace(tmp, path)
    try:
        yield holder
    finally:
        if holder is None:
            path.unlink(missing_ok=True)


def atomic_write_text(path, text: str) -> None:
    """Write a text file so that readers see the old content or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
