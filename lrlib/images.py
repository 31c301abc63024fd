"""Images in: any picture a user has, validated with clear errors before any model runs.

`load_image` accepts a path, a PIL image, a numpy array or a tensor and returns an RGB PIL image,
saying what it did with anything that is not plain 8-bit RGB:

| input                                   | what happens                                         |
|-----------------------------------------|------------------------------------------------------|
| RGB, 8-bit                              | used as is                                           |
| EXIF orientation (phone photos)         | turned upright as viewers show it; edited and saved so |
| several frames (animated GIF, TIFF)     | the current (first) frame; a warning says which      |
| grayscale (L, LA, 1, P)                 | converted to RGB (a warning says so)                 |
| RGBA / LA / P with alpha                | composited over white (a warning says so)            |
| 16-bit or 32-bit (I;16, I, F)           | rescaled to 8-bit from its own range, then RGB (warning) |
| CMYK, YCbCr, LAB, HSV                   | converted to RGB (warning)                           |
| array (H, W[, 1|3|4]), tensor ([1,] 1|3, H, W) | uint8 0..255, uint16, or float in [0, 1] |
| float outside [0, 1], NaN / inf, empty  | LRError (divide 0..255 values by 255 first)          |
| float PIL image (mode F) with NaN / inf | LRError                                              |
| a tensor on 'meta', sparse or complex   | LRError (no pixels to read)                          |
| a closed PIL image, a truncated or damaged file | LRError (before any model)                   |
| over PIL's decompression-bomb limit     | LRError naming the limit (2 x PIL.Image.MAX_IMAGE_PIXELS) |
| smaller than 32 px a side               | LRError: upscale it first                            |
| larger than 8192 px a side              | LRError: downscale it first (checked before decoding) |
| aspect ratio over 4:1                   | LRError: crop it first                               |
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from lrlib.errors import LRError

MIN_SIDE, MAX_SIDE, MAX_ASPECT = 32, 8192, 4.0


def load_image(src) -> Image.Image:
    """Read and validate an image; return 8-bit RGB PIL (see the table in the module doc)."""
    if isinstance(src, (str, Path)):
        img = _open(Path(src))
    elif isinstance(src, Image.Image):
        img = _readable(src)
    elif isinstance(src, np.ndarray):
        img = _from_array(src)
    elif isinstance(src, torch.Tensor):
        t = _cpu_tensor(src)
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise LRError(f"a tensor image must be (3, H, W) or (1, 3, H, W), got {tuple(src.shape)}.")
        img = _from_array((t.float() if t.is_floating_point() else t).permute(1, 2, 0).numpy())
    else:
        raise LRError(f"cannot read an image from {type(src).__name__}; pass a path, PIL image, "
                      "numpy array (H, W, 3) or tensor (3, H, W).")
    try:                                      # a damaged file can fail any of these steps
        frames = getattr(img, "n_frames", 1)
        if frames > 1:
            warnings.warn(f"the image has {frames} frames (animated or multi-page); only frame "
                          f"{img.tell()} is edited. For another one: img.seek(i), then pass img.",
                          stacklevel=3)
        img = _to_rgb8(_upright(img))
    except LRError:
        raise
    except Exception as e:
        what = f"'{src}'" if isinstance(src, (str, Path)) else "the image"
        raise LRError(f"could not read {what} as an image ({type(e).__name__}: "
                      f"{str(e).splitlines()[0][:200] if str(e) else ''}); the file may be "
                      "damaged: save it again as PNG or JPEG.") from None
    _check_size(*img.size)
    return img


def _readable(img: Image.Image) -> Image.Image:
    """A PIL image whose pixels can be read: a lazily opened one is decoded now, so that a closed
    image, or a file truncated or gone since it was opened, is an LRError before any model."""
    try:
        img.load()
    except Exception as e:            # closed: ValueError; truncated: OSError; others from plugins
        if "closed" in str(e):
            raise LRError("the PIL image cannot be read: it was closed (img.close(), or a `with "
                          "Image.open(...)` block that ended). Pass the file's path, or pass the "
                          "image before closing it.") from None
        raise LRError(f"the PIL image cannot be read: its data could not be decoded "
                      f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
                      "its file may be truncated or damaged: save it again as PNG or "
                      "JPEG.") from None
    return img


def _cpu_tensor(src: torch.Tensor) -> torch.Tensor:
    """The tensor's values on the CPU, or an LRError for a tensor that holds none to read (the
    meta device, a sparse or complex tensor) or that its device cannot give back."""
    if src.device.type == "meta":
        raise LRError("the image tensor is on the 'meta' device: it has a shape but no pixels "
                      "(made under torch.device('meta') or by a lazy loader); pass a tensor "
                      "holding the image's values.")
    if src.layout != torch.strided:
        raise LRError(f"the image tensor is {src.layout} (sparse); pass a dense one "
                      "(t.to_dense()).")
    if src.is_complex():
        raise LRError(f"the image tensor is complex ({src.dtype}); pass real values "
                      "(uint8 0..255 or float in [0, 1]).")
    try:
        return src.detach().cpu()
    except Exception as e:           # a device that fails (CUDA error, a lost device)
        raise LRError(f"the image tensor could not be copied from {src.device} to the CPU "
                      f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
                      "pass it as a CPU tensor or a numpy array.") from None


def _upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; an unreadable EXIF block (broken or
    hostile metadata) is ignored with a warning, as viewers ignore it."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception as e:
        warnings.warn(f"the image's EXIF metadata could not be read ({type(e).__name__}); its "
                      "orientation tag, if any, was not applied.", stacklevel=4)
        return img


def _open(p: Path) -> Image.Image:
    if p.is_dir():
        raise LRError(f"'{p}' is a folder, not an image file; name the image file in it.")
    if not p.is_file():
        raise LRError(f"image file '{p}' does not exist; check the path.")
    try:
        img = Image.open(p)
    except Image.DecompressionBombError as e:
        raise LRError(f"'{p}' is too large to decode safely ({e}). PIL refuses images over "
                      f"2 x PIL.Image.MAX_IMAGE_PIXELS = {2 * Image.MAX_IMAGE_PIXELS:,} pixels and "
                      f"lrlib takes at most {MAX_SIDE} px a side: downscale it first.") from None
    except Exception as e:  # PIL raises many kinds
        raise LRError(f"could not read '{p}' as an image ({e}); use a PNG or JPEG file.") from e
    _check_size(*img.size)                  # before decoding: a huge image costs nothing to refuse
    try:
        img.load()
    except Exception as e:
        raise LRError(f"could not decode '{p}' ({e}); the file may be truncated: save it again "
                      "as PNG or JPEG.") from e
    return img


def _check_size(w: int, h: int) -> None:
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


def _from_array(a: np.ndarray) -> Image.Image:
    if a.size == 0:
        raise LRError(f"the image array is empty (shape {a.shape}); pass an image with pixels.")
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))):
        raise LRError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got {a.shape}.")
    if np.issubdtype(a.dtype, np.floating):
        bad = int(a.size - np.isfinite(a).sum())
        if bad:
            raise LRError(f"the image has {bad} NaN or infinite values; fix them first "
                          "(e.g. np.nan_to_num(a)).")
        if a.min() < 0 or a.max() > 1:
            raise LRError(f"a float image must be in [0, 1], got {a.min():.4g}..{a.max():.4g}; "
                          "if it holds 0..255 values, divide by 255 first.")
        a = a.astype(np.float32) if a.itemsize < 4 else a    # float16: widen; float32 stays float32
        a = (a * 255 + 0.5).astype(np.uint8)                  # as to_pil does: a tensor and its
                                                              # to_pil() image read the same pixels
    elif a.dtype == np.uint16:
        warnings.warn("a 16-bit image array was rescaled to 8-bit.", stacklevel=4)
        a = (a / 257.0 + 0.5).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise LRError(f"image arrays must be uint8, uint16 or float in [0, 1], got {a.dtype}.")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    return Image.fromarray(np.ascontiguousarray(a))


def _to_rgb8(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        bad = int(a.size - np.isfinite(a).sum())
        if bad:                                 # a float (mode F) image: NaN or inf pixels
            raise LRError(f"the image (PIL mode {mode}) has {bad} NaN or infinite values; fix "
                          "them first (e.g. Image.fromarray(np.nan_to_num(np.asarray(img)))).")
        lo, hi = (0.0, 65535.0) if mode.startswith("I;16") else (float(a.min()), float(a.max()))
        a = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)
        warnings.warn(f"image mode {mode} ({'16-bit' if mode.startswith('I;16') else 'high bit depth'}) "
                      "was rescaled to 8-bit grayscale RGB.", stacklevel=4)
        return Image.fromarray((a * 255 + 0.5).astype(np.uint8)).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        warnings.warn(f"image mode {mode} has transparency; it was composited over white.",
                      stacklevel=4)
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    warnings.warn(f"image mode {mode} was converted to RGB.", stacklevel=4)
    return img.convert("RGB")


def input_record(path) -> dict:
    """What identifies an input file in result.json: its name and the sha256 of its bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"file": Path(path).name, "sha256": h.hexdigest()}


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL -> float tensor (3, H, W) in [0, 1]."""
    a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


def to_pil(t: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) in [0, 1] -> RGB PIL."""
    a = (t.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(a)
