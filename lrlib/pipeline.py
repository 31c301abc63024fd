"""The whole method, one call: `edit(image, prompt, caption=None, config=LRConfig()) -> EditResult`.

    x --DINO--> A, F --top-K--> anchors C_i --M boxes--> B_ij --ROI-align--> f_ij --RGN--> pi_ij
    editor(x, m_ij, prompt) = E_ij  (once, no gradient, batched)
    train the RGN on e_i = sum_j g_ij C_ij with L = L_clip + L_str + L_dir   (lrlib.train)
    result_i = C_i,argmax(pi_i);  rank by S = alpha S_t2i + beta S_i2i;  paste the winner back.

Everything outside the chosen box is exactly the input image, at its full resolution.

The working canvas is S x S (S = config.size). A non-square photo is letterboxed onto it: scaled
uniformly so its longer side is S, centred, and padded by repeating its edge pixels, so nothing
is stretched. The content rectangle c = (x0, y0, x1, y1) of the canvas holds the photo; anchors
are picked only from patches whose centre lies in c, boxes are clipped to c, and the winner is
pasted back by cropping c and scaling it by (W / w, H / h) (w, h: the sides of c, which round
W * S / max(W, H) and H * S / max(W, H)) to the photo's own W x H. A square photo fills the
canvas: c = (0, 0, S, S).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from lrlib.anchors import (caption_anchors, cells_to_pixels, content_cells, refine_anchors,
                           top_k_anchors)
from lrlib.blend import feather, keep_changes
from lrlib.config import LRConfig
from lrlib.draft import batch_generator, drafting, regenerate
from lrlib.errors import LRError
from lrlib.io import atomic_dir, input_record, load_image, to_pil, to_tensor, write_result
from lrlib.losses import Embeddings, edit_loss, embed
from lrlib.models import Models, load_models
from lrlib.regions import RGN, box_geometry, boxes_to_masks, propose, roi_pool
from lrlib.scoring import pick_best, quality_scores
from lrlib.text import check_prompt
from lrlib.train import History, composites, train_rgn
from lrlib.world import warn_if_not_toy_scene


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
    grounding        (K,) how well each anchor's region matches the caption (lrlib.relations;
                     None when the anchors were not chosen by the caption)
    attention        (h, w) DINO [CLS] attention, head-averaged; attention_heads (heads, h, w)
    history          the training run (lrlib.train.History): loss and terms per iteration, the
                     sampled boxes and the probabilities
    prompt, caption  the texts used (caption: config.default_caption when none was given)
    config           the LRConfig the edit ran with
    seconds          wall-clock seconds of the whole edit, model loading included
    candidates       (K, M, 3, S, S) tensor of every composite the RGN chose among

    `save(folder)` writes the pictures and result.json (see the README), `figure()` draws it.
    """
    image: Image.Image                 # final edit at the input's full resolution
    source: Image.Image                # the input on the S x S working canvas (letterboxed)
    results: list[Image.Image]         # the K per-anchor results (working resolution)
    best: int                          # index of the winner among the K
    anchors: list[list[float]]         # (K, 2) pixel (x, y) in the working image
    boxes: list[list[list[int]]]       # (K, M, 4) proposals (x0, y0, x1, y1)
    chosen: list[int]                  # (K,) chosen proposal per anchor
    probs: list[list[float]]           # (K, M) RGN probabilities after training
    scores: dict[str, list[float]]     # S_t2i, S_i2i, S over the K results
    attention: torch.Tensor            # (h, w) head-averaged [CLS] attention
    attention_heads: torch.Tensor      # (heads, h, w)
    history: History
    prompt: str
    caption: str
    config: LRConfig
    seconds: float
    content: list[int]                 # (x0, y0, x1, y1) of the canvas that holds the input
    candidates: torch.Tensor | None = field(default=None, repr=False)  # (K, M, 3, S, S) composites
    input: dict | None = None          # {"file", "sha256"} of the input file (None: in memory)
    grounding: list[float] | None = None  # (K,) each anchor's caption grounding g (caption-aware
                                          # anchors only; the ranking's S_cap reads it)

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
                "config": self.config.to_dict(), "input": self.input, "grounding": self.grounding}

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
        all or nothing (lrlib.io.atomic_dir). Returns the folder. An earlier lrlib result there is
        replaced; a file or a folder holding anything else is refused (LRError, lrlib.io.check_output)."""
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


def generate_candidates(editor, x, masks, prompt, seed, batch_size, progress=True):
    """E_ij for all K*M boxes, once, without gradient, `batch_size` per editor call.

    Each batch gets its own generator seeded from (seed, batch index): deterministic for a config.
    Returns (K*M, 3, H, W).
    """
    n = masks.shape[0]
    out = []
    starts = range(0, n, batch_size)
    for b, s in enumerate(tqdm(starts, desc="candidate edits", disable=not progress, leave=False)):
        m = masks[s:s + batch_size]
        gen = batch_generator(seed, b)
        out.append(editor.inpaint(x.expand(m.shape[0], -1, -1, -1), m, [prompt] * m.shape[0], gen))
    return torch.cat(out)


@dataclass
class Prepared:
    """Everything computed before the RGN is trained: the expensive, reusable part of an edit."""
    cfg: LRConfig
    prompt: str
    caption: str
    x_full: torch.Tensor          # (1, 3, H, W) the input at full resolution, CPU
    x: torch.Tensor               # (1, 3, S, S) the letterboxed working canvas, on the device
    content: tuple                # (x0, y0, x1, y1) of x that holds the input
    attn: torch.Tensor            # (heads, h, w) DINO [CLS] attention
    anchors: torch.Tensor         # (K, 2) pixel (x, y)
    boxes: torch.Tensor           # (K, M, 4)
    pooled: torch.Tensor          # (K, M, d, r, r) ROI-aligned DINO features
    geom: torch.Tensor            # (K, M, 2) relative box sizes
    masks: torch.Tensor           # (K, M, 1, S, S) the masks the editor really edited
    C: torch.Tensor               # (K, M, 3, S, S) composites m * E + (1 - m) * x
    emb: Embeddings               # E_T, E_T_caption, E_I_src, S_src: read by the loss and the rank
    models: Models
    grounding: torch.Tensor | None = None   # (K,) how well each anchor's region matches the
                                            # caption (caption-aware anchors; lrlib.relations)

    @property
    def K(self) -> int:
        return self.boxes.shape[0]

    @property
    def M(self) -> int:
        return self.boxes.shape[1]


def letterbox(x_full: torch.Tensor, S: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """(1, 3, H, W) -> the S x S canvas (1, 3, S, S) and its content rectangle (x0, y0, x1, y1):
    the image scaled uniformly to a longer side of S, centred, padded with its edge pixels."""
    H, W = x_full.shape[-2:]
    h, w = max(1, round(H * S / max(H, W))), max(1, round(W * S / max(H, W)))
    x = F.interpolate(x_full, size=(h, w), mode="bilinear", antialias=True,
                      align_corners=False).clamp(0, 1)
    top, left = (S - h) // 2, (S - w) // 2
    x = F.pad(x, (left, S - w - left, top, S - h - top), mode="replicate")
    return x, (left, top, left + w, top + h)


def box_to_image(box, content, image_size) -> list[int]:
    """A canvas box (x0, y0, x1, y1) -> the covering box in the pixels of the W x H input."""
    (W, H), (cx0, cy0, cx1, cy1) = image_size, content
    w, h = cx1 - cx0, cy1 - cy0
    x0, y0, x1, y1 = (int(v) for v in box)
    return [max(0, (x0 - cx0) * W // w), max(0, (y0 - cy0) * H // h),            # floor, exact
            min(W, -(-(x1 - cx0) * W // w)), min(H, -(-(y1 - cy0) * H // h))]  # ceil


def content_anchors(A: torch.Tensor, content, S: int, K: int, spacing: int,
                    refine: bool) -> torch.Tensor:
    """K anchors (K, 2) pixel (x, y) from the (h, w) attention map A of the S x S canvas, using
    only the cells whose centre lies in the content rectangle (the padding is never an anchor)."""
    h, w = A.shape
    inside = content_cells(h, w, S, content)
    cells = top_k_anchors(A.masked_fill(~inside, -math.inf), K, spacing)
    if not inside[cells[:, 0], cells[:, 1]].all():
        raise LRError(f"only {int(inside.sum())} of the {h}x{w} patch cells lie on the picture "
                      f"(the rest of the square canvas is padding), too few for K={K} anchors "
                      f"with anchor_spacing={spacing}: lower K or anchor_spacing, or crop the "
                      "image closer to square.")
    if refine:
        return refine_anchors(A.masked_fill(~inside, 0.0), cells, S, S)   # padding weighs 0
    return cells_to_pixels(cells, (h, w), S, S)


def anchor_pool(A: torch.Tensor, content, S: int, cfg: LRConfig, feats: torch.Tensor | None = None,
                x: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Up to cfg.anchor_pool content anchors (as many as the spacing lets fit, at least K): the
    candidates that lrlib's caption-aware anchors choose from (anchors.caption_anchors).

    cfg.anchor_cover (and feats (1, d, h, w), x given): one anchor per region instead
    (anchors.cover_pool), returned with its blobs as (pool (P, 2), blobs (P, S, S))."""
    if cfg.anchor_cover and feats is not None and x is not None:
        from lrlib.anchors import cover_pool
        return cover_pool(A, feats, x, content, cfg)
    for n in range(cfg.anchor_pool, cfg.K, -1):
        try:
            return content_anchors(A, content, S, n, cfg.anchor_spacing, cfg.anchor_refine)
        except LRError:
            continue
    return content_anchors(A, content, S, cfg.K, cfg.anchor_spacing, cfg.anchor_refine)


def prepare(image, prompt: str, caption: str | None, cfg: LRConfig, models: Models,
            anchors: torch.Tensor | None = None) -> Prepared:
    """Validate, find anchors (or use the given (K, 2) pixel anchors), propose boxes, pool
    features, and generate every candidate edit once."""
    cfg.validate()
    prompt = check_prompt(prompt)
    caption = check_prompt(caption, "caption") if caption is not None else cfg.default_caption
    img = load_image(image)
    dev, S = models.device, cfg.size
    x_full = to_tensor(img)[None]
    x, content = letterbox(x_full, S)
    x = x.to(dev)
    with torch.no_grad():
        d_out = models.dino(x)                                              # 1. DINO
    ground = blob_boxes = None
    if anchors is None:
        A = d_out.attn_mean[0].cpu()
        anchors = content_anchors(A, content, S, cfg.K, cfg.anchor_spacing, cfg.anchor_refine)
        if cfg.anchor_pool > cfg.K and caption != cfg.default_caption:    # lrlib: caption-aware
            pool, blobs = anchor_pool(A, content, S, cfg, d_out.feats, x), None
            if isinstance(pool, tuple):                      # anchor_cover: blobs come along
                pool, blobs = pool
            anchors, ground, blob_boxes = caption_anchors(pool, d_out.feats, x, models.clip,
                                                          caption, cfg, content, blobs)
            if cfg.prune_margin is not None:     # lrlib: no edits for anchors the caption rules out
                keep = ground >= ground[0] - cfg.prune_margin       # ground[0] is the highest
                anchors, ground, blob_boxes = anchors[keep], ground[keep], blob_boxes[keep]
    boxes = propose(anchors, d_out.feats, cfg, S, S, content, x, blob_boxes)            # 2. proposals
    K, M = boxes.shape[:2]
    pooled = roi_pool(d_out.feats, boxes.to(dev), S, S, cfg.roi_size)
    masks = models.editor.snap_mask(boxes_to_masks(boxes, S, S).flatten(0, 1).to(dev))
    cands = generate_candidates(models.editor, x, masks, prompt, cfg.seed,  # 3. edits, once
                                cfg.editor_batch_size, cfg.progress)
    emb = embed(models.clip, models.dino, x, prompt, caption, cfg.structure)
    return Prepared(cfg=cfg, prompt=prompt, caption=caption, x_full=x_full, x=x, content=content,
                    attn=d_out.attn[0].cpu(), anchors=anchors, boxes=boxes, pooled=pooled,
                    geom=box_geometry(boxes, S, S).to(dev), masks=masks.view(K, M, 1, S, S),
                    C=composites(cands, masks, x).view(K, M, 3, S, S), emb=emb,
                    models=models, grounding=ground)


def loss_fn(p: Prepared, cfg: LRConfig):
    """L(e, generator) on p's embeddings with cfg's weights (lambda_*, n_aug), read now."""
    return partial(edit_loss, emb=p.emb, clip=p.models.clip, dino=p.models.dino,
                   lambda_clip=cfg.lambda_clip, lambda_str=cfg.lambda_str,
                   lambda_dir=cfg.lambda_dir, n_aug=cfg.n_aug)


def train_and_choose(p: Prepared, cfg: LRConfig | None = None) -> tuple[torch.Tensor, History]:
    """4. Train a fresh RGN on p's candidates (loss weights from cfg); return (probs (K, M), History)."""
    cfg = cfg or p.cfg
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        rgn = RGN(p.pooled.shape[2], cfg.roi_size, cfg.rgn_channels, cfg.rgn_hidden).to(p.x.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    hist = train_rgn(rgn, p.pooled, p.geom, p.C, loss_fn(p, cfg), cfg.iterations, cfg.lr, cfg.tau,
                     cfg.hard, gen, cfg.progress, cfg.estimator, cfg.table_views)
    with torch.no_grad():
        probs = torch.softmax(rgn(p.pooled, p.geom), -1)
    return probs, hist


def rank(p: Prepared, results: torch.Tensor, clip, cfg: LRConfig | None = None):
    """5. Quality scores of the K results (K, 3, S, S) and the index of the winner."""
    cfg = cfg or p.cfg
    with torch.no_grad():
        scores = quality_scores(clip.encode_image(results), p.emb.E_T, p.emb.E_I_src,
                                cfg.alpha, cfg.beta,
                                clip.logit_scale if cfg.score_scale is None else cfg.score_scale,
                                p.emb.E_T_caption, cfg.gamma,
                                p.grounding, cfg.delta)
    return scores, pick_best(scores, cfg.rank_top)


def paste_back(x_full: torch.Tensor, result: torch.Tensor, mask: torch.Tensor,
               content=None) -> torch.Tensor:
    """6. The result (3, S, S) inside mask (1, S, S), cropped to the content rectangle (x0, y0,
    x1, y1; default the whole canvas) and scaled to x_full (1, 3, H, W); outside the mask x_full
    unchanged, bit for bit."""
    H, W = x_full.shape[-2:]
    x0, y0, x1, y1 = content or (0, 0, result.shape[-1], result.shape[-2])
    m_up = F.interpolate(mask[None, :, y0:y1, x0:x1].float().cpu(), size=(H, W), mode="nearest")
    up = F.interpolate(result[None, :, y0:y1, x0:x1].float().cpu(), size=(H, W), mode="bicubic",
                       align_corners=False).clamp(0, 1)
    return m_up * up + (1 - m_up) * x_full


def paste_weight(mask: torch.Tensor, result: torch.Tensor, x: torch.Tensor, cfg: LRConfig,
                 content=None) -> torch.Tensor:
    """The weight w (1, S, S) of the final paste y = w E + (1 - w) x on the canvas: the box
    `mask` feathered over its last cfg.blend_px px (the picture's edge counts as inside; no ramp
    there), kept at 1 where `result` differs from the canvas `x` (1, 3, S, S) by cfg.blend_tau
    or more (lrlib.blend.keep_changes); 0 outside the mask."""
    x0, y0, x1, y1 = content or (0, 0, mask.shape[-1], mask.shape[-2])
    w = torch.zeros_like(mask)
    w[:, y0:y1, x0:x1] = feather(mask[:, y0:y1, x0:x1], cfg.blend_px)
    if cfg.blend_px <= 1:
        return w
    return keep_changes(w, mask, result, x[0].to(result), cfg.blend_tau)


def edit(image, prompt: str, caption: str | None = None, config: LRConfig | None = None,
         models: Models | None = None) -> EditResult:
    """Edit `image` (path, PIL, array or tensor) so the region the prompt is about shows `prompt`.

    caption: a few words of what is being changed (e.g. "coffee" when the prompt is "soft drink");
    it only steers L_dir, default `config.default_caption`.
    """
    t0 = time.perf_counter()
    cfg = (config or LRConfig()).validate()
    check_prompt(prompt)
    if caption is not None:
        check_prompt(caption, "caption")
    source, image = image, load_image(image)  # bad input fails before any model is loaded
    warn_if_not_toy_scene(image, cfg)        # the toy world on a photo paints a blob: say so
    models = models or load_models(cfg)
    with drafting(models.editor, cfg.draft_steps):          # cheap candidates (lrlib.draft)
        p = prepare(image, prompt, caption, cfg, models)
    probs, hist = train_and_choose(p)
    K = p.K
    chosen = probs.argmax(-1)
    results = p.C[torch.arange(K), chosen]                                   # (K, 3, S, S)
    scores, best = rank(p, results, models.clip)
    mask, win = p.masks[best, chosen[best]], results[best]
    if cfg.draft_steps:                                      # the winner again, at full quality
        win = regenerate(models.editor, p.x, mask, p.prompt, cfg.seed,
                         best * p.M + int(chosen[best]), cfg.editor_batch_size)
    final = paste_back(p.x_full, win, paste_weight(mask, win, p.x, cfg, p.content), p.content)
    return EditResult(
        image=to_pil(final[0]), source=to_pil(p.x[0]), results=[to_pil(r) for r in results],
        best=best, anchors=p.anchors.tolist(), boxes=p.boxes.tolist(), chosen=chosen.tolist(),
        probs=probs.tolist(), scores={k: v.tolist() for k, v in scores.items()},
        attention=p.attn.mean(0), attention_heads=p.attn, history=hist, prompt=p.prompt,
        caption=p.caption, config=cfg, seconds=time.perf_counter() - t0, content=list(p.content),
        candidates=p.C.cpu(), input=input_record(source) if isinstance(source, (str, Path)) else None,
        grounding=None if p.grounding is None else p.grounding.tolist())
