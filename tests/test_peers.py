"""The peers of the toy benchmark (lrlib.bench.peers): each map finds the named object on easy
tasks, and a box comes out inside the image."""
from types import SimpleNamespace

import pytest
import torch

from lrlib.config import LRConfig


@pytest.fixture(scope="module")
def toy():
    from lrlib.models import load_models
    from lrlib.worlds import toy_available
    if not toy_available():
        pytest.fail("the toy world's weights are missing from lrlib/toy/weights")
    torch.set_num_threads(1)
    cfg = LRConfig.cpu(world="toy", progress=False)
    return cfg, load_models(cfg)


def test_peak_box_is_the_blob_around_the_maximum():
    """Catches a box around the first pixel over the level instead of around the peak, or a
    level that ignores the map's minimum."""
    from lrlib.bench.peers import _peak_box
    m = torch.full((32, 32), 5.0)
    m[2:6, 2:6] = 5.6                      # a lesser blob, first in raster order
    m[20:28, 10:14] = 6.0                  # the peak's blob
    assert _peak_box(m, 0.5) == [10, 20, 14, 28]


def test_every_peer_finds_a_lone_object_more_often_than_not(toy):
    """Catches a peer map that is inverted, transposed (x/y swapped) or not tied to its text:
    on one-object tasks each peer's box must overlap the object on most tasks."""
    from lrlib.bench.peers import PEERS, peer_boxes
    from lrlib.bench.toy import iou, task_set
    cfg, models = toy
    hits = {k: 0 for k in PEERS}
    tasks = [t for t in task_set(24, "tuning") if t.kind == "single"]
    for t in tasks:
        x = torch.from_numpy(t.scene.image).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            attn = models.dino(x).attn[0]
        p = SimpleNamespace(x=x, attn=attn, prompt=t.prompt, caption=t.source_caption)
        for name, box in peer_boxes(p, models, cfg).items():
            assert 0 <= box[0] < box[2] <= 64 and 0 <= box[1] < box[3] <= 64, (name, box)
            hits[name] += iou(box, t.target_box) > 0.1
    assert all(h > len(tasks) / 2 for h in hits.values()), (hits, len(tasks))
