r"""What the four toy trainers share: options, the run, schedules, checkpoints, the saved folder.

A trainer (`clip`, `dino`, `sd`, `maskgit`) is a module with a `TrainConfig` dataclass (every
field an option; its `TINY` dict a few-second configuration), `DEFAULT_OUT` (its shipped
weights folder) and `train(cfg, out_dir, progress) -> folder`. Around that this module gives:

* **options**: `--<field> value` for every field, `--out`, `--quiet`, `--tiny` (`main`);
* **the run**: torch threads, the seed, deterministic kernels, a log file in the work folder;
* **learning rate**: linear warm-up, then a cosine from the base rate $\eta$ to $\eta_{\min}$,
  $$\eta_s = \eta\,\tfrac{s+1}{W}\ (s < W), \qquad
    \eta_s = \eta_{\min} + (\eta - \eta_{\min})\,\tfrac12(1 + \cos \pi t),\ t = \tfrac{s - W}{S - W};$$
* **EMA** of the weights, what the editors' trainers save:
  $\theta_{EMA} \leftarrow \theta_{EMA} + (1 - d_s)(\theta - \theta_{EMA})$,
  $d_s = \min(d, \tfrac{1 + s}{10 + s})$ (short runs are not stuck near the initial weights);
* **checkpoints** written atomically, so an interrupted run resumes;
* **the weights folder**, written aside and swapped in with one rename (fp16 safetensors, the
  run's `training.json`, and the model card `README.md` / `samples.png` of the folder it replaces).

The editors' two trainers also share their data: training seeds below `TRAIN_SEED_LIMIT`, the box
around an object (grown, sometimes squared, as the region generator proposes squares) or a random
empty box (object removal), and the CLIP text encoder they train (`text_encoder`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from lrlib.errors import LRError
from lrlib.toy.scenes import TRAIN_SEED_LIMIT

CARD_FILES = ("README.md", "samples.png")   # kept from the folder a new run replaces


# ----------------------------------------------------------------------------- options

def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def parse_args(module, argv=None, prog: str | None = None) -> tuple:
    """`--out DIR`, `--quiet`, `--tiny` and `--<field> value` for every field of the trainer's
    TrainConfig; returns (cfg, out, quiet)."""
    cls = module.TrainConfig
    p = argparse.ArgumentParser(prog=prog or f"python -m lrlib.toy train {module.NAME}",
                                description=module.__doc__.strip().splitlines()[0].lstrip("# "))
    p.add_argument("--out", default=str(module.DEFAULT_OUT),
                   help="output folder (default: the shipped weights folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--tiny", action="store_true", help="a few-second smoke-test configuration")
    for f in dataclasses.fields(cls):
        typ = {bool: _bool}.get(type(f.default), type(f.default))
        p.add_argument(f"--{f.name}", type=typ, help=f"default {f.default}")
    a = vars(p.parse_args(argv))
    out, quiet, tiny = a.pop("out"), a.pop("quiet"), a.pop("tiny")
    kw = {k: v for k, v in a.items() if v is not None}
    return cls(**({**cls.TINY, **kw} if tiny else kw)), out, quiet


def main(module, argv=None, prog: str | None = None) -> str:
    """Parse the options, train, print and return the output folder."""
    cfg, out, quiet = parse_args(module, argv, prog)
    path = module.train(cfg, out, progress=not quiet)
    print(path)
    return path


# ----------------------------------------------------------------------------- the run

def begin(cfg, deterministic: bool = False) -> None:
    """`cfg.threads` torch threads, `torch.manual_seed(cfg.seed)`, deterministic kernels if asked.
    """
    torch.set_num_threads(cfg.threads)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.seed)


@contextmanager
def work_folder(cfg):
    """`cfg.work_dir` (created) and a `log(msg)` appending to its log.txt; logs the config first."""
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "log.txt", "a") as f:
        def log(msg: str) -> None:
            f.write(msg + "\n")
            f.flush()
        log(f"config {json.dumps(dataclasses.asdict(cfg))}")
        yield work, log


def cpu_seconds() -> float:
    return time.process_time()


# ----------------------------------------------------------------------------- schedules

def lr_at(step: int, total: int, warmup: int, base: float, final: float = 0.0) -> float:
    """Linear warm-up over `warmup` steps, then a cosine from `base` to `final` at `total`."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return final + (base - final) * 0.5 * (1 + math.cos(math.pi * t))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> float:
    for g in opt.param_groups:
        g["lr"] = lr
    return lr


def optimise(opt: torch.optim.Optimizer, loss: torch.Tensor, params=None,
             max_norm: float | None = None) -> None:
    """One optimiser step on `loss`; the gradient norm of `params` clipped to `max_norm` if given.
    """
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
    opt.step()


@torch.no_grad()
def ema_update(step: int, decay: float, *pairs) -> None:
    """For each (ema, model) pair: $\\theta_{EMA} \\leftarrow \\theta_{EMA} + (1 - d_s)(\\theta -
    \\theta_{EMA})$, $d_s = \\min(d, (1 + s) / (10 + s))$."""
    d = min(decay, (1 + step) / (10 + step))
    for ema, model in pairs:
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pm, 1 - d)


# ----------------------------------------------------------------------------- checkpoints

def resume(path: Path, modules: dict, opt, log) -> tuple[int, float]:
    """Load `modules` ({key: module}) and `opt` from `path` if it exists: (step, cpu seconds)."""
    if not path.exists():
        return 0, 0.0
    st = torch.load(path, weights_only=False)
    for key, mod in modules.items():
        mod.load_state_dict(st[key])
    opt.load_state_dict(st["opt"])
    log(f"{path.stem}: resumed at step {st['step']}")
    return st["step"], st["cpu_s"]


def checkpoint(path: Path, modules: dict, opt, step: int, cpu_s: float) -> None:
    """Save the modules' and optimizer's states atomically (written aside, then renamed)."""
    state = {key: mod.state_dict() for key, mod in modules.items()}
    torch.save({**state, "opt": opt.state_dict(), "step": step, "cpu_s": cpu_s}, str(path) + ".tmp")
    os.replace(str(path) + ".tmp", path)


# ----------------------------------------------------------------------------- the saved folder

def fp16_state(module: torch.nn.Module, prefix: str = "") -> dict:
    """The module's state as contiguous fp16 tensors (for safetensors), keys prefixed."""
    return {prefix + k: v.detach().half().contiguous() for k, v in module.state_dict().items()}


def save_folder(out_dir, write, info: dict) -> str:
    """Write a weights folder atomically: `write(tmp)` fills a folder beside `out_dir`, with
    `info` as training.json and the old folder's model card; then it replaces `out_dir`.

    An existing `out_dir` is replaced only if it is empty or a trainer's output (has
    training.json): nothing else is deleted.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or
                         (any(out.iterdir()) and not (out / "training.json").is_file())):
        raise LRError(f"{out} exists and is not a trained model folder (no training.json); "
                      "pass --out a new or empty folder.")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    with open(tmp / "training.json", "w") as f:
        json.dump(info, f, indent=2)
    for name in CARD_FILES:
        if (out / name).exists():
            shutil.copy(out / name, tmp / name)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return str(out)


def write_small_tokenizer(folder: Path) -> None:
    """The CLIP tokenizer as vocab.json + merges.txt only (1.5 MB): transformers' own save writes a
    3.6 MB tokenizer.json instead; CLIPTokenizer loads either, and gives the same ids."""
    from lrlib.worlds.tokenizers import build_clip_tokenizer

    shutil.rmtree(folder, ignore_errors=True)
    build_clip_tokenizer(str(folder))
    (folder / "tokenizer.json").unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the editors' data

@dataclass
class EditorTrainConfig:
    """The fields both editors' trainers have (each trainer's TrainConfig adds its own)."""
    work_dir: str = "outputs/toy_train"   # checkpoints and log (resumed from if present)
    seed: int = 0
    threads: int = 1                      # torch threads (the machine is shared)
    size: int = 64                        # scene side in pixels
    resolution: int = 32                  # > 0: a square crop around each box, resized to this,
                                          # is what the models see (MaskGIT: 0 = the whole scene)
    crop_margin: float = 1.5              # what the editor uses (written to lrlib_editor.json)
    margin_lo: float = 1.25               # crop side / box side ~ U(margin_lo, margin_hi)
    margin_hi: float = 1.9
    # data
    p_empty: float = 0.15                 # random box, background-only target, empty caption
    p_drop: float = 0.10                  # caption dropped (classifier-free guidance)
    p_long: float = 0.25                  # long paragraph prompt instead of "a red circle"
    p_square: float = 0.35                # box made square
    grow: float = 0.15                    # each box side pushed out by up to this share of its side
    # stage 2: the text encoder (trained jointly) and the optimiser
    text_width: int = 32
    text_layers: int = 2
    steps: int = 4000
    batch: int = 32
    lr: float = 6e-4
    warmup: int = 200
    ema: float = 0.999
    ckpt_every: int = 200


def sample_seed(seed: int, stream: int, index: int) -> int:
    """Seed of training example `index` of a stream (the trainer numbers its streams): below
    TRAIN_SEED_LIMIT, so no benchmark scene is ever seen."""
    return ((seed * 2 + stream) * 1_000_003 + index) % TRAIN_SEED_LIMIT


def grow_box(rng, box, cfg, size: int) -> tuple:
    """An object's box, each side pushed out by up to `cfg.grow` of its side; with probability
    `cfg.p_square` a square of the longer side, same centre; clipped to the image."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    g = rng.uniform(0, cfg.grow, 4)
    x0, x1 = x0 - round(g[0] * w), x1 + round(g[1] * w)
    y0, y1 = y0 - round(g[2] * h), y1 + round(g[3] * h)
    if rng.random() < cfg.p_square:
        s = max(x1 - x0, y1 - y0)
        x0, y0 = round((x0 + x1 - s) / 2), round((y0 + y1 - s) / 2)
        x1, y1 = x0 + s, y0 + s
    return max(0, x0), max(0, y0), min(size, x1), min(size, y1)


def empty_box(rng, target, background, size: int) -> tuple:
    """A random square box (15-65% of the side), its inside of `target` set to `background`
    (object removal); returns the box."""
    side = int(rng.integers(max(6, round(0.15 * size)), round(0.65 * size) + 1))
    x0, y0 = (int(v) for v in rng.integers(0, size - side + 1, 2))
    target[y0:y0 + side, x0:x0 + side] = background[y0:y0 + side, x0:x0 + side]
    return x0, y0, x0 + side, y0 + side


def text_encoder(width: int, layers: int, projection: bool = False):
    """A CLIP text transformer on the real CLIP BPE vocabulary (77 tokens, 2 heads); with a
    projection (`CLIPTextModelWithProjection`, aMUSEd's) or without (SD's `CLIPTextModel`)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    extra = dict(projection_dim=width) if projection else {}
    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    return cls(CLIPTextConfig(
        vocab_size=49408, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
        num_attention_heads=2, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
        pad_token_id=49407, **extra))
