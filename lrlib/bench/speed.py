"""Speed and memory per edit: the official loop, modelled honestly, against lrlib's modes.

The official loop (yuanze-lin/Learnable_Regions, `train.sh`; ../shared notes), as it runs:
K = 9 anchors, M = 6 boxes (half-sizes 4, 6, ..., 14 patches of a 32-cell grid: sides 0.25 to
0.875 of the image), T = 10 iterations. At each iteration every anchor samples a box (hard
Gumbel) and SD inpainting runs again for the K boxes (prompt "a high quality image of {}.",
PNDM, 50 steps = 51 UNet calls, classifier-free guidance doubles the batch); the loss (L_clip
over 16 augmented views, L_dir over 16 views of the edit and 16 of the source, L_str on CLIP
tokens of both) is computed on a detached image, so the RGN never changes. At predict time a
fresh Gumbel sample per anchor, K more SD runs, and the official score (cosine without the logit
scale; the best S among the top 3 by S_t2i). Built here from lrlib's own stages (`prepare` with
an editor that paints nothing, for anchors, boxes and features; lrlib.losses; lrlib.scoring).

lrlib generates the K x M candidates once, batched, trains the RGN on them, and ranks; options:
the loss table computed once (`table_views`), drafts at few DPM-Solver++ steps with the winner
regenerated at full quality (`draft_steps`, lrlib/additions/drafts.py). Counted by hooks on the real UNet
and CLIP visual tower (each image of a batch once): exact, whatever the machine. Speed does not
depend on weight values, so `--size full|small` builds the real classes from their configs with
random weights (no download): `full` is SD 2 inpainting + DINO ViT-B/16 + CLIP ViT-B/16 at
512 px (GPU), `small` the same classes shrunk for a CPU; `--size toy` is the shipped toy world,
where the quality column is the judge's success on held-out tasks (elsewhere: the raw CLIP
cosine of the final image to the prompt).
"""
from __future__ import annotations

import threading
import time

import torch

from lrlib.config import PAPER_METHOD, LRConfig
from lrlib.errors import LRError

TEMPLATE = "a high quality image of {}."   # the official code's SD prompt template
OFFICIAL_VIEWS = 16                        # L_clip views; L_dir: 2 x 16
# the official boxes: half-sizes range(4, 16, 2) patches of a 32-patch side; peak-cell anchors
# on top of the paper's method fields (top-K peaks, squares, caption-blind score, no pruning)
OFFICIAL = dict(PAPER_METHOD, M=6, box_min=8 / 32, box_max=28 / 32, prompt_template=TEMPLATE,
                scheduler="pndm", structure="clip")

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
    from lrlib.worlds.random_world import CLIP_MEAN, CLIP_STD
    from lrlib.worlds.tokenizers import build_clip_tokenizer

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
    """Counts UNet image evaluations and CLIP image forwards (batch items, via forward hooks on
    the real modules) and samples peak memory during a `with` block."""

    def __init__(self, unet, device, clip_visual=None):
        self.n = self.clip = 0
        self.device, self.peak = device, 0
        self._hooks = [unet.register_forward_pre_hook(self._unet, with_kwargs=True)]
        if clip_visual is not None:
            self._hooks.append(clip_visual.register_forward_pre_hook(self._clip, with_kwargs=True))

    def remove(self):
        """Take the hooks off the modules (they may be cached and reused)."""
        for h in self._hooks:
            h.remove()

    def _unet(self, module, args, kwargs):
        self.n += (args[0] if args else kwargs["sample"]).shape[0]

    def _clip(self, module, args, kwargs):
        self.clip += (args[0] if args else kwargs["x"]).shape[0]

    def __enter__(self):
        import psutil
        self.n = self.clip = 0
        self._stop = False
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


class _PaintsNothing:
    """An editor that returns its input: `prepare` then runs DINO, anchors, boxes, ROI-align and
    the loss's text embeddings without a single UNet call."""

    def __init__(self, editor):
        self.editor = editor

    def snap_mask(self, masks):
        return self.editor.snap_mask(masks)

    def inpaint(self, images, masks, prompts, generator, settings=None):
        return images


def official_loss(emb, clip, x: torch.Tensor, e: torch.Tensor, generator,
                  views: int = OFFICIAL_VIEWS) -> torch.Tensor:
    """The official loss of K edits e (K, 3, S, S): L_clip over `views` augmented views, L_dir
    between `views` views of each edit and `views` of the source, L_str on CLIP tokens -> (K,).
    CLIP image forwards: (3 * views + 2) * K."""
    from lrlib.losses import L_clip, L_dir, L_str, augment, self_similarity
    K = e.shape[0]
    l_clip = L_clip(clip.encode_image(augment(e, views, generator)), emb.E_T, views)
    E_e = clip.encode_image(augment(e, views, generator))
    E_x = clip.encode_image(augment(x.expand(K, -1, -1, -1), views, generator))
    l_dir = L_dir(E_e, E_x, emb.E_T, emb.E_T_caption).view(views, K).mean(0)
    l_str = L_str(self_similarity(clip.tokens(e)), self_similarity(clip.tokens(x)))
    return l_clip + l_dir + l_str


@torch.no_grad()
def official_style_edit(image, prompt, cfg: LRConfig, models, T: int = 10, caption=None):
    """The official loop (module docstring) at cfg's K, steps, guidance and seed, with the
    official boxes, views, template, scheduler and score -> (final (3, S, S), box, anchor)."""
    oc = cfg.replace(**OFFICIAL)
    return _official(image, prompt, caption, oc, models, T)


def _official(image, prompt, caption, oc, models, T):
    from lrlib.editors.base import EditorSettings
    from lrlib.models import Models
    from lrlib.pipeline import prepare
    from lrlib.regions import RGN, gumbel_softmax
    from lrlib.scoring import pick_best, quality_scores
    from lrlib.train import composites

    p = prepare(image, prompt, caption, oc, Models(models.dino, models.clip,
                                                   _PaintsNothing(models.editor), models.device,
                                                   models.world))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(oc.seed)
        rgn = RGN(p.pooled.shape[2], oc.roi_size, oc.rgn_channels, oc.rgn_hidden).to(p.x.device)
    gen = torch.Generator().manual_seed(oc.seed)
    K, ks = p.K, torch.arange(p.K)
    settings = EditorSettings.from_config(oc)          # PNDM, the template, cfg's steps

    def run(choice):                                   # one SD call over the K sampled boxes
        m = p.masks[ks, choice]
        return composites(models.editor.inpaint(p.x.expand(K, -1, -1, -1), m, [p.prompt] * K, gen,
                                                settings=settings), m, p.x)

    def sample():                                      # a fresh hard Gumbel sample per anchor
        return gumbel_softmax(rgn(p.pooled, p.geom), oc.tau, True, gen).argmax(-1).cpu()

    for _ in range(T):
        official_loss(p.emb, models.clip, p.x, run(sample()), gen)   # detached: the RGN never changes
    choice = sample()
    results = run(choice)
    scores = quality_scores(models.clip.encode_image(results), p.emb.E_T, p.emb.E_I_src,
                            oc.alpha, oc.beta, scale=1.0)
    best = pick_best(scores, oc.rank_top)
    return results[best], p.boxes[best, choice[best]].tolist(), p.anchors[best].tolist()


def lrlib_edit(image, prompt, cfg: LRConfig, models, caption=None):
    """lrlib.edit itself, the editor sampling as cfg says -> (final
    (3, S, S) on the working canvas, letterboxed like the source so a non-square input keeps
    its proportions; box and anchor in canvas pixels)."""
    from lrlib.images import to_tensor
    from lrlib.pipeline import edit
    from lrlib.canvas import letterbox
    r = edit(image, prompt, caption, cfg, models)
    final, _ = letterbox(to_tensor(r.image)[None], cfg.size)
    return final[0], r.best_box, r.anchors[r.best]


def modes(cfg: LRConfig, fast_steps: int):
    """(name, config) of lrlib's rows at cfg's K, M, steps: the paper's method
    (`PAPER_METHOD` on cfg), then lrlib's (cfg's own method fields, `LRConfig()`'s), one lever
    at a time: every anchor edited (prune_margin=None) with the loss table redrawn / computed
    once, then anchors the caption rules out not edited (cfg's prune_margin), then drafts."""
    every = cfg.replace(prune_margin=None)
    return [("lrlib, paper settings (st)", cfg.replace(**PAPER_METHOD)),
            ("lrlib, all K edited, table redrawn each iter", every.replace(table_views=0)),
            (f"lrlib, all K edited, table once ({cfg.table_views} views)", every),
            (f"  + prune anchors (margin {cfg.prune_margin}) = LRConfig()", cfg),
            (f"  + drafts DPM++ {fast_steps} steps, winner at {cfg.steps}",
             cfg.replace(draft_steps=fast_steps))]


def run_speed(size: str = "toy", device: str = "auto", steps: int | None = None, T: int = 10,
              n: int | None = None, fast_steps: int = 5) -> str:
    """Every mode on the same n edits (toy: held-out benchmark tasks; else the demo scene),
    after an untimed warm-up; returns the table as text."""
    from lrlib.demo import DEMO_CAPTION, DEMO_IMAGE, DEMO_PROMPT
    from lrlib.models import load_models, pick_device

    dev = pick_device(device)
    if size == "full" and dev.type != "cuda":
        raise LRError("--size full builds SD 2 at 512 px: it needs a CUDA GPU (hours on a CPU). "
                      "Use --size small or --size toy here.")
    if size == "toy":     # the official settings on the toy models at 64 px
        cfg = LRConfig(world="toy", size=64, roi_size=4, rgn_channels=32, rgn_hidden=64,
                       guidance_scale=3.0, scheduler="pndm", editor_batch_size=16,
                       progress=False, device=str(dev), draft_steps=0)
        models = load_models(cfg.replace(scheduler="default"))
        from lrlib.images import to_pil
        from lrlib.toy import benchmark_tasks
        tasks = [(to_pil(torch.from_numpy(t.scene.image).permute(2, 0, 1).float()), t.prompt,
                  t.source_caption, t) for t in benchmark_tasks(n or 3, size=cfg.size)]
    else:
        models = build_models(size, dev)
        cfg = (LRConfig(size=512, scheduler="pndm", progress=False, device=str(dev), draft_steps=0)
               if size == "full" else
               LRConfig(size=128, K=3, M=4, steps=10, epochs=1, iters_per_epoch=10, n_aug=2,
                        scheduler="pndm", progress=False, device=str(dev), draft_steps=0))
        tasks = [(DEMO_IMAGE, DEMO_PROMPT, DEMO_CAPTION, None)] * (n or 1)
    if steps:
        cfg = cfg.replace(steps=steps)
    counter = Counter(models.editor.pipe.unet, dev, models.clip.model.visual)
    with counter:                                            # warm-up (kernels, caches), not timed
        lrlib_edit(tasks[0][0], tasks[0][1],
                   cfg.replace(K=1, M=2, steps=2, epochs=1, iters_per_epoch=1), models, tasks[0][2])
    rows = [("official loop (M=6, 16 views, PNDM, template)",
             lambda im, pr, ca: official_style_edit(im, pr, cfg, models, T, ca), cfg)]
    rows += [(name, (lambda c: lambda im, pr, ca: lrlib_edit(im, pr, c, models, ca))(c), c)
             for name, c in modes(cfg, fast_steps)]
    out = []
    for name, fn, c in rows:
        evals, clips, secs, mem, quality = [], [], [], [], []
        for image, prompt, caption, task in tasks:
            with counter:
                final, box, anchor = fn(image, prompt, caption)
            evals.append(counter.n), clips.append(counter.clip), secs.append(counter.seconds)
            mem.append(counter.mem_gb)
            quality.append(judged(task, final, box, anchor) if task is not None else
                           raw_cosine(models.clip, final, prompt))
        out.append((name, sum(evals) / len(tasks), sum(clips) / len(tasks),
                    sum(secs) / len(tasks), max(mem), sum(quality) / len(tasks)))
    counter.remove()
    qname = "success" if size == "toy" else "cos(I,T)"
    head = (f"speed per edit: size={size} device={dev} "
            f"({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}, "
            f"{torch.get_num_threads()} threads), {len(tasks)} edit(s) each: K={cfg.K} "
            f"M={cfg.M} (official 6) T={T} steps={cfg.steps} (PNDM: {cfg.steps + 1} UNet calls) "
            f"lrlib iterations={cfg.iterations} {cfg.size} px")
    lines = [head, f"{'mode':50s}{'UNet evals':>11s}{'CLIP fwd':>10s}{'seconds':>9s}"
                   f"{'peak GB':>9s}{qname:>10s}"]
    for name, n_ev, n_cl, sec, mem, q in out:
        lines.append(f"{name:50s}{n_ev:11.0f}{n_cl:10.0f}{sec:9.1f}{mem:9.2f}{q:10.3f}")
    base = out[0]
    for name, n_ev, n_cl, sec, _, _ in out[1:]:
        lines.append(f"  {name.strip()}: {base[1] / max(n_ev, 1):.1f}x fewer UNet evaluations, "
                     f"{base[2] / max(n_cl, 1):.1f}x fewer CLIP forwards, "
                     f"{base[3] / sec:.1f}x faster than the official loop")
    lines.append("UNet evals and CLIP fwd (image forwards) are exact counts; seconds depend on "
                 "the machine and its load; quality: " +
                 ("the toy judge's success (colour and shape where the object was)"
                  if size == "toy" else "raw CLIP cosine of the final image to the prompt"))
    return "\n".join(lines)


def judged(task, final, box, anchor) -> float:
    """The toy benchmark's success of one final image (lrlib.bench.toy.Row)."""
    from lrlib.bench.toy import Row
    row = Row()
    row.add(task, final.cpu(), box, anchor, 0.0)
    return row.success[0]


@torch.no_grad()
def raw_cosine(clip, final, prompt) -> float:
    """cos(E_I(final), E_T(prompt)): comparable across modes (S_t2i is a softmax within a run)."""
    return float(clip.encode_image(final[None].to(clip.mean.device))[0] @ clip.encode_text([prompt])[0])


def run_draft(n: int = 200, cfg: LRConfig | None = None, draft_steps=(5,),
              progress: bool = True, every: int = 10, start: int = 0, tasks: str = "first",
              redrawn: bool = True) -> str:
    """The toy benchmark's tasks, three ways on the same scene: full-quality candidates with the
    loss table redrawn every iteration (`table_views=0`), with the table computed once, and drafts
    at each of `draft_steps` DPM-Solver++ steps with the winner regenerated at full quality.
    Reports the judge's success of each final image (pasted as `lrlib.edit` pastes it), how
    often a draft run chose the same anchor and box as the full one (and the IoU of the two
    boxes), UNet evaluations and CLIP forwards per edit, on tasks start .. n - 1 of the set
    `tasks` (lrlib.bench.toy.SETS). redrawn=False skips the first row. With progress, the table
    so far is printed every `every` tasks."""
    from tqdm.auto import tqdm

    from lrlib.bench.toy import Row, iou, task_set, user_paste
    from lrlib.additions.drafts import regenerate
    from lrlib.editors.base import EditorSettings
    from lrlib.images import to_pil
    from lrlib.models import load_models
    from lrlib.pipeline import prepare, rank, train_and_choose

    cfg = (cfg or LRConfig.cpu(world="toy")).replace(progress=False, draft_steps=0)
    models = load_models(cfg)
    counter = Counter(models.editor.pipe.unet, models.device, models.clip.model.visual)
    fulls = ("full, table redrawn", "full, table once") if redrawn else ("full, table once",)
    names = fulls + tuple(
        f"drafts {d} steps + winner" for d in draft_steps)
    rows = {k: Row() for k in names}
    evals, clips = {k: [] for k in names}, {k: [] for k in names}
    same, box_iou = {k: [] for k in names[len(fulls):]}, {k: [] for k in names[len(fulls):]}
    table = lambda done: _draft_table(done, start, cfg, names, rows, evals, clips, same, box_iou)

    def choose(p, c):
        with counter:
            probs, _ = train_and_choose(p, c)
            chosen = probs.argmax(-1)
            results = p.C[torch.arange(p.K), chosen]
            _, best = rank(p, results, models.clip, c)
        return chosen, results, best, counter.clip

    for i, task in enumerate(tqdm(task_set(n, tasks, cfg.size)[start:],
                                  desc="draft benchmark", disable=not progress)):
        if progress and i and i % every == 0:
            print(table(i), flush=True)
        img = to_pil(torch.from_numpy(task.scene.image).permute(2, 0, 1).float())
        with counter:
            p = prepare(img, task.prompt, task.source_caption, cfg, models)
        prep_evals, prep_clip = counter.n, counter.clip
        picks = {}
        runs = (("full, table redrawn", cfg.replace(table_views=0)),) if redrawn else ()
        for name, c in runs + (("full, table once", cfg),):
            chosen, results, best, n_clip = choose(p, c)
            j = int(chosen[best])
            rows[name].add(task, user_paste(p, results[best], p.masks[best, j], c),
                           p.boxes[best, j].tolist(), p.anchors[best].tolist(), 0.0)
            evals[name].append(prep_evals), clips[name].append(prep_clip + n_clip)
            picks[name] = (best, j, p.boxes[best, j].tolist())
        for name, d in zip(names[len(fulls):], draft_steps):
            with counter:                              # candidates drafted at d steps
                pd = prepare(img, task.prompt, task.source_caption, cfg.replace(draft_steps=d),
                             models)
            d_evals, d_clip = counter.n, counter.clip
            chosen, results, best, n_clip = choose(pd, cfg)
            j = int(chosen[best])
            with counter:
                final = regenerate(models.editor, pd.x, pd.masks[best, j], pd.prompt, cfg.seed,
                                   int(pd.index[best, j]), cfg.editor_batch_size,
                                   EditorSettings.from_config(cfg))
            box = pd.boxes[best, j].tolist()
            rows[name].add(task, user_paste(pd, final, pd.masks[best, j], cfg), box,
                           pd.anchors[best].tolist(), 0.0)
            evals[name].append(d_evals + counter.n), clips[name].append(d_clip + n_clip)
            same[name].append(float(picks["full, table once"][:2] == (best, j)))
            box_iou[name].append(iou(picks["full, table once"][2], box))
    return table(n - start)


def _draft_table(n, start, cfg, names, rows, evals, clips, same, box_iou) -> str:
    mean = lambda v: sum(v) / max(len(v), 1)
    lines = [f"draft benchmark: {n} toy tasks (from {start}), K={cfg.K} M={cfg.M} iterations={cfg.iterations} "
             f"steps={cfg.steps} ({cfg.scheduler}) drafts: DPM++ "
             f"table_views={cfg.table_views} n_aug={cfg.n_aug}",
             f"{'mode':28s}{'success':>9s}{'IoU':>7s}{'UNet evals':>12s}{'CLIP fwd':>10s}"
             f"{'same pick':>11s}{'box IoU':>9s}"]
    for k in names:
        s = rows[k].summary()
        agree = f"{mean(same[k]):11.2f}{mean(box_iou[k]):9.2f}" if k in same else ""
        lines.append(f"{k:28s}{s['success']:9.3f}{s['IoU']:7.2f}{mean(evals[k]):12.0f}"
                     f"{mean(clips[k]):10.0f}{agree}")
    lines.append("same pick / box IoU: the draft run's winning anchor and box against the "
                 "full run's (table once); counts per edit are exact")
    return "\n".join(lines)
