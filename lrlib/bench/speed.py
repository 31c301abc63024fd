"""Speed and memory per edit: lrlib's cached candidates against the official regenerate loop.

The official code (yuanze-lin/Learnable_Regions) re-runs Stable Diffusion inpainting for all K
anchors at every one of its T training iterations, plus K final runs. lrlib runs the K x M
candidate edits once, batched, and reuses them for training and ranking. Counting UNet image
evaluations (each image of a batch once; classifier-free guidance doubles the batch):

    official:  2 * steps * (T + 1) * K          lrlib:  2 * steps * K * M

At the paper's setting (K = 9, M = 7, T = 10, 50 steps) that is 9,900 vs 6,300; with the
DPM-Solver++ option at 20 steps lrlib needs 2,520. Speed does not depend on weight values, so
`python -m lrlib.bench speed` builds the architectures from their configs with random weights
(no download): `--size full` is SD 2 inpainting + DINO ViT-B/16 + CLIP ViT-B/16 at 512 px (GPU),
`--size small` the same classes shrunk for a CPU, `--size toy` the shipped toy world at 64 px.
"""
from __future__ import annotations

import threading
import time

import torch

from lrlib.config import LRConfig
from lrlib.errors import LRError


def build_models(size: str, device: torch.device):
    """Random-weight models of the real classes at 'full' or 'small' size -> lrlib Models."""
    import open_clip
    import timm
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from lrlib.anchors import Dino
    from lrlib.clip import Clip
    from lrlib.editors.sd import StableDiffusionEditor
    from lrlib.models import Models
    from lrlib.tiny import CLIP_MEAN, CLIP_STD
    from lrlib.tokenizers import build_clip_tokenizer

    full = size == "full"
    torch.manual_seed(0)
    if full:   # stabilityai/stable-diffusion-2-inpainting's configs
        unet = UNet2DConditionModel(sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
                                    block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
                                    cross_attention_dim=1024, use_linear_projection=True)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                            down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                            sample_size=512)
        text = CLIPTextModel(CLIPTextConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                                            num_attention_heads=16, hidden_act="gelu", projection_dim=512))
        vit = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
        clip_model = open_clip.create_model("ViT-B-16", pretrained=None)
    else:
        unet = UNet2DConditionModel(sample_size=16, in_channels=9, out_channels=4, layers_per_block=1,
                                    block_out_channels=(32, 64, 128, 128), attention_head_dim=(2, 4, 8, 8),
                                    cross_attention_dim=128, use_linear_projection=True, norm_num_groups=16)
        vae = AutoencoderKL(block_out_channels=(16, 32, 64, 64), layers_per_block=1, latent_channels=4,
                            down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                            sample_size=128, norm_num_groups=16)
        text = CLIPTextModel(CLIPTextConfig(hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                                            num_attention_heads=4))
        vit = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0, img_size=128,
                                embed_dim=192, depth=4, num_heads=3)
        clip_model = open_clip.CLIP(embed_dim=128, vision_cfg=dict(image_size=128, layers=4, width=192,
                                                                   head_width=64, patch_size=16),
                                    text_cfg=dict(context_length=77, vocab_size=49408, width=128, heads=2, layers=4))
    import tempfile
    tok = build_clip_tokenizer(tempfile.mkdtemp(prefix="lrlib-tok-"))
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                          scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1),
                                          safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False).to(device, dtype)
    editor = StableDiffusionEditor(pipe)
    clip = Clip(clip_model, open_clip.get_tokenizer("ViT-B-16"), CLIP_MEAN, CLIP_STD).to(device)
    return Models(dino=Dino(vit).to(device), clip=clip, editor=editor, device=device, world=size)


class Counter:
    """Counts UNet image evaluations (batch items) and samples peak memory during a block."""

    def __init__(self, unet, device):
        self.n, self.device, self.peak = 0, device, 0
        self._h = unet.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self.n += sample.shape[0]

    def __enter__(self):
        import psutil
        self.n, self._stop = 0, False
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
        proc = psutil.Process()
        self._rss0 = proc.memory_info().rss
        self.peak = self._rss0

        def sample():
            while not self._stop:
                self.peak = max(self.peak, proc.memory_info().rss)
                time.sleep(0.02)
        self._t = threading.Thread(target=sample, daemon=True)
        self._t.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.t0
        self._stop = True
        self._t.join()
        self.mem_gb = (torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda"
                       else self.peak - self._rss0) / 2**30


def lrlib_edit(image, prompt, cfg, models):
    """The whole lrlib edit (prepare: candidates once; train; rank) -> best S_t2i."""
    from lrlib.pipeline import prepare, rank, train_and_choose
    p = prepare(image, prompt, None, cfg, models)
    probs, _ = train_and_choose(p, cfg)
    results = p.C[torch.arange(p.K), probs.argmax(-1)]
    scores, best = rank(p, results, models.clip, cfg)
    return float(scores["S_t2i"][best])


def official_style_edit(image, prompt, cfg, models, T: int = 10):
    """The official loop: at each of T iterations every anchor samples a box and the editor runs
    again (K runs), the loss is computed on a detached image (no RGN update happens, as in the
    released code); then K final runs and the ranking."""
    import torch.nn.functional as F

    from lrlib.anchors import cells_to_pixels, top_k_anchors
    from lrlib.io import load_image, to_tensor
    from lrlib.losses import edit_loss, embed
    from lrlib.regions import RGN, box_geometry, boxes_to_masks, gumbel_softmax, make_proposals, roi_pool
    from lrlib.scoring import pick_best, quality_scores

    S, dev = cfg.size, models.device
    x = F.interpolate(to_tensor(load_image(image))[None], size=(S, S), mode="bilinear",
                      antialias=True).to(dev)
    with torch.no_grad():
        d = models.dino(x)
    anchors = cells_to_pixels(top_k_anchors(d.attn_mean[0].cpu(), cfg.K, cfg.anchor_spacing),
                              d.attn.shape[-2:], S, S)
    boxes = make_proposals(anchors, cfg.box_sides(), S, S)
    pooled = roi_pool(d.feats, boxes.to(dev), S, S, cfg.roi_size)
    rgn = RGN(pooled.shape[2], cfg.roi_size, cfg.rgn_channels, cfg.rgn_hidden).to(dev)
    geom = box_geometry(boxes, S, S).to(dev)
    emb = embed(models.clip, models.dino, x, prompt, cfg.default_caption)
    gen = torch.Generator().manual_seed(cfg.seed)
    K = cfg.K

    def run(chosen):
        m = boxes_to_masks(boxes[torch.arange(K), chosen], S, S).to(dev)
        E = models.editor.inpaint(x.expand(K, -1, -1, -1), m, [prompt] * K, gen)
        return m * E + (1 - m) * x

    for _ in range(T):
        with torch.no_grad():
            g = gumbel_softmax(rgn(pooled, geom), cfg.tau, True, gen)
            edit_loss(run(g.argmax(-1).cpu()), gen, emb=emb, clip=models.clip, dino=models.dino,
                      n_aug=cfg.n_aug)                       # detached: nothing learns
    with torch.no_grad():
        results = run(rgn(pooled, geom).argmax(-1).cpu())
        scores = quality_scores(models.clip.encode_image(results), emb.E_T, emb.E_I_src,
                                cfg.alpha, cfg.beta, models.clip.logit_scale)
    return float(scores["S_t2i"][pick_best(scores, cfg.rank_top)])


def run_speed(size: str = "small", device: str = "auto", steps: int | None = None,
              T: int = 10) -> str:
    """Build, time each mode once after a warm-up, and return the table as text."""
    from lrlib.demo import DEMO_IMAGE, DEMO_PROMPT
    from lrlib.models import load_models, pick_device

    dev = pick_device(device)
    if size == "full" and dev.type != "cuda":
        raise LRError("--size full builds SD 2 at 512 px: it needs a CUDA GPU (hours on a CPU). "
                      "Use --size small or --size toy here.")
    if size == "toy":
        cfg = LRConfig.cpu(world="toy", progress=False, device=str(dev))
        models = load_models(cfg)
        fast_steps = max(2, cfg.steps // 2)
    else:
        models = build_models(size, dev)
        cfg = (LRConfig(progress=False, device=str(dev)) if size == "full" else
               LRConfig(size=128, K=3, M=4, steps=10, epochs=1, iters_per_epoch=10, n_aug=2,
                        progress=False, device=str(dev)))
        fast_steps = 20 if size == "full" else 4
    if steps:
        cfg = cfg.replace(steps=steps)
    editor = models.editor
    editor.steps, editor.guidance_scale = cfg.steps, cfg.guidance_scale
    counter = Counter(editor.pipe.unet, dev)
    # warm-up (kernels, caches), not timed
    with counter:
        lrlib_edit(DEMO_IMAGE, DEMO_PROMPT, cfg.replace(K=1, M=2, epochs=1, iters_per_epoch=1), models)
    rows = []
    modes = [("official-style (regenerate every iteration)", lambda: official_style_edit(DEMO_IMAGE, DEMO_PROMPT, cfg, models, T), cfg.steps),
             ("lrlib (candidates once, batched)", lambda: lrlib_edit(DEMO_IMAGE, DEMO_PROMPT, cfg, models), cfg.steps)]
    if hasattr(editor, "set_scheduler"):
        def fast():
            editor.set_scheduler("dpm++")
            editor.steps = fast_steps
            try:
                return lrlib_edit(DEMO_IMAGE, DEMO_PROMPT, cfg.replace(steps=fast_steps), models)
            finally:
                editor.set_scheduler("default")
                editor.steps = cfg.steps
        modes.append((f"lrlib + DPM-Solver++ {fast_steps} steps", fast, fast_steps))
    for name, fn, st in modes:
        with counter:
            s_t2i = fn()
        rows.append((name, st, counter.n, counter.seconds, counter.mem_gb, s_t2i))
    head = (f"speed per edit: size={size} device={dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}, "
            f"{torch.get_num_threads()} threads) K={cfg.K} M={cfg.M} official T={T} "
            f"lrlib iterations={cfg.iterations} {cfg.size} px")
    lines = [head, f"{'mode':48s}{'steps':>6s}{'UNet evals':>12s}{'seconds':>10s}{'peak GB':>9s}{'best S_t2i':>12s}"]
    for name, st, n, sec, mem, s in rows:
        lines.append(f"{name:48s}{st:6d}{n:12d}{sec:10.1f}{mem:9.2f}{s:12.3f}")
    base = rows[0]
    for name, st, n, sec, _, _ in rows[1:]:
        lines.append(f"  {name}: {base[2] / max(n, 1):.1f}x fewer UNet evaluations, "
                     f"{base[3] / sec:.1f}x faster than official-style")
    return "\n".join(lines)
