"""A toy world of coloured shapes on soft backgrounds, where every answer is known.

No pretrained CLIP / DINO / Stable Diffusion weights can be downloaded here, so lrlib trains small
stand-ins on a synthetic world instead. This module draws that world; `lrlib.toy.judge` grades
edits made in it without any model.

A scene is a background plus 1-3 objects:

* background: a smooth gradient between two low-saturation colours, times a faint low-frequency
  luminance texture (three random sinusoids), plus mild per-pixel grain. Everything, the grain
  included, comes from a `Background` record (the grain from its own seed), so the background can
  be rendered again exactly: the ideal edit restores it inside the box before painting.
* objects: a shape from `SHAPES` in a colour from `COLOURS`. The colours are saturated and their
  hues are at least 50 degrees apart, so hue alone names them, while backgrounds stay grey-ish.
  A shape is drawn into a box with 4x4 supersampled anti-aliasing. Its `mask` is the set of pixels
  covered at least half; its `box` (x0, y0, x1, y1; x1, y1 exclusive) is the tight box of that mask,
  so the mask touches all four box edges, and nothing of the object is painted outside the box.
* layout: boxes never overlap; they keep a 2-pixel gap from each other and from the image border,
  so a ring around each box shows only background (the judge uses it). Object sides are 14-28 px
  at 64 px and scale with the image size (the shorter side of a non-square image).
* size: an int for a square image, or (width, height): a non-square scene keeps every object's
  proportions (a square is square); the background's gradient and texture span the whole
  image. A square (n, n) and n draw the same scene for the same seed.

On top of the pictures: captions of four kinds ('single', 'multi', 'relation', 'long'; the long
ones run past CLIP's 77 tokens), and edit tasks with ground truth ("turn *the red circle left of
the blue square* into *a yellow star*": target box, target shape and colour, ideal result).

Seeds: training code uses seeds below `TRAIN_SEED_LIMIT` (10_000_000); the held-out benchmark of
`benchmark_tasks` uses seeds `BENCHMARK_SEED0 + i` = 10_000_000 + i, so the two never meet.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np
import torch

from lrlib.errors import LRError
from lrlib.worlds import TOY_PALETTE

SHAPES = ("circle", "square", "triangle", "star", "cross")
COLOURS = TOY_PALETTE  # name -> RGB in [0, 1] (lrlib.worlds.TOY_PALETTE)
RELATIONS = ("left of", "right of", "above", "below")
CAPTION_KINDS = ("single", "multi", "relation", "long")
EDIT_KINDS = ("single", "multi", "relation", "long")
TRAIN_SEED_LIMIT = 10_000_000  # training uses seeds < this
BENCHMARK_SEED0 = 10_000_000  # benchmark task i uses seed BENCHMARK_SEED0 + i

GAP = 2  # free pixels between boxes, and between a box and the image border
SUPERSAMPLE = 4


def side_range(size: int) -> tuple[int, int]:
    """Smallest and largest object side in pixels: 14..28 at 64 px, scaled with the image.

    Below 14 px a star loses its points to anti-aliasing and looks like a cross, even to us.
    """
    return max(4, round(14 * size / 64)), max(5, round(28 * size / 64))


def _wh(size) -> tuple[int, int]:
    """An image size, int n (square) or (width, height), as (W, H)."""
    W, H = (size, size) if np.isscalar(size) else size
    if int(W) != W or int(H) != H or W < 1 or H < 1:
        raise LRError(f"size={size!r}: use an int (square) or (width, height), positive integers.")
    return int(W), int(H)


def aspect_size(size: int, aspect: float = 1.0):
    """(W, H) with the longer side `size` and W / H = aspect (rounded); `size` itself when 1."""
    if aspect == 1:
        return size
    if not aspect > 0:
        raise LRError(f"aspect={aspect!r}: use width / height > 0 (2.0: landscape 2:1).")
    short = max(1, round(size / max(aspect, 1 / aspect)))
    return (size, short) if aspect > 1 else (short, size)


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


# ----------------------------------------------------------------------------- backgrounds

@dataclass
class Background:
    """Everything needed to draw a background again, pixel for pixel."""
    c0: tuple  # RGB at the start of the gradient
    c1: tuple  # RGB at its end
    angle: float  # gradient direction (radians, image axes: x right, y down)
    waves: tuple  # ((fx, fy, phase, amplitude), ...) in cycles per image
    grain: float  # std of the per-pixel noise
    noise_seed: int


def random_background(rng) -> Background:
    """Two soft colours (saturation <= 0.18, value 0.35-0.85), a direction, faint texture, grain."""
    rng = _rng(rng)

    def soft():
        return colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.18), rng.uniform(0.35, 0.85))

    waves = tuple((float(rng.uniform(-2.5, 2.5)), float(rng.uniform(-2.5, 2.5)),
                   float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.01, 0.03)))
                  for _ in range(3))
    return Background(soft(), soft(), float(rng.uniform(0, 2 * np.pi)), waves,
                      float(rng.uniform(0.005, 0.015)), int(rng.integers(2**31)))


def render_background(bg: Background, size) -> np.ndarray:
    """(H, W, 3) float32 image of the background; size: n (square) or (W, H)."""
    W, H = _wh(size)
    x = ((np.arange(W, dtype=np.float32) + 0.5) / W)[None, :]
    y = ((np.arange(H, dtype=np.float32) + 0.5) / H)[:, None]
    d = np.cos(bg.angle) * (x - 0.5) + np.sin(bg.angle) * (y - 0.5)  # in [-0.71, 0.71]
    g = np.clip(d / 1.42 + 0.5, 0, 1)[..., None]
    img = (1 - g) * np.asarray(bg.c0, np.float32) + g * np.asarray(bg.c1, np.float32)
    tex = sum(a * np.sin(2 * np.pi * (fx * x + fy * y) + ph) for fx, fy, ph, a in bg.waves)
    img = img * (1 + tex)[..., None]
    noise = np.random.default_rng(bg.noise_seed).standard_normal((H, W, 3), np.float32)
    return np.clip(img + bg.grain * noise, 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------- shapes

def _star_polygon(points: int = 5, inner: float = 0.42) -> np.ndarray:
    """Star with its top point up, scaled to fill the unit box."""
    k = np.arange(2 * points)
    ang = -np.pi / 2 + np.pi * k / points
    rad = np.where(k % 2 == 0, 1.0, inner)
    p = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
    return (p - p.min(0)) / (p.max(0) - p.min(0))


_STAR = _star_polygon()
CROSS_ARM = 0.36  # arm thickness of the cross, as a fraction of the box


def _in_polygon(u: np.ndarray, v: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule: a point is inside if a ray to the right crosses the outline an odd number of times."""
    inside = np.zeros(np.broadcast(u, v).shape, bool)
    for (xa, ya), (xb, yb) in zip(poly, np.roll(poly, -1, 0)):
        if ya == yb:
            continue
        crosses = (ya > v) != (yb > v)
        x_at = xa + (v - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (u < x_at)
    return inside


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Is the point (u, v) of the unit box (v down) inside the shape?"""
    if shape == "circle":
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    if shape == "square":
        return np.ones(np.broadcast(u, v).shape, bool)
    if shape == "triangle":  # apex at the top centre, base along the bottom
        return np.abs(u - 0.5) <= v / 2
    if shape == "cross":
        return (np.abs(u - 0.5) <= CROSS_ARM / 2) | (np.abs(v - 0.5) <= CROSS_ARM / 2)
    if shape == "star":
        return _in_polygon(u, v, _STAR)
    raise LRError(f"unknown shape '{shape}': use one of {', '.join(SHAPES)}.")


def shape_coverage(shape: str, w: int, h: int, ss: int = SUPERSAMPLE) -> np.ndarray:
    """(h, w) fraction of each pixel covered by the shape stretched over a w x h box."""
    u = (np.arange(w * ss, dtype=np.float32) + 0.5) / (w * ss)
    v = (np.arange(h * ss, dtype=np.float32) + 0.5) / (h * ss)
    hit = _inside(shape, u[None, :], v[:, None])
    return hit.reshape(h, ss, w, ss).mean((1, 3), dtype=np.float32)


def _object_alpha(shape: str, box, size):
    """Coverage (H, W) float32, mask (H, W) bool and the tight box of the mask, for a shape drawn in
    `box` of an image of `size` (n or (W, H)).

    The mask is coverage >= 0.5; coverage outside the mask's tight box (thin anti-aliased slivers
    under half a pixel) is dropped, so the object lives entirely inside its box.
    """
    W, H = _wh(size)
    x0, y0, x1, y1 = (int(c) for c in box)
    if not (0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H):
        raise LRError(f"box {tuple(box)} is not inside a {W}x{H} image: "
                      "use (x0, y0, x1, y1) with 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height.")
    cov = shape_coverage(shape, x1 - x0, y1 - y0)
    m = cov >= 0.5
    if not m.any():
        raise LRError(f"box {tuple(box)} is too small to draw a {shape}: make it at least 3 px a side.")
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    ty0, ty1, tx0, tx1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    alpha = np.zeros((H, W), np.float32)
    alpha[y0 + ty0:y0 + ty1, x0 + tx0:x0 + tx1] = cov[ty0:ty1, tx0:tx1]
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = m
    return alpha, mask, (x0 + int(tx0), y0 + int(ty0), x0 + int(tx1), y0 + int(ty1))


def _object_rgb(colour, rng=None) -> tuple:
    """The palette colour (or an RGB triple); with an rng, a slightly different shade of it."""
    rgb = COLOURS[colour] if isinstance(colour, str) else tuple(float(c) for c in colour)
    if rng is None:
        return tuple(float(c) for c in rgb)
    h, s, v = colorsys.rgb_to_hsv(*rgb)
    h = (h + rng.uniform(-0.015, 0.015)) % 1.0  # +-5 degrees of hue
    return colorsys.hsv_to_rgb(h, s * rng.uniform(0.9, 1.0), v * rng.uniform(0.85, 1.0))


def _check_colour(colour):
    if isinstance(colour, str) and colour not in COLOURS:
        raise LRError(f"unknown colour '{colour}': use one of {', '.join(COLOURS)}.")


@dataclass
class Obj:
    """One object: its name, its exact box (x1, y1 exclusive) and mask, and how it was painted."""
    shape: str
    colour: str
    box: tuple  # (x0, y0, x1, y1), tight around the mask
    mask: np.ndarray = field(repr=False)  # (H, W) bool, pixels covered at least half
    rgb: tuple = field(default=None, repr=False)  # the shade actually painted
    alpha: np.ndarray = field(default=None, repr=False)  # (H, W) float32 coverage, 0 outside box

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def centre(self) -> tuple:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


def make_object(shape: str, colour: str, box, size, rng=None) -> Obj:
    """An `Obj` drawn in `box` of an image of `size`, n or (W, H) (rng: jitter the shade, else the
    palette colour)."""
    _check_colour(colour)
    alpha, mask, tight = _object_alpha(shape, box, size)
    return Obj(shape, colour, tight, mask, _object_rgb(colour, rng), alpha)


def _composite(image: np.ndarray, obj: Obj) -> np.ndarray:
    a = obj.alpha[..., None]
    return (image * (1 - a) + np.asarray(obj.rgb, np.float32) * a).astype(np.float32)


def paint_object(image: np.ndarray, shape: str, colour, box, rng=None):
    """Paint `shape` in `colour` (a name or an RGB triple) filling `box`; returns (new image, mask).

    The input image is not changed. With an rng the shade is jittered a little, as in scenes.
    """
    image = np.asarray(image, np.float32)
    _check_colour(colour)
    alpha, mask, _ = _object_alpha(shape, box, (image.shape[1], image.shape[0]))
    a = alpha[..., None]
    rgb = np.asarray(_object_rgb(colour, _rng(rng) if rng is not None else None), np.float32)
    return (image * (1 - a) + rgb * a).astype(np.float32), mask


# ----------------------------------------------------------------------------- scenes

@dataclass
class Scene:
    """An image (H, W, 3) float32 in [0, 1], its objects, and the background it was drawn on."""
    image: np.ndarray = field(repr=False)
    objects: list
    background: Background = field(repr=False)

    @property
    def width(self) -> int:
        return self.image.shape[1]

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def size(self):
        """What `render_scene` was given: n for a square scene, else (width, height)."""
        return self.width if self.width == self.height else (self.width, self.height)

    def pil(self):
        """The image as an 8-bit RGB PIL image: `scene.pil().save("scene.png")`."""
        from lrlib.images import to_pil
        return to_pil(torch.from_numpy(self.image).permute(2, 0, 1))

    def save(self, path) -> str:
        """Write the image to `path` (PNG, or any format PIL knows from the suffix)."""
        self.pil().save(path)
        return str(path)


def _apart(a, b, gap: int = GAP) -> bool:
    return (a[2] + gap <= b[0] or b[2] + gap <= a[0] or
            a[3] + gap <= b[1] or b[3] + gap <= a[1])


def _place(rng, size, taken: list, tries: int = 50):
    """A random box of legal size, GAP px away from the border and from the boxes in `taken`."""
    W, H = _wh(size)
    lo, hi = side_range(min(W, H))
    for _ in range(tries):
        w = int(rng.integers(lo, hi + 1))
        h = int(np.clip(round(w * np.exp(rng.uniform(-0.2, 0.2))), lo, hi))
        x0 = int(rng.integers(GAP, W - GAP - w + 1))
        y0 = int(rng.integers(GAP, H - GAP - h + 1))
        box = (x0, y0, x0 + w, y0 + h)
        if all(_apart(box, t) for t in taken):
            return box
    return None


def _layout(rng, size, n: int, fixed: list, restarts: int = 20) -> list:
    """n random boxes clear of each other and of `fixed`; whole layouts are redrawn when one gets
    stuck. Returns the largest layout found (fewer than n boxes only if none fitted)."""
    best = []
    for _ in range(restarts):
        boxes = []
        while len(boxes) < n and (b := _place(rng, size, fixed + boxes)) is not None:
            boxes.append(b)
        if len(boxes) == n:
            return boxes
        best = max(best, boxes, key=len)
    return best


def render_scene(rng=None, size=64, n_objects=(1, 3), objects=None,
                 background: Background | None = None) -> Scene:
    """Draw a scene from a seed or a numpy Generator; size: n (square) or (width, height).

    n_objects: an int or an inclusive (lo, hi) range (fewer are drawn if they do not fit).
    objects: instead of random ones, a list whose items are `Obj` (kept as they are, e.g. to
      redraw the same objects on another background) or tuples (shape, colour[, box]) where any
      entry may be None to draw it at random. Random boxes keep clear of all others; explicit
      boxes are used as given (keeping them apart is then up to the caller).
    background: a `Background` to reuse; by default a new random one.
    """
    rng = _rng(rng)
    bg = background if background is not None else random_background(rng)
    if objects is None:
        lo, hi = (n_objects, n_objects) if isinstance(n_objects, int) else n_objects
        specs, required = [(None, None, None)] * int(rng.integers(lo, hi + 1)), False
    else:
        specs, required = [o if isinstance(o, Obj) else (tuple(o) + (None,) * 3)[:3]
                           for o in objects], True
    W, H = _wh(size)
    for o in specs:
        if isinstance(o, Obj) and o.mask.shape != (H, W):
            h, w = o.mask.shape
            raise LRError(f"an Obj drawn for a {w}x{h} image cannot go into a {W}x{H} scene: "
                          f"pass size={w if w == h else (w, h)}.")
    fixed = [o.box if isinstance(o, Obj) else o[2] for o in specs
             if isinstance(o, Obj) or o[2] is not None]
    n_free = len(specs) - len(fixed)
    free = _layout(rng, size, n_free, fixed)
    if required and len(free) < n_free:
        raise LRError(f"could not fit {len(specs)} objects in a {W}x{H} image: "
                      "ask for fewer objects or a larger size.")
    placed = []
    for spec in specs:
        if isinstance(spec, Obj):
            placed.append(spec)
            continue
        shape, colour, box = spec
        if box is None:
            if not free:
                continue
            box = free.pop(0)
        shape = shape if shape is not None else SHAPES[rng.integers(len(SHAPES))]
        colour = colour if colour is not None else list(COLOURS)[rng.integers(len(COLOURS))]
        placed.append(make_object(shape, colour, box, size, rng))
    image = render_background(bg, size)
    for obj in placed:
        image = _composite(image, obj)
    return Scene(image, placed, bg)


def rerender(scene: Scene, rng=None) -> Scene:
    """The same objects (boxes, masks, shades) on a new, independent background: a second view."""
    return render_scene(rng, scene.size, objects=list(scene.objects))


def render_batch(seeds, size=64, **kwargs):
    """Scenes for many seeds: ((N, 3, H, W) float32 tensor, list of Scene). kwargs go to render_scene."""
    scenes = [render_scene(int(s), size, **kwargs) for s in seeds]
    x = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).contiguous()
    return x, scenes


# ----------------------------------------------------------------------------- captions

def relation(a: Obj, b: Obj) -> str:
    """The main relation of a to b, from box centres: the axis with the larger offset wins."""
    (ax, ay), (bx, by) = a.centre, b.centre
    if abs(ax - bx) >= abs(ay - by):
        return "left of" if ax < bx else "right of"
    return "above" if ay < by else "below"


def relation_holds(rel: str, a: Obj, b: Obj) -> bool:
    """Is `a rel b` true of the box centres (image y grows downwards)?"""
    (ax, ay), (bx, by) = a.centre, b.centre
    return {"left of": ax < bx, "right of": ax > bx, "above": ay < by, "below": ay > by}[rel]


def caption_object(obj: Obj, article: str = "a") -> str:
    """'a red circle'."""
    return f"{article} {obj.colour} {obj.shape}"


def _descriptions(obj: Obj) -> list:
    """Ways to name an object, most to least specific: 'red circle', 'circle', 'red object', 'object'."""
    return [obj.name, obj.shape, f"{obj.colour} object", "object"]


def matches(desc: str, obj: Obj) -> bool:
    """Does a description from `_descriptions` fit the object?"""
    return desc in _descriptions(obj)


def _join(items: list) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _relation_phrase(scene: Scene, i: int, j: int, rng, subject=None):
    """'the <desc i> <rel> the <desc j>' that singles out object i, or None if impossible.

    The anchor j gets a description fitting no other object; the subject one that, together with
    the relation, fits only i. `subject` forces the subject's description.
    """
    objs = scene.objects
    a, b = objs[i], objs[j]
    rel = relation(a, b)
    anchors = [d for d in _descriptions(b) if sum(matches(d, o) for o in objs) == 1]
    subjects = [d for d in ([subject] if subject else _descriptions(a))
                if sum(matches(d, o) and relation_holds(rel, o, b) for k, o in enumerate(objs)
                       if k != j) == 1]
    if not anchors or not subjects:
        return None
    return (f"the {subjects[rng.integers(len(subjects))]} {rel} "
            f"the {anchors[rng.integers(len(anchors))]}")


def _position_word(cx: float, cy: float, size) -> str:
    """'top left', 'top middle', ..., 'centre', by thirds of the image (size: n or (W, H))."""
    W, H = _wh(size)
    col = ("left", "middle", "right")[min(2, int(3 * cx / W))]
    row = ("top", "middle", "bottom")[min(2, int(3 * cy / H))]
    return "centre" if row == col == "middle" else f"{row} {col}"


def _size_word(obj: Obj, size) -> str:
    side = max(obj.box[2] - obj.box[0], obj.box[3] - obj.box[1]) / min(_wh(size))
    return "small" if side < 0.28 else "medium-sized" if side < 0.36 else "large"


def _soft_colour_name(rgb) -> str:
    """Words for a background colour, avoiding the object colour names."""
    h, s, v = colorsys.rgb_to_hsv(*rgb)
    tone = "pale" if v > 0.7 else "dark" if v < 0.5 else "soft"
    if s < 0.07:
        return f"{tone} grey"
    deg = h * 360
    for limit, word in ((20, "rosy grey"), (45, "beige"), (75, "sand"), (165, "sage"),
                        (200, "teal grey"), (260, "slate"), (330, "mauve"), (361, "rosy grey")):
        if deg < limit:
            return f"{tone} {word}"


_SHAPE_DETAIL = {"circle": "that is perfectly round", "square": "with four straight sides",
                 "triangle": "pointing upwards", "star": "with five sharp points",
                 "cross": "shaped like a plus sign"}


def _background_sentence(scene: Scene) -> str:
    bg = scene.background
    dx, dy = np.cos(bg.angle), np.sin(bg.angle)
    W, H, n = scene.width, scene.height, scene.size
    start = _position_word((0.5 - 0.4 * dx) * W, (0.5 - 0.4 * dy) * H, n)
    end = _position_word((0.5 + 0.4 * dx) * W, (0.5 + 0.4 * dy) * H, n)
    return (f"The background is a smooth gradient from {_soft_colour_name(bg.c0)} at the {start} "
            f"to {_soft_colour_name(bg.c1)} at the {end}, with a faint mottled texture and a "
            f"little grain, and it has no pattern, horizon or other things in it.")


def _long_caption(scene: Scene) -> str:
    objs, n = scene.objects, scene.size
    count = ("one", "two", "three", "four", "five")[len(objs) - 1] if len(objs) <= 5 else str(len(objs))
    parts = [f"A small synthetic picture, {scene.width} by {scene.height} pixels, showing {count} "
             f"simple flat {'shape' if len(objs) == 1 else 'shapes'} on a plain background.",
             _background_sentence(scene)]
    for o in objs:
        parts.append(f"In the {_position_word(*o.centre, n)} there is a {_size_word(o, n)} "
                     f"{o.colour} {o.shape} {_SHAPE_DETAIL[o.shape]}, drawn as a solid "
                     f"{o.colour} shape with crisp edges.")
    for i in range(len(objs) - 1):
        parts.append(f"The {objs[i].name} is {relation(objs[i], objs[i + 1])} "
                     f"the {objs[i + 1].name}.")
    parts.append("Nothing overlaps, the light is even and flat, and there are no shadows, "
                 "words or borders anywhere in the image.")
    return " ".join(parts)


def caption_scene(scene: Scene, rng=None, kind: str | None = None) -> str:
    """A caption of one kind (random kind if None):

    'single'   one object: 'a red circle';
    'multi'    every object: 'a red circle, a blue square and a green star';
    'relation' one object singled out by its relation to another, from box centres:
               'the red circle left of the blue square', 'the object above the triangle'
               (falls back to 'multi' when no relation can single anything out);
    'long'     a paragraph of 70+ words (more than 77 CLIP tokens): background, each object with
               its position and size, and relations.
    """
    rng = _rng(rng)
    kind = kind if kind is not None else CAPTION_KINDS[rng.integers(len(CAPTION_KINDS))]
    objs = scene.objects
    if not objs:
        return "an empty background"
    if kind == "single":
        return caption_object(objs[rng.integers(len(objs))])
    if kind == "multi":
        order = rng.permutation(len(objs))
        return _join([caption_object(objs[k]) for k in order])
    if kind == "relation":
        pairs = [(i, j) for i in range(len(objs)) for j in range(len(objs)) if i != j]
        for k in rng.permutation(len(pairs)):
            phrase = _relation_phrase(scene, *pairs[k], rng)
            if phrase:
                return phrase
        return caption_scene(scene, rng, "multi")
    if kind == "long":
        return _long_caption(scene)
    raise LRError(f"unknown caption kind '{kind}': use one of {', '.join(CAPTION_KINDS)}.")


# ----------------------------------------------------------------------------- edit tasks

@dataclass
class EditTask:
    """Edit `scene` so that the object named by `source_caption` becomes `prompt`.

    Ground truth: the object is `scene.objects[target_index]`, its box is `target_box`, and the
    result should be a `target_colour` `target_shape` filling that box on restored background.
    """
    scene: Scene
    source_caption: str
    prompt: str
    target_index: int
    target_box: tuple
    target_shape: str
    target_colour: str
    kind: str
    seed: int


def _distinct_names(rng, n: int) -> list:
    names = [(s, c) for s in SHAPES for c in COLOURS]
    return [names[k] for k in rng.choice(len(names), n, replace=False)]


def _new_look(rng, obj: Obj) -> tuple:
    """A (shape, colour) differing from the object's in shape, colour or both."""
    change = ("colour", "shape", "both")[rng.integers(3)]
    shape, colour = obj.shape, obj.colour
    if change in ("shape", "both"):
        shape = [s for s in SHAPES if s != obj.shape][rng.integers(len(SHAPES) - 1)]
    if change in ("colour", "both"):
        colour = [c for c in COLOURS if c != obj.colour][rng.integers(len(COLOURS) - 1)]
    return shape, colour


def _long_prompt(scene: Scene, box, shape: str, colour: str) -> str:
    n = scene.size
    pos = _position_word((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, n)
    return (f"A {colour} {shape} {_SHAPE_DETAIL[shape]}, drawn as one flat solid {colour} shape "
            f"with crisp clean edges and no outline, sitting in the {pos} of the picture on the "
            f"same {_soft_colour_name(scene.background.c0)} background as before. The {shape} "
            f"should be evenly {colour} all over, with no shading, gradient, texture or highlight "
            f"on it, and it should fill the marked region from edge to edge without spilling "
            f"outside it. Everything around it stays exactly as it was: the soft background, its "
            f"faint grain and any other shapes keep their colours and places, and nothing else "
            f"in the image changes at all.")


def make_edit_task(seed: int, size=64, kind: str = "single") -> EditTask:
    """An edit task with ground truth, fully determined by (seed, size, kind); size: n (square)
    or (width, height).

    'single'   one object; source 'the red circle', prompt 'a blue square'.
    'multi'    2-3 objects with different names; the source names one of them.
    'relation' three objects, two of them with the same name: only a relation to the third
               ('the red circle left of the blue square') says which one to edit.
    'long'     like 'multi', but the prompt is a paragraph of more than 77 CLIP tokens.
    The new look differs from the old in shape, colour or both.
    """
    if kind not in EDIT_KINDS:
        raise LRError(f"unknown edit kind '{kind}': use one of {', '.join(EDIT_KINDS)}.")
    rng = np.random.default_rng(seed)
    if kind == "single":
        scene = render_scene(rng, size, n_objects=1)
        t, source = 0, f"the {scene.objects[0].name}"
    elif kind in ("multi", "long"):
        scene = render_scene(rng, size, objects=_distinct_names(rng, int(rng.integers(2, 4))))
        t = int(rng.integers(len(scene.objects)))
        source = f"the {scene.objects[t].name}"
    else:
        (twin, anchor) = _distinct_names(rng, 2)
        for _ in range(1000):  # lay out until one twin is singled out by its relation to the anchor
            scene = render_scene(rng, size, objects=[twin, twin, anchor])
            options = [(i, p) for i in (0, 1)
                       if (p := _relation_phrase(scene, i, 2, rng, subject=scene.objects[i].name))]
            if options:
                t, source = options[rng.integers(len(options))]
                break
        else:
            raise LRError(f"no relational layout found at size {size}: use sides >= 64.")
    obj = scene.objects[t]
    shape, colour = _new_look(rng, obj)
    prompt = (_long_prompt(scene, obj.box, shape, colour) if kind == "long"
              else f"a {colour} {shape}")
    return EditTask(scene, source, prompt, t, obj.box, shape, colour, kind, int(seed))


def ground_truth_edit(task: EditTask) -> np.ndarray:
    """The ideal result: background restored inside the target box, then the new object painted there."""
    scene = task.scene
    x0, y0, x1, y1 = task.target_box
    image = scene.image.copy()
    image[y0:y1, x0:x1] = render_background(scene.background, scene.size)[y0:y1, x0:x1]
    image, _ = paint_object(image, task.target_shape, task.target_colour, task.target_box)
    return image


def benchmark_tasks(n: int = 200, size: int = 64, aspect: float = 1.0) -> list:
    """The fixed held-out benchmark: task i = make_edit_task(10_000_000 + i), kinds in turn.

    aspect: width / height of the scenes, the longer side `size` (1: square, the benchmark the
    README reports). Training must use seeds below TRAIN_SEED_LIMIT so it never sees these scenes.
    """
    size = aspect_size(size, aspect)
    return [make_edit_task(BENCHMARK_SEED0 + i, size, EDIT_KINDS[i % len(EDIT_KINDS)])
            for i in range(n)]
