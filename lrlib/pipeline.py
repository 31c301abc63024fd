"""The whole method, one call: `edit(image, prompt, caption=None, config=LRConfig()) -> EditResult`.

    x --DINO--> A, F --top-K--> anchors C_i --M boxes--> B_ij --ROI-align--> f_ij --RGN--> pi_ij
    editor(x, m_ij, prompt) = E_ij  (once, no gradient, batched)
    train the RGN on e_i = sum_j g_ij C_ij with L = L_clip + L_str + L_dir   (lrlib.train;
        lrlib adds lambda_cover L_cover + lambda_spill L_spill, lrlib.additions.box_terms)
    result_i = C_i,argmax(pi_i);  rank by S = alpha S_t2i + beta S_i2i (+ gamma S_dir + delta S_cap,
    lrlib's caption-aware terms);  paint the winner again on the photo (lrlib.additions.fullres), paste it.

With a caption, lrlib's anchors are the K of a pool of attention peaks whose regions match it
best (lrlib.additions.grounding.caption_anchors), the M boxes are the anchor's DINO blob's box
scaled from a tight part of the object to the object with context (proposals="ladder"), and the
RGN also weighs how much of the blob a box leaves out and how much of a neighbour it takes in
(lrlib.additions.box_terms); LRConfig.paper() takes the top-K peaks, M squares and the paper's
three losses, as the paper.
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

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from lrlib.additions.drafts import draft_settings, regenerate
from lrlib.additions.proposals import propose
from lrlib.additions.fullres import (crop_window, detail_gain, photo_scale, regenerate_full_res,
                                     winner_generator)
from lrlib.additions.grounding import grounded_anchors
from lrlib.anchors import content_anchors
from lrlib.blend import paste_weight
from lrlib.canvas import box_to_image, letterbox, paste_back
from lrlib.config import LRConfig
from lrlib.editors.base import EditorSettings
from lrlib.editors.candidates import finite_inside, generate_candidates
from lrlib.errors import LRError
from lrlib.images import input_record, load_image, to_pil, to_tensor
from lrlib.losses import Embeddings, edit_loss, embed
from lrlib.models import Models, check_models, load_models
from lrlib.regions import RGN, box_geometry, boxes_to_masks, roi_pool
from lrlib.results import EditResult
from lrlib.scoring import pick_best, quality_scores
from lrlib.text import check_prompt
from lrlib.train import History, composites, masked_logits, train_rgn
from lrlib.worlds import warn_if_not_toy_scene


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
                                            # caption (caption-aware anchors; lrlib.additions.relations)
    valid: torch.Tensor | None = None       # (K, M) bool: the candidates the editor made finite
                                            # (the others are out of the choice; None: all)
    index: torch.Tensor | None = None       # (K, M) each candidate's place in the order it was
                                            # generated (its noise; lrlib.additions.drafts.regenerate):
                                            # k * M + j unless anchors were dropped
    feats: torch.Tensor | None = None       # (1, d, h, w) DINO patch features of x (the box
                                            # terms of lrlib.additions.box_terms read them)
    regions: torch.Tensor | None = None     # (P, S, S) bool: the caption pool's region blobs
                                            # (anchor_cover; L_spill's objects come from them)

    @property
    def K(self) -> int:
        return self.boxes.shape[0]

    @property
    def M(self) -> int:
        return self.boxes.shape[1]


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
    ground = blob_boxes = regions = None
    if anchors is None and cfg.anchor_pool > cfg.K and caption != cfg.default_caption:
        anchors, ground, blob_boxes, regions = grounded_anchors(                       # lrlib: caption-aware
            d_out.attn_mean[0].cpu(), d_out.feats, x, models.clip, caption, cfg, content)
    elif anchors is None:                                                   # the paper: top-K peaks
        anchors = content_anchors(d_out.attn_mean[0].cpu(), content, S, cfg.K,
                                  cfg.anchor_spacing, cfg.anchor_refine)
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
                    models=models, grounding=ground, valid=valid.to(dev), index=index,
                    feats=d_out.feats, regions=regions)


def loss_fn(p: Prepared, cfg: LRConfig):
    """L(e, generator) on p's embeddings with cfg's weights (lambda_*, n_aug), read now."""
    return partial(edit_loss, emb=p.emb, clip=p.models.clip, dino=p.models.dino,
                   lambda_clip=cfg.lambda_clip, lambda_str=cfg.lambda_str,
                   lambda_dir=cfg.lambda_dir, n_aug=cfg.n_aug)


def box_terms(p: Prepared, cfg: LRConfig) -> dict:
    """{name: (weight, (K, M) table)} of the box terms cfg weighs above 0 (lambda_cover,
    lambda_spill; lrlib.additions.box_terms), from p's DINO features, attention and masks;
    {} when both weights are 0 (the paper's losses only, nothing computed)."""
    if not (cfg.lambda_cover or cfg.lambda_spill):
        return {}
    from lrlib.additions.box_terms import geometry
    t = geometry(p, cfg, spill=bool(cfg.lambda_spill))
    return {k: (w, t[k]) for k, w in (("L_cover", cfg.lambda_cover), ("L_spill", cfg.lambda_spill))
            if w}


def train_and_choose(p: Prepared, cfg: LRConfig | None = None) -> tuple[torch.Tensor, History]:
    """4. Train a fresh RGN on p's candidates (loss weights from cfg); return (probs (K, M), History)."""
    cfg = cfg or p.cfg
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        rgn = RGN(p.pooled.shape[2], cfg.roi_size, cfg.rgn_channels, cfg.rgn_hidden).to(p.x.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    hist = train_rgn(rgn, p.pooled, p.geom, p.C, loss_fn(p, cfg), cfg.iterations, cfg.lr, cfg.tau,
                     cfg.hard, gen, cfg.progress, cfg.estimator, cfg.table_views, valid=p.valid,
                     objective=cfg.objective, softmin_tau=cfg.softmin_tau,
                     extra_terms=box_terms(p, cfg))
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
    p = prepare(image, prompt, caption, cfg, models)        # drafts: cheap candidates (lrlib.additions.drafts)
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
        # the winner painted again on the photo itself, at the editor's resolution (lrlib.additions.fullres)
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
        w = paste_weight(mask, win, p.x, cfg.blend_px, cfg.blend_tau, p.content)
        final = paste_back(p.x_full, win, w, p.content)
    return EditResult(
        image=to_pil(final[0]), source=to_pil(p.x[0]), results=[to_pil(r) for r in results],
        best=best, anchors=p.anchors.tolist(), boxes=p.boxes.tolist(), chosen=chosen.tolist(),
        probs=probs.tolist(), scores={k: v.tolist() for k, v in scores.items()},
        attention=p.attn.mean(0), attention_heads=p.attn, history=hist, prompt=p.prompt,
        caption=p.caption, config=cfg, seconds=time.perf_counter() - t0, content=list(p.content),
        candidates=p.C.cpu(), input=input_record(source) if isinstance(source, (str, Path)) else None,
        grounding=None if p.grounding is None else p.grounding.tolist(), full_res_window=window)
