"""Pictures: boxes on images, and one figure that tells the story of an edit."""
from __future__ import annotations

import textwrap

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


def legend_text(r, width: int = 100) -> str:
    """What the figure's colours, star and scores mean, for this result's config."""
    c = r.config
    dirs = bool(c.gamma) and "S_dir" in r.scores          # the terms that entered this S
    cap = bool(c.delta) and "S_cap" in r.scores
    S = ("S = alpha S_t2i + beta S_i2i" + (" + gamma S_dir" if dirs else "")
         + (" + delta S_cap" if cap else "")
         + f",  alpha = {c.alpha:g}, beta = {c.beta:g}"
         + (f", gamma = {c.gamma:g}" if dirs else "") + (f", delta = {c.delta:g}" if cap else ""))
    lines = [
        "box colour = candidate #k (its anchor, the dot); thick box and \u2605 = the winner",
        S,
        "  S_t2i, S_i2i" + (", S_dir" if dirs else "") + (", S_cap" if cap else "")
        + ": softmax over the K candidates of CLIP cosine to the prompt, to the source"
        + (", of the edit direction to caption -> prompt" if dirs else "")
        + (", of the anchor's region to the caption" if cap else ""),
        f"  the winner: best S among the top {c.rank_top} by S_t2i (official rule)",
        "final: the winner pasted into the input at full resolution; outside the box = the input",
        (f"  blended over the box's last {c.blend_px} px (blend_px), kept whole where the edit "
         f"changed a pixel by {c.blend_tau:g} (blend_tau)" if c.blend_px > 1 and c.blend_tau > 0
         else f"  blended over the box's last {c.blend_px} px (blend_px)" if c.blend_px > 1
         else f"  hard paste (blend_px = {c.blend_px})"),
        f"world {c.world}, editor {c.editor}, K={len(r.results)} M={len(r.boxes[0])}, "
        f"{c.iterations} iterations ({c.estimator}), seed {c.seed}, {r.seconds:.1f} s",
    ]
    return "\n".join(textwrap.fill(t, width, subsequent_indent="    ") for t in lines)


def result_figure(r):
    """The story of an edit, for any K: the caption and prompt in full; source | anchors and the
    box each anchor chose | DINO attention | final; the K candidates with their scores (the star
    marks the winner); the training loss, each anchor's box probability, and a legend."""
    import matplotlib.pyplot as plt

    K = len(r.results)
    cols = max(4, K)
    width = 2.6 * cols
    wrap = int(width * 11)                                   # characters per line at fontsize 9
    head = (textwrap.fill(f"caption: {r.caption}", wrap) + "\n"
            + textwrap.fill(f"prompt: {r.prompt}", wrap))
    n_head = head.count("\n") + 1
    fig = plt.figure(figsize=(width, 8.4 + 0.17 * n_head))
    gs = fig.add_gridspec(4, cols, height_ratios=[0.07 * n_head + 0.05, 1, 1, 0.9])
    top = fig.add_subplot(gs[0, :])
    top.axis("off")
    top.text(0, 1, head, va="top", ha="left", fontsize=9, transform=top.transAxes)

    boxes = [b[c] for b, c in zip(r.boxes, r.chosen)]
    W, H = r.source.size
    images = [(r.source, "source (working size)"),
              (draw_boxes(r.source, boxes, r.best, r.anchors), "anchors + chosen boxes"),
              (r.source, "DINO [CLS] attention"),
              (r.image, f"final ({r.image.size[0]}x{r.image.size[1]})")]
    for j, (im, title) in enumerate(images):
        a = fig.add_subplot(gs[1, j])
        a.imshow(im)
        if j == 2:
            heat = a.imshow(upsample_map(r.attention, H, W).numpy(), cmap="inferno", alpha=0.6)
            fig.colorbar(heat, ax=a, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
        a.set_title(title, fontsize=9)
        a.axis("off")
    for k, im in enumerate(r.results):
        a = fig.add_subplot(gs[2, k])
        a.imshow(draw_boxes(im, [boxes[k]], 0, [r.anchors[k]], ids=[k]))
        star = " \u2605" if k == r.best else ""
        a.set_title(f"#{k} S={r.scores['S'][k]:.2f}{star}", fontsize=9,
                    color=COLOURS[k % len(COLOURS)])
        a.axis("off")

    a = fig.add_subplot(gs[3, 0])
    if r.history.loss:
        a.plot(r.history.loss, "k", label="L")
        for name, v in r.history.terms.items():
            a.plot(v, label=name, lw=0.8)
        a.legend(fontsize=6)
    else:
        a.text(0.5, 0.5, "no training\n(0 iterations)", ha="center", va="center", fontsize=8)
    a.set_xlabel("iteration", fontsize=8)
    a.tick_params(labelsize=7)
    a.set_title("training loss", fontsize=9)

    a = fig.add_subplot(gs[3, 1])
    for k, c in enumerate(r.chosen):           # the chosen box's probability, during and after
        p = [it[k][c] for it in r.history.probs] + [r.probs[k][c]]
        a.plot(p, color=COLOURS[k % len(COLOURS)], marker="." if len(p) == 1 else None,
               lw=2 if k == r.best else 1, label=f"#{k}")
    a.set_ylim(0, 1)
    a.set_xlabel("iteration", fontsize=8)
    a.tick_params(labelsize=7)
    a.legend(fontsize=6)
    a.set_title("p(chosen box) per anchor", fontsize=9)

    a = fig.add_subplot(gs[3, 2:])
    a.axis("off")
    a.text(0, 1, legend_text(r, int((cols - 2) * 2.6 * 15)), va="top", ha="left", fontsize=7.5,
           transform=a.transAxes)
    a.set_title("legend", fontsize=9, loc="left")
    fig.tight_layout()
    return fig
