"""The whole method, one call: `edit(image, prompt, caption=None, config=LRConfig()) -> EditResult`.

    x --DINO--> A, F --top-K--> anchors C_i --M boxes--> B_ij --ROI-align--> f_ij --RGN--> pi_ij
    editor(x, m_ij, prompt) = E_ij  (once, no gradient, batched)
    train the RGN on e_i = sum_j g_ij C_ij with L = L_clip + L_str + L_dir   (lrlib.train)
    result_i = C_i,argmax(pi_i);  rank by S = alpha S_t2i + beta S_i2i (+ gamma S_dir + delta S_cap,
    lrlib's caption-aware terms);  paint the winner again on the photo (lrlib.fullres), paste it.

With a caption, lrlib's anchors are the K of a pool of attention peaks whose regions match it
best (lrlib.anchors.caption_anchors) and the M boxes are fitted to the anchor's DINO blob
(proposals="fitted"); LRConfig.paper() takes the top-K peaks and M squares, as the paper.
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
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from lrlib.progress import bar as progress_bar
from lrlib.anchors import (caption_anchors, cells_to_pixels, content_cells, refine_anchors,
                           top_k_anchors)
from lrlib.blend import feather, keep_changes, paste
from lrlib.canvas import box_to_image, letterbox
from lrlib.config import LRConfig
from lrlib.draft import candidate_generator, draft_settings, regenerate
from lrlib.editors.base import EditorSettings
from lrlib.errors import LRError
from lrlib.fullres import (crop_window, detail_gain, photo_scale, regenerate_full_res,
                           winner_generator)
from lrlib.io import atomic_dir, input_record, load_image, to_pil, to_tensor, write_result
from lrlib.losses import Embeddings, edit_loss, embed
from lrlib.models import Models, check_models, load_models
from lrlib.regions import RGN, box_geometry, boxes_to_masks, propose, roi_pool
from lrlib.scoring import pick_best, quality_scores
from lrlib.text import check_prompt
from lrlib.train import History, composites, masked_logits, train_rgn
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
    full_res_window  (x0, y0, x1, y1) of the input that the editor repainted at its own
                     resolution (lrlib.fullres); None when the canvas winner was scaled in

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
    full_res_window: list[int] | None = None  # (x0, y0, x1, y1) of the input that the editor
                                              # repainted at its resolution (lrlib.fullres);
                                              # None: the canvas winner was scaled into the input

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


#: GPU memory one candidate takes while the editor runs, at 1024 px in fp16 (an estimate for
#: SDXL's UNet with guidance, the batch doubled; scaled by pixels and by 2 for fp32): what
#: `editor_batch` divides the free memory by. Too low an estimate is caught by the halving retry.
BYTES_PER_IMAGE_1024 = 1.5 * 2**30


def editor_batch(editor, batch_size: int) -> int:
    """How many candidates one editor call may hold: `batch_size`, or on CUDA fewer when the free
    GPU memory (torch.cuda.mem_get_info) over 80% does not hold that many at
    BYTES_PER_IMAGE_1024 scaled to the editor's resolution and dtype; at least 1."""
    dev = torch.device(getattr(editor, "device", "cpu"))
    if dev.type != "cuda" or not torch.cuda.is_available():
        return batch_size
    free, _ = torch.cuda.mem_get_info(dev)
    dtype = getattr(editor, "dtype", None) or getattr(getattr(editor, "pipe", None), "dtype", None)
    per = BYTES_PER_IMAGE_1024 * (getattr(editor, "resolution", 512) / 1024) ** 2 \
        * (2 if dtype == torch.float32 else 1)
    return max(1, min(batch_size, int(0.8 * free // per)))


def finite_inside(E: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N,) bool: candidate E (N, 3, H, W) is finite wherever its mask (N, 1, H, W) is > 0 (what
    the composite takes of it)."""
    return (torch.isfinite(E) | (masks <= 0)).flatten(1).all(1)


_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def generate_candidates(editor, x, masks, prompt, seed, batch_size, progress=True,
                        settings: EditorSettings | None = None, max_batch: int | None = None):
    """E_ij for all K*M boxes, once, without gradient, with the editor's `settings` (None: its
    defaults). Returns (K*M, 3, H, W).

    Noise: candidate i is made as in editor calls on consecutive batches of `batch_size`, batch b
    with the generator seeded from (seed, b): deterministic for a config. A call holds at most
    `max_batch` candidates (None: `editor_batch`, from the free GPU memory on CUDA); a call that
    runs out of GPU memory is halved and retried. A batch split over calls starts each call from
    `lrlib.draft.candidate_generator`, so the SD editor (one seed per image) makes the same
    candidates whatever the split; MaskGIT's noise changes when its batch is split.

    Finite or dropped: a candidate with NaN / Inf inside its mask (an fp16 autoencoder
    overflowing) is made once more, alone, from the same noise with the autoencoder in float32
    (EditorSettings.upcast_vae); if it is still not finite it is returned all NaN, with a warning,
    and the caller drops it (`prepare`: Prepared.valid).
    """
    n = masks.shape[0]
    call_size = min(batch_size, max_batch or editor_batch(editor, batch_size))
    kwargs = {} if settings is None else {"settings": settings}
    upcast = (settings or EditorSettings()).replace(upcast_vae=True)

    def run(i: int, k: int, **kw) -> torch.Tensor:      # candidates i .. i + k - 1, one call
        gen = candidate_generator(seed, i, batch_size)
        return editor.inpaint(x.expand(k, -1, -1, -1), masks[i:i + k], [prompt] * k, gen, **kw)

    out, dropped = [], 0
    bar = progress_bar(total=n, desc="candidate edits", disable=not progress)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        i = start
        while i < stop:
            k = min(call_size, stop - i)
            try:
                E = run(i, k, **kwargs)
            except _OOM as e:
                if k == 1:
                    raise LRError("the editor ran out of GPU memory on a single candidate; free "
                                  "GPU memory (other processes, other loaded models), or use a "
                                  "smaller editor (e.g. SD 2 instead of SDXL).") from e
                call_size = k // 2
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            bad = torch.nonzero(~finite_inside(E, masks[i:i + k]).cpu())[:, 0].tolist()
            E = E.clone() if bad else E
            for j in bad:
                again = run(i + j, 1, settings=upcast)
                if bool(finite_inside(again, masks[i + j:i + j + 1]).all()):
                    E[j] = again[0].to(E.dtype)
                else:
                    E[j] = float("nan")
                    dropped += 1
            out.append(E)
            bar.update(k)
            i += k
    bar.close()
    if dropped:
        warnings.warn(f"{dropped} of {n} candidate edits held NaN / Inf even with the autoencoder "
                      "in float32; they are out of the choice. If many are, run the editor in "
                      "float32 (LRConfig(dtype='float32')).", stacklevel=2)
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
    valid: torch.Tensor | None = None       # (K, M) bool: the candidates the editor made finite
                                            # (the others are out of the choice; None: all)
    index: torch.Tensor | None = None       # (K, M) each candidate's place in the order it was
                                            # generated (its noise; lrlib.draft.regenerate):
                                            # k * M + j unless anchors were dropped

    @property
    def K(self) -> int:
        return self.boxes.shape[0]

    @property
    def M(self) -> int:
        return self.boxes.shape[1]


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
    cfg = cfg.validate().for_editor(models.editor)          # size None: the editor's own canvas
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
                                cfg.editor_batch_size, cfg.progress, settings=draft_settings(cfg))
    # a candidate the editor could not make finite is out of the choice: its composite is the
    # source (finite, never chosen: Prepared.valid), an anchor with none left is out of the edit
    valid = finite_inside(cands, masks).view(K, M).cpu()
    if not valid.any():
        raise LRError("every candidate edit held NaN / Inf, even decoded in float32: the editor "
                      "overflows in its dtype; run it in float32 (LRConfig(dtype='float32')) or "
                      "bfloat16, or try another seed.")
    C = composites(cands, masks, x)
    C = torch.where(valid.view(-1, 1, 1, 1).to(C.device), C, x).view(K, M, 3, S, S)
    masks, keep = masks.view(K, M, 1, S, S), valid.any(1)
    index = torch.arange(K * M).view(K, M)
    if not keep.all():
        anchors, boxes, valid = anchors[keep.to(anchors.device)], boxes[keep.to(boxes.device)], valid[keep]
        index = index[keep]
        pooled, masks, C = (t[keep.to(t.device)] for t in (pooled, masks, C))
        ground = None if ground is None else ground[keep.to(ground.device)]
    emb = embed(models.clip, models.dino, x, prompt, caption, cfg.structure)
    return Prepared(cfg=cfg, prompt=prompt, caption=caption, x_full=x_full, x=x, content=content,
                    attn=d_out.attn[0].cpu(), anchors=anchors, boxes=boxes, pooled=pooled,
                    geom=box_geometry(boxes, S, S).to(dev), masks=masks, C=C, emb=emb,
                    models=models, grounding=ground, valid=valid.to(dev), index=index)


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
                     cfg.hard, gen, cfg.progress, cfg.estimator, cfg.table_views, valid=p.valid)
    with torch.no_grad():       # a candidate out of the choice (p.valid) gets probability 0
        probs = torch.softmax(masked_logits(rgn(p.pooled, p.geom), p.valid), -1)
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
    unchanged, bit for bit, whatever the result holds (lrlib.blend.paste)."""
    H, W = x_full.shape[-2:]
    x0, y0, x1, y1 = content or (0, 0, result.shape[-1], result.shape[-2])
    m_up = F.interpolate(mask[None, :, y0:y1, x0:x1].float().cpu(), size=(H, W), mode="nearest")
    up = F.interpolate(result[None, :, y0:y1, x0:x1].float().cpu(), size=(H, W), mode="bicubic",
                       align_corners=False).clamp(0, 1)
    return paste(m_up, up, x_full)


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

    caption: a few words of what is being changed (e.g. "coffee" when the prompt is "soft drink"):
    with LRConfig() it chooses the anchors, steers L_dir and enters the ranking (lrlib.edit's
    docstring); default `config.default_caption`.
    """
    t0 = time.perf_counter()
    cfg = (config or LRConfig()).validate()
    if models is not None:
        check_models(models, cfg)            # models for another editor: say so before any work
    check_prompt(prompt)
    if caption is not None:
        check_prompt(caption, "caption")
    source, image = image, load_image(image)  # bad input fails before any model is loaded
    warn_if_not_toy_scene(image, cfg)        # the toy world on a photo paints a blob: say so
    models = models or load_models(cfg)
    cfg = cfg.for_editor(models.editor)     # what runs with this editor: canvas, drafts
    p = prepare(image, prompt, caption, cfg, models)        # drafts: cheap candidates (lrlib.draft)
    probs, hist = train_and_choose(p)
    K = p.K
    chosen = probs.argmax(-1)
    results = p.C[torch.arange(K), chosen]                                   # (K, 3, S, S)
    scores, best = rank(p, results, models.clip)
    j = int(chosen[best])
    mask, win = p.masks[best, j], results[best]
    size = image.size                                        # (W, H) of the input
    final, scale = None, photo_scale(p.content, size)
    box = box_to_image(p.boxes[best, j].tolist(), p.content, size)
    window = crop_window(box, size, int(models.editor.resolution), cfg.full_res_margin)
    if cfg.full_res and scale > 1 and detail_gain(models.editor, p.boxes[best, j].tolist(),
                                                   p.x.shape[-1], window, scale) > 1.05:
        # the winner painted again on the photo itself, at the editor's resolution (lrlib.fullres)
        final = regenerate_full_res(models.editor, p.x_full, box, p.prompt,
                                    winner_generator(cfg.seed, int(p.index[best, j])),
                                    cfg.full_res_margin, cfg.blend_px, cfg.blend_tau, scale,
                                    EditorSettings.from_config(cfg), window)
    window = None if final is None else list(window)
    if final is None:
        if cfg.draft_steps:                                  # the winner again, at full quality
            again = regenerate(models.editor, p.x, mask, p.prompt, cfg.seed, int(p.index[best, j]),
                               cfg.editor_batch_size, EditorSettings.from_config(cfg))
            win = again if bool(torch.isfinite(again).all()) else win   # else: keep the draft
        final = paste_back(p.x_full, win, paste_weight(mask, win, p.x, cfg, p.content), p.content)
    return EditResult(
        image=to_pil(final[0]), source=to_pil(p.x[0]), results=[to_pil(r) for r in results],
        best=best, anchors=p.anchors.tolist(), boxes=p.boxes.tolist(), chosen=chosen.tolist(),
        probs=probs.tolist(), scores={k: v.tolist() for k, v in scores.items()},
        attention=p.attn.mean(0), attention_heads=p.attn, history=hist, prompt=p.prompt,
        caption=p.caption, config=cfg, seconds=time.perf_counter() - t0, content=list(p.content),
        candidates=p.C.cpu(), input=input_record(source) if isinstance(source, (str, Path)) else None,
        grounding=None if p.grounding is None else p.grounding.tolist(), full_res_window=window)
