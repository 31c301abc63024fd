"""Train the toy world's DINO: a small timm ViT whose [CLS] attention finds the objects, no labels.

DINO (self-distillation with no labels, Caron et al. 2021). A student g_s and a teacher g_t share
the architecture: ViT backbone -> [CLS] embedding -> projection head -> K prototype scores. For a
view v, the student's distribution is P_s(v) = softmax(g_s(v) / tau_s); the teacher's, for a
global view u, is P_t(u) = softmax((g_t(u) - c) / tau_t), sharpened by a low tau_t and centred by
c. The student learns to predict the teacher across views of the same scene:

    L = 1/|pairs| sum_{u in global} sum_{v in views, v != u} H(P_t(u), P_s(v)),
        H(p, q) = -sum_k p_k log q_k

Only the student gets gradients. After every step
    teacher:  theta_t <- lam * theta_t + (1 - lam) * theta_s,  lam: 0.996 -> 1 (cosine)
    centre:   c <- m * c + (1 - m) * mean_batch g_t(u)           (m = 0.9)
Centring stops one prototype from winning everything, sharpening stops the uniform output:
together they avoid collapse.

The views are what make the [CLS] token look at the objects. Plain single-image DINO on this
world learns a shortcut (the background gradient tells two crops of one image apart from other
images), and strong colour jitter to break it made training collapse. Here instead every view
shows *the same objects on an independent new background* (`lrlib.toy.scenes.rerender`): the
only thing shared between views is the objects, so matching views means encoding the objects.
Per scene: 2 global views (64 px, random resized crop, area 0.4-1, random horizontal flip), each
on its own background, and 4 local views (32 px, area 0.1-0.4 of a 64 px image, flip), each on
yet another background. No colour jitter, but one random RGB channel order per scene (all its
views alike: `permute_channels`), so that no single colour becomes the feature to match. The ViT
carries 4 register tokens (`registers`; Darcet et al. 2024, "Vision Transformers Need
Registers"): extra prefix tokens that give the network somewhere other than background patches
to keep global information, which helps keep the [CLS] attention map on the objects.

The teacher's backbone is saved like a timm hub checkpoint (`timm.models.save_for_hf`, fp16
safetensors) and loads with `lrlib.models.load_dino(folder)`; the teacher's head and centre go
to dino_head.safetensors beside it (lrlib ignores them; `lrlib.toy.evaluate` uses them to check
for collapse).

    python -m lrlib.toy train dino                    # the shipped model (lrlib/toy/weights/dino)
    python -m lrlib.toy train dino --steps 50 --out /tmp/dino
    python -m lrlib.toy train dino --tiny --out /tmp/dino   # a few seconds
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from lrlib.anchors import IMAGENET_MEAN, IMAGENET_STD
from lrlib.toy.scenes import TRAIN_SEED_LIMIT, render_scene, rerender
from lrlib.toy.train import common

NAME = "dino"
DEFAULT_OUT = Path(__file__).parents[1] / "weights" / "dino"
HEAD_FILE = "dino_head.safetensors"


@dataclass
class TrainConfig:
    steps: int = 500
    batch: int = 64
    lr: float = 5e-4
    warmup: int = 50             # linear warm-up steps, then cosine decay to lr / 100
    weight_decay: float = 0.04
    clip_grad: float = 3.0
    seed: int = 0
    size: int = 64               # global views and model input, pixels
    patch: int = 8
    embed_dim: int = 96
    depth: int = 4
    heads: int = 4
    registers: int = 4           # register tokens (Darcet et al. 2024), see the doc above
    prototypes: int = 256        # K
    head_hidden: int = 256
    bottleneck: int = 64
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    center_momentum: float = 0.9
    momentum: float = 0.996      # teacher EMA, raised to 1 along a cosine
    n_local: int = 4
    local_size: int = 32
    global_min_area: float = 0.4
    local_min_area: float = 0.1
    local_max_area: float = 0.4
    min_objects: int = 1
    max_objects: int = 3
    permute_channels: bool = True  # per scene (all its views alike): a random RGB channel order
    probe_every: int = 50        # show the teacher's top-1-attention-in-box on training scenes
    probe_n: int = 64
    threads: int = 1

    # a few-second configuration (`--tiny`)
    TINY = dict(steps=2, batch=4, warmup=1, size=32, patch=16, embed_dim=32, depth=1, heads=2,
                prototypes=16, head_hidden=32, bottleneck=8, n_local=2, local_size=16)


def vit_args(cfg: TrainConfig) -> dict:
    """timm model arguments of the saved backbone (what config.json records)."""
    return dict(img_size=cfg.size, patch_size=cfg.patch, embed_dim=cfg.embed_dim, depth=cfg.depth,
                num_heads=cfg.heads, reg_tokens=cfg.registers, num_classes=0)


def build_backbone(cfg: TrainConfig, dynamic: bool = False):
    """The timm ViT; `dynamic` lets it take the 32 px local views (position embeddings resized)."""
    import timm
    return timm.create_model("vit_small_patch8_224", pretrained=False, dynamic_img_size=dynamic,
                             **vit_args(cfg))


class DinoHead(nn.Module):
    """MLP -> bottleneck -> cosine against K prototypes (weight-normalised last layer, g = 1)."""

    def __init__(self, dim: int, hidden: int, bottleneck: int, k: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                 nn.GELU(), nn.Linear(hidden, bottleneck))
        self.prototypes = nn.Parameter(torch.randn(k, bottleneck) / math.sqrt(bottleneck))

    def forward(self, x):
        return F.normalize(self.mlp(x), dim=-1) @ F.normalize(self.prototypes, dim=-1).T


class DinoNet(nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):  # x in [0, 1], normalised as lrlib.anchors.Dino does
        return self.head(self.backbone((x - self.mean) / self.std))


# ----------------------------------------------------------------------------- views

def _crop_box(rng, size: int, min_area: float, max_area: float):
    """A random square-ish crop (aspect 3/4..4/3) of `size`: (top, left, h, w)."""
    area = size * size * rng.uniform(min_area, max_area)
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w = int(round(min(size, math.sqrt(area * aspect))))
    h = int(round(min(size, math.sqrt(area / aspect))))
    return int(rng.integers(size - h + 1)), int(rng.integers(size - w + 1)), h, w


def random_view(image: np.ndarray, rng, out: int, min_area: float, max_area: float) -> torch.Tensor:
    """Random resized crop to out x out (bilinear, antialiased) and a coin-flip horizontal flip."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    t, l, h, w = _crop_box(rng, image.shape[0], min_area, max_area)
    v = F.interpolate(x[..., t:t + h, l:l + w], size=(out, out), mode="bilinear",
                      align_corners=False, antialias=True)[0]
    return v.flip(-1) if rng.random() < 0.5 else v


def make_views(step: int, cfg: TrainConfig):
    """([globals (B, 3, S, S)] * 2, [locals (B, 3, s, s)] * n_local), a function of (seed, step).

    Every view of a scene shows the same objects on a background of its own.
    """
    rng = np.random.default_rng([cfg.seed, step])
    glob = [[] for _ in range(2)]
    loc = [[] for _ in range(cfg.n_local)]
    for _ in range(cfg.batch):
        scene = render_scene(int(rng.integers(TRAIN_SEED_LIMIT)), cfg.size,
                             n_objects=(cfg.min_objects, cfg.max_objects))
        perm = rng.permutation(3) if cfg.permute_channels else np.arange(3)
        for g in glob:
            image = rerender(scene, rng).image[..., perm]
            g.append(random_view(image, rng, cfg.size, cfg.global_min_area, 1.0))
        for lv in loc:
            image = rerender(scene, rng).image[..., perm]
            lv.append(random_view(image, rng, cfg.local_size, cfg.local_min_area,
                                  cfg.local_max_area))
    return [torch.stack(g) for g in glob], [torch.stack(lv) for lv in loc]


# ----------------------------------------------------------------------------- objective

def dino_loss(student_out: list, teacher_out: list, center: torch.Tensor, cfg: TrainConfig):
    """Cross-entropy from each centred, sharpened teacher global view to every other student view.

    student_out: logits of all views, the 2 globals first, in the same order as teacher_out.
    Returns (loss, teacher probabilities of the globals (2B, K)).
    """
    targets = [F.softmax((t - center) / cfg.teacher_temp, dim=-1).detach() for t in teacher_out]
    logq = [F.log_softmax(s / cfg.student_temp, dim=-1) for s in student_out]
    total, n = 0.0, 0
    for iu, p in enumerate(targets):
        for iv, lq in enumerate(logq):
            if iv != iu:
                total = total + -(p * lq).sum(-1).mean()
                n += 1
    return total / n, torch.cat(targets)


def entropies(p: torch.Tensor) -> tuple[float, float]:
    """(mean entropy of each row, entropy of the mean row), in nats.

    Collapse to one prototype: both near 0. Collapse to uniform: the first near log K. Healthy:
    the first well below log K (sharp answers), the second high (many prototypes in use).
    """
    ent = -(p * p.clamp_min(1e-12).log()).sum(-1).mean()
    m = p.mean(0)
    return float(ent), float(-(m * m.clamp_min(1e-12).log()).sum())


def momentum_at(step: int, cfg: TrainConfig) -> float:
    return 1 - (1 - cfg.momentum) * 0.5 * (1 + math.cos(math.pi * step / max(1, cfg.steps)))


def param_groups(model, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        keep = p.ndim < 2 or name.endswith(("pos_embed", "cls_token")) or "prototypes" in name
        (no_decay if keep else decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]


@torch.no_grad()
def probe(backbone, cfg: TrainConfig) -> float:
    """Top-1 [CLS] attention patch inside an object box, on `probe_n` fixed training scenes."""
    from lrlib.anchors import Dino
    from lrlib.toy.scenes import render_batch

    rng = np.random.default_rng([cfg.seed, 2**32 - 1])  # a stream no training step uses
    seeds = rng.integers(TRAIN_SEED_LIMIT, size=cfg.probe_n)
    x, scenes = render_batch(seeds, cfg.size, n_objects=(cfg.min_objects, cfg.max_objects))
    training = backbone.training
    A = Dino(backbone)(x).attn_mean  # Dino() sets eval mode and no grad on the backbone
    backbone.train(training)
    w, step = A.shape[-1], cfg.size / A.shape[-1]
    hits = 0
    for a, s in zip(A, scenes):
        r, c = divmod(int(a.flatten().argmax()), w)
        px, py = (c + 0.5) * step, (r + 0.5) * step
        hits += any(x0 <= px < x1 and y0 <= py < y1
                    for x0, y0, x1, y1 in (o.box for o in s.objects))
    return hits / len(scenes)


# ----------------------------------------------------------------------------- save

def save(teacher: DinoNet, center: torch.Tensor, cfg: TrainConfig, out_dir,
         extra: dict | None = None) -> str:
    """Backbone via timm.models.save_for_hf (fp16 safetensors + config.json), head + centre
    in dino_head.safetensors, the run in training.json."""
    import timm
    from safetensors.torch import save_file

    vit = build_backbone(cfg)  # fixed input size, as saved and loaded
    vit.load_state_dict(teacher.backbone.state_dict())
    # not the real DINO checkpoint's source or licence
    kept = {k: v for k, v in vit.pretrained_cfg.items() if k not in ("license", "url", "hf_hub_id")}
    vit.pretrained_cfg = {**kept, "tag": "lrlib-toy"}

    def write(tmp: Path) -> None:
        timm.models.save_for_hf(vit.half(), tmp, model_args=vit_args(cfg), safe_serialization=True)
        (tmp / "pytorch_model.bin").unlink(missing_ok=True)
        head = common.fp16_state(teacher.head, "head.")
        head["center"] = center.detach().half().contiguous()
        save_file(head, str(tmp / HEAD_FILE))
    return common.save_folder(out_dir, write, {"config": asdict(cfg), **(extra or {})})


def load_head(folder, cfg: TrainConfig | None = None):
    """(DinoHead, centre) saved beside a trained backbone, float32."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if cfg is None:
        cfg = TrainConfig(**json.loads((folder / "training.json").read_text())["config"])
    state = load_file(str(folder / HEAD_FILE))
    head = DinoHead(cfg.embed_dim, cfg.head_hidden, cfg.bottleneck, cfg.prototypes)
    head.load_state_dict({k[5:]: v.float() for k, v in state.items() if k.startswith("head.")})
    return head.eval(), state["center"].float()


# ----------------------------------------------------------------------------- train

def train(cfg: TrainConfig = TrainConfig(), out_dir=DEFAULT_OUT, progress: bool = True) -> str:
    """Train from scratch with `cfg` and save the teacher to `out_dir`; returns the folder."""
    common.begin(cfg, deterministic=True)
    student = DinoNet(build_backbone(cfg, dynamic=True),
                      DinoHead(cfg.embed_dim, cfg.head_hidden, cfg.bottleneck, cfg.prototypes))
    teacher = copy.deepcopy(student).requires_grad_(False)
    center = torch.zeros(cfg.prototypes)
    opt = torch.optim.AdamW(param_groups(student, cfg.weight_decay), lr=cfg.lr)
    t0, c0, ema, h, hit = time.time(), time.process_time(), None, (0.0, 0.0), float("nan")
    bar = tqdm(range(cfg.steps), desc="toy DINO", disable=not progress)
    for step in bar:
        glob, loc = make_views(step, cfg)
        common.set_lr(opt, common.lr_at(step, cfg.steps, cfg.warmup, cfg.lr, final=cfg.lr / 100))
        with torch.no_grad():
            t_out = teacher(torch.cat(glob)).chunk(2)
        s_glob = student(torch.cat(glob)).chunk(2)
        s_loc = student(torch.cat(loc)).chunk(cfg.n_local) if cfg.n_local else ()
        loss, p_t = dino_loss(list(s_glob) + list(s_loc), list(t_out), center, cfg)
        common.optimise(opt, loss, student.parameters(), max_norm=cfg.clip_grad)
        with torch.no_grad():
            lam = momentum_at(step, cfg)
            for ps, pt in zip(student.parameters(), teacher.parameters()):
                pt.mul_(lam).add_(ps.detach(), alpha=1 - lam)
            m = cfg.center_momentum
            center = m * center + (1 - m) * torch.cat(t_out).mean(0)
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        h = entropies(p_t)
        if cfg.probe_every and ((step + 1) % cfg.probe_every == 0 or step + 1 == cfg.steps):
            hit = probe(teacher.backbone, cfg)
        bar.set_postfix(loss=f"{ema:.3f}", H_row=f"{h[0]:.2f}", H_mean=f"{h[1]:.2f}",
                        in_box=f"{hit:.2f}")
    extra = dict(wall_seconds=round(time.time() - t0, 1),
                 cpu_seconds=round(time.process_time() - c0, 1), final_loss_ema=round(ema, 4),
                 final_teacher_entropy_row=round(h[0], 3),
                 final_teacher_entropy_mean=round(h[1], 3),
                 final_probe_in_box=hit,
                 log_prototypes=round(math.log(cfg.prototypes), 3), torch=torch.__version__)
    return save(teacher, center, cfg, out_dir, extra)
