"""lrlib.edit end to end on small models of the real classes, with each editor."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import lrlib
from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.images import to_tensor

CFG = LRConfig.cpu(world="random", progress=False, epochs=1, iters_per_epoch=4)


def photo(scene, W=96, H=80):
    """A non-square input at another resolution than the working one."""
    return Image.fromarray((torch.nn.functional.interpolate(scene[None], size=(H, W))[0]
                            .permute(1, 2, 0).numpy() * 255).astype(np.uint8))


@pytest.mark.parametrize("editor", ["sd", "maskgit"])
def test_edit_end_to_end(models, scene, editor):
    img = photo(scene)
    r = lrlib.edit(img, "a blue square", caption="a red circle",   # no pruning: exactly K
                   config=CFG.replace(editor=editor, prune_margin=None), models=models(editor))
    K, M = CFG.K, CFG.M
    assert r.image.size == img.size and len(r.results) == K and r.results[0].size == (64, 64)
    assert np.array(r.boxes).shape == (K, M, 4) and len(r.chosen) == K
    assert np.allclose(np.array(r.probs).sum(1), 1, atol=1e-5)
    assert len(r.history.loss) == CFG.iterations
    assert set(r.history.terms) == {"L_clip", "L_dir", "L_str", "L_cover", "L_spill"}
    assert 0 <= r.best < K and abs(sum(r.scores["S_t2i"]) - 1) < 1e-5
    # outside the chosen box (mapped to the full-resolution input) nothing changed, exactly
    # (the input is letterboxed: one scale for both axes, an offset on the short one, so the box
    # in the input's pixels is best_box_image, not best_box times W/64 and H/64)
    x0, y0, x1, y1 = r.best_box_image
    s = max(img.size) / 64                                    # input pixels per working pixel
    a, b = np.array(img).astype(int), np.array(r.image).astype(int)
    diff = np.abs(a - b).sum(-1) > 0
    ys, xs = np.nonzero(diff)
    if len(xs):
        pad = (4 if editor == "maskgit" else 1) * s           # MaskGIT edits whole token cells
        assert xs.min() >= x0 - pad and xs.max() <= x1 + pad
        assert ys.min() >= y0 - pad and ys.max() <= y1 + pad
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


def test_long_prompt_reaches_the_editor_and_clip_whole(models, scene, monkeypatch):
    """A ~100-token prompt (over CLIP's 77) goes, whitespace-normalised but not cut, to every
    candidate edit and to CLIP's text encoder (the chunking itself is tested in test_losses and
    test_editor_sd). Bugs caught: the prompt truncated before the editor or the losses, a
    candidate edited with another text (e.g. the caption), a template applied twice."""
    long = ("a small blue square with sharp corners sits on a soft grey background, lit from the "
            "left, next to nothing else, in the middle of the picture, " * 4)
    m = models("sd")
    want = " ".join(long.split())
    assert len(m.clip.tokenizer.encode(want)) > 77
    edited, encoded = [], []
    inpaint, encode_text = m.editor.inpaint, m.clip.encode_text
    monkeypatch.setattr(m.editor, "inpaint", lambda x, mk, prompts, g, **kw: edited.extend(prompts)
                        or inpaint(x, mk, prompts, g, **kw))
    monkeypatch.setattr(m.clip, "encode_text", lambda texts: encoded.extend(texts)
                        or encode_text(texts))
    r = lrlib.edit(scene, long, caption="a red   circle", config=CFG, models=m)
    assert r.prompt == want and r.caption == "a red circle"
    assert 1 <= len(r.results) <= CFG.K                   # the caption may prune anchors
    assert edited == [want] * (len(r.results) * CFG.M)
    assert want in encoded and "a red circle" in encoded
    assert all(t in (want, "a red circle") for t in encoded)


def test_figure_shows_this_results_scores_winner_and_final_image(models, scene):
    """The figure is read back: each result panel carries its own score S (2 decimals) and the
    star is on the winner only; the "final" panel shows the final image, the attention panel
    the result's attention map, the loss panel the training history. Bugs caught: scores or the
    star shifted to another result, the source shown as the final image, a stale loss curve."""
    import matplotlib
    matplotlib.use("Agg")
    from lrlib.anchors import upsample_map
    r = lrlib.edit(scene, "a blue square", config=CFG.replace(K=4), models=models("sd"))
    fig = r.figure()
    titled = {a.get_title(): a for a in fig.axes if a.get_title()}
    for k in range(4):
        (title,) = [t for t in titled if t.startswith(f"#{k} ")]
        score = f"#{k} S={r.scores['S'][k]:.2f}"
        assert title.startswith(score)
        assert bool(title[len(score):].strip()) == (k == r.best)      # the winner's mark only
    (final,) = [a for t, a in titled.items() if t.startswith("final")]
    assert np.array_equal(final.get_images()[0].get_array(), np.asarray(r.image))
    attn = titled["DINO [CLS] attention"].get_images()[1].get_array()
    np.testing.assert_allclose(attn, upsample_map(r.attention, 64, 64).numpy())
    curve = titled["training loss"].get_lines()[0].get_ydata()
    np.testing.assert_allclose(curve, r.history.loss)
    import matplotlib.pyplot as plt
    plt.close(fig)


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


def test_ablation_changes_only_its_own_weight(models, scene):
    """train_and_choose(p, cfg with lambda_dir=0) trains on L_clip + L_str of the same embeddings
    and leaves p as it was. Catches a loss whose weights are mutated in place (the next full run
    would silently train without L_dir), an ablation that also drops the term's value, and
    embeddings recomputed or changed by a run."""
    from lrlib.pipeline import loss_fn, prepare, train_and_choose
    p = prepare(scene, "a blue square", "a red circle", CFG, models("sd"))
    emb = {k: v.clone() for k, v in vars(p.emb).items() if torch.is_tensor(v)}
    full, h_full = train_and_choose(p)
    nodir, h_nodir = train_and_choose(p, CFG.replace(lambda_dir=0.0))
    again, h_again = train_and_choose(p)
    assert torch.equal(full, again) and h_full.loss == h_again.loss
    assert not torch.equal(full, nodir)
    assert all(torch.equal(getattr(p.emb, k), v) for k, v in emb.items())
    e = p.C[:, 0]
    a = loss_fn(p, CFG)(e, torch.Generator().manual_seed(0))
    b = loss_fn(p, CFG.replace(lambda_dir=0.0))(e, torch.Generator().manual_seed(0))
    for k in ("L_clip", "L_str", "L_dir"):
        assert torch.equal(a[k], b[k]), k
    assert float(a["L_dir"].abs().min()) > 0
    torch.testing.assert_close(b["L"], a["L"] - CFG.lambda_dir * a["L_dir"])
    t = {k: v[0] for k, v in h_nodir.terms.items()}          # the mean over anchors, each E_p
    torch.testing.assert_close(torch.tensor(h_nodir.loss[0]), torch.tensor(
        t["L_clip"] + t["L_str"] + CFG.lambda_cover * t["L_cover"] + CFG.lambda_spill * t["L_spill"]))
