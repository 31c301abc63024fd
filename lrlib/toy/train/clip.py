"""Train the toy world's CLIP: an open_clip model that matches 64x64 scenes with their captions.

Data. Every step draws B fresh scenes (1-3 objects; seeds below TRAIN_SEED_LIMIT, so held-out
scenes are never seen) and, per scene, one caption of a random kind: 'single' ("a red circle"),
'multi' ("a red circle and a blue square"), 'relation' ("the circle left of the blue square") or
'long' (a paragraph of 150-250 BPE tokens), plus `extra_single` more 'single' captions naming one
of its objects. No image augmentation: the data never repeats.

Model. open_clip.CLIP: a ViT (patch 8 on 64 px) for images, a small causal transformer over
open_clip's own BPE vocabulary (49,408 tokens) for text, both projected to E dimensions.

Text of any length is encoded exactly as `lrlib.clip.Clip.encode_text` does at inference: the BPE
ids are split into chunks of 75, each chunk c is encoded on its own, and

    t = normalize( sum_c n_c * normalize(f_T(chunk_c)) )       (n_c: real tokens in chunk c)

Objective: a multi-positive InfoNCE over B images and T >= B captions. With unit embeddings i_a,
t_j and logits s_aj = exp(tau) * i_a . t_j (tau learned), M_aj = 1 when caption j counts as a
positive for image a: its own caption always; a caption of another scene when both scenes hold
the same multiset of object names; and a 'single' caption naming object x for every image that
holds an x (it is true of them all: the "truth" positives; `positives="same_objects"` drops this).

    L_i2t = -1/B sum_a sum_j (M_aj / sum_j' M_aj') log softmax_j(s_aj)
    L_t2i = -1/T sum_j sum_a (M_aj / sum_a' M_a'j) log softmax_a(s_aj)
    L     = (L_i2t + L_t2i) / 2

Measured here (batch 64, held-out one-object scenes): the plain recipe (one caption per image,
positives = same objects) learns colour in a few hundred steps but shape slowly, 0.88 zero-shot
after 3000 steps; the extra 'single' caption per image with truth positives roughly doubles the
shape learning speed. Shape is the hard part for a ViT trained from scratch: even supervised
shape classification with this ViT needs ~600 steps of 64 to reach 0.86.

The result is saved like an open_clip hub checkpoint (open_clip_config.json +
open_clip_model.safetensors, fp16) and loads with `lrlib.models.load_clip(folder, None)`.

    python -m lrlib.toy train clip                    # the shipped model (lrlib/toy/weights/clip)
    python -m lrlib.toy train clip --steps 50 --out /tmp/clip
    python -m lrlib.toy train clip --tiny --out /tmp/clip   # a few seconds
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lrlib.text import open_clip_chunk_ids
from lrlib.worlds.random_world import CLIP_MEAN, CLIP_STD
from lrlib.toy.scenes import CAPTION_KINDS, TRAIN_SEED_LIMIT, caption_scene, render_scene
from lrlib.toy.train import common

NAME = "clip"
DEFAULT_OUT = Path(__file__).parents[1] / "weights" / "clip"


@dataclass
class TrainConfig:
    steps: int = 4000
    batch: int = 64
    lr: float = 1e-3
    warmup: int = 100           # linear warm-up steps, then cosine decay to 0
    weight_decay: float = 0.1   # on matrices only (not biases, norms, embeddings)
    seed: int = 0
    size: int = 64              # image side in pixels
    patch: int = 8
    width: int = 96             # vision transformer
    layers: int = 4
    head_width: int = 24
    text_width: int = 64        # text transformer (its token table is 49,408 x text_width)
    text_heads: int = 4
    text_layers: int = 2
    embed_dim: int = 64         # shared embedding space
    min_objects: int = 1
    max_objects: int = 3
    positives: str = "truth"    # or "same_objects" (see `positives`)
    kinds: str = ",".join(CAPTION_KINDS)  # caption kinds drawn, comma-separated
    extra_single: int = 1       # more captions per image, each naming one of its objects
    temperature: float = 0.07   # initial 1 / logit scale (learned)
    probe_every: int = 100      # show zero-shot accuracy on fixed one-object training scenes
    probe_n: int = 100
    threads: int = 1            # torch CPU threads

    # a few-second configuration (`--tiny`)
    TINY = dict(steps=2, batch=4, warmup=1, size=32, patch=16, width=32, layers=1,
                head_width=16, text_width=16, text_heads=2, text_layers=1, embed_dim=16)


def model_config(cfg: TrainConfig) -> dict:
    """The open_clip `model_cfg` (what open_clip_config.json stores)."""
    return dict(embed_dim=cfg.embed_dim,
                vision_cfg=dict(image_size=cfg.size, layers=cfg.layers, width=cfg.width,
                                head_width=cfg.head_width, patch_size=cfg.patch),
                text_cfg=dict(context_length=77, vocab_size=49408, width=cfg.text_width,
                              heads=cfg.text_heads, layers=cfg.text_layers))


def build_model(cfg: TrainConfig):
    import open_clip
    torch.manual_seed(cfg.seed)
    return open_clip.CLIP(**model_config(cfg), init_logit_scale=math.log(1 / cfg.temperature))


def get_tokenizer():
    import open_clip
    return open_clip.get_tokenizer("ViT-B-32")  # open_clip's BPE, shipped in the wheel


def make_batch(step: int, cfg: TrainConfig):
    """Scenes and captions for one step, a pure function of (cfg.seed, step).

    Returns images (B, 3, H, W) in [0, 1], keys (the sorted object names of each scene) and
    captions: (image index, kind, text) for each caption, 1 + extra_single per image.
    """
    rng = np.random.default_rng([cfg.seed, step])
    kinds = cfg.kinds.split(",")
    images, keys, captions = [], [], []
    for b in range(cfg.batch):
        scene = render_scene(int(rng.integers(TRAIN_SEED_LIMIT)), cfg.size,
                             n_objects=(cfg.min_objects, cfg.max_objects))
        images.append(scene.image)
        keys.append(tuple(sorted(o.name for o in scene.objects)))
        for kind in [kinds[rng.integers(len(kinds))]] + ["single"] * cfg.extra_single:
            captions.append((b, kind, caption_scene(scene, rng, kind)))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, keys, captions


def tokenize(texts, tok):
    """Chunked BPE rows (R, 77) for all texts, the text index of each row and its real length."""
    rows, chunk_of, weights = [], [], []
    for i, t in enumerate(texts):
        r, n = open_clip_chunk_ids(tok, t)    # as lrlib.clip.Clip.encode_text
        rows.append(r)
        weights.append(n)
        chunk_of += [i] * r.shape[0]
    return torch.cat(rows), torch.tensor(chunk_of), torch.cat(weights)


def encode_rows(model, rows: torch.Tensor) -> torch.Tensor:
    """model.encode_text(rows), computed on the rows cut after their longest real token.

    Exact: the text transformer is causal and pools at the end token, so the padding after it
    never reaches the result. Most captions are ~10 tokens, so this halves the text cost.
    """
    n = int((rows != 0).sum(1).max())
    x = model.token_embedding(rows[:, :n]) + model.positional_embedding[:n]
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
    x = x[torch.arange(len(rows)), rows[:, :n].argmax(1)]  # the end token has the largest id
    return x @ model.text_projection


def encode_texts(model, rows, chunk_of, weights, n: int) -> torch.Tensor:
    """Per caption: normalize(sum_c n_c normalize(f_T(chunk_c))), as lrlib.clip does (with grad).

    Rows are encoded in two groups, short and long (a long caption fills 77 tokens), each cut
    to its own longest row.
    """
    long = (rows != 0).sum(1) > 32
    e = torch.zeros(len(rows), model.text_projection.shape[1])
    for group in (long, ~long):
        if group.any():
            e = e.index_put((group.nonzero()[:, 0],), encode_rows(model, rows[group]))
    e = F.normalize(e, dim=-1)
    w = torch.zeros(n, rows.shape[0])
    w[chunk_of, torch.arange(rows.shape[0])] = weights
    return F.normalize(w @ e, dim=-1)  # the per-caption normalisation of the weights cancels here


def positives(keys, captions, mode: str = "truth") -> torch.Tensor:
    """M_aj = 1 if caption j counts as a positive for image a (its own image always does).

    'same_objects': O(a) = O(image of j). 'truth': the same, except that a 'single' caption
    naming one object x ("a red circle") is positive for every image holding x (it is true of
    them all).
    """
    if mode not in ("truth", "same_objects"):
        raise ValueError(f"positives={mode!r}: use 'truth' or 'same_objects'")

    def pos(a, b, kind, text):
        if mode == "truth" and kind == "single":
            return text.split(" ", 1)[1] in keys[a]
        return keys[a] == keys[b]
    return torch.tensor([[pos(a, *c) for c in captions] for a in range(len(keys))],
                        dtype=torch.float32)


def clip_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, M: torch.Tensor):
    """Multi-positive InfoNCE both ways; targets are the rows / columns of M, normalised."""
    logits = scale * img @ txt.T
    l_i2t = -((M / M.sum(1, keepdim=True)) * logits.log_softmax(1)).sum(1).mean()
    l_t2i = -((M / M.sum(0, keepdim=True)) * logits.log_softmax(0)).sum(0).mean()
    return (l_i2t + l_t2i) / 2


@torch.no_grad()
def probe(model, cfg: TrainConfig, tok) -> float:
    """Zero-shot accuracy among the 25 "a <colour> <shape>" captions, `probe_n` training scenes."""
    from lrlib.toy.scenes import COLOURS, SHAPES, render_batch

    names = [f"{c} {s}" for s in SHAPES for c in COLOURS]
    rng = np.random.default_rng([cfg.seed, 2**32 - 1])  # a stream no training step uses
    seeds = rng.integers(TRAIN_SEED_LIMIT, size=cfg.probe_n)
    x, scenes = render_batch(seeds, cfg.size, n_objects=1)
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    training = model.training
    model.eval()
    img = F.normalize(model.encode_image((x - mean) / std), dim=-1)
    txt = F.normalize(model.encode_text(tok([f"a {n}" for n in names])), dim=-1)
    model.train(training)
    pick = (img @ txt.T).argmax(1)
    return float(np.mean([names[k] == s.objects[0].name for k, s in zip(pick.tolist(), scenes)]))


def param_groups(model, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "embedding" not in name else no_decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]


def save(model, cfg: TrainConfig, out_dir, extra: dict | None = None) -> str:
    """open_clip_config.json + open_clip_model.safetensors (fp16), + training.json."""
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        save_file(common.fp16_state(model), str(tmp / "open_clip_model.safetensors"))
        with open(tmp / "open_clip_config.json", "w") as f:
            json.dump({"model_cfg": model_config(cfg),
                       "preprocess_cfg": {"mean": CLIP_MEAN, "std": CLIP_STD}}, f, indent=2)
    return common.save_folder(out_dir, write, {"config": asdict(cfg), **(extra or {})})


def train(cfg: TrainConfig = TrainConfig(), out_dir=DEFAULT_OUT, progress: bool = True) -> str:
    """Train from scratch with `cfg` and save to `out_dir`; returns the folder."""
    common.begin(cfg, deterministic=True)
    model = build_model(cfg).train()
    tok = get_tokenizer()
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98),
                            eps=1e-6)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    t0, c0, ema, acc = time.time(), time.process_time(), None, float("nan")
    bar = tqdm(range(cfg.steps), desc="toy CLIP", disable=not progress)
    for step in bar:
        x, keys, captions = make_batch(step, cfg)
        common.set_lr(opt, common.lr_at(step, cfg.steps, cfg.warmup, cfg.lr))
        img = F.normalize(model.encode_image((x - mean) / std), dim=-1)
        rows, chunk_of, weights = tokenize([c[2] for c in captions], tok)
        txt = encode_texts(model, rows, chunk_of, weights, len(captions))
        M = positives(keys, captions, cfg.positives)
        loss = clip_loss(img, txt, model.logit_scale.exp(), M)
        common.optimise(opt, loss)
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if cfg.probe_every and ((step + 1) % cfg.probe_every == 0 or step + 1 == cfg.steps):
            acc = probe(model, cfg, tok)
        bar.set_postfix(loss=f"{ema:.3f}", scale=f"{model.logit_scale.exp().item():.1f}",
                        zero_shot=f"{acc:.2f}")
    extra = dict(wall_seconds=round(time.time() - t0, 1),
                 cpu_seconds=round(time.process_time() - c0, 1),
                 final_loss_ema=round(ema, 4), final_probe_zero_shot=acc, torch=torch.__version__)
    return save(model.eval(), cfg, out_dir, extra)
