"""An edit's progress reported to a listener (what the widget panel shows), per thread."""
import threading

import lrlib
from lrlib.config import LRConfig
from lrlib.progress import bar, report_to

CFG = LRConfig.cpu(world="random", progress=False, K=1, M=2, epochs=1, iters_per_epoch=3)


def test_an_edit_reports_its_stages_to_the_listener(models, scene):
    """Inside report_to, the candidate edits and the training report (desc, n, total) up to
    their totals even with progress=False; outside, nothing. Catches a stage whose bar bypasses
    the listener (the panel's bar would stall) and a listener left installed after the block."""
    seen = []
    with report_to(lambda desc, n, total: seen.append((desc, n, total))):
        lrlib.edit(scene, "a blue square", config=CFG, models=models("sd"))
    stages = {d for d, _, _ in seen}
    assert {"candidate edits", "training RGN"} <= stages
    for d in stages:
        ns = [(n, t) for dd, n, t in seen if dd == d]
        assert ns[0][0] == 0 and ns[-1][0] == ns[-1][1] and [n for n, _ in ns] == sorted(n for n, _ in ns)
    assert ("training RGN", 3, 3) in seen
    before = len(seen)
    lrlib.edit(scene, "a blue square", config=CFG, models=models("sd"))
    assert len(seen) == before


def test_listener_is_per_thread():
    """A bar in another thread draws normally: two panels' runs never mix their progress."""
    seen, other = [], []
    with report_to(lambda *a: seen.append(a)):
        t = threading.Thread(target=lambda: other.append(type(bar(range(2), disable=True)).__name__))
        t.start()
        t.join()
        list(bar(range(2)))
    assert other and other[0] != "Reported"
    assert seen[-1][1:] == (2, 2)
