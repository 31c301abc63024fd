"""Do the toy models mean something? Measured on held-out scenes (seeds >= TRAIN_SEED_LIMIT).

CLIP (an `lrlib.clip.Clip`):
* zero-shot: on one-object scenes, is the caption "a <colour> <shape>" of the object the most
  similar of all 25 shape x colour captions? (chance 1/25)
* two objects: on two-object scenes, does the caption of a present object rank above the
  captions of all absent objects? (per object, and both objects at once per scene)
* binding: on two-object scenes with different colours and shapes ("a red circle and a blue
  square"), is the true caption more similar than the one with the colours swapped ("a blue
  circle and a red square")? (chance 0.5; a bag-of-words model stays at chance)

DINO (an `lrlib.anchors.Dino`, exactly what the anchors use):
* top-1 in box: does the patch of highest head-averaged [CLS] attention (last block,
  `Dino(x).attn_mean`) have its centre inside some object's box? Compared with the same
  architecture at random init (seed 0) and with chance: the fraction of patch centres that fall
  inside a box.
* collapse: entropy of the teacher's prototype distribution (head saved beside the backbone),
  per image and of the mean over images, against log K.

    python -m lrlib.toy eval                 # both shipped models, 200 scenes each
    python -m lrlib.toy eval --n 100 --which dino
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lrlib.toy.scenes import (BENCHMARK_SEED0, COLOURS, SHAPES, TRAIN_SEED_LIMIT, render_batch,
                              render_scene)

WEIGHTS = Path(__file__).parent / "weights"
CLIP_DIR, DINO_DIR = WEIGHTS / "clip", WEIGHTS / "dino"
NAMES = [f"{c} {s}" for s in SHAPES for c in COLOURS]  # 25 object names
EVAL_SEED0 = BENCHMARK_SEED0  # held-out scenes: seeds EVAL_SEED0 + offset + i
assert EVAL_SEED0 >= TRAIN_SEED_LIMIT


def _seeds(n: int, offset: int) -> list:
    return [EVAL_SEED0 + offset + i for i in range(n)]


@torch.no_grad()
def _image_embeddings(clip, x: torch.Tensor, chunk: int = 100) -> torch.Tensor:
    return torch.cat([clip.encode_image(x[i:i + chunk]) for i in range(0, len(x), chunk)])


@torch.no_grad()
def clip_metrics(clip, n: int = 200) -> dict:
    """Zero-shot, two-object ranking and binding accuracies of a `Clip` on n scenes each."""
    txt = clip.encode_text([f"a {name}" for name in NAMES])          # (25, E)
    # one object
    x, scenes = render_batch(_seeds(n, 0), n_objects=1)
    pick = (_image_embeddings(clip, x) @ txt.T).argmax(1).tolist()
    true = [NAMES.index(s.objects[0].name) for s in scenes]
    shape_ok = [NAMES[p].split()[1] == NAMES[t].split()[1] for p, t in zip(pick, true)]
    colour_ok = [NAMES[p].split()[0] == NAMES[t].split()[0] for p, t in zip(pick, true)]
    # two objects
    x, scenes = render_batch(_seeds(n, 100_000), n_objects=2)
    sims = _image_embeddings(clip, x) @ txt.T
    per_object, per_scene = [], []
    for s, row in zip(scenes, sims):
        present = {NAMES.index(o.name) for o in s.objects}
        worst_absent = max(row[k] for k in range(len(NAMES)) if k not in present)
        ok = [bool(row[k] > worst_absent) for k in present]
        per_object += ok
        per_scene.append(all(ok))
    # binding: true caption vs colours swapped, on scenes whose objects differ in both
    rng = np.random.default_rng(0)
    pairs = []
    while len(pairs) < n:
        (s1, c1), (s2, c2) = [(SHAPES[rng.integers(len(SHAPES))],
                               list(COLOURS)[rng.integers(len(COLOURS))]) for _ in range(2)]
        if s1 != s2 and c1 != c2:
            pairs.append(((s1, c1), (s2, c2)))
    imgs = torch.stack([torch.from_numpy(render_scene(seed, objects=list(p)).image).permute(2, 0, 1)
                        for seed, p in zip(_seeds(n, 200_000), pairs)])
    emb = _image_embeddings(clip, imgs)
    good = clip.encode_text([f"a {c1} {s1} and a {c2} {s2}" for (s1, c1), (s2, c2) in pairs])
    swap = clip.encode_text([f"a {c2} {s1} and a {c1} {s2}" for (s1, c1), (s2, c2) in pairs])
    binding = ((emb * good).sum(1) > (emb * swap).sum(1)).float().mean().item()
    return {"zero_shot": float(np.mean([p == t for p, t in zip(pick, true)])),
            "zero_shot_shape": float(np.mean(shape_ok)),
            "zero_shot_colour": float(np.mean(colour_ok)),
            "two_object_per_object": float(np.mean(per_object)),
            "two_object_per_scene": float(np.mean(per_scene)),
            "binding": binding, "n": n}


def _in_any_box(x: float, y: float, boxes) -> bool:
    return any(x0 <= x < x1 and y0 <= y < y1 for x0, y0, x1, y1 in boxes)


@torch.no_grad()
def dino_top1_in_box(dino, n: int = 200, offset: int = 300_000) -> dict:
    """Fraction of scenes whose top-1 attention patch centre lies in an object box, and chance."""
    x, scenes = render_batch(_seeds(n, offset))
    A = torch.cat([dino(x[i:i + 100]).attn_mean for i in range(0, n, 100)])  # (n, h, w)
    h, w = A.shape[1:]
    size = x.shape[-1]
    hits, chance = [], []
    for a, s in zip(A, scenes):
        boxes = [o.box for o in s.objects]
        r, c = divmod(int(a.flatten().argmax()), w)
        hits.append(_in_any_box((c + 0.5) * size / w, (r + 0.5) * size / h, boxes))
        chance.append(np.mean([_in_any_box((cc + 0.5) * size / w, (rr + 0.5) * size / h, boxes)
                               for rr in range(h) for cc in range(w)]))
    return {"top1_in_box": float(np.mean(hits)), "chance": float(np.mean(chance)), "n": n}


def random_dino(folder=DINO_DIR, seed: int = 0):
    """The shipped DINO's architecture with random weights (timm init, torch seed `seed`)."""
    import timm

    from lrlib.anchors import Dino

    args = json.loads((Path(folder) / "config.json").read_text())["model_args"]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vit = timm.create_model("vit_small_patch8_224", pretrained=False, **args)
    return Dino(vit)


@torch.no_grad()
def dino_teacher_entropy(dino, folder=DINO_DIR, n: int = 200, offset: int = 300_000) -> dict:
    """Entropies (nats) of the teacher's softmax((g(x) - c) / tau_t) over n held-out images."""
    from lrlib.toy.train.dino import TrainConfig, entropies, load_head

    cfg = TrainConfig(**json.loads((Path(folder) / "training.json").read_text())["config"])
    head, center = load_head(folder, cfg)
    x, _ = render_batch(_seeds(n, offset))
    vit = dino.vit
    z = vit((x - dino.mean) / dino.std)  # [CLS] features (num_classes=0)
    p = F.softmax((head(z) - center) / cfg.teacher_temp, dim=-1)
    row, mean = entropies(p)
    used = len(set(p.argmax(1).tolist()))
    return {"entropy_per_image": row, "entropy_of_mean": mean,
            "log_prototypes": math.log(cfg.prototypes), "prototypes_used": used, "n": n}


def dino_metrics(dino, folder=DINO_DIR, n: int = 200) -> dict:
    trained = dino_top1_in_box(dino, n)
    rand = dino_top1_in_box(random_dino(folder, 0), n)
    return {"top1_in_box": trained["top1_in_box"], "random_init": rand["top1_in_box"],
            "chance": trained["chance"], **dino_teacher_entropy(dino, folder, n)}


def print_clip(m: dict, folder) -> None:
    print(f"toy CLIP ({folder}), held-out scenes, n = {m['n']} per row")
    rows = [("single object: right caption of 25 (zero-shot)", m["zero_shot"],
             ">= 0.95, chance 0.04"),
            ("  ... right shape", m["zero_shot_shape"], "chance 0.20"),
            ("  ... right colour", m["zero_shot_colour"], "chance 0.20"),
            ("two objects: present caption > all absent (per object)",
             m["two_object_per_object"], ""),
            ("two objects: both present > all absent (per scene)", m["two_object_per_scene"], ""),
            ("binding: true caption > colours swapped", m["binding"], "chance 0.50")]
    for name, v, note in rows:
        print(f"  {name:<58} {v:6.3f}   {note}")


def print_dino(m: dict, folder) -> None:
    print(f"toy DINO ({folder}), held-out scenes, n = {m['n']}")
    rows = [("top-1 [CLS] attention patch in an object box", f"{m['top1_in_box']:6.3f}", ">= 0.85"),
            ("  same architecture, random init (seed 0)", f"{m['random_init']:6.3f}",
             f"gap {m['top1_in_box'] - m['random_init']:+.3f} (>= 0.35)"),
            ("  chance (patch centres inside a box)", f"{m['chance']:6.3f}", ""),
            ("teacher entropy per image (nats)", f"{m['entropy_per_image']:6.3f}",
             f"log K = {m['log_prototypes']:.3f}"),
            ("teacher entropy of the mean (nats)", f"{m['entropy_of_mean']:6.3f}",
             "near log K: no collapse"),
            ("prototypes used (argmax over images)", f"{m['prototypes_used']:6d}", "")]
    for name, v, note in rows:
        print(f"  {name:<58} {v}   {note}")


def main(argv=None) -> int:
    from lrlib.models import load_clip, load_dino

    p = argparse.ArgumentParser(prog="lrlib.toy eval")
    p.add_argument("--n", type=int, default=200, help="scenes per metric")
    p.add_argument("--which", nargs="+", default=["clip", "dino"], choices=["clip", "dino"])
    p.add_argument("--clip", default=str(CLIP_DIR), help="CLIP folder")
    p.add_argument("--dino", default=str(DINO_DIR), help="DINO folder")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    if "clip" in a.which:
        print_clip(clip_metrics(load_clip(a.clip, None), a.n), a.clip)
    if "dino" in a.which:
        print_dino(dino_metrics(load_dino(a.dino), a.dino, a.n), a.dino)
    return 0
