"""Progress bars of an edit: tqdm.auto by default, or reported to a listener (the widget panel).

lrlib's long stages (the candidate edits, the RGN's training) draw
their bars with `bar(...)`. Inside `with report_to(report):` every bar calls
`report(desc, n, total)` instead of drawing, whatever `LRConfig.progress` says (a panel shows its
own progress); outside, `bar` is tqdm.auto's. The listener is per thread.
"""
from __future__ import annotations

import contextlib
import threading

from tqdm.auto import tqdm

_listener = threading.local()


class Reported:
    """A bar that tells `report(desc, n, total)` where it is instead of drawing: an iterable or a
    total, update, close, a context manager (what lrlib's stages use of tqdm)."""

    def __init__(self, report, iterable=None, total=None, desc=""):
        self.report, self.iterable, self.desc, self.n = report, iterable, desc or "", 0
        self.total = total if total is not None else (
            len(iterable) if hasattr(iterable, "__len__") else None)
        self.report(self.desc, 0, self.total)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        self.n += n
        self.report(self.desc, self.n, self.total)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def bar(iterable=None, *, total=None, desc: str = "", disable: bool = False, leave: bool = False):
    """A progress bar over `iterable` (or `total` steps): tqdm.auto's, or a `Reported` one inside
    `report_to`."""
    report = getattr(_listener, "report", None)
    if report is not None:
        return Reported(report, iterable, total, desc)
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=leave)


@contextlib.contextmanager
def report_to(report):
    """Within the block (this thread), lrlib's bars call `report(desc, n, total)`; None: unchanged."""
    saved = getattr(_listener, "report", None)
    if report is not None:
        _listener.report = report
    try:
        yield
    finally:
        _listener.report = saved
