"""lrlib.edit end to end on small models of the real classes, with each editor."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import lrlib
from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.io import to_tensor

CFG = LRConfig.cpu(world="random", progress=False, epochs=1, iters_per_epoch=4)


def photo(scene, W=96, H=80):
    """A non-square input at another resolution than the working one."""
    return Image.fromarray((torch.nn.functional.interpolate(scene[None], size=(H, W))[0]
                            .permute(1, 2, 0).numpy() * 255).astype(np.uint8))


@pytest.mark.parametrize("editor", ["sd", "maskgit"])
def test_edit_end_to_end(models, scene, editor):
    img = photo(scene)
    r = lrlib.edit(img, "a blue square", caption="a red circle", config=CFG.replace(editor=editor),
                   models=models(editor))
    K, M = CFG.K, CFG.M
    assert r.image.size == img.size and len(r.results) == K and r.results[0].size == (64, 64)
    assert np.array(r.boxes).shape == (K, M, 4) and len(r.chosen) == K
    assert np.allclose(np.array(r.probs).sum(1), 1, atol=1e-5)
    assert len(r.history.loss) == CFG.iterations and set(r.history.terms) == {"L_clip", "L_dir", "L_str"}
    assert 0 <= r.best < K and abs(sum(r.scores["S_t2i"]) - 1) < 1e-5
    # outside the chosen box (mapped to the full-resolution input) nothing changed, exactly
    x0, y0, x1, y1 = r.best_box
    sx, sy = img.size[0] / 64, img.size[1] / 64
    a, b = np.array(img).astype(int), np.array(r.image).astype(int)
    diff = np.abs(a - b).sum(-1) > 0
    ys, xs = np.nonzero(diff)
    if len(xs):
        pad = 4 if editor == "maskgit" else 1                 # MaskGIT edits whole token cells
        assert xs.min() >= x0 * sx - pad * sx and xs.max() <= x1 * sx + pad * sx
        assert ys.min() >= y0 * sy - pad * sy and ys.max() <= y1 * sy + pad * sy
    assert diff.mean() < 0.9
    # the K results keep the source outside their box, exactly (working resolution)
    src = to_tensor(r.source)
    for k, res in enumerate(r.results):
        bx = r.boxes[k][r.chosen[k]]
        out = torch.ones(64, 64, dtype=torch.bool)
        out[max(0, bx[1] - 4):bx[3] + 4, max(0, bx[0] - 4):bx[2] + 4] = False
        assert (to_tensor(res) - src)[:, out].abs().max() <= 1 / 255 + 1e-6


def test_same_seed_same_result(models, scene):
    m = models("sd")
    a = lrlib.edit(scene, "a blue square", config=CFG, models=m)
    b = lrlib.edit(scene, "a blue square", config=CFG, models=m)
    c = lrlib.edit(scene, "a blue square", config=CFG.replace(seed=1), models=m)
    assert np.array_equal(np.array(a.image), np.array(b.image))
    assert a.probs == b.probs and a.history.loss == b.history.loss and a.chosen == b.chosen
    assert a.history.loss != c.history.loss


def test_save_writes_everything_or_nothing(models, scene, tmp_path, monkeypatch):
    r = lrlib.edit(scene, "a blue square", config=CFG, models=models("sd"))
    out = r.save(tmp_path / "res")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["final.png", "source.png", "boxes.png", "figure.png", "result.json"]
                           + [f"anchor_{k}.png" for k in range(CFG.K)])
    meta = json.loads((out / "result.json").read_text())
    assert meta["best_box"] == r.best_box and meta["config"]["K"] == CFG.K
    assert meta["prompt"] == "a blue square" and meta["caption"] == CFG.default_caption
    # a crash while saving leaves the earlier result intact and no partial folder
    monkeypatch.setattr(type(r), "figure", lambda self: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        r.save(tmp_path / "res")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]
    assert json.loads((out / "result.json").read_text()) == meta


def test_bad_input_fails_before_any_work(models, scene):
    m = models("sd")
    with pytest.raises(LRError, match="empty"):
        lrlib.edit(scene, "   ", config=CFG, models=m)
    with pytest.raises(LRError, match="caption is empty"):
        lrlib.edit(scene, "a cat", caption="", config=CFG, models=m)
    with pytest.raises(LRError, match="lower K"):
        lrlib.edit(scene, "a cat", config=CFG.replace(K=40), models=m)
    with pytest.raises(LRError, match="at least 32"):
        lrlib.edit(Image.new("RGB", (16, 16)), "a cat", config=CFG, models=m)


def test_long_prompt_runs(models, scene):
    long = ("a small blue square with sharp corners sits on a soft grey background, lit from the "
            "left, next to nothing else, in the middle of the picture, " * 4)
    r = lrlib.edit(scene, long, config=CFG, models=models("sd"))
    assert r.prompt == " ".join(long.split())


def test_figure_draws(models, scene):
    import matplotlib
    matplotlib.use("Agg")
    r = lrlib.edit(scene, "a blue square", config=CFG.replace(K=4), models=models("sd"))
    fig = r.figure()
    assert len(fig.axes) >= 8


def test_widget_callback_runs_an_edit_with_its_controls(models, scene):
    import matplotlib
    matplotlib.use("Agg")
    from lrlib.widgets import edit_from_controls
    r, fig = edit_from_controls(scene, "a blue square", "the red circle", K=2, M=3, tau=0.5,
                                lambda_str=0.0, alpha=1.0, editor="sd", base=CFG, models=models("sd"))
    assert len(r.results) == 2 and len(r.boxes[0]) == 3
    assert r.config.tau == 0.5 and r.config.lambda_str == 0.0 and r.config.alpha == 1.0
    assert r.history.terms["L_str"] == [0.0] * CFG.iterations
    assert len(fig.axes) >= 6
