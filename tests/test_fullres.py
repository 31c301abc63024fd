"""The winner repainted on the photo itself (lrlib.additions.fullres): sharp where the photo is sharp,
the outside untouched, the window where the editor can see it."""
import numpy as np
import pytest
import torch
from PIL import Image

import lrlib
from lrlib.additions.fullres import crop_window, photo_scale, regenerate_full_res
from lrlib.canvas import letterbox


class Recorder:
    """A stand-in editor at resolution R: fills its mask with fill(image) and records its input."""

    kind = "sd"

    def __init__(self, R, fill=lambda x, m: x, wrap=None, whole=False):
        self.resolution, self.fill, self.calls, self.wrap, self.whole = R, fill, [], wrap, whole
        self.device = torch.device("cpu")

    def snap_mask(self, m):
        return self.wrap.snap_mask(m) if self.wrap else m

    def inpaint(self, images, masks, prompts, generator, **kw):
        self.calls.append((images.clone(), masks.clone()))
        if self.wrap is not None and images.shape[-1] != self.resolution:   # the canvas candidates
            return self.wrap.inpaint(images, masks, prompts, generator, **kw)
        if self.whole:
            return self.fill(images, masks)
        return masks * self.fill(images, masks) + (1 - masks) * images


def fine_photo(W, H, seed=0):
    """A photo with detail at every pixel (noise over a gradient): what upscaling blurs away."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    base = torch.stack([x, y, 1 - x])
    return (0.6 * base + 0.4 * torch.rand(3, H, W, generator=g)).clamp(0, 1)[None]   # (1, 3, H, W)


@pytest.mark.parametrize("box,size,R", [((100, 80, 180, 140), (4032, 3024), 512),
                                        ((0, 0, 50, 900), (1000, 1000), 512),
                                        ((3000, 10, 4000, 400), (4032, 600), 1024),
                                        ((10, 10, 20, 20), (300, 200), 512)])
def test_crop_window_holds_the_box_inside_the_photo(box, size, R):
    """The window contains the box, lies in the photo, is at least min(R, photo side) per axis
    (the editor gets context), and is square whenever the photo's short side allows it.
    Catches a window computed around a corner instead of the centre, or one cut by the photo."""
    W, H = size
    x0, y0, x1, y1 = crop_window(box, size, R, 1.5)
    assert 0 <= x0 <= box[0] and box[2] <= x1 <= W and 0 <= y0 <= box[1] and box[3] <= y1 <= H
    assert x1 - x0 >= min(W, R) and y1 - y0 >= min(H, R)
    long = max(box[2] - box[0], box[3] - box[1])
    side = max(int(np.ceil(1.5 * long)), R)
    if side <= min(W, H):
        assert x1 - x0 == y1 - y0 == side
    assert abs((x0 + x1) / 2 - (box[0] + box[2]) / 2) <= max(1, (x1 - x0 - (box[2] - box[0])) / 2)


def test_identity_editor_gives_back_the_photo_at_full_detail():
    """An editor that returns its input: the box must come back as the photo itself (the window
    is no larger than R, so no resampling), bit for bit outside the box. Through the canvas
    (4032 px photo on a 512 canvas, the winner upscaled x7.9) the same box differs by ~0.1 per
    pixel: that is the blur this module removes."""
    W, H = 1600, 1200
    photo = fine_photo(W, H)
    box = (700, 500, 940, 700)
    ed = Recorder(512)
    out = regenerate_full_res(ed, photo, box, "p", torch.Generator().manual_seed(0))
    assert len(ed.calls) == 1 and ed.calls[0][0].shape == (1, 3, 512, 512)
    assert torch.equal(out[..., :500, :], photo[..., :500, :])            # outside: bit for bit
    assert torch.equal(out[..., :, :700], photo[..., :, :700])
    inner = (out - photo)[..., 500:700, 700:940].abs().max()
    assert inner < 1e-5, inner
    canvas, content = letterbox(photo, 512)                  # what the canvas path pastes instead
    x0, y0, x1, y1 = content
    up = torch.nn.functional.interpolate(canvas[..., y0:y1, x0:x1], size=(H, W), mode="bicubic",
                                         align_corners=False).clamp(0, 1)
    assert (up - photo)[..., 500:700, 700:940].abs().mean() > 0.05


def test_white_box_lands_exactly_on_the_box():
    """An editor that paints its mask white: the changed pixels are the box (hard paste), the
    box is white after the round trip through the editor's canvas (large window, downscaled),
    nothing else moves. Catches a mask mapped with the wrong scale or offset on the editor canvas."""
    W, H = 3000, 2000
    photo = fine_photo(W, H, 1) * 0.5
    box = (1200, 300, 2300, 1100)                         # window 1650 px > R: downscaled
    ed = Recorder(512, fill=lambda x, m: torch.ones_like(x))
    out = regenerate_full_res(ed, photo, box, "p", torch.Generator().manual_seed(0))
    changed = (out != photo).any(1)[0]
    ys, xs = torch.nonzero(changed, as_tuple=True)
    assert (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) == box
    core = out[..., box[1] + 4:box[3] - 4, box[0] + 4:box[2] - 4]
    assert core.min() > 0.99


def test_non_finite_repaint_is_refused():
    """A NaN from the editor: no image (the caller keeps the canvas winner), never NaN pixels."""
    ed = Recorder(64, fill=lambda x, m: torch.full_like(x, float("nan")))
    photo = fine_photo(300, 200)
    assert regenerate_full_res(ed, photo, (50, 50, 120, 100), "p", torch.Generator()) is None


def test_feather_scales_with_the_photo():
    """blend_px is in canvas pixels: on a photo 4x the canvas the ramp is 4x as wide, so the
    weight just inside the box edge is below 1 over 4 * blend_px pixels, and the outside is 0."""
    ed = Recorder(256, fill=lambda x, m: torch.ones_like(x), whole=True)
    photo = torch.zeros(1, 3, 800, 800)
    box = (300, 300, 500, 500)
    out = regenerate_full_res(ed, photo, box, "p", torch.Generator(), blend_px=3, scale=4.0)
    row = out[0, 0, 400, 300:320]                    # from the box's left edge inwards
    assert float(row[0]) == pytest.approx(1 / 12, abs=1e-4)      # b = 12 photo px
    assert float(row[11]) == pytest.approx(1.0, abs=1e-4) and float(row[10]) < 1
    assert float(out[0, 0, 400, 299]) == 0.0


def test_photo_scale():
    assert photo_scale((0, 64, 512, 448), (4032, 3024)) == pytest.approx(4032 / 512)
    assert photo_scale((0, 0, 64, 64), (64, 64)) == 1.0


def test_edit_repaints_a_large_photo_on_the_photo(toy):
    """lrlib.edit on a toy scene at 4x the canvas, with an editor that gives its input back: the
    repainted window is recorded and holds the box, the last editor call got a window of the
    photo at the editor's resolution, and the box comes back as the photo itself (sharp). With
    full_res=False the same edit pastes the canvas winner scaled up x4: the box is the blurred
    photo. Catches an edit that ignores the photo's resolution (today's blurry patch)."""
    from lrlib.toy import make_edit_task
    cfg, models = toy
    task = make_edit_task(5, 64, "single")
    small = Image.fromarray((task.scene.image * 255).round().astype(np.uint8))
    photo = small.resize((256, 256), Image.NEAREST)
    rec = Recorder(256)                     # paints the whole canvas at 256 px, as SD does at 512
    m = type(models)(dino=models.dino, clip=models.clip, editor=rec, device=models.device,
                     world=models.world)
    r = lrlib.edit(photo, task.prompt, task.source_caption, cfg, m)
    assert r.full_res_window is not None and r.to_dict()["full_res_window"] == r.full_res_window
    x0, y0, x1, y1 = r.full_res_window
    bx0, by0, bx1, by1 = r.best_box_image
    assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1
    assert rec.calls[-1][0].shape[-2:] == (256, 256) and len(rec.calls) >= 2
    a = np.asarray(photo, np.float32) / 255
    box = (slice(by0, by1), slice(bx0, bx1))
    sharp = np.abs(np.asarray(r.image, np.float32) / 255 - a)[box].mean()
    r2 = lrlib.edit(photo, task.prompt, task.source_caption, cfg.replace(full_res=False), m)
    blurred = np.abs(np.asarray(r2.image, np.float32) / 255 - a)[box].mean()
    assert r2.full_res_window is None and r2.best_box_image == r.best_box_image
    assert sharp < 0.002 and blurred > 5 * sharp + 0.005, (sharp, blurred)
    outside = np.ones(a.shape[:2], bool)
    outside[box] = False
    assert np.array_equal(np.asarray(r.image)[outside], np.asarray(photo)[outside])


def test_no_repaint_when_the_editor_already_crops_as_wide(toy):
    """The toy SD crops the canvas around its mask at its own resolution: a repaint on the photo
    would see no more detail (detail_gain 1), so the canvas winner is kept (no extra call)."""
    from lrlib.additions.fullres import detail_gain
    cfg, models = toy
    ed = models.editor
    assert ed.crop_margin
    box, scale = [12, 34, 42, 62], 4.0
    pbox = [v * 4 for v in box]
    win = crop_window(pbox, (256, 256), ed.resolution, ed.crop_margin)
    assert detail_gain(ed, box, 64, win, scale) == pytest.approx(1.0, rel=0.05)
    assert detail_gain(Recorder(512), [100, 100, 300, 260], 512, (0, 0, 2400, 2400), 7.875) > 1.5
