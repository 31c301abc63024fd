r"""# Toy MaskGIT: a VQ tokenizer and a masked-token transformer trained on the toy world

A small aMUSEd (Patil et al. 2024; MaskGIT, Chang et al. 2022) trained here from scratch on toy
scenes, saved in aMUSEd's folder layout (`vqvae/`, `transformer/`, `text_encoder/`,
`tokenizer/`) so that `MaskGITEditor.from_pretrained(folder)` loads it exactly as it loads
`amused/amused-256`.

**Mask crop** (`resolution`, default 32). Every example is seen through a square window around
its box, side = $\mu$ times the box's longer side ($\mu \sim U$(`margin_lo`, `margin_hi`)),
resized to `resolution` px, exactly what the editor does at inference with `crop_margin`
(written to the folder's `lrlib_editor.json`). Every object is then drawn at about one scale,
and a step costs a quarter of a whole 64 px scene. Trained on whole scenes (`--resolution 0`)
this small model reached only 0.27 success on the benchmark; on crops 0.615 (model card).

**Stage 1, tokenizer.** A VQ-VAE (diffusers `VQModel`, 2x downsampling: a 32 px crop becomes
16 x 16 tokens of 2 x 2 pixels from a codebook $\{e_k\}_{k<K}$) on $[0, 1]$ images, as aMUSEd's:
$$z = \mathcal E(x), \quad k_i = \arg\min_k \lVert z_i - e_k \rVert, \quad
  \hat x = \mathcal D(z + \mathrm{sg}(e_{k} - z)),$$
$$\mathcal L_{VQ} = \frac{\sum_p w_p \big(|\hat x_p - x_p| + (\hat x_p - x_p)^2\big)}{\sum_p w_p}
  + \beta \lVert z - \mathrm{sg}(e_k) \rVert^2, \qquad w_p = 1 + \lambda\, \mathrm{sat}(x_p),$$
the saturation weight $\lambda$ (`vq_object_weight`) keeping the vivid objects' edges sharp
(the judge reads shapes from them; backgrounds are grey and smooth).
The codebook is not learned by gradient but as an exponential moving average of the encoder
outputs assigned to each code (VQ-VAE-2), codes that fall out of use are restarted on random
encoder outputs, and the first `vq_warmup` steps train a plain autoencoder whose outputs then
seed the codebook. Lookup at inference is the plain nearest neighbour of diffusers'
`VectorQuantizer` (`lookup_from_codebook=True`: the decoder takes token ids).

**Stage 2, transformer.** aMUSEd's `UVit2DModel` predicts hidden tokens from visible ones and the
caption $c$, through a CLIP text encoder (`CLIPTextModelWithProjection`, trained jointly):
penultimate hidden states as cross-attention context and the projected pooled embedding plus
the micro-conditions `[R, R, 0, 0, 6]` as the global condition, exactly as `MaskGITEditor`
feeds it: the same code, `lrlib.editors.prompts` (prompts over 77 tokens in chunks). Training mimics an edit: a scene's
object is to become a new random shape and colour. The source $x$ keeps the old object; the target
$y$ has the new one painted in the box (`shrink` px inside it on each side: the editor repaints
every token cell the box touches, so an object drawn to the cells' edge would spill out of the
box) on restored background. The box's token cells $B$ are hidden; tokens outside come from the
source, as at edit time (so no colour hint of the target leaks through the VQ encoder's receptive
field). Inside $B$ a cosine-scheduled share is hidden, the rest shows target tokens
(the intermediate states of iterative decoding):
$$r = \cos\big(\tfrac{\pi}{2} u\big),\ u \sim U(0, 1), \qquad
  M \subset B,\ |M| = \lceil r\,|B| \rceil, \qquad
  \mathcal L = -\frac{1}{|M|} \sum_{i \in M} \log p_\theta\big(k_i(y) \mid k_{\bar M}, c\big)$$
(with label smoothing). Some boxes are empty with an empty caption (the target is background),
10% of captions are dropped (the unconditional branch of classifier-free guidance) and a share
are the benchmark's long paragraphs.

Run: `python -m lrlib.toy train maskgit` (writes `lrlib/toy/weights/maskgit`; checkpoints in
`outputs/toy_train/maskgit`, resumed if present; `--tiny` for a few-second run). Training seeds
are below `TRAIN_SEED_LIMIT`; `python -m lrlib.toy.eval_editors maskgit` measures the result on
the benchmark.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lrlib.editors.base import EDITOR_DEFAULTS_FILE, crop_resize, crop_windows
from lrlib.editors.prompts import PromptEncoder, micro_conds
from lrlib.toy.scenes import (COLOURS, SHAPES, TRAIN_SEED_LIMIT, _long_prompt, paint_object,
                              render_background, render_scene)
from lrlib.toy.train import common
from lrlib.toy.train.common import (checkpoint, cpu_seconds, ema_update, empty_box, grow_box,
                                    lr_at, optimise, resume, sample_seed, set_lr)

NAME = "maskgit"
DEFAULT_OUT = Path(__file__).parents[1] / "weights" / "maskgit"


@dataclass
class TrainConfig(common.EditorTrainConfig):
    """The shared fields (seed, data, crop, text encoder, stage-2 optimiser) are in
    `common.EditorTrainConfig`; these are MaskGIT's own, or its own defaults."""
    work_dir: str = "outputs/toy_train/maskgit"  # checkpoints and log (resumed from if present)
    p_empty: float = 0.10
    shrink: int = 2                # new object drawn 1..shrink px inside the box on each side
    # stage 1: VQ-VAE
    vq_levels: int = 2             # grid = 2 ** (levels - 1) pixels per token: 2
    vq_width: int = 32             # channels per level (the same at every level)
    codebook: int = 512
    code_dim: int = 8
    vq_steps: int = 1500
    vq_warmup: int = 150           # plain autoencoder steps before quantizing
    vq_batch: int = 16             # whole images: GroupNorm statistics differ on crops
    vq_lr: float = 1e-3
    commitment: float = 0.25
    vq_object_weight: float = 3.0  # reconstruction weight 1 + this * saturation: sharp objects
    code_decay: float = 0.99
    # stage 2: transformer (+ the text encoder)
    hidden: int = 96
    layers: int = 3
    heads: int = 4
    block_channels: int = 48
    text_layers: int = 3
    lr: float = 8e-4
    weight_decay: float = 0.01
    label_smoothing: float = 0.1

    TINY = dict(vq_width=4, codebook=16, code_dim=4, vq_steps=3, vq_warmup=1, vq_batch=2,
                hidden=16, layers=1, heads=2, block_channels=8, text_width=8, text_layers=2,
                steps=2, batch=2, warmup=1, ckpt_every=1)


# ----------------------------------------------------------------------------- data

def make_example(seed: int, cfg: TrainConfig) -> tuple:
    """(source (S, S, 3), target (S, S, 3), box, prompt): source keeps the old object, target has
    the new one (or only background) inside the box; outside the box they are equal."""
    rng = np.random.default_rng(seed)
    size = cfg.size
    scene = render_scene(rng, size, n_objects=(1, 3))
    bg = render_background(scene.background, size)
    source, target = scene.image, scene.image.copy()
    if rng.random() < cfg.p_empty or not scene.objects:
        return source, target, empty_box(rng, target, bg, size), ""
    obj = scene.objects[int(rng.integers(len(scene.objects)))]
    box = grow_box(rng, obj.box, cfg, size)
    x0, y0, x1, y1 = box
    target[y0:y1, x0:x1] = bg[y0:y1, x0:x1]
    d = rng.integers(1, cfg.shrink + 1, 4) if cfg.shrink > 0 else np.zeros(4, int)
    inner = (x0 + d[0], y0 + d[1], x1 - d[2], y1 - d[3])
    if inner[2] - inner[0] < 6 or inner[3] - inner[1] < 6:
        inner = box
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    target, _ = paint_object(target, shape, colour, inner, rng)
    u = rng.random()
    if u < cfg.p_drop:
        prompt = ""
    elif u < cfg.p_drop + cfg.p_long:
        prompt = _long_prompt(scene, box, shape, colour)
    else:
        prompt = f"a {colour} {shape}"
    return source, target, box, prompt


def make_batch(seeds, cfg: TrainConfig):
    """(sources (B, 3, S, S), targets (B, 3, S, S), box masks (B, 1, S, S), prompts)."""
    src, tgt, masks, prompts = [], [], [], []
    for s in seeds:
        x, y, (x0, y0, x1, y1), p = make_example(int(s), cfg)
        m = torch.zeros(1, 1, cfg.size, cfg.size)
        m[..., y0:y1, x0:x1] = 1
        src.append(torch.from_numpy(x).permute(2, 0, 1)[None])
        tgt.append(torch.from_numpy(y).permute(2, 0, 1)[None])
        masks.append(m)
        prompts.append(p)
    src, tgt, masks = torch.cat(src), torch.cat(tgt), torch.cat(masks)
    if cfg.resolution:   # the editor's mask crop (`crop_margin`), with a random margin
        windows = []
        for s, m in zip(seeds, masks):
            margin = np.random.default_rng([int(s), 7]).uniform(cfg.margin_lo, cfg.margin_hi)
            windows += crop_windows(m[None], float(margin))
        R = cfg.resolution
        src = crop_resize(src, windows, R).clamp(0, 1)
        tgt = crop_resize(tgt, windows, R).clamp(0, 1)
        masks = (crop_resize(masks, windows, R) >= 0.5).float()
    return src, tgt, masks, prompts


def work_size(cfg: TrainConfig) -> int:
    """The side the models work at: the crop resolution, or the whole scene's size."""
    return cfg.resolution or cfg.size


# ----------------------------------------------------------------------------- models

def grid(cfg: TrainConfig) -> int:
    """Pixels per token side."""
    return 2 ** (cfg.vq_levels - 1)


def build_vq(cfg: TrainConfig):
    from diffusers import VQModel

    w = cfg.vq_width
    n = cfg.vq_levels
    return VQModel(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * n,
                   up_block_types=["UpDecoderBlock2D"] * n,
                   block_out_channels=[w] * n,
                   layers_per_block=1, latent_channels=cfg.code_dim, vq_embed_dim=cfg.code_dim,
                   num_vq_embeddings=cfg.codebook, norm_num_groups=min(16, w),
                   sample_size=work_size(cfg), mid_block_add_attention=False, lookup_from_codebook=True)


def build_transformer(cfg: TrainConfig):
    from diffusers import UVit2DModel

    enc = 4
    return UVit2DModel(
        hidden_size=cfg.hidden, use_bias=False, cond_embed_dim=cfg.text_width,
        micro_cond_encode_dim=enc, micro_cond_embed_dim=5 * enc,
        encoder_hidden_size=cfg.text_width, vocab_size=cfg.codebook + 1,
        codebook_size=cfg.codebook, in_channels=cfg.block_channels,
        block_out_channels=cfg.block_channels, num_res_blocks=1,
        block_num_heads=2, num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
        intermediate_size=3 * cfg.hidden, sample_size=work_size(cfg) // grid(cfg),
        downsample=grid(cfg) < 4, upsample=grid(cfg) < 4)  # the transformer itself runs at size / 4


def prompt_encoder(tokenizer, text) -> PromptEncoder:
    """`MaskGITEditor.encode_prompts`' encoder, differentiable: penultimate layer + pooled."""
    return PromptEncoder(tokenizer, text, penultimate=True, pooled=True, grad=True)


def token_cells(masks: torch.Tensor, tokens: int) -> torch.Tensor:
    """(B, 1, S, S) box masks -> (B, h, w) bool: cells any masked pixel touches (the editor's rule)."""
    return F.adaptive_max_pool2d((masks >= 0.5).float(), (tokens, tokens))[:, 0] > 0


@torch.no_grad()
def tokenize(vq, x: torch.Tensor) -> torch.Tensor:
    z = vq.encode(x).latents
    b, _, h, w = z.shape
    return vq.quantize(z)[2][2].reshape(b, h, w)


# ----------------------------------------------------------------------------- stage 1

def train_vq(cfg: TrainConfig, work: Path, log, progress: bool = True) -> tuple:
    """Returns (vq, cpu seconds)."""
    path = work / "vq.pt"
    torch.manual_seed(cfg.seed)  # the initial weights: the same in every run, in any process
    vq = build_vq(cfg)
    if path.exists():
        st = torch.load(path, weights_only=False)
        vq.load_state_dict(st["model"])
        log(f"vq: loaded {path}")
        return vq, st["cpu_s"]
    t0 = cpu_seconds()
    torch.manual_seed(cfg.seed)
    codes = vq.quantize.embedding.weight
    codes.requires_grad_(False)
    params = [p for n, p in vq.named_parameters() if not n.startswith("quantize.")]
    opt = torch.optim.AdamW(params, lr=cfg.vq_lr, weight_decay=0.0)
    count = torch.ones(cfg.codebook)
    total = codes.detach().clone()
    bar = tqdm(range(cfg.vq_steps), desc="maskgit: VQ-VAE", mininterval=5, disable=not progress)
    for step in bar:
        set_lr(opt, lr_at(step, cfg.vq_steps, 50, cfg.vq_lr))
        rng = np.random.default_rng(sample_seed(cfg.seed, 2, step))
        seeds = rng.integers(0, TRAIN_SEED_LIMIT, cfg.vq_batch)
        src, tgt, _, _ = make_batch(seeds, cfg)
        x = torch.where(torch.from_numpy(rng.random(len(seeds)) < 0.5)[:, None, None, None], src, tgt)
        z = vq.encode(x).latents
        flat = z.permute(0, 2, 3, 1).reshape(-1, cfg.code_dim)
        if step < cfg.vq_warmup:
            zq, commit = z, z.new_zeros(())
        else:
            if step == cfg.vq_warmup:  # seed the codebook with encoder outputs
                pick = torch.randperm(flat.shape[0])[:cfg.codebook]
                while pick.numel() < cfg.codebook:
                    pick = torch.cat([pick, torch.randperm(flat.shape[0])])[:cfg.codebook]
                codes.data.copy_(flat.detach()[pick] + 1e-3 * torch.randn(cfg.codebook, cfg.code_dim))
                total.copy_(codes.data)
                count.fill_(1.0)
            idx = torch.cdist(flat.detach(), codes).argmin(1)
            q = codes[idx]
            with torch.no_grad():  # EMA codebook, dead-code restart
                onehot = F.one_hot(idx, cfg.codebook).float()
                count.mul_(cfg.code_decay).add_(onehot.sum(0), alpha=1 - cfg.code_decay)
                total.mul_(cfg.code_decay).add_(onehot.t() @ flat.detach(), alpha=1 - cfg.code_decay)
                n = count.sum()
                smoothed = (count + 1e-5) / (n + cfg.codebook * 1e-5) * n
                codes.data.copy_(total / smoothed[:, None])
                dead = count < 0.03
                if dead.any():
                    pick = torch.randint(0, flat.shape[0], (int(dead.sum()),))
                    codes.data[dead] = flat.detach()[pick]
                    total[dead] = codes.data[dead]
                    count[dead] = 1.0
            commit = cfg.commitment * (flat - q.detach()).pow(2).mean()
            zq = (flat + (q - flat).detach()).reshape(z.shape[0], z.shape[2], z.shape[3], -1)
            zq = zq.permute(0, 3, 1, 2)
        rec = vq.decoder(vq.post_quant_conv(zq))
        d = rec - x
        w = 1 + cfg.vq_object_weight * _saturation(x)   # objects are vivid, backgrounds grey
        loss = (w * (d.abs() + d.pow(2))).mean() / w.mean() + commit
        optimise(opt, loss)
        if step % 50 == 0:
            used = int((count > 0.5).sum()) if step >= cfg.vq_warmup else 0
            bar.set_postfix(loss=f"{loss.item():.4f}", used=used)
            log(f"vq step {step} loss {loss.item():.5f} codes in use {used}")
        if step % 500 == 499:
            log(f"vq step {step + 1}: {vq_stats(vq.eval(), cfg)}")
            vq.train()
    vq.eval()
    cpu_s = cpu_seconds() - t0
    stats = vq_stats(vq, cfg)
    log(f"vq done: {stats}, cpu {cpu_s:.0f} s")
    torch.save({"model": vq.state_dict(), "cpu_s": cpu_s, "stats": stats}, path)
    return vq, cpu_s


def _saturation(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) saturation (max - min) / max."""
    mx, mn = x.amax(1, keepdim=True), x.amin(1, keepdim=True)
    return (mx - mn) / mx.clamp_min(1e-3)


@torch.no_grad()
def vq_stats(vq, cfg: TrainConfig, n: int = 64) -> dict:
    """Reconstruction PSNR, codes used, and how often the judge still names a reconstructed object."""
    from lrlib.toy.judge import judge_region, psnr

    scenes = [render_scene(sample_seed(cfg.seed, 2, 9_000_000 + i), cfg.size) for i in range(n)]
    x = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2)
    k = tokenize(vq, x)
    shape = (*k.shape, cfg.code_dim)
    rec = vq.decode(k.reshape(-1), force_not_quantize=True, shape=shape).sample.clamp(0, 1)
    ok = tot = 0
    for s, r in zip(scenes, rec):
        for o in s.objects:
            v = judge_region(r, o.box)
            ok += (v.colour == o.colour and v.shape == o.shape)
            tot += 1
    return {"psnr": round(float(np.mean([psnr(a, b) for a, b in zip(x, rec)])), 2),
            "codes_used": int(k.unique().numel()), "judge_ok_on_reconstructions": round(ok / tot, 3)}


# ----------------------------------------------------------------------------- stage 2

def train_transformer(cfg: TrainConfig, vq, work: Path, log, progress: bool = True):
    """Returns (transformer EMA, text encoder EMA, tokenizer, cpu seconds)."""
    from lrlib.worlds.tokenizers import build_clip_tokenizer

    tokenizer = build_clip_tokenizer(str(work / "tokenizer"))
    torch.manual_seed(cfg.seed)
    model = build_transformer(cfg)
    text = common.text_encoder(cfg.text_width, cfg.text_layers, projection=True)
    ema_model, ema_text = copy.deepcopy(model).requires_grad_(False), \
        copy.deepcopy(text).requires_grad_(False)
    params = list(model.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    encode = prompt_encoder(tokenizer, text)
    vq.requires_grad_(False).eval()
    mask_id, T = cfg.codebook, work_size(cfg) // grid(cfg)
    ckpt = work / "transformer.pt"
    state = dict(model=model, text=text, ema_model=ema_model, ema_text=ema_text)
    start, cpu_done = resume(ckpt, state, opt, log)
    t0 = cpu_seconds()
    bar = tqdm(range(start, cfg.steps), desc="maskgit: transformer", initial=start,
               total=cfg.steps, mininterval=5, disable=not progress)
    for step in bar:
        lr = set_lr(opt, lr_at(step, cfg.steps, cfg.warmup, cfg.lr))
        seeds = [sample_seed(cfg.seed, 3, step * cfg.batch + i) for i in range(cfg.batch)]
        gen = torch.Generator().manual_seed(sample_seed(cfg.seed, 3, TRAIN_SEED_LIMIT - 1 - step))
        src, tgt, m, prompts = make_batch(seeds, cfg)
        with torch.no_grad():
            k = tokenize(vq, torch.cat([src, tgt]))
            k_src, k_tgt = k.chunk(2)
            cells = token_cells(m, T).reshape(len(seeds), -1)                  # (B, L)
            ratio = torch.cos(math.pi / 2 * torch.rand(len(seeds), generator=gen))
            n_mask = (ratio * cells.sum(1)).ceil().clamp(min=1)
            score = torch.rand(cells.shape, generator=gen).masked_fill(~cells, 2.0)
            rank = score.argsort(1).argsort(1)
            hidden = rank < n_mask[:, None]                                   # inside the cells
            z = torch.where(cells, k_tgt.reshape(len(seeds), -1), k_src.reshape(len(seeds), -1))
            z_in = z.masked_fill(hidden, mask_id).reshape(-1, T, T)
        ctx, pooled = encode(prompts)
        logits = model(z_in, encoder_hidden_states=ctx, pooled_text_emb=pooled,
                       micro_conds=micro_conds(len(seeds), work_size(cfg)))           # (B, K, T, T)
        logits = logits.reshape(len(seeds), cfg.codebook, -1).permute(0, 2, 1)  # (B, L, K)
        loss = F.cross_entropy(logits[hidden], z[hidden], label_smoothing=cfg.label_smoothing)
        optimise(opt, loss, params, max_norm=1.0)
        ema_update(step, cfg.ema, (ema_model, model), (ema_text, text))
        cpu_s = cpu_done + cpu_seconds() - t0
        if step % 25 == 0:
            with torch.no_grad():
                acc = (logits[hidden].argmax(-1) == z[hidden]).float().mean().item()
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.2f}")
            log(f"step {step} loss {loss.item():.4f} acc {acc:.3f} lr {lr:.2e} cpu {cpu_s:.0f}")
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps:
            checkpoint(ckpt, state, opt, step + 1, cpu_s)
    return ema_model, ema_text, tokenizer, cpu_done + cpu_seconds() - t0


def save_amused(out_dir: str, vq, model, text, info: dict) -> str:
    """aMUSEd layout in fp16, replacing the old folder (its README.md / samples.png are kept)."""
    def write(tmp: Path) -> None:
        vq.to(torch.float16).save_pretrained(tmp / "vqvae", safe_serialization=True)
        model.to(torch.float16).save_pretrained(tmp / "transformer", safe_serialization=True)
        text.to(torch.float16).save_pretrained(tmp / "text_encoder", safe_serialization=True)
        common.write_small_tokenizer(tmp / "tokenizer")
        if info["config"].get("resolution"):
            with open(tmp / EDITOR_DEFAULTS_FILE, "w") as f:
                json.dump({"crop_margin": info["config"]["crop_margin"]}, f, indent=2)
    return common.save_folder(out_dir, write, info)


def train(cfg: TrainConfig = TrainConfig(), out_dir=DEFAULT_OUT, progress: bool = True) -> str:
    """Both stages, then the fp16 aMUSEd-layout folder in `out_dir`; returns its path."""
    common.begin(cfg)
    with common.work_folder(cfg) as (work, log):
        vq, vq_cpu = train_vq(cfg, work, log, progress)
        model, text, _, tr_cpu = train_transformer(cfg, vq, work, log, progress)
        info = {"config": dataclasses.asdict(cfg), "cpu_seconds": {"vq": round(vq_cpu),
                "transformer": round(tr_cpu), "total": round(vq_cpu + tr_cpu)},
                "torch_threads": cfg.threads,
                "vq": torch.load(work / "vq.pt", weights_only=False)["stats"]}
        out = save_amused(str(out_dir), vq, model, text, info)
        log(f"saved {out}; cpu seconds {info['cpu_seconds']}")
    return out
