"""figure.png explains itself for any K (lrlib.viz.result_figure)."""
import matplotlib
import pytest

import lrlib
from lrlib.config import LRConfig

matplotlib.use("Agg")
CFG = LRConfig.cpu(progress=False, epochs=1, iters_per_epoch=3)
PROMPT = "a blue square with a thin yellow border, sitting where the red circle was before"


@pytest.mark.parametrize("K", [3, 1])
def test_figure_has_every_panel_for_small_K(models, scene, K):
    """Catches panels drawn only for K > 3 (the loss curves once were), a missing source or
    legend panel, a prompt cut short, a star on the wrong candidate and probability curves
    missing for some anchor."""
    from matplotlib.text import Text

    r = lrlib.edit(scene, PROMPT, caption="the red circle",      # every anchor edited: K panels
                   config=CFG.replace(K=K, prune_margin=None), models=models("sd"))
    fig = r.figure()
    titles = [a.get_title() or a.get_title(loc="left") for a in fig.axes]
    for t in ["source (working size)", "anchors + chosen boxes", "DINO [CLS] attention",
              "training loss", "p(chosen box) per anchor", "legend"]:
        assert t in titles, (t, titles)
    assert any(t.startswith("final") for t in titles)
    assert sum(a.get_label() == "<colorbar>" for a in fig.axes) == 1     # the attention's scale
    cands = [t for t in titles if t.startswith("#")]
    assert len(cands) == K and [("\u2605" in t) for t in cands] == [k == r.best for k in range(K)]
    text = " ".join(" ".join(o.get_text().split()) for o in fig.findobj(Text))
    assert PROMPT in text and "caption: the red circle" in text
    assert "S = alpha S_t2i + beta S_i2i" in text and "winner" in text
    loss = fig.axes[titles.index("training loss")]
    assert len(loss.lines[0].get_ydata()) == CFG.iterations
    assert len(fig.axes[titles.index("p(chosen box) per anchor")].lines) == K
    matplotlib.pyplot.close(fig)
