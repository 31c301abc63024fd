"""Pictures: boxes on images, and one figure that tells the story of an edit."""
from __future__ import annotations

from PIL import Image, ImageDraw

from lrlib.anchors import upsample_map

COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#fabed4", "#469990"]


def draw_boxes(img: Image.Image, boxes, best: int | None = None, anchors=None, ids=None,
               min_side: int = 256) -> Image.Image:
    """Copy of `img` (upscaled to at least `min_side`, nearest) with one box per anchor, the
    winner drawn thicker, and the anchor points. `ids` pick the colours (default 0..K-1)."""
    s = max(1, -(-min_side // min(img.size)))
    out = img.resize((img.size[0] * s, img.size[1] * s), Image.NEAREST) if s > 1 else img.copy()
    d = ImageDraw.Draw(out)
    w = max(1, out.size[0] // 160)
    ids = list(range(len(boxes))) if ids is None else ids
    for k, b in enumerate(boxes):
        col = COLOURS[ids[k] % len(COLOURS)]
        d.rectangle([b[0] * s, b[1] * s, b[2] * s - 1, b[3] * s - 1], outline=col,
                    width=w * (2 if k == best else 1))
        if anchors is not None:
            x, y = anchors[k][0] * s, anchors[k][1] * s
            d.ellipse([x - 2 * w, y - 2 * w, x + 2 * w, y + 2 * w], fill=col, outline="white")
    return out


def result_figure(r):
    """Source + anchors + chosen boxes | attention | each of the K results (scores) | final."""
    import matplotlib.pyplot as plt

    K = len(r.results)
    cols = max(3, K)
    fig, ax = plt.subplots(2, cols, figsize=(2.4 * cols, 5.2))
    for a in ax.flat:
        a.axis("off")
    boxes = [b[c] for b, c in zip(r.boxes, r.chosen)]
    ax[0, 0].imshow(draw_boxes(r.source, boxes, r.best, r.anchors))
    ax[0, 0].set_title("anchors + chosen boxes", fontsize=9)
    S = r.source.size[0]
    ax[0, 1].imshow(r.source)
    ax[0, 1].imshow(upsample_map(r.attention, S, S).numpy(), cmap="inferno", alpha=0.6)
    ax[0, 1].set_title("DINO [CLS] attention", fontsize=9)
    ax[0, 2].imshow(r.image)
    ax[0, 2].set_title(f"final: {r.prompt[:30]}", fontsize=9)
    if cols > 3 and r.history.loss:
        a = ax[0, 3]
        a.axis("on")
        a.plot(r.history.loss, label="L")
        for k, v in r.history.terms.items():
            a.plot(v, label=k, lw=0.8)
        a.legend(fontsize=6)
        a.set_title("training loss", fontsize=9)
    for k, im in enumerate(r.results):
        ax[1, k].imshow(draw_boxes(im, [boxes[k]], 0, [r.anchors[k]], ids=[k]))
        star = " *" if k == r.best else ""
        ax[1, k].set_title(f"#{k} S={r.scores['S'][k]:.2f}{star}", fontsize=9)
    fig.tight_layout()
    return fig
