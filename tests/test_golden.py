"""Golden outputs: one end-to-end toy edit per editor, pinned as diffusers pins a pipeline's
`expected_slice`.

The rest of the suite checks each stage against an independent computation; this file catches
what slips between them: a change anywhere in the chain (anchors, proposals, the RGN's init or
training, the candidates' noise, the ranking, the paste) that keeps every stage plausible but
changes the picture a user gets. A change that is meant to alter results updates the numbers
here, in the same commit, with the toy benchmark rerun (lrlib/bench/README.md).

Pinned with torch 2.14.1 / diffusers 0.42.1 on a CPU (float32): the slice is the 3 x 3 pixels
at the centre of the winning box of the final image, 8-bit RGB, compared within 3 levels.
"""
from __future__ import annotations

import numpy as np
import pytest

import lrlib
from lrlib.toy import make_edit_task
from lrlib.worlds import toy_available

GOLDEN = {
    "sd": dict(box=[9, 18, 43, 49], chosen=[2], S=[36.0],
               slice=[[25, 158, 55], [25, 156, 57], [25, 157, 59], [24, 157, 56], [24, 156, 57],
                      [24, 158, 59], [23, 157, 56], [23, 158, 57], [23, 159, 58]]),
    "maskgit": dict(box=[9, 18, 43, 49], chosen=[2], S=[36.0],
                    slice=[[53, 163, 78], [48, 161, 83], [41, 159, 85], [51, 162, 78],
                           [45, 160, 84], [38, 159, 87], [51, 161, 78], [44, 159, 84],
                           [37, 159, 86]]),
}


@pytest.mark.parametrize("editor", sorted(GOLDEN))
def test_toy_edit_matches_its_golden_slice(editor):
    if not toy_available(("dino", "clip", editor)):
        pytest.fail(f"the toy world's {editor} weights are missing from lrlib/toy/weights")
    task = make_edit_task(seed=11)          # "a green star" where "the green cross" is
    cfg = lrlib.LRConfig.cpu(world="toy", editor=editor, progress=False, seed=0)
    r = lrlib.edit(task.scene.image, task.prompt, caption=task.source_caption, config=cfg)
    want = GOLDEN[editor]
    assert r.best_box_image == want["box"] and r.chosen == want["chosen"]
    assert r.scores["S"] == pytest.approx(want["S"], abs=1e-3)
    a = np.asarray(r.image).astype(int)
    x0, y0, x1, y1 = r.best_box_image
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    got = a[cy - 1:cy + 2, cx - 1:cx + 2].reshape(-1, 3)
    np.testing.assert_allclose(got, np.array(want["slice"]), atol=3)
    src = np.asarray(lrlib.images.load_image(task.scene.image)).astype(int)
    outside = np.ones(a.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert (a[outside] == src[outside]).all()         # outside the box: the input, exactly
