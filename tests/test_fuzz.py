"""Fuzzing the contract for bad input, with a seeded generator (the same cases on every run).

The contract, for every input: the API returns a complete result or raises an LRError with a
one-line message; the command line exits 0 with a complete result, 1 (a batch whose failed jobs
each say why) or 2 with one 'error:' line, never a traceback; nothing is left behind (no
`.NAME.partial-*` folder, no claim) and nothing of the user's is touched.

Inputs: random bytes and mutated real files (PNG, JPEG, GIF, BMP, TIFF) as image files; random
JSON (any shape, any encoding, repeated keys, raw bytes) as jobs files; random configs (values in
and out of range, wrong types, NaN, inf, unknown names); random valid configs run as real edits on
the random-weight models; a handful of each through the command line.

Time: about 40 s on 2 CPU cores (models built once per cache, ~15 s of it). LRLIB_FUZZ_SEED
picks another seed, LRLIB_FUZZ_SCALE (default 1) multiplies the number of cases.
"""
import hashlib
import io
import json
import math
import os
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import lrlib
from lrlib.cli import read_jobs
from lrlib.config import KNOBS, LRConfig
from lrlib.errors import LRError
from lrlib.images import load_image

SEED = int(os.environ.get("LRLIB_FUZZ_SEED", "20260722"))
SCALE = float(os.environ.get("LRLIB_FUZZ_SCALE", "1"))


def n(count: int) -> int:
    return max(1, int(count * SCALE))


def one_line(e: BaseException) -> str:
    msg = str(e)
    assert msg and "\n" not in msg.strip() and "Traceback" not in msg, repr(msg)
    return msg


# --- image files: random bytes, mutated real files ------------------------------------------

def _real_files(rng: random.Random) -> list[bytes]:
    a = (np.random.RandomState(rng.randrange(2 ** 31)).rand(48, 64, 3) * 255).astype(np.uint8)
    out = []
    for fmt, mode in (("PNG", "RGB"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"),
                      ("TIFF", "RGB"), ("PNG", "I;16"), ("TIFF", "F"), ("PNG", "LA")):
        img = Image.fromarray(a).convert(mode) if mode not in ("I;16", "F") else \
            Image.fromarray(a[..., 0].astype(np.uint16 if mode == "I;16" else np.float32) * 3)
        buf = io.BytesIO()
        img.save(buf, fmt)
        out.append(buf.getvalue())
    return out


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:                                        # flip a few bytes
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == 1:                                      # truncate
        b = b[:rng.randrange(1, len(b))]
    elif kind == 2:                                      # a chunk repeated or cut out
        i, j = sorted(rng.randrange(len(b)) for _ in range(2))
        b = b[:i] + b[i:j] * rng.randint(0, 3) + b[j:]
    elif kind == 3:                                      # header bytes: sizes, modes
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(min(len(b), 40))] = rng.randrange(256)
    else:                                                # random tail
        b = b[:rng.randrange(len(b))] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(b)


def test_random_image_files_load_or_are_refused_in_one_line(tmp_path):
    rng = random.Random(SEED)
    real = _real_files(rng)
    seen = {"ok": 0, "refused": 0}
    for i in range(n(400)):
        if i % 5 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 8, 100, 2000))))
        else:
            data = _mutate(rng, rng.choice(real))
        p = tmp_path / f"f{i}.img"
        p.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = load_image(p)
        except LRError as e:
            one_line(e)
            seen["refused"] += 1
            continue
        except Exception as e:                          # noqa: BLE001 - the contract's breach
            pytest.fail(f"case {i}: {type(e).__name__}: {e} (bytes {data[:32]!r}...)")
        assert img.mode == "RGB" and min(img.size) >= 32
        np.asarray(img)                                 # the pixels are really there
        seen["ok"] += 1
    assert seen["ok"] and seen["refused"]               # both kinds were met


# --- jobs files: random JSON, any encoding ---------------------------------------------------

def _random_json(rng: random.Random, depth: int = 0):
    kinds = ["int", "float", "str", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    k = rng.choice(kinds)
    if k == "int":
        return rng.choice((0, -1, 1, 2 ** 40, rng.randrange(-100, 100)))
    if k == "float":
        return rng.choice((0.5, -1e300, 1e-300, float("nan"), float("inf")))
    if k == "str":
        return rng.choice(("", " ", "a cat", "a.png", "é", "\x00", "\udce9", "../x.png",
                           "x" * 300, "a\nb", "💥"))
    if k == "bool":
        return rng.random() < 0.5
    if k == "null":
        return None
    if k == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {_random_json_key(rng): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _random_json_key(rng):
    return rng.choice(("a.png", "b.jpg", "", " ", "sub/c.png", "é.png", "\udce9.png", "x" * 300))


def _random_jobs_text(rng: random.Random) -> str:
    if rng.random() < 0.5:                               # the right shape, odd values
        jobs = {_random_json_key(rng): [_random_json(rng, 3), _random_json(rng, 3)]
                for _ in range(rng.randint(0, 4))}
    else:
        jobs = _random_json(rng)
    text = json.dumps(jobs, ensure_ascii=rng.random() < 0.5, allow_nan=True)
    if rng.random() < 0.2 and text.startswith("{") and len(text) > 2:   # a key given twice
        text = '{"a.png": ["x", "y"], "a.png": ["x", "z"], ' + text[1:]
    return text


def _encode(rng: random.Random, text: str) -> bytes:
    enc = rng.choice(("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                      "cp1252", "latin-1", "raw"))
    if enc == "raw":
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    return text.encode(enc, "surrogatepass" if enc.startswith("utf") else "replace")


def test_random_jobs_files_read_or_are_refused_in_one_line(tmp_path):
    rng = random.Random(SEED + 1)
    seen = {"ok": 0, "refused": 0}
    for i in range(n(400)):
        p = tmp_path / f"j{i}.json"
        p.write_bytes(_encode(rng, _random_jobs_text(rng)))
        try:
            jobs = read_jobs(p)
        except LRError as e:
            one_line(e)
            seen["refused"] += 1
            continue
        except Exception as e:                          # noqa: BLE001
            pytest.fail(f"case {i}: {type(e).__name__}: {e} (file {p.read_bytes()[:60]!r})")
        assert jobs and all(isinstance(k, str) and k.strip() for k in jobs)
        assert all(isinstance(v, tuple) and len(v) == 2 for v in jobs.values())
        for k in jobs:
            k.encode("utf-8")                           # every name is text that can be a path
        seen["ok"] += 1
    assert seen["ok"] and seen["refused"]


# --- configs: random values, in and out of range ---------------------------------------------

def _odd_value(rng: random.Random, k):
    """A value for knob k from everywhere: in range, at and past the bounds, other types."""
    pool = [None, True, False, 0, -1, 1, 2 ** 40, -2 ** 40, 0.5, -0.5, float("nan"), float("inf"),
            -float("inf"), "", "x", "1", [], {}, 1e-9, 1e9]
    if k.lo is not None:
        pool += [k.lo, k.lo - 1, k.lo + 0.001 if k.type is float else k.lo + 1]
    if k.hi is not None:
        pool += [k.hi, k.hi + 1, k.hi * 2, k.hi - 1 if k.type is int else k.hi * 0.999]
    pool += list(k.choices) + [k.default] * 3
    if k.multiple:
        pool += [k.lo + k.multiple // 2]
    return rng.choice(pool)


def test_random_configs_validate_or_say_which_knob(tmp_path):
    """Every config is valid (and its work within the bounds) or an LRError that names a knob
    given; an unknown name is refused with the closest one."""
    from lrlib.config import MAX_CLIP_FORWARDS, MAX_EDITOR_EVALS, MAX_ITERATIONS
    rng = random.Random(SEED + 2)
    names = list(KNOBS)
    seen = {"ok": 0, "refused": 0}
    for i in range(n(3000)):
        kw = {name: _odd_value(rng, KNOBS[name]) for name in rng.sample(names, rng.randint(1, 6))}
        if rng.random() < 0.05:
            kw[rng.choice(("step", "Kk", "lr_rate", "editr", "seeds"))] = 1
        try:
            cfg = LRConfig.cpu(**{"world": "random", **kw}).validate()
        except LRError as e:
            msg = one_line(e)
            assert any(name in msg for name in kw) or "K*M" in msg or "work" in msg \
                or "edit would run" in msg, (kw, msg)
            seen["refused"] += 1
            continue
        except Exception as e:                          # noqa: BLE001
            pytest.fail(f"case {i}: {kw}: {type(e).__name__}: {e}")
        w = cfg.work()
        assert w["editor_evals"] <= MAX_EDITOR_EVALS and w["clip_forwards"] <= MAX_CLIP_FORWARDS
        assert w["iterations"] <= MAX_ITERATIONS
        for name, k in KNOBS.items():
            v = getattr(cfg, name)
            if isinstance(v, float):
                assert math.isfinite(v), (name, v)
        seen["ok"] += 1
    assert seen["ok"] > 50 and seen["refused"] > 50


# --- the API: random valid configs run as real edits -----------------------------------------

#: a cap per knob so that a fuzzed edit takes a fraction of a second on the random models
CAPS = dict(K=3, M=4, epochs=2, iters_per_epoch=2, steps=3, maskgit_steps=3, draft_steps=2,
            n_aug=2, table_views=2, rgn_channels=8, rgn_hidden=16, editor_batch_size=8,
            anchor_pool=10, roi_size=8, blend_px=8, rank_top=4, anchor_spacing=4, seed=10 ** 6)
FIXED = ("world", "dino", "clip", "clip_pretrained", "sd_model", "maskgit_model", "device",
         "dtype", "lora", "progress", "size", "dino_size", "scheduler")


def _valid_value(rng: random.Random, k):
    if k.choices:
        return rng.choice(k.choices)
    if k.type is bool:
        return rng.random() < 0.5
    if k.name == "prompt_template":
        return rng.choice((None, "a photo of {}.", "{}", "{{literal}} {}"))
    if k.name == "default_caption":
        return rng.choice(("a photo", "the picture", "x"))
    if k.optional and rng.random() < 0.2:
        return None
    if k.type is int:
        return rng.randint(int(k.lo), int(min(k.hi, CAPS.get(k.name, k.hi))))
    hi = min(k.hi, 20.0) if k.name in ("guidance_scale", "maskgit_guidance") else k.hi
    return rng.uniform(k.lo + (1e-3 if k.lo_open else 0), hi)


def _random_image(rng: random.Random):
    w, h = rng.randint(32, 120), rng.randint(32, 120)
    if max(w, h) > 4 * min(w, h):
        w = h
    a = np.random.RandomState(rng.randrange(2 ** 31)).rand(h, w, 3)
    kind = rng.randrange(4)
    if kind == 0:
        return (a * 255).astype(np.uint8)
    if kind == 1:
        return torch.from_numpy(a).permute(2, 0, 1).float()
    if kind == 2:
        return Image.fromarray((a * 255).astype(np.uint8))
    return Image.fromarray((a * 255).astype(np.uint8)).convert("L")


@pytest.fixture(scope="module")
def random_models():
    """The random-weight models of both editors, run on one thread (a shared machine's cores
    are busy: one thread each is faster than two fighting)."""
    from lrlib.models import load_models
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    base = LRConfig.cpu(world="random", progress=False)
    yield {e: load_models(base.replace(editor=e)) for e in ("sd", "maskgit")}
    torch.set_num_threads(threads)


def test_random_valid_configs_edit_or_are_refused(tmp_path, random_models):
    rng = random.Random(SEED + 3)
    done = 0
    for i in range(n(16)):
        kw = {name: _valid_value(rng, k) for name, k in KNOBS.items()
              if name not in FIXED and rng.random() < 0.6}
        kw["size"] = rng.choice((32, 64, 96))
        for lo, hi in (("box_min", "box_max"), ("fit_min", "fit_max")):   # mostly in order
            if lo in kw and hi in kw and kw[lo] > kw[hi] and rng.random() < 0.8:
                kw[lo], kw[hi] = kw[hi], kw[lo]
            elif lo in kw and rng.random() < 0.8:
                kw[lo] = min(kw[lo], kw.get(hi, KNOBS[hi].default))
        editor = kw.get("editor", "sd")
        if editor == "maskgit":
            kw["draft_steps"] = 0
        src = _random_image(rng)
        prompt = rng.choice(("a blue square", "a cat " * 30, "é💥",
                             "a red circle left of a star"))
        caption = rng.choice((None, "the red circle", "x", "noise"))
        try:
            cfg = LRConfig.cpu(world="random", progress=False, **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = lrlib.edit(src, prompt, caption=caption, config=cfg,
                               models=random_models[editor])
        except LRError as e:
            one_line(e)
            continue
        except Exception as e:                          # noqa: BLE001
            pytest.fail(f"case {i}: LRConfig.cpu(world='random', **{kw}), prompt {prompt!r}, "
                        f"caption {caption!r}: {type(e).__name__}: {e}")
        size = src.shape[1::-1] if isinstance(src, np.ndarray) else (
            tuple(src.shape[:0:-1]) if isinstance(src, torch.Tensor) else src.size)
        assert r.image.size == tuple(size), (r.image.size, size)
        assert all(math.isfinite(s) for s in r.scores["S"])
        if i % 6 == 0:                                  # a few saved: complete, nothing aside
            out = r.save(tmp_path / f"r{i}", figure=False)
            names = sorted(p.name for p in out.iterdir())
            assert "final.png" in names and "result.json" in names
            assert json.loads((out / "result.json").read_text())["files"] == names
        done += 1
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert done >= n(16) // 3                           # most random valid configs do run


# --- the command line: a handful of each, in a process of its own -----------------------------

def _tree(folder):
    """{relative path: sha256} of every file under folder (what the user had)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_random_input_through_the_command_line(tmp_path):
    rng = random.Random(SEED + 4)
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    real = _real_files(rng)
    env = dict(os.environ, OMP_NUM_THREADS="1", LRLIB_WORLD="random")
    base = [sys.executable, "-m", "lrlib"]
    tiny = ["--cpu", "--K", "1", "--M", "2", "--epochs", "1", "--steps", "1", "--no-progress"]
    cases = []
    img = user / "bad.png"                               # random bytes as an image
    img.write_bytes(_mutate(rng, rng.choice(real))[:300])
    cases.append([*base, "edit", str(img), "--prompt", "a cat", "--out", str(user / "o1"), *tiny])
    jobs = user / "jobs.json"                            # random JSON as a jobs file
    jobs.write_bytes(_encode(rng, _random_jobs_text(rng)))
    cases.append([*base, "batch", str(jobs), "--out", str(user / "o2"), *tiny])
    for _ in range(3):                                   # random out-of-range settings
        name = rng.choice([k for k in KNOBS if k not in ("world", "steps")])
        value = rng.choice(("nan", "-1", "1e9", "abc", "", "inf"))
        cases.append([*base, "edit", str(img), "--prompt", "a cat", "--out", str(user / "o3"),
                      *tiny, KNOBS[name].flag, value])
    before = _tree(user)
    for cmd in cases:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode in (0, 1, 2), (cmd[3:], r.returncode, r.stderr[-2000:])
        assert "Traceback" not in r.stderr, (cmd[3:], r.stderr[-2000:])
        if r.returncode == 2:
            errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
            assert len(errors) == 1, (cmd[3:], r.stderr)
        leftovers = [p for p in user.rglob("*")
                     if ".partial-" in p.name or p.name.endswith(".claim")]
        assert not leftovers, (cmd[3:], leftovers)
    after = _tree(user)
    assert {k: v for k, v in after.items() if k in before} == before     # the user's files
