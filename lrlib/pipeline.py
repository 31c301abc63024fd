"""The whole method, one call: `edit(image, prompt, caption=None, config=LRConfig()) -> EditResult`.

    x --DINO--> A, F --top-K--> anchors C_i --M boxes--> B_ij --ROI-align--> f_ij --RGN--> pi_ij
    editor(x, m_ij, prompt) = E_ij  (once, no gradient, batched)
    train the RGN on e_i = sum_j g_ij C_ij with L = L_clip + L_str + L_dir   (lrlib.train)
    result_i = C_i,argmax(pi_i);  rank by S = alpha S_t2i + beta S_i2i;  paste the winner back.

Everything outside the chosen box is exactly the input image, at its full resolution.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from lrlib.anchors import cells_to_pixels, refine_anchors, top_k_anchors
from lrlib.blend import feather
from lrlib.config import LRConfig
from lrlib.draft import batch_generator, drafting, regenerate
from lrlib.io import atomic_dir, load_image, to_pil, to_tensor
from lrlib.losses import EditLoss
from lrlib.models import Models, load_models
from lrlib.regions import RGN, box_geometry, boxes_to_masks, make_proposals, roi_pool
from lrlib.scoring import pick_best, quality_scores
from lrlib.text import check_prompt
from lrlib.train import History, composites, train_rgn
from lrlib.world import warn_if_not_toy_scene


@dataclass
class EditResult:
    """What `edit` returns: the final image and everything the method decided on the way.

    image            the final edit (PIL) at the input's own resolution: the winner pasted into
                     the input; outside the box the input, bit for bit
    source           the input resized to the working resolution (config.size)
    results          the K per-anchor results (PIL, working resolution), each anchor's chosen box
                     filled by the editor
    best             index of the winner among the K (`best_box`, `best_box_image`: its box)
    anchors          (K, 2) anchor points, pixel (x, y) in the working image
    boxes            (K, M, 4) box proposals (x0, y0, x1, y1), working pixels, x1/y1 exclusive
    chosen           (K,) the proposal each anchor's trained RGN picked (argmax of probs)
    probs            (K, M) RGN box probabilities after training
    scores           {"S_t2i", "S_i2i", "S"} (+ "S_dir" when config.gamma != 0): (K,) lists,
                     S the ranking score (lrlib.scoring)
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
    source: Image.Image                # the input at the working resolution
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
    candidates: torch.Tensor | None = field(default=None, repr=False)  # (K, M, 3, S, S) composites

    @property
    def best_box(self) -> list[int]:
        """The winning box (x0, y0, x1, y1) in working-resolution pixels (config.size square)."""
        return self.boxes[self.best][self.chosen[self.best]]

    @property
    def best_box_image(self) -> list[int]:
        """The winning box in the input image's own pixels (what was repainted in `image`)."""
        W, H = self.image.size
        S = self.config.size
        x0, y0, x1, y1 = self.best_box
        return [math.floor(x0 * W / S), math.floor(y0 * H / S),
                math.ceil(x1 * W / S), math.ceil(y1 * H / S)]

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "caption": self.caption, "best": self.best,
                "best_box": self.best_box, "best_box_image": self.best_box_image,
                "anchors": self.anchors, "boxes": self.boxes,
                "chosen": self.chosen, "probs": self.probs, "scores": self.scores,
                "seconds": round(self.seconds, 3), "history": self.history.to_dict(),
                "config": self.config.to_dict()}

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
        all or nothing (lrlib.io.atomic_dir). Returns the folder."""
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
            (tmp / "result.json").write_text(json.dumps(self.to_dict(), indent=1))
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
    x: torch.Tensor               # (1, 3, S, S) working resolution, on the device
    attn: torch.Tensor            # (heads, h, w) DINO [CLS] attention
    anchors: torch.Tensor         # (K, 2) pixel (x, y)
    boxes: torch.Tensor           # (K, M, 4)
    pooled: torch.Tensor          # (K, M, d, r, r) ROI-aligned DINO features
    geom: torch.Tensor            # (K, M, 2) relative box sizes
    masks: torch.Tensor           # (K, M, 1, S, S) the masks the editor really edited
    C: torch.Tensor               # (K, M, 3, S, S) composites m * E + (1 - m) * x
    loss_fn: EditLoss

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
    cfg.validate()
    prompt = check_prompt(prompt)
    caption = check_prompt(caption, "caption") if caption is not None else cfg.default_caption
    img = load_image(image)
    dev, S = models.device, cfg.size
    x_full = to_tensor(img)[None]
    x = F.interpolate(x_full, size=(S, S), mode="bilinear", antialias=True,
                      align_corners=False).clamp(0, 1).to(dev)
    with torch.no_grad():
        d_out = models.dino(x)                                              # 1. DINO
    if anchors is None:
        A = d_out.attn_mean[0].cpu()
        cells = top_k_anchors(A, cfg.K, cfg.anchor_spacing)
        anchors = (refine_anchors(A, cells, S, S) if cfg.anchor_refine
                   else cells_to_pixels(cells, d_out.attn.shape[-2:], S, S))
    boxes = make_proposals(anchors, cfg.box_sides(), S, S)                  # 2. proposals
    K, M = boxes.shape[:2]
    pooled = roi_pool(d_out.feats, boxes.to(dev), S, S, cfg.roi_size)
    masks = models.editor.snap_mask(boxes_to_masks(boxes, S, S).flatten(0, 1).to(dev))
    cands = generate_candidates(models.editor, x, masks, prompt, cfg.seed,  # 3. edits, once
                                cfg.editor_batch_size, cfg.progress)
    loss_fn = EditLoss(models.clip, models.dino, x, prompt, caption, cfg.lambda_clip,
                       cfg.lambda_str, cfg.lambda_dir, cfg.n_aug, cfg.structure)
    return Prepared(cfg=cfg, prompt=prompt, caption=caption, x_full=x_full, x=x,
                    attn=d_out.attn[0].cpu(), anchors=anchors, boxes=boxes, pooled=pooled,
                    geom=box_geometry(boxes, S, S).to(dev), masks=masks.view(K, M, 1, S, S),
                    C=composites(cands, masks, x).view(K, M, 3, S, S), loss_fn=loss_fn)


def train_and_choose(p: Prepared, cfg: LRConfig | None = None) -> tuple[torch.Tensor, History]:
    """4. Train a fresh RGN on p's candidates (loss weights from cfg); return (probs (K, M), History)."""
    cfg = cfg or p.cfg
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        rgn = RGN(p.pooled.shape[2], cfg.roi_size, cfg.rgn_channels, cfg.rgn_hidden).to(p.x.device)
    loss_fn = p.loss_fn
    if (cfg.lambda_clip, cfg.lambda_str, cfg.lambda_dir) != tuple(loss_fn.lam.values()):
        loss_fn = copy.copy(loss_fn)
        loss_fn.lam = dict(clip=cfg.lambda_clip, str=cfg.lambda_str, dir=cfg.lambda_dir)
    gen = torch.Generator().manual_seed(cfg.seed)
    hist = train_rgn(rgn, p.pooled, p.geom, p.C, loss_fn, cfg.iterations, cfg.lr, cfg.tau,
                     cfg.hard, gen, cfg.progress, cfg.estimator, cfg.table_views)
    with torch.no_grad():
        probs = torch.softmax(rgn(p.pooled, p.geom), -1)
    return probs, hist


def rank(p: Prepared, results: torch.Tensor, clip, cfg: LRConfig | None = None):
    """5. Quality scores of the K results (K, 3, S, S) and the index of the winner."""
    cfg = cfg or p.cfg
    with torch.no_grad():
        scores = quality_scores(clip.encode_image(results), p.loss_fn.E_T, p.loss_fn.E_I_src,
                                cfg.alpha, cfg.beta, clip.logit_scale, p.loss_fn.E_T_caption,
                                cfg.gamma)
    return scores, pick_best(scores, cfg.rank_top)


def paste_back(x_full: torch.Tensor, result: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """6. The result (3, S, S) inside mask (1, S, S), upscaled into x_full (1, 3, H, W); outside
    the mask x_full unchanged, bit for bit."""
    H, W = x_full.shape[-2:]
    m_up = F.interpolate(mask[None].float().cpu(), size=(H, W), mode="nearest")
    up = F.interpolate(result[None].float().cpu(), size=(H, W), mode="bicubic",
                       align_corners=False).clamp(0, 1)
    return m_up * up + (1 - m_up) * x_full


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
    image = load_image(image)                # bad input fails before any model is loaded
    warn_if_not_toy_scene(image, cfg)        # the toy world on a photo paints a blob: say so
    models = models or load_models(cfg)
    with drafting(models.editor, cfg.draft_steps):          # cheap candidates (lrlib.draft)
        p = prepare(image, prompt, caption, cfg, models)
    probs, hist = train_and_choose(p)
    K = p.K
    chosen = probs.argmax(-1)
    results = p.C[torch.arange(K), chosen]                                   # (K, 3, S, S)
    scores, best = rank(p, results, models.clip)
    win = results[best]
    if cfg.draft_steps:                                      # the winner again, at full quality
        win = regenerate(models.editor, p.x, p.masks[best, chosen[best]], p.prompt, cfg.seed,
                         best * p.M + int(chosen[best]), cfg.editor_batch_size)
    final = paste_back(p.x_full, win, feather(p.masks[best, chosen[best]], cfg.blend_px))
    return EditResult(
        image=to_pil(final[0]), source=to_pil(p.x[0]), results=[to_pil(r) for r in results],
        best=best, anchors=p.anchors.tolist(), boxes=p.boxes.tolist(), chosen=chosen.tolist(),
        probs=probs.tolist(), scores={k: v.tolist() for k, v in scores.items()},
        attention=p.attn.mean(0), attention_heads=p.attn, history=hist, prompt=p.prompt,
        caption=p.caption, config=cfg, seconds=time.perf_counter() - t0, candidates=p.C.cpu())
