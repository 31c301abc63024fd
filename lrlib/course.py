"""Checkers for the exercises of the notebooks (notebooks/00-09; solutions in notebooks/solutions).

Every checker takes the student's answer (a number, an array or a function) and returns True
after printing "correct", or False after printing a hint. An answer left at its placeholder
(`None` or `...`) prints "not answered yet" and returns None, so a notebook whose exercises are
still open runs to the end.

Each checker computes the right answer its own way (numpy, torchvision, a closed form or a
finite difference), not by calling the lrlib function the exercise is about, so an answer that
merely repeats a bug in lrlib is not called correct.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np


def _open(answer, *probe) -> bool:
    """True (after saying so) when the exercise is still open: the answer is a placeholder, or
    a function whose body is still `...` (it returns None when called with `probe`)."""
    if answer is None or answer is Ellipsis or (callable(answer) and answer(*probe) is None):
        print("not answered yet")
        return True
    return False


def _ok() -> bool:
    print("correct")
    return True


def _hint(text: str) -> bool:
    print("not yet:", text)
    return False


def _array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


# ----------------------------------------------------------------------------- 00 overview
def check_changed_pixels(answer, before, after):
    """How many pixels of the image the edit changed (a pixel counts once, whatever its
    channels). before, after: the input and the result, PIL images or (H, W, 3) arrays."""
    if _open(answer):
        return None
    a, b = np.asarray(before).astype(np.int64), np.asarray(after).astype(np.int64)
    changed = int((a != b).any(axis=-1).sum())
    if int(answer) == changed:
        return _ok()
    if int(answer) == int((a != b).sum()):
        return _hint("that counts channels; a pixel whose R, G and B all changed counts once.")
    return _hint(f"compare the two images as integer arrays; the answer lies between 0 and "
                 f"{a.shape[0] * a.shape[1]}.")


def check_winner(answer, scores, top: int = 3):
    """The winning candidate: the best S among the `top` highest S_t2i. scores: a dict with
    "S" and "S_t2i" lists (EditResult.scores)."""
    if _open(answer):
        return None
    s, t2i = list(map(float, scores["S"])), list(map(float, scores["S_t2i"]))
    kept = sorted(range(len(t2i)), key=lambda k: (-t2i[k], k))[:top]
    best = max(kept, key=lambda k: (s[k], -kept.index(k)))
    if int(answer) == best:
        return _ok()
    if int(answer) == int(np.argmax(s)):
        return _hint(f"that is the highest S overall; the rule first keeps the {top} candidates "
                     "with the highest S_t2i and takes the best S among those.")
    return _hint(f"sort the candidates by S_t2i, keep the first {top}, then take the best S.")


# ----------------------------------------------------------------------------- 01 anchors
def check_patch_px(answer, canvas: int = 512, dino_size: int = 448, patch: int = 16):
    """How many image pixels one DINO patch covers when the canvas is resized to dino_size."""
    if _open(answer):
        return None
    right = canvas / (dino_size / patch)
    if abs(float(answer) - right) < 0.1:
        return _ok()
    if abs(float(answer) - patch) < 0.1:
        return _hint(f"{patch} px is a patch of DINO's input, which is the canvas resized to "
                     f"{dino_size} px; how many patches span it, and how wide is each on the "
                     f"{canvas} px canvas?")
    if abs(float(answer) - 2 * patch) < 0.1:
        return _hint("32 px would hold for a 256 px DINO input; the default is dino_size=448.")
    return _hint("count the patches along a side of DINO's input, then divide the canvas by it.")


def spaced_top_k(A, K: int, spacing: int) -> list[tuple[int, int]]:
    """Greedy top-K cells of A, each at Chebyshev distance >= spacing from those taken before:
    the highest cell, then the window of radius spacing - 1 around it ruled out, and again."""
    a = _array(A).copy()
    r = max(spacing, 1) - 1
    out = []
    for _ in range(K):
        i = int(np.argmax(a))                     # first index among ties, as a stable sort
        if not np.isfinite(a.flat[i]):
            break
        y, x = divmod(i, a.shape[1])
        out.append((y, x))
        a[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = -np.inf
        a[y, x] = -np.inf
    return out


def check_top_k(fn: Callable):
    """fn(A, K, spacing) -> K (row, col) cells of the (h, w) map A: the greedy top-K with a
    minimum Chebyshev distance `spacing`, in decreasing order of A."""
    if _open(fn, np.arange(16.0).reshape(4, 4), 1, 1):
        return None
    rng = np.random.default_rng(0)
    for trial in range(30):
        h, w = rng.integers(4, 12, 2)
        A = rng.random((h, w))
        if trial % 3 == 0:                        # a broad peak: neighbours rank high
            yy, xx = np.mgrid[:h, :w]
            A = np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / 8) + 0.01 * A
        spacing = int(rng.integers(1, 4))
        K = int(rng.integers(1, 4))
        want = spaced_top_k(A, K, spacing)
        if len(want) < K:
            continue
        got = [tuple(int(v) for v in c) for c in np.asarray(_array(fn(A, K, spacing)), int)]
        if got != want:
            if sorted(got) == sorted(want):
                return _hint("right cells, wrong order: list them from the highest A down.")
            return _hint(f"on a {h}x{w} map with K={K}, spacing={spacing} you gave {got}, the "
                         f"greedy rule gives {want}. Rows come first; two cells are far enough "
                         "apart when max(|dr|, |dc|) >= spacing.")
    return _ok()


# ----------------------------------------------------------------------------- 02 proposals
def check_best_iou(answer, proposals, gt_boxes):
    """answer: for each anchor, the highest IoU of any of its proposals with any ground-truth
    box. proposals: (K, M, 4) boxes x0, y0, x1, y1 (x1, y1 exclusive); gt_boxes: (G, 4)."""
    if _open(answer):
        return None
    import torch
    from torchvision.ops import box_iou
    P = torch.as_tensor(_array(proposals)).reshape(-1, 4)
    G = torch.as_tensor(_array(gt_boxes)).reshape(-1, 4)
    K = _array(proposals).shape[0]
    right = box_iou(P, G).reshape(K, -1).max(1).values.numpy()
    got = _array(answer).reshape(-1)
    if got.shape == right.shape and np.allclose(got, right, atol=1e-3):
        return _ok()
    if got.shape != right.shape:
        return _hint(f"give one number per anchor ({K} numbers).")
    return _hint("IoU = intersection area / union area, with the intersection's width "
                 "max(0, min(x1) - max(x0)); take the maximum over the anchor's proposals and "
                 "over the objects.")


# ----------------------------------------------------------------------------- 03 Gumbel
def check_gumbel_frequencies(answer, logits, n: int):
    """answer: how often each index won among n Gumbel-max draws argmax(logits + g), as
    fractions. Correct when every fraction is within 4 standard errors of softmax(logits)."""
    if _open(answer):
        return None
    z = _array(logits)
    p = np.exp(z - z.max()); p /= p.sum()
    f = _array(answer).reshape(-1)
    if f.shape != p.shape:
        return _hint(f"give one fraction per logit ({p.size} numbers).")
    if abs(f.sum() - 1) > 1e-6:
        return _hint("the fractions should add up to 1: divide the counts by the number of draws.")
    se = np.sqrt(p * (1 - p) / n) + 1e-12
    if np.all(np.abs(f - p) <= 4 * se + 1e-9):
        return _ok()
    return _hint(f"the frequencies should approach softmax(logits) = {np.round(p, 3).tolist()}; "
                 "draw g = -log(-log(u)) with u uniform in (0, 1), one g per logit per draw.")


# ----------------------------------------------------------------------------- 04 losses
def check_dir_loss(answer, e_edit, e_src, t_prompt, t_caption):
    """L_dir = 1 - cos(E_I(edit) - E_I(source), E_T(prompt) - E_T(caption)) for one edit."""
    if _open(answer):
        return None
    dI = _array(e_edit).reshape(-1) - _array(e_src).reshape(-1)
    dT = _array(t_prompt).reshape(-1) - _array(t_caption).reshape(-1)
    right = 1 - float(dI @ dT) / max(np.linalg.norm(dI) * np.linalg.norm(dT), 1e-8)
    got = float(answer)
    if abs(got - right) < 1e-3:
        return _ok()
    raw = _array(e_edit).reshape(-1) @ _array(t_prompt).reshape(-1)
    if abs(got - (1 - raw)) < 1e-3:
        return _hint("that is L_clip's 1 - cos(image, prompt); L_dir compares the *changes*: "
                     "edit minus source against prompt minus caption.")
    return _hint("take the two differences first, then 1 - their cosine.")


def check_dir_loss_no_change(answer):
    """What L_dir is for an edit that leaves the image exactly as it was."""
    if _open(answer):
        return None
    if abs(float(answer) - 1.0) < 1e-6:
        return _ok()
    if abs(float(answer)) < 1e-6:
        return _hint("0 would mean the image moved exactly the way the text did; it did not move.")
    return _hint("the image's change is the zero vector; what cosine does lrlib give a zero "
                 "vector (look at L_dir's docstring or its eps)?")


# ----------------------------------------------------------------------------- 05 guidance
def check_guidance(fn: Callable):
    """fn(eps_uncond, eps_text, w) -> the classifier-free guided noise prediction."""
    if _open(fn, np.zeros(2), np.ones(2), 1.0):
        return None
    rng = np.random.default_rng(1)
    u, c = rng.standard_normal((2, 4, 8, 8))
    for w in (0.0, 1.0, 3.0, 7.5):
        right = u + w * (c - u)
        got = _array(fn(u.copy(), c.copy(), w))
        if got.shape != right.shape or not np.allclose(got, right, atol=1e-6):
            if np.allclose(got, c + w * (c - u), atol=1e-6):
                return _hint("start from the unconditional prediction, not the text one.")
            if np.allclose(got, c + w * (u - c), atol=1e-6):
                return _hint("the guidance direction is text minus unconditional.")
            return _hint(f"at w = {w:g} the answer differs; at w = 0 it must be eps_uncond and "
                         "at w = 1 eps_text.")
    return _ok()


def check_guidance_identity(answer):
    """The guidance scale w at which the guided prediction is the text-conditioned one alone."""
    if _open(answer):
        return None
    if abs(float(answer) - 1.0) < 1e-9:
        return _ok()
    if abs(float(answer)) < 1e-9:
        return _hint("w = 0 gives the unconditional prediction: the prompt is ignored.")
    return _hint("write eps_hat = eps_u + w (eps_t - eps_u) and ask when it equals eps_t.")


# ----------------------------------------------------------------------------- 06 MaskGIT
def check_reveals(answer, N: int = 256, T: int = 12):
    """(tokens revealed at the first step, tokens revealed at the last step) under the cosine
    schedule n_t = floor(N cos(pi t / (2 T))) hidden after step t, n_T = 0."""
    if _open(answer):
        return None
    hidden = [N] + [0 if t == T else math.floor(N * math.cos(math.pi * t / (2 * T)))
                    for t in range(1, T + 1)]
    right = (hidden[0] - hidden[1], hidden[T - 1] - hidden[T])
    got = tuple(int(v) for v in answer)
    if got == right:
        return _ok()
    if got == right[::-1]:
        return _hint("first step first: the cosine reveals few tokens early and many late.")
    return _hint(f"compute how many stay hidden after steps 1 and {T - 1} (n_t), then the "
                 "differences; the last step reveals all that are left.")


# ----------------------------------------------------------------------------- 07 ranking
def _pick_reference(S_t2i, S, top):
    kept = sorted(range(len(S_t2i)), key=lambda k: (-S_t2i[k], k))[:top]
    best = kept[0]
    for k in kept[1:]:
        if S[k] > S[best]:
            best = k
    return best


def check_pick_best(fn: Callable):
    """fn(S_t2i, S, top) -> the index with the best S among the `top` highest S_t2i (ties in
    S_t2i: lower index first; ties in S: the one ranked higher by S_t2i)."""
    if _open(fn, np.zeros(2), np.ones(2), 1):
        return None
    rng = np.random.default_rng(2)
    for trial in range(300):
        K = int(rng.integers(1, 9))
        t2i = rng.integers(0, 4, K).astype(float) if trial % 2 else rng.random(K)
        S = rng.integers(0, 3, K).astype(float) if trial % 3 == 0 else rng.random(K)
        top = int(rng.integers(1, 5))
        want = _pick_reference(list(t2i), list(S), top)
        got = int(fn(t2i.copy(), S.copy(), top))
        if got != want:
            if got == int(np.argmax(S)):
                return _hint("that is the best S overall; keep only the top highest S_t2i first.")
            return _hint(f"S_t2i = {t2i.tolist()}, S = {np.round(S, 3).tolist()}, top = {top}: "
                         f"you pick {got}, the rule picks {want} (look at how ties are broken).")
    return _ok()


# ----------------------------------------------------------------------------- 08 baselines
def random_square_iou(box, size: int, n: int = 200_000, lo: float = 0.15, hi: float = 0.75,
                      seed: int = 0) -> float:
    """Mean IoU with `box` of random squares: centre uniform over the size x size image, side
    uniform in [lo, hi] x size, clipped to the image (continuous coordinates)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, size, (n, 2))
    s = rng.uniform(lo, hi, n) * size
    x0, y0 = np.clip(c[:, 0] - s / 2, 0, size), np.clip(c[:, 1] - s / 2, 0, size)
    x1, y1 = np.clip(c[:, 0] + s / 2, 0, size), np.clip(c[:, 1] + s / 2, 0, size)
    bx0, by0, bx1, by1 = box
    iw = np.clip(np.minimum(x1, bx1) - np.maximum(x0, bx0), 0, None)
    ih = np.clip(np.minimum(y1, by1) - np.maximum(y0, by0), 0, None)
    inter = iw * ih
    union = (x1 - x0) * (y1 - y0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(np.mean(inter / union))


def check_random_box_iou(answer, box, size: int):
    """answer: the mean IoU with `box` of a random square (see random_square_iou), estimated by
    sampling; correct within 0.01."""
    if _open(answer):
        return None
    right = random_square_iou(box, size)
    if abs(float(answer) - right) < 0.01:
        return _ok()
    return _hint(f"clip each square to the image before measuring; the IoU is 0 for a square "
                 f"that misses the object; average over many squares (10,000 or more). Your "
                 f"{float(answer):.3f} is off by more than 0.01.")


# ----------------------------------------------------------------------------- 09 training
def check_expected_grad(fn: Callable):
    """fn(z, L) -> d/dz of sum_j softmax(z)_j L_j, for (M,) logits z and (M,) losses L, as a
    numpy array or tensor. Checked against central finite differences in float64."""
    if _open(fn, np.zeros(2), np.ones(2)):
        return None
    rng = np.random.default_rng(3)

    def f(z, L):
        p = np.exp(z - z.max())
        return float((p / p.sum()) @ L)

    for _ in range(20):
        M = int(rng.integers(2, 8))
        z, L = rng.standard_normal(M) * 2, rng.random(M)
        h = 1e-6
        fd = np.array([(f(z + h * e, L) - f(z - h * e, L)) / (2 * h) for e in np.eye(M)])
        got = _array(fn(z.copy(), L.copy())).reshape(-1)
        if got.shape != fd.shape or not np.allclose(got, fd, atol=1e-5):
            p = np.exp(z - z.max()); p /= p.sum()
            if got.shape == fd.shape and np.allclose(got, p * L, atol=1e-5):
                return _hint("p_j L_j forgets that raising one logit lowers every other p: "
                             "subtract the expected loss, p_j (L_j - sum_k p_k L_k).")
            return _hint("differentiate softmax: dp_k/dz_j = p_k (1[j = k] - p_j).")
    return _ok()


# ----------------------------------------------------------------------------- worlds and photos
REAL_RANDOM = "real-random"


def world_and_config(world: str | None = None, editor: str = "sd", **overrides):
    """(WORLD, cfg) for a notebook: WORLD is the branch the notebook takes ("real", "toy" or
    "random"), cfg the settings it runs (`config_for(WORLD, editor=editor, **overrides)`).

    `world` (else $LRLIB_WORLD, else auto) is chosen by `lrlib.worlds.choose_world`'s rule, with
    one more value for CI: "real-random" takes the *real* branch, the code a GPU user runs, with
    small random-weight models of the real classes at CPU sizes (`config_for("random")`) on the
    device a real run takes (`device="auto"`), so that branch's paths, shapes and sizes are
    executed without checkpoints."""
    import os

    from lrlib.worlds import choose_world, config_for
    if (world or os.environ.get("LRLIB_WORLD")) == REAL_RANDOM:     # the GPU when there is one
        return "real", config_for("random", editor=editor, **{"device": "auto", **overrides})
    world = choose_world(world, editor=editor)
    return world, config_for(world, editor=editor, **overrides)


PHOTOS_DIR = "data/photos"
# name -> (file, caption, prompt, box): box (x0, y0, x1, y1) as fractions of the centred square
# crop, around the captioned object
PHOTO_TASKS = {
    "coffee": ("coffee.png", "a cup of coffee", "a cup of green tea", (0.17, 0.03, 0.79, 0.78)),
    "chelsea": ("chelsea.png", "the cat", "a tiger", (0.0, 0.0, 1.0, 1.0)),
}


def photos_dir():
    """The folder of the shipped photos: data/photos of the repository lrlib runs from. An
    LRError naming the fix when it is absent (an install from a wheel has no data/)."""
    import pathlib

    import lrlib
    from lrlib.errors import LRError
    d = pathlib.Path(lrlib.__file__).resolve().parent.parent / PHOTOS_DIR
    if not d.is_dir():
        raise LRError(f"the shipped photos are not here ({d}): they live in the repository's "
                      f"{PHOTOS_DIR}/, not in an installed wheel. Run the notebook from a clone "
                      "of the repository (pip install -e .), or set the photo's path yourself.")
    return d


def square(image, size: int):
    """The centred square crop of a PIL image, resized to size x size (bicubic)."""
    from PIL import Image
    w, h = image.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return image.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC)


def photo_task(name: str = "coffee", size: int = 512):
    """A shipped photo as an editing task at the working size: (image, caption, prompt, box).
    image: the centred square crop resized to size x size (PIL RGB); box: integer (x0, y0, x1,
    y1) in its pixels, x1 / y1 exclusive, around the captioned object."""
    from lrlib.images import load_image
    if name not in PHOTO_TASKS:
        raise KeyError(f"photo {name!r}: one of {sorted(PHOTO_TASKS)}")
    file, caption, prompt, frac = PHOTO_TASKS[name]
    image = square(load_image(str(photos_dir() / file)), size)
    box = tuple(int(round(f * size)) for f in frac)
    return image, caption, prompt, box
