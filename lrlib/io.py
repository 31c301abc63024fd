"""Images in, files out: validation with clear errors, and atomic writes.

`load_image` accepts a path, a PIL image, a numpy array or a tensor and returns an RGB PIL image,
saying what it did with anything that is not plain 8-bit RGB:

| input                         | what happens                                              |
|-------------------------------|-----------------------------------------------------------|
| RGB, 8-bit                    | used as is                                                |
| grayscale (L, LA, 1, P)       | converted to RGB (a warning says so)                      |
| RGBA / LA / P with alpha      | composited over white (a warning says so)                 |
| 16-bit or 32-bit (I;16, I, F) | rescaled to 8-bit from its own range, then RGB (warning)  |
| CMYK, YCbCr, LAB, HSV         | converted to RGB (warning)                                |
| smaller than 32 px a side     | LRError: upscale it first                                 |
| larger than 8192 px a side    | LRError: downscale it first                               |
| aspect ratio over 4:1         | LRError: crop it first                                    |

`atomic_dir(path)` writes a whole folder or nothing: files go to a hidden sibling folder that is
renamed into place at the end, so an interrupted run never leaves a half-written result.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lrlib.errors import LRError

MIN_SIDE, MAX_SIDE, MAX_ASPECT = 32, 8192, 4.0


def load_image(src) -> Image.Image:
    """Read and validate an image; return 8-bit RGB PIL (see the table in the module doc)."""
    if isinstance(src, (str, Path)):
        p = Path(src)
        if not p.is_file():
            raise LRError(f"image file '{p}' does not exist; check the path.")
        try:
            img = Image.open(p)
            img.load()
        except Exception as e:  # PIL raises many kinds
            raise LRError(f"could not read '{p}' as an image ({e}); use a PNG or JPEG file.") from e
    elif isinstance(src, Image.Image):
        img = src
    elif isinstance(src, np.ndarray):
        img = _from_array(src)
    elif isinstance(src, torch.Tensor):
        t = src.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise LRError(f"a tensor image must be (3, H, W) or (1, 3, H, W) in [0, 1], got {tuple(src.shape)}.")
        img = to_pil(t.expand(3, -1, -1).float())
    else:
        raise LRError(f"cannot read an image from {type(src).__name__}; pass a path, PIL image, "
                      "numpy array (H, W, 3) or tensor (3, H, W).")
    img = _to_rgb8(img)
    w, h = img.size
    if min(w, h) < MIN_SIDE:
        raise LRError(f"the image is {w}x{h}; lrlib needs at least {MIN_SIDE} px a side. "
                      "Upscale it first (e.g. img.resize((256, 256))).")
    if max(w, h) > MAX_SIDE:
        raise LRError(f"the image is {w}x{h}; lrlib accepts at most {MAX_SIDE} px a side. "
                      "Downscale it first (img.thumbnail((2048, 2048))).")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise LRError(f"the image is {w}x{h} (aspect {max(w, h) / min(w, h):.1f}:1); lrlib pads it "
                      f"onto a square canvas, which beyond {MAX_ASPECT:.0f}:1 is mostly padding. "
                      "Crop it first.")
    return img


def _from_array(a: np.ndarray) -> Image.Image:
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4)):
        if a.dtype in (np.float32, np.float64):
            if a.min() < 0 or a.max() > 1:
                raise LRError("a float image array must be in [0, 1]; divide by 255 first.")
            a = (a * 255 + 0.5).astype(np.uint8)
        elif a.dtype == np.uint16:
            warnings.warn("a 16-bit image array was rescaled to 8-bit.", stacklevel=3)
            a = (a / 257.0 + 0.5).astype(np.uint8)
        elif a.dtype != np.uint8:
            raise LRError(f"image arrays must be uint8, uint16 or float in [0, 1], got {a.dtype}.")
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        return Image.fromarray(a)
    raise LRError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got {a.shape}.")


def _to_rgb8(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if mode.startswith("I;16") else (float(a.min()), float(a.max()))
        a = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)
        warnings.warn(f"image mode {mode} ({'16-bit' if mode.startswith('I;16') else 'high bit depth'}) "
                      "was rescaled to 8-bit grayscale RGB.", stacklevel=3)
        return Image.fromarray((a * 255 + 0.5).astype(np.uint8)).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        warnings.warn(f"image mode {mode} has transparency; it was composited over white.",
                      stacklevel=3)
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    warnings.warn(f"image mode {mode} was converted to RGB.", stacklevel=3)
    return img.convert("RGB")


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL -> float tensor (3, H, W) in [0, 1]."""
    a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


def to_pil(t: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) in [0, 1] -> RGB PIL."""
    a = (t.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(a)


@contextlib.contextmanager
def atomic_dir(path, overwrite: bool = True):
    """Yield a temporary folder; on success it replaces `path` in one rename, on error it is removed.

    The temporary folder is a hidden sibling (`.name.partial-XXXX`) on the same file system, so the
    final `os.replace` is atomic: `path` either holds a complete result or is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise LRError(f"'{path}' already exists; pass overwrite=True or choose another folder.")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path, text: str) -> None:
    """Write a text file so that readers see the old content or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
