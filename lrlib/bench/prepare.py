"""Seconds of `lrlib.pipeline.prepare` before the candidate edits, per stage, per canvas size.

Everything `prepare` does on the canvas before the editor runs: DINO's forward pass, the
caption-aware anchors (the region-covering pool, its fitted blobs snapped by the guided filter,
the caption scores of their views), the proposals and the ROI-pooled features. The models are
the real classes at their real sizes with random weights (DINO ViT-B/16 at 448 px: a 28 x 28
grid of 768-d features; CLIP ViT-B/16), on smoke.py's non-square photo-like picture, with a
caption so that every caption-aware step runs, and `LRConfig()`'s method (K, anchor_pool,
fit_snap, fit_reach, ...) at each canvas size S.

The editor's work is not timed: the editor here stops `prepare` where the candidate edits
would begin (its `snap_mask`, called just before `generate_candidates`). Each stage's time is
exclusive (a stage called inside another counts for itself only):

    DINO        the ViT's forward pass (Dino.forward)
    anchors     the attention peaks and the pool's bookkeeping (additions.grounding's
                anchor_pool and caption_anchors, anchors.content_anchors), less what follows
    caption     CLIP: the views' image embeddings and the caption's text (additions.grounding.crop_scores)
    fitted      the fitted blobs: similarity maps, guided filter, connected blobs
                (additions.fitted: fitted_blobs, pixel_norms; guide_stats)
    ROI         the proposals and ROI-align (pipeline.propose, roi_pool)
    other       the rest of prepare (loading, letterboxing the picture)

    python -m lrlib.bench prepare                       # 64, 256, 512, 1024 px, one thread
    python -m lrlib.bench prepare --sizes 512 --threads 2
"""
from __future__ import annotations

import contextlib
import functools
import time
from collections import defaultdict
from unittest import mock

import torch

from lrlib.config import LRConfig

SIZES = (64, 256, 512, 1024)
STAGES = ("DINO", "anchors", "caption", "fitted", "ROI", "other")
PROMPT, CAPTION = "a bowl of ramen", "a red ball"


class StopBeforeEdits(Exception):
    """Raised by `StopEditor` where `prepare` would start generating the candidate edits."""


class StopEditor:
    """An editor that ends `prepare` where the candidate edits begin (its `snap_mask`), keeping
    the number of proposals it was handed."""
    resolution = 512

    def __init__(self):
        self.n_masks = 0

    def snap_mask(self, masks: torch.Tensor) -> torch.Tensor:
        self.n_masks = len(masks)
        raise StopBeforeEdits


class StageClock:
    """Exclusive seconds per stage: a call of a stage inside another stage's call is charged to
    the inner stage only."""

    def __init__(self):
        self.spent: dict[str, float] = defaultdict(float)
        self._stack: list[str] = []
        self._since = 0.0

    def enter(self, stage: str):
        now = time.perf_counter()
        if self._stack:
            self.spent[self._stack[-1]] += now - self._since
        self._stack.append(stage)
        self._since = now

    def leave(self):
        now = time.perf_counter()
        self.spent[self._stack.pop()] += now - self._since
        self._since = now

    def wrap(self, stage: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self.enter(stage)
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()
        return timed


@contextlib.contextmanager
def timed_stages(clock: StageClock, models):
    """Route the stages' functions (module docstring) through `clock` for the duration."""
    import lrlib.additions.fitted as fitted
    import lrlib.additions.grounding as grounding
    import lrlib.pipeline
    targets = [(grounding, "anchor_pool", "anchors"),
               (grounding, "caption_anchors", "anchors"),
               (lrlib.pipeline, "content_anchors", "anchors"),
               (grounding, "crop_scores", "caption"),
               (models.clip, "encode_text", "caption"),
               (grounding, "fitted_blobs", "fitted"),       # each module calls its own import
               (fitted, "fitted_blobs", "fitted"),
               (grounding, "pixel_norms", "fitted"),
               (fitted, "pixel_norms", "fitted"),
               (grounding, "guide_stats", "fitted"),
               (fitted, "guide_stats", "fitted"),
               (lrlib.pipeline, "propose", "ROI"),
               (lrlib.pipeline, "roi_pool", "ROI")]
    with contextlib.ExitStack() as stack:
        for owner, name, stage in targets:
            if hasattr(owner, name):               # (an implementation without that helper)
                stack.enter_context(mock.patch.object(owner, name,
                                                      clock.wrap(stage, getattr(owner, name))))
        hooks = [models.dino.register_forward_pre_hook(lambda m, a: clock.enter("DINO")),
                 models.dino.register_forward_hook(lambda m, a, out: clock.leave())]
        try:
            yield
        finally:
            for h in hooks:
                h.remove()


def build_models():
    """(Models, its LRConfig) of the real DINO and CLIP classes at full size, random weights,
    CPU, and the `StopEditor`."""
    import open_clip
    import timm

    from lrlib.anchors import Dino
    from lrlib.clip import Clip
    from lrlib.models import Models, clip_model
    from lrlib.worlds.random_world import CLIP_MEAN, CLIP_STD

    torch.manual_seed(0)
    dino = Dino(timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0), 448)
    clip = Clip(clip_model("ViT-B-16", "openai", weights=False),
                open_clip.get_tokenizer("ViT-B-16"), CLIP_MEAN, CLIP_STD)
    models = Models(dino=dino, clip=clip, editor=StopEditor(), device=torch.device("cpu"),
                    world="random-full")
    return models, LRConfig(device="cpu", dino_size=448, progress=False)


def time_prepare(models, cfg: LRConfig, image) -> dict:
    """One `prepare` of `image` up to the candidate edits: total seconds, seconds per stage,
    proposals made, peak resident memory (GiB)."""
    from lrlib.bench.smoke import PeakRSS
    from lrlib.pipeline import prepare

    clock = StageClock()
    with PeakRSS() as mem, timed_stages(clock, models):
        t0 = time.perf_counter()
        try:
            prepare(image, PROMPT, CAPTION, cfg, models)
            raise RuntimeError("prepare returned without reaching the editor")
        except StopBeforeEdits:
            total = time.perf_counter() - t0
    spent = dict(clock.spent)
    spent["other"] = total - sum(spent.values())
    return dict(total=total, spent=spent, boxes=models.editor.n_masks, peak_gb=mem.peak_gb)


def run_prepare(sizes=SIZES, threads: int = 1, report=print) -> str:
    """Time `prepare` at each canvas size (after one untimed warm-up at 64 px), one row each;
    returns the table."""
    from lrlib.bench.smoke import photo

    torch.set_num_threads(threads)
    models, cfg = build_models()
    image = photo()
    (W, H), (h, w) = image.size, models.dino.grid
    lines = [f"prepare: photo {W}x{H} letterboxed onto S x S, random-weight DINO ViT-B/16 at "
             f"{cfg.dino_size} px (grid {h}x{w}, d 768) and CLIP ViT-B/16, caption {CAPTION!r}, "
             f"K={cfg.K} anchor_pool={cfg.anchor_pool} anchor_cover={cfg.anchor_cover} "
             f"fit_snap={cfg.fit_snap} fit_reach={cfg.fit_reach}, {torch.get_num_threads()} "
             "thread(s), CPU",
             "timed: prepare up to the candidate edits (generate_candidates and the editor are "
             "not run); stage shares of the total, exclusive; boxes: the K x M proposals",
             f"{'S':>5s}{'total s':>9s}" + "".join(f"{s:>9s}" for s in STAGES)
             + f"{'boxes':>7s}{'peak GB':>9s}"]
    for line in lines:
        report(line)
    time_prepare(models, cfg.replace(size=64), image)                     # warm-up, not shown
    for S in sizes:
        r = time_prepare(models, cfg.replace(size=S), image)
        lines.append(f"{S:5d}{r['total']:9.2f}"
                     + "".join(f"{100 * r['spent'].get(s, 0.0) / r['total']:8.1f}%" for s in STAGES)
                     + f"{r['boxes']:7d}{r['peak_gb']:9.2f}")
        report(lines[-1])
    return "\n".join(lines)
