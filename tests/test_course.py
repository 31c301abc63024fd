"""Every exercise checker accepts the right answer, rejects a plausible wrong one with a hint,
and lets an unanswered exercise pass as "not answered yet"."""
import math

import numpy as np
import pytest
import torch

from lrlib import course


def verdict(capsys, result, expect):
    out = capsys.readouterr().out
    assert result is expect, out
    if expect is True:
        assert "correct" in out
    elif expect is False:
        assert out.startswith("not yet:") and len(out) > 20     # a hint, not just "wrong"
    else:
        assert "not answered yet" in out


@pytest.mark.parametrize("placeholder", [None, ...])
def test_placeholders_do_not_fail(capsys, placeholder):
    verdict(capsys, course.check_patch_px(placeholder), None)
    verdict(capsys, course.check_top_k(placeholder), None)
    verdict(capsys, course.check_expected_grad(placeholder), None)


def test_changed_pixels(capsys):
    a = np.zeros((4, 5, 3), np.uint8)
    b = a.copy(); b[1, 2] = 9; b[3, 4, 0] = 1
    verdict(capsys, course.check_changed_pixels(2, a, b), True)
    verdict(capsys, course.check_changed_pixels(4, a, b), False)     # channels counted


def test_winner(capsys):
    scores = {"S": [0.9, 0.1, 0.5, 0.2], "S_t2i": [0.1, 0.9, 0.8, 0.7]}
    verdict(capsys, course.check_winner(2, scores), True)            # 0 is not in the top 3
    verdict(capsys, course.check_winner(0, scores), False)


def test_patch_px(capsys):
    verdict(capsys, course.check_patch_px(512 / 28), True)
    verdict(capsys, course.check_patch_px(32), False)


def greedy(A, K, spacing):
    A = np.asarray(A); h, w = A.shape
    out = []
    for i in np.argsort(-A.ravel(), kind="stable"):
        r, c = divmod(int(i), w)
        if all(max(abs(r - a), abs(c - b)) >= max(spacing, 1) for a, b in out):
            out.append((r, c))
        if len(out) == K:
            break
    return out


def test_top_k(capsys):
    verdict(capsys, course.check_top_k(greedy), True)
    verdict(capsys, course.check_top_k(lambda A, K, s: greedy(A, K, 1)), False)   # no spacing


def test_best_iou(capsys):
    props = torch.tensor([[[0, 0, 10, 10], [0, 0, 20, 20]], [[30, 30, 40, 40], [50, 50, 60, 60]]])
    gt = torch.tensor([[0, 0, 10, 10], [30, 30, 35, 40]])
    verdict(capsys, course.check_best_iou([1.0, 0.5], props, gt), True)
    verdict(capsys, course.check_best_iou([1.0, 1.0], props, gt), False)


def test_gumbel(capsys):
    logits = np.array([2.0, 1.0, 0.0])
    g = -np.log(-np.log(np.random.default_rng(0).random((20000, 3))))
    freq = np.bincount(np.argmax(logits + g, 1), minlength=3) / 20000
    verdict(capsys, course.check_gumbel_frequencies(freq, logits, 20000), True)
    wrong = np.bincount(np.argmax(logits + np.random.default_rng(0).random((20000, 3)), 1),
                        minlength=3) / 20000                           # uniform noise, not Gumbel
    verdict(capsys, course.check_gumbel_frequencies(wrong, logits, 20000), False)


def test_dir_loss(capsys):
    rng = np.random.default_rng(0)
    e, s, t, c = rng.standard_normal((4, 8))
    d1, d2 = e - s, t - c
    right = 1 - d1 @ d2 / np.linalg.norm(d1) / np.linalg.norm(d2)
    verdict(capsys, course.check_dir_loss(right, e, s, t, c), True)
    verdict(capsys, course.check_dir_loss(1 - e @ t, e, s, t, c), False)
    verdict(capsys, course.check_dir_loss_no_change(1), True)
    verdict(capsys, course.check_dir_loss_no_change(0), False)


def test_guidance(capsys):
    verdict(capsys, course.check_guidance(lambda u, c, w: u + w * (c - u)), True)
    verdict(capsys, course.check_guidance(lambda u, c, w: c + w * (c - u)), False)
    verdict(capsys, course.check_guidance_identity(1), True)
    verdict(capsys, course.check_guidance_identity(0), False)


def test_reveals(capsys):
    hidden = [256, math.floor(256 * math.cos(math.pi / 24)),
              math.floor(256 * math.cos(11 * math.pi / 24))]
    verdict(capsys, course.check_reveals((256 - hidden[1], hidden[2])), True)
    verdict(capsys, course.check_reveals((hidden[2], 256 - hidden[1])), False)


def test_pick_best(capsys):
    def right(t2i, S, top):
        kept = list(np.argsort(-np.asarray(t2i), kind="stable")[:top])
        return int(kept[int(np.argmax(np.asarray(S)[kept]))])
    verdict(capsys, course.check_pick_best(right), True)
    verdict(capsys, course.check_pick_best(lambda t2i, S, top: int(np.argmax(S))), False)


def test_random_box_iou(capsys):
    box, size = (20, 20, 40, 40), 64
    est = course.random_square_iou(box, size, n=50_000, seed=7)       # another sample
    verdict(capsys, course.check_random_box_iou(est, box, size), True)
    verdict(capsys, course.check_random_box_iou(0.4, box, size), False)


def test_random_box_iou_against_torchvision():
    from torchvision.ops import box_iou
    rng = np.random.default_rng(1)
    c, s = rng.uniform(0, 64, (4000, 2)), rng.uniform(0.15, 0.75, 4000) * 64
    sq = np.clip(np.concatenate([c - s[:, None] / 2, c + s[:, None] / 2], 1), 0, 64)
    ref = box_iou(torch.tensor(sq), torch.tensor([[20.0, 20, 40, 40]])).mean().item()
    assert abs(course.random_square_iou((20, 20, 40, 40), 64) - ref) < 0.01


def test_expected_grad(capsys):
    def right(z, L):
        z = torch.tensor(z, requires_grad=True)
        (torch.softmax(z, 0) @ torch.tensor(L)).backward()
        return z.grad
    verdict(capsys, course.check_expected_grad(right), True)

    def wrong(z, L):
        p = np.exp(z - z.max()); p /= p.sum()
        return p * L
    verdict(capsys, course.check_expected_grad(wrong), False)


def test_function_left_open(capsys):
    def open_exercise(*args):
        ...
    for check in (course.check_top_k, course.check_guidance, course.check_pick_best,
                  course.check_expected_grad):
        verdict(capsys, check(open_exercise), None)


# ----------------------------------------------------------------------------- worlds and photos
def test_real_random_takes_the_real_branch_with_random_models(monkeypatch):
    monkeypatch.setenv("LRLIB_WORLD", "real-random")
    world, cfg = course.world_and_config(editor="maskgit", progress=False)
    assert world == "real"                                       # the branch a GPU user takes
    assert (cfg.world, cfg.editor, cfg.device, cfg.size, cfg.progress) == (
        "random", "maskgit", "auto", 64, False)   # CI-sized models, on the device a real run takes


def test_explicit_world_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("LRLIB_WORLD", "real-random")
    world, cfg = course.world_and_config("random")
    assert (world, cfg.world) == ("random", "random")
    monkeypatch.setenv("LRLIB_WORLD", "random")
    world, cfg = course.world_and_config("real-random")
    assert (world, cfg.world) == ("real", "random")
    world, cfg = course.world_and_config()
    assert (world, cfg.world) == ("random", "random")


def test_photo_task_crops_the_centre_square_and_scales_the_box():
    from PIL import Image
    image, caption, prompt, box = course.photo_task("coffee", 100)
    assert image.size == (100, 100) and image.mode == "RGB" and caption and prompt
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= 100 and 0 <= y0 < y1 <= 100
    # independent: the 600 x 400 file's centre square is columns 100-499; at full scale it equals
    # the crop resized back to 400
    raw = Image.open(course.photos_dir() / "coffee.png").convert("RGB")
    assert raw.size == (600, 400)
    big, *_ = course.photo_task("coffee", 400)
    assert np.array_equal(np.asarray(big), np.asarray(raw)[:, 100:500])
    # the box holds the cup: most of the photo's white (the cup's porcelain) lies inside it
    a = np.asarray(big).astype(int)
    bx = [round(v * 4) for v in box]
    inside = np.zeros(a.shape[:2], bool); inside[bx[1]:bx[3], bx[0]:bx[2]] = True
    white = a.min(-1) > 190
    assert 0.2 < inside.mean() < 0.6 and white[inside].sum() > 0.8 * white.sum() > 1000


def test_missing_photos_say_where_they_live(monkeypatch):
    from lrlib.errors import LRError
    monkeypatch.setattr(course, "PHOTOS_DIR", "no/such/folder")      # as in a wheel install
    with pytest.raises(LRError, match="repository"):
        course.photo_task("chelsea")
    with pytest.raises(KeyError):
        course.photo_task("astronaut")                              # not shipped
