"""What an edit returns and writes: `EditResult` (the picture, every decision on the way) and its
folder (`EditResult.save`: final.png, source.png, boxes.png, anchor_k.png, figure.png, result.json,
written all or nothing)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from lrlib.canvas import box_to_image
from lrlib.config import LRConfig
from lrlib.outputs import atomic_dir, write_result
from lrlib.train import History


@dataclass
class EditResult:
    """What `edit` returns: the final image and everything the method decided on the way.

    image            the final edit (PIL) at the input's own resolution: the winner pasted into
                     the input; outside the box the input, bit for bit
    source           the input on the S x S working canvas (S = config.size), letterboxed:
                     scaled to a longer side of S and edge-padded; `content` (x0, y0, x1, y1) is
                     where the picture lies on it
    results          the K per-anchor results (PIL, working resolution), each anchor's chosen box
                     filled by the editor
    best             index of the winner among the K (`best_box`, `best_box_image`: its box)
    anchors          (K, 2) anchor points, pixel (x, y) in the working image
    boxes            (K, M, 4) box proposals (x0, y0, x1, y1), working pixels, x1/y1 exclusive
    chosen           (K,) the proposal each anchor's trained RGN picked (argmax of probs)
    probs            (K, M) RGN box probabilities after training
    scores           {"S_t2i", "S_i2i", "S"} (+ "S_dir" when config.gamma != 0, "S_cap" when
                     config.delta != 0 and the anchors were caption-aware): (K,) lists, S the
                     ranking score (lrlib.scoring)
    grounding        (K,) how well each anchor's region matches the caption (lrlib.additions.relations;
                     None when the anchors were not chosen by the caption)
    attention        (h, w) DINO [CLS] attention, head-averaged; attention_heads (heads, h, w)
    history          the training run (lrlib.train.History): loss and terms per iteration, the
                     sampled boxes and the probabilities
    prompt, caption  the texts used (caption: config.default_caption when none was given)
    config           the LRConfig the edit ran with
    seconds          wall-clock seconds of the whole edit, model loading included
    candidates       (K, M, 3, S, S) tensor of every composite the RGN chose among
    full_res_window  (x0, y0, x1, y1) of the input that the editor repainted at its own
                     resolution (lrlib.additions.fullres); None when the canvas winner was scaled in

    `save(folder)` writes the pictures and result.json (see the README), `figure()` draws it.
    """
    image: Image.Image
    source: Image.Image
    results: list[Image.Image]
    best: int
    anchors: list[list[float]]
    boxes: list[list[list[int]]]
    chosen: list[int]
    probs: list[list[float]]
    scores: dict[str, list[float]]
    attention: torch.Tensor
    attention_heads: torch.Tensor
    history: History
    prompt: str
    caption: str
    config: LRConfig
    seconds: float
    content: list[int]
    candidates: torch.Tensor | None = field(default=None, repr=False)
    input: dict | None = None
    grounding: list[float] | None = None
    full_res_window: list[int] | None = None

    @property
    def best_box(self) -> list[int]:
        """The winning box (x0, y0, x1, y1) in pixels of the S x S working canvas (`source`), where
        the input occupies `content`; `best_box_image` is the same box in the input's pixels."""
        return self.boxes[self.best][self.chosen[self.best]]

    @property
    def best_box_image(self) -> list[int]:
        """The winning box in the input image's own pixels (what was repainted in `image`):
        best_box minus the content's corner, times (W / w, H / h), rounded outwards."""
        return box_to_image(self.best_box, self.content, self.image.size)

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "caption": self.caption, "best": self.best,
                "best_box": self.best_box, "best_box_image": self.best_box_image,
                "content": self.content,
                "anchors": self.anchors, "boxes": self.boxes,
                "chosen": self.chosen, "probs": self.probs, "scores": self.scores,
                "seconds": round(self.seconds, 3), "history": self.history.to_dict(),
                "config": self.config.to_dict(), "input": self.input, "grounding": self.grounding,
                "full_res_window": self.full_res_window}

    def figure(self):
        """The matplotlib Figure of figure.png: inputs, anchors, boxes, K results, training."""
        from lrlib.viz import result_figure
        return result_figure(self)

    def __repr__(self) -> str:
        p = self.prompt if len(self.prompt) <= 60 else self.prompt[:57] + "..."
        W, H = self.image.size
        return (f"EditResult(prompt={p!r}, best={self.best} of K={len(self.results)}, "
                f"box={self.best_box} (working px; {self.best_box_image} in the {W}x{H} input), "
                f"S={self.scores['S'][self.best]:.3f}, seconds={self.seconds:.1f}, "
                f"world={self.config.world!r}, editor={self.config.editor!r})")

    def save(self, out_dir, overwrite: bool = True, figure: bool = True) -> Path:
        """Write final.png, source.png, boxes.png, anchor_{k}.png, figure.png and result.json,
        all or nothing (lrlib.outputs.atomic_dir). Returns the folder. An earlier lrlib result there is
        replaced; a file or a folder holding anything else is refused (LRError, lrlib.outputs.check_output)."""
        from lrlib.viz import draw_boxes
        out_dir = Path(out_dir)
        with atomic_dir(out_dir, overwrite=overwrite) as tmp:
            self.image.save(tmp / "final.png")
            self.source.save(tmp / "source.png")
            draw_boxes(self.source, [b[c] for b, c in zip(self.boxes, self.chosen)], self.best,
                       self.anchors).save(tmp / "boxes.png")
            for k, im in enumerate(self.results):
                im.save(tmp / f"anchor_{k}.png")
            if figure:
                import matplotlib.pyplot as plt
                fig = self.figure()
                fig.savefig(tmp / "figure.png", dpi=100, bbox_inches="tight")
                plt.close(fig)
            write_result(tmp, self.to_dict())
        return out_dir
