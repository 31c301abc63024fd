r"""# Toy Stable Diffusion inpainting: a latent diffusion model trained on the toy world

A small version of Stable Diffusion's inpainting model, trained here from scratch on toy scenes,
saved as a diffusers `StableDiffusionInpaintPipeline` folder that `StableDiffusionEditor`
loads exactly as it loads an SD 2 inpainting checkpoint (`sd2-community/stable-diffusion-2-inpainting`).

**Task.** Given an image $x$, a box mask $m$ (1 inside) and a caption $c$ ("a red circle"),
fill the box with the named object on the continued background:
draw a scene, pick one of its objects, take its box (enlarged a little at random, sometimes made
square, since at edit time the region generator's boxes are squares around anchors), and set the
target $y$ = the scene with *only that object* on restored background inside the box. With
probability `p_empty` the box is a random one and the target is background only, with the empty
caption (object removal); with probability `p_drop` the caption is dropped (classifier-free
guidance needs an unconditional model); a share `p_long` of captions are the benchmark's long
paragraphs (over 77 tokens, encoded in chunks as `StableDiffusionEditor.encode_prompts` does).

**Mask crop.** Every example is seen through a square window around the box, side = $\mu$ times
the box's longer side ($\mu \sim U$(`margin_lo`, `margin_hi`); the editor uses `crop_margin` = 1.5), resized
to $R \times R$ (`resolution`): every box is then seen at about the same scale, so the model need
not learn every object size, and a 32 px working size suffices. The editor does the same at
inference (`crop_margin` in `lrlib_editor.json`) and pastes the result back.

**Stage 1, autoencoder.** A KL autoencoder $(\mathcal E, \mathcal D)$ with 2x downsampling
($R \times R \times 3 \to R/2 \times R/2 \times 4$), trained on the crops (a third of them with the box
blanked as the pipeline blanks it):
$$\mathcal L_{AE} = \lVert \mathcal D(z) - x \rVert_1 + \beta\, \mathrm{KL}(q(z|x)\,\Vert\,\mathcal N(0, I)),
   \quad z \sim q(z|x) = \mathcal N(\mu_{\mathcal E}(x), \sigma^2_{\mathcal E}(x)),$$
$\beta$ tiny (`kl_weight`). The latents are then scaled to unit variance,
`scaling_factor` $= 1 / \mathrm{std}(z)$, as SD's VAE config does.

**Stage 2, denoiser.** Exactly SD inpainting's parametrisation: $z_0 = s\,\mathcal E(y)$, the
mask downsampled to the latent grid $m_\downarrow$ (nearest, as the pipeline), the masked image's
latents $z_m = s\,\mathcal E(x \odot (1 - m))$ (blanked to 0 in $[-1, 1]$), and a UNet with 9 input
channels predicting the noise:
$$z_t = \sqrt{\bar\alpha_t}\, z_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon, \qquad
  \mathcal L = \mathbb E_{t, \epsilon}\Big[\, w \odot \lVert \epsilon - \epsilon_\theta([z_t, m_\downarrow, z_m], t, \tau(c)) \rVert^2 \Big] / \bar w,
  \qquad w = 1 + \lambda\, m_\downarrow,$$
$\lambda$ = `mask_weight` (the inside of the box is what matters; outside, lrlib composites the
source back anyway), $t \sim U\{0..999\}$, SD's scaled-linear $\beta$ schedule. The text encoder
$\tau$ (a 2-layer CLIP text transformer of width 32 on the real CLIP BPE vocabulary) is trained
jointly with the UNet. Both keep an exponential moving average (`ema`), which is what is saved.

**Sampling** (the pipeline's): DDIM with "trailing" timesteps (so few steps start from pure
noise) and classifier-free guidance,
$\hat\epsilon = \epsilon_\theta(\cdot, \varnothing) + w\,(\epsilon_\theta(\cdot, c) - \epsilon_\theta(\cdot, \varnothing))$.

The prompt encoding is the editor's own (`lrlib.editors.prompts.PromptEncoder`, with `grad=True`).

Run: `python -m lrlib.toy train sd` (writes `lrlib/toy/weights/sd`, checkpoints in
`outputs/toy_train/sd` so an interrupted run resumes; `--tiny` for a few-second run). Training
seeds are below `TRAIN_SEED_LIMIT`; `python -m lrlib.toy.eval_editors sd` measures the result on
the benchmark.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lrlib.editors.base import EDITOR_DEFAULTS_FILE, crop_resize, crop_windows
from lrlib.editors.prompts import PromptEncoder
from lrlib.toy.scenes import (TRAIN_SEED_LIMIT, _long_prompt, caption_object, render_background,
                              render_scene)
from lrlib.toy.train import common
from lrlib.toy.train.common import (checkpoint, cpu_seconds, ema_update, empty_box, grow_box,
                                    lr_at, optimise, resume, sample_seed, set_lr)

NAME = "sd"
DEFAULT_OUT = Path(__file__).parents[1] / "weights" / "sd"


@dataclass
class TrainConfig(common.EditorTrainConfig):
    """The shared fields (seed, data, crop, text encoder, stage-2 optimiser) are in
    `common.EditorTrainConfig`; these are SD's own."""
    work_dir: str = "outputs/toy_train/sd"  # checkpoints and log (resumed from if present)
    # stage 1: autoencoder
    vae_width: int = 32                   # channels (w, 2w): 2 levels, 2x downsampling
    vae_steps: int = 2000
    vae_batch: int = 32
    vae_lr: float = 1e-3
    kl_weight: float = 1e-6
    # stage 2: UNet (+ the text encoder)
    unet_width: int = 32                  # channels (w, 2w, 3w); attention at the two coarser levels
    attention_heads: int = 4
    mask_weight: float = 4.0
    # defaults written to lrlib_editor.json for StableDiffusionEditor
    infer_steps: int = 10
    guidance_scale: float = 3.0

    TINY = dict(vae_width=8, vae_steps=2, vae_batch=2, unet_width=8, attention_heads=2,
                text_width=8, text_layers=1, steps=2, batch=2, warmup=1, ckpt_every=1)


# ----------------------------------------------------------------------------- data

def make_example(seed: int, cfg: TrainConfig) -> tuple:
    """One training example: (target (S, S, 3) float32, box, prompt).

    The target is the scene with only the chosen object (or nothing) inside the box, on the
    scene's own background; outside the box it is the scene.
    """
    rng = np.random.default_rng(seed)
    size = cfg.size
    scene = render_scene(rng, size, n_objects=(1, 3))
    bg = render_background(scene.background, size)
    target = scene.image.copy()
    if rng.random() < cfg.p_empty or not scene.objects:
        return target, empty_box(rng, target, bg, size), ""
    obj = scene.objects[int(rng.integers(len(scene.objects)))]
    box = grow_box(rng, obj.box, cfg, size)
    x0, y0, x1, y1 = box
    a = obj.alpha[y0:y1, x0:x1, None]
    target[y0:y1, x0:x1] = bg[y0:y1, x0:x1] * (1 - a) + np.asarray(obj.rgb, np.float32) * a
    u = rng.random()
    if u < cfg.p_drop:
        prompt = ""
    elif u < cfg.p_drop + cfg.p_long:
        prompt = _long_prompt(scene, box, obj.shape, obj.colour)
    else:
        prompt = caption_object(obj)
    return target, box, prompt


def make_batch(seeds, cfg: TrainConfig, rng: np.random.Generator):
    """Crops of a batch of examples: (images (B, 3, R, R) in [0, 1], masks (B, 1, R, R), prompts)."""
    targets, masks, prompts, windows = [], [], [], []
    for s in seeds:
        y, (x0, y0, x1, y1), p = make_example(int(s), cfg)
        m = torch.zeros(1, 1, cfg.size, cfg.size)
        m[..., y0:y1, x0:x1] = 1
        targets.append(torch.from_numpy(y).permute(2, 0, 1)[None])
        masks.append(m)
        prompts.append(p)
        windows += crop_windows(m, float(rng.uniform(cfg.margin_lo, cfg.margin_hi)))
    x, m = torch.cat(targets), torch.cat(masks)
    return crop_resize(x, windows, cfg.resolution).clamp(0, 1), \
        crop_resize(m, windows, cfg.resolution), prompts


# ----------------------------------------------------------------------------- models

def build_vae(cfg: TrainConfig):
    from diffusers import AutoencoderKL

    channels = [cfg.vae_width, 2 * cfg.vae_width]
    n = len(channels)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=["DownEncoderBlock2D"] * n,
                         up_block_types=["UpDecoderBlock2D"] * n,
                         block_out_channels=channels, layers_per_block=1,
                         norm_num_groups=min(16, cfg.vae_width), sample_size=cfg.resolution,
                         mid_block_add_attention=False)


def build_unet(cfg: TrainConfig, latent_size: int):
    from diffusers import UNet2DConditionModel

    channels = (cfg.unet_width, 2 * cfg.unet_width, 3 * cfg.unet_width)
    n = len(channels)
    return UNet2DConditionModel(
        sample_size=latent_size, in_channels=9, out_channels=4,
        block_out_channels=channels, layers_per_block=1,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        cross_attention_dim=cfg.text_width, attention_head_dim=cfg.attention_heads,
        norm_num_groups=min(16, cfg.unet_width))


def prompt_encoder(tokenizer, text) -> PromptEncoder:
    """`StableDiffusionEditor.encode_prompts`' encoder, differentiable: last hidden state, chunks."""
    return PromptEncoder(tokenizer, text, grad=True)


def build_scheduler():
    """DDIM with SD's noise schedule; trailing timesteps so that few steps start at t = 999."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                         beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                         steps_offset=1, timestep_spacing="trailing", prediction_type="epsilon")


# ----------------------------------------------------------------------------- stages

def train_vae(cfg: TrainConfig, work: Path, log, progress: bool = True) -> tuple:
    """Stage 1. Returns (vae, scaling_factor, cpu seconds)."""
    path = work / "vae.pt"
    vae = build_vae(cfg)
    if path.exists():
        state = torch.load(path, weights_only=False)
        vae.load_state_dict(state["model"])
        log(f"vae: loaded {path}")
        return vae, state["scaling_factor"], state["cpu_s"]
    t0 = cpu_seconds()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    rng = np.random.default_rng(sample_seed(cfg.seed, 0, TRAIN_SEED_LIMIT - 1))
    bar = tqdm(range(cfg.vae_steps), desc="sd: autoencoder", mininterval=5, disable=not progress)
    for step in bar:
        set_lr(opt, lr_at(step, cfg.vae_steps, min(100, cfg.vae_steps // 10 + 1), cfg.vae_lr))
        seeds = [sample_seed(cfg.seed, 0, step * cfg.vae_batch + i) for i in range(cfg.vae_batch)]
        x, m, _ = make_batch(seeds, cfg, rng)
        blank = torch.from_numpy(rng.random(len(seeds)) < 1 / 3)[:, None, None, None]
        x = 2 * x - 1
        x = torch.where(blank & (m >= 0.5), torch.zeros_like(x), x)
        gen = torch.Generator().manual_seed(sample_seed(cfg.seed, 0, step))
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=gen)).sample
        loss = (rec - x).abs().mean() + cfg.kl_weight * post.kl().mean()
        optimise(opt, loss)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            log(f"vae step {step} loss {loss.item():.5f}")
    vae.eval()
    with torch.no_grad():  # unit-variance latents, as SD's `scaling_factor`
        seeds = [sample_seed(cfg.seed, 0, 9_000_000 + i) for i in range(256)]
        x, _, _ = make_batch(seeds, cfg, np.random.default_rng(1))
        z = vae.encode(2 * x - 1).latent_dist.mean
        scaling = float(1.0 / z.std())
        rec = vae.decode(z).sample
        psnr = float(-10 * torch.log10(((rec.clamp(-1, 1) - (2 * x - 1)) / 2).pow(2).mean()))
    cpu_s = cpu_seconds() - t0
    log(f"vae done: scaling_factor {scaling:.4f}, reconstruction PSNR {psnr:.2f} dB, "
        f"cpu {cpu_s:.0f} s")
    torch.save({"model": vae.state_dict(), "scaling_factor": scaling, "cpu_s": cpu_s,
                "psnr": psnr}, path)
    return vae, scaling, cpu_s


def train_denoiser(cfg: TrainConfig, vae, scaling: float, work: Path, log, progress: bool = True):
    """Stage 2. Returns (unet EMA, text encoder EMA, tokenizer, cpu seconds)."""
    from lrlib.worlds.tokenizers import build_clip_tokenizer

    tokenizer = build_clip_tokenizer(str(work / "tokenizer"))
    f = 2  # the autoencoder's downsampling
    torch.manual_seed(cfg.seed)
    unet = build_unet(cfg, cfg.resolution // f)
    text = common.text_encoder(cfg.text_width, cfg.text_layers)
    ema_unet, ema_text = copy.deepcopy(unet).requires_grad_(False), \
        copy.deepcopy(text).requires_grad_(False)
    params = list(unet.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    sched = build_scheduler()
    acp = sched.alphas_cumprod
    encode = prompt_encoder(tokenizer, text)
    vae.requires_grad_(False).eval()
    ckpt = work / "denoiser.pt"
    state = dict(unet=unet, text=text, ema_unet=ema_unet, ema_text=ema_text)
    start, cpu_done = resume(ckpt, state, opt, log)
    t0 = cpu_seconds()
    bar = tqdm(range(start, cfg.steps), desc="sd: denoiser", initial=start, total=cfg.steps,
               mininterval=5, disable=not progress)
    for step in bar:
        lr = set_lr(opt, lr_at(step, cfg.steps, cfg.warmup, cfg.lr))
        seeds = [sample_seed(cfg.seed, 1, step * cfg.batch + i) for i in range(cfg.batch)]
        rng = np.random.default_rng(sample_seed(cfg.seed, 1, TRAIN_SEED_LIMIT - 1 - step))
        gen = torch.Generator().manual_seed(sample_seed(cfg.seed, 1, step))
        x, m, prompts = make_batch(seeds, cfg, rng)
        with torch.no_grad():
            m = (m >= 0.5).float()                                # the pipeline binarizes
            x = 2 * x - 1
            both = torch.cat([x, x * (m < 0.5)])                  # target, masked image
            z = vae.encode(both).latent_dist.sample(generator=gen) * scaling
            z0, zm = z.chunk(2)
            m_lat = F.interpolate(m, size=z0.shape[-2:])          # nearest, as the pipeline
            noise = torch.randn(z0.shape, generator=gen)
            t = torch.randint(0, sched.config.num_train_timesteps, (len(seeds),), generator=gen)
            a = acp[t].view(-1, 1, 1, 1)
            zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        ctx, _ = encode(prompts)
        pred = unet(torch.cat([zt, m_lat, zm], 1), t, ctx).sample
        w = 1 + cfg.mask_weight * m_lat
        loss = (w * (pred - noise) ** 2).mean() / w.mean()
        optimise(opt, loss, params, max_norm=1.0)
        ema_update(step, cfg.ema, (ema_unet, unet), (ema_text, text))
        cpu_s = cpu_done + cpu_seconds() - t0
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            log(f"step {step} loss {loss.item():.5f} lr {lr:.2e} cpu {cpu_s:.0f}")
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps:
            checkpoint(ckpt, state, opt, step + 1, cpu_s)
    return ema_unet, ema_text, tokenizer, cpu_done + cpu_seconds() - t0


def save_pipeline(out_dir: str, vae, unet, text, tokenizer, scaling: float, cfg: TrainConfig,
                  info: dict) -> str:
    """Write the fp16 pipeline folder (+ lrlib_editor.json, training.json), replacing the old one."""
    from diffusers import StableDiffusionInpaintPipeline

    vae.register_to_config(scaling_factor=scaling)
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer,
                                          unet=unet, scheduler=build_scheduler(),
                                          safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)

    def write(tmp: Path) -> None:
        pipe.to(torch.float16).save_pretrained(tmp, safe_serialization=True)
        common.write_small_tokenizer(tmp / "tokenizer")
        with open(tmp / EDITOR_DEFAULTS_FILE, "w") as f:
            json.dump({"crop_margin": cfg.crop_margin, "steps": cfg.infer_steps,
                       "guidance_scale": cfg.guidance_scale}, f, indent=2)
    return common.save_folder(out_dir, write, info)


def train(cfg: TrainConfig = TrainConfig(), out_dir=DEFAULT_OUT, progress: bool = True) -> str:
    """Both stages, then the fp16 pipeline folder in `out_dir`; returns its path."""
    common.begin(cfg)
    with common.work_folder(cfg) as (work, log):
        vae, scaling, vae_cpu = train_vae(cfg, work, log, progress)
        unet, text, tokenizer, unet_cpu = train_denoiser(cfg, vae, scaling, work, log, progress)
        info = {"config": dataclasses.asdict(cfg), "cpu_seconds": {"autoencoder": round(vae_cpu),
                "denoiser": round(unet_cpu), "total": round(vae_cpu + unet_cpu)},
                "torch_threads": cfg.threads}
        out = save_pipeline(str(out_dir), vae, unet, text, tokenizer, scaling, cfg, info)
        log(f"saved {out}; cpu seconds {info['cpu_seconds']}")
    return out
