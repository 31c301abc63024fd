# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Ablations: are the learned regions better than random ones?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/08_ablations.ipynb)
#
# **You will learn** how the paper's ablations are set up and what they show when the answer
# is known: in the toy world every task says which object must change and into what, and a
# procedural judge (no model) grades each result. We compare, on the same scenes:
#
# | strategy | the edit region |
# |---|---|
# | ours | caption-aware DINO anchors (relations read), boxes fitted to the DINO features and snapped to the image's edges, the RGN's pick, ranked by S (with S_cap) |
# | ours, paper settings | the paper's method exactly (`LRConfig.paper()`): attention peaks, squares, straight-through, caption-blind S |
# | ours w/o X | one lrlib choice switched back, or one loss term dropped |
# | DiffEdit / CLIPSeg / DINO box | the peers: one box from a map of the same toy models, no learning |
# | DINO-anchor-random-size, random-anchor-random-size | random choices, for scale |
# | oracle (GT box) | the source object's true box |
#
# **Needs**: about 1.5 CPU-minutes for a handful of tasks here; the full table (200 tasks) comes
# from `python -m lrlib.bench toy --n 200` and is copied in the README with its command.

# %%
# Set-up, the same cell in every notebook: use lrlib from the repository this notebook sits in
# (installed in editable mode if it is not yet), on Colab clone the repository first, and
# anywhere else stop with one sentence saying what to do. Then silence library warnings and
# loading bars so the outputs show only what the notebook teaches.
import importlib
import pathlib
import subprocess
import sys

REPO_URL = "https://github.com/learnable-regions/lrlib"   # where the README says it is published


def use_lrlib_checkout():
    here = pathlib.Path.cwd().resolve()
    root = next((p for p in (here, *here.parents)
                 if (p / "pyproject.toml").is_file() and (p / "lrlib").is_dir()), None)
    if root is None and "google.colab" in sys.modules:
        root = pathlib.Path("/content/lrlib")
        if not root.exists():
            subprocess.check_call(["git", "clone", "-q", REPO_URL, str(root)])
    if root is None:
        try:
            importlib.import_module("lrlib")
            return
        except ImportError:
            raise SystemExit("lrlib is not installed and this notebook is not inside its "
                             f"repository: clone {REPO_URL}, run `make install` there and "
                             "open the notebook from its notebooks/ folder.") from None
    try:
        found = pathlib.Path(importlib.import_module("lrlib").__file__).resolve()
        if root in found.parents:
            return
    except ImportError:
        pass
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-e", str(root)])
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()


use_lrlib_checkout()
from lrlib.logs import quiet_libraries  # noqa: E402

quiet_libraries()

# %% [markdown]
# ## Which models run
# The ablation needs ground truth, so it runs in the toy world (or the random stand-ins when the
# toy weights are not installed; then every strategy fails the judge and only the code runs).
# `LRLIB_WORLD=random|toy` overrides.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from lrlib.bench.toy import format_table, iou, run_toy, task_set
from lrlib.models import load_models
from lrlib.course import world_and_config
from lrlib.worlds import banner, config_for

WORLD, cfg = world_and_config(progress=False)
if WORLD == "real":
    WORLD = "toy"          # the ablation needs ground truth: always the toy world
    cfg = config_for(WORLD, progress=False)
print(banner(cfg))
models = load_models(cfg)

# %% [markdown]
# ## The metrics, by hand
# IoU of two boxes $a, b$: $\frac{|a \cap b|}{|a \cup b|}$. **Success** is what a user sees
# (`lrlib.toy.judge.judge_task`): the prompt's object is where the source object was, the old
# object is gone, every other object is still itself. The **old success** column is the metric
# this table used before: colour and shape judged in the union of the final box and the source
# box. It credits an edit that leaves the old object beside the new one, and its threshold ring
# goes blind when the box reaches a neighbour. Below, both judges on two hand-made edits.

# %%
from lrlib.toy.judge import judge_region, judge_task
from lrlib.toy.scenes import EditTask, paint_object, render_background, render_scene

a, b = (10, 10, 30, 30), (20, 20, 40, 40)
by_hand = (10 * 10) / (20 * 20 + 20 * 20 - 10 * 10)
assert math.isclose(iou(a, b), by_hand) and iou(a, a) == 1.0 and iou(a, (40, 40, 50, 50)) == 0.0
print(f"IoU{a, b} = {iou(a, b):.3f}")

scene = render_scene(7, objects=[("circle", "red", (10, 12, 32, 34)), ("cross", "blue", (34, 12, 56, 34))])
obj = scene.objects[0]
t = EditTask(scene, "the red circle", "a yellow square", 0, obj.box, "square", "yellow", "multi", 7)


def paint(box):
    x0, y0, x1, y1 = box
    img = scene.image.copy()
    img[y0:y1, x0:x1] = render_background(scene.background, 64)[y0:y1, x0:x1]
    return paint_object(img, "square", "yellow", box)[0]


x0, y0, x1, y1 = obj.box
edits = {"right edit, box grown 2 px": (paint(obj.box), (x0 - 2, y0 - 2, x1 + 2, y1 + 2)),
         "left a third of the circle": (paint((x0 - 7, y0, x1 - 7, y1)), (x0 - 7, y0, x1 - 7, y1))}
fig, ax = plt.subplots(1, 2, figsize=(6, 3))
for a_, (name, (img, box)) in zip(ax, edits.items()):
    u = (min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1))
    old = judge_region(img, u)
    new = judge_task(t, img)
    a_.imshow(img); a_.axis("off")
    a_.set_title(f"{name}\nold: {old.colour} {old.shape} -> {old.colour == 'yellow' and old.shape == 'square'}"
                 f"\nnew: success {new['success']} (old gone: {new['old_gone']})", fontsize=7)
plt.show()

# %% [markdown]
# ## Two of lrlib's choices, seen on one relation task
# A relation task holds two objects of the same name; only "left of" / "above" ... says which one
# to change. **Edge snapping** (`fit_snap`): the DINO similarity to the anchor's feature is known
# per 8 px patch; upsampled, it blurs the outline, so the blob's box misses the object by up to
# half a patch. The guided filter (`lrlib.additions.guided_filter.guided_filter`) redraws it with the image's own
# edges. **Relations** (`relation_weight`, `lrlib.additions.relations`): CLIP scores both twins alike; the
# caption is split into subject, relation and reference, and the relation is checked on the
# regions' centres. Left: the blurred and the snapped similarity around the target's centre and
# their blobs' boxes; right: each candidate region's grounding score with and without the relation.

# %%
from lrlib.additions.grounding import crop_scores
from lrlib.additions.fitted import fitted_blobs, mask_boxes, upsample
from lrlib.additions.guided_filter import guided_filter
from lrlib.additions.relations import grounding, parse_relation

rel_task = next(t for t in task_set(12, "tuning") if t.kind == "relation")
xr = torch.from_numpy(rel_task.scene.image).permute(2, 0, 1).float()
with torch.no_grad():
    d = models.dino(xr[None])
tb = rel_task.target_box
centre = torch.tensor([[(tb[0] + tb[2]) / 2, (tb[1] + tb[3]) / 2]])
Fp = torch.nn.functional.normalize(upsample(d.feats[0], 64, 64), dim=0)
cx, cy = int(centre[0, 0]), int(centre[0, 1])
sim = torch.einsum("d,dhw->hw", Fp[:, cy, cx], Fp)
snapped = guided_filter(xr, sim[None], max(1, round(cfg.fit_snap * 64 / d.feats.shape[-1])))[0]
boxes_ = {name: mask_boxes(fitted_blobs(d.feats[0], centre, cfg.fit_level, 64, 64, None, xr, snap))[0].tolist()
          for name, snap in (("blurred", 0.0), ("snapped", cfg.fit_snap))}

objs = rel_task.scene.objects
centres = torch.tensor([o.centre for o in objs], dtype=torch.float32)
obj_boxes = torch.tensor([list(o.box) for o in objs])
subject, relation, reference = parse_relation(rel_task.source_caption)
E = models.clip.encode_text([subject, reference])
cos = crop_scores(models.clip, xr[None], obj_boxes, E.T, cfg.anchor_context, "keep")
g_plain = cos[:, 0]
g_rel = grounding(cos[:, 0], cos[:, 1], centres, relation, cfg.relation_weight)

fig, ax = plt.subplots(1, 4, figsize=(12, 3))
show_ = lambda a_, im, title: (a_.imshow(im), a_.set_title(title, fontsize=8), a_.axis("off"))
show_(ax[0], rel_task.scene.image, f"source: {rel_task.source_caption}")
for a_, (name, m) in zip(ax[1:3], (("blurred", sim), ("snapped", snapped))):
    show_(a_, m.numpy(), f"similarity, {name}: box IoU {iou(boxes_[name], tb):.2f}")
    b_ = boxes_[name]
    a_.add_patch(plt.Rectangle((b_[0] - .5, b_[1] - .5), b_[2] - b_[0], b_[3] - b_[1], fill=False, ec="red"))
    a_.add_patch(plt.Rectangle((tb[0] - .5, tb[1] - .5), tb[2] - tb[0], tb[3] - tb[1], fill=False, ec="lime"))
names = [f"{o.name}\n{'TARGET' if i == rel_task.target_index else ''}" for i, o in enumerate(objs)]
xs = np.arange(len(objs))
ax[3].bar(xs - 0.2, g_plain.numpy(), 0.4, label="subject only")
ax[3].bar(xs + 0.2, g_rel.numpy(), 0.4, label=f"+ '{relation}' {reference}")
ax[3].set_xticks(xs, names, fontsize=7); ax[3].legend(fontsize=7)
ax[3].set_title("grounding score g of each object's region", fontsize=8)
fig.tight_layout()
plt.show()
assert iou(boxes_["snapped"], tb) >= iou(boxes_["blurred"], tb)
assert int(g_rel.argmax()) == rel_task.target_index     # the relation singles out the right twin

# %% [markdown]
# Three more choices decide which regions the caption is scored on at all. **The pool covers
# regions** (`anchor_cover`): the P attention peaks spaced on the patch grid tend to fall on one
# big object or on the background again and again, so a peak that lies inside a region already
# taken is skipped. **The background and specks are not objects** (`max_blob`): a blob over half
# the picture, or under a quarter of a patch, scores g - 1 and is never the relation's reference.
# **A blob finds its object** (`fit_reach`): snapping can pull a thin star's whole similarity
# map under `fit_level`, and its anchor then got a one-pixel blob; the cut follows the anchor's
# own peak instead. Each has its row in the table below.
#
# ## Run every strategy on a few held-out tasks
# All strategies see the same scenes; rows that differ only in training or ranking share the
# candidate edits. Four tasks here (CPU-quick); the 200-task table is in the README.

# %%
N = 4
ROWS = ("ours", "ours, paper settings", "ours w/o edge snapping", "ours w/o relations",
        "ours, pool by spacing only", "ours, background blobs kept",
        "DiffEdit-style mask", "CLIPSeg-style mask", "DINO attention box",
        "DINO-anchor-random-size", "random-anchor-random-size", "oracle (GT box)")
images = {}
summary = run_toy(N, cfg, models, progress=False, images=images, strategies=ROWS)
print(format_table(summary))

# %% [markdown]
# ## The paper's random baselines
# The paper asks whether the *learned* regions matter by replacing them with random ones. The
# two rows are **DINO-anchor-random-size** (ours' anchors and proposals, but a uniformly random
# proposal per anchor instead of the RGN's pick) and **random-anchor-random-size** (uniformly
# random anchors and square sizes, ranked by S). On 200 tasks of the first set
# (`lrlib/bench/README.md`; random-anchor-random-size from the former default's run, it does not
# depend on the proposals):
#
# | strategy | anchor on object | IoU | success |
# |---|---|---|---|
# | ours | 0.92 | 0.56 | 0.91 |
# | DINO-anchor-random-size | 0.92 | 0.61 | 0.70 |
# | random-anchor-random-size | 0.12 | 0.09 | 0.07 |
#
# Read it honestly: random anchors fail (the anchors carry the method), and a random box around
# ours' anchors fails 21 points more often than the RGN's pick: among the ladder's boxes, from a
# tight part of the object to the object with context, a random one often leaves the old object
# or reaches a neighbour. The RGN's pick is not the tightest box (IoU 0.56 vs the random box's
# 0.61): it prefers a box with a margin around the object. With the former default's fitted
# boxes (all of them hold the object) a random box succeeded as often as the RGN's pick (0.90
# both), which is why the default changed (below: "Does the learned choice matter?").
# The four tasks above show the same rows:

# %%
for s in ("ours", "DINO-anchor-random-size", "random-anchor-random-size"):
    r = summary[s]
    print(f"{s:28s} IoU {r['IoU']:.2f}  success {r['success']:.2f}")

# %% [markdown]
# ## Look at them, and at the failures
# One row per task: the source (green: the object to change), then each strategy's result with
# its box (red) and the judge's verdict (a cross: failed). Then only the failures.

# %%
tasks = task_set(N, "first", cfg.size)
verdicts = {(i, s): judge_task(t, images[s][i][0]) for i, t in enumerate(tasks) for s in ROWS}


def show(a_, img, box, title):
    a_.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy() if hasattr(img, "permute") else img)
    if box is not None:
        a_.add_patch(plt.Rectangle((box[0] - .5, box[1] - .5), box[2] - box[0], box[3] - box[1],
                                   fill=False, ec="red"))
    a_.set_title(title, fontsize=7)
    a_.axis("off")


fig, ax = plt.subplots(N, len(ROWS) + 1, figsize=(1.9 * (len(ROWS) + 1), 2.5 * N))
for i, t in enumerate(tasks):
    show(ax[i, 0], t.scene.image, None, f"{t.source_caption[:20]}\n-> {t.prompt[:20]}")
    x0, y0, x1, y1 = t.target_box
    ax[i, 0].add_patch(plt.Rectangle((x0 - .5, y0 - .5), x1 - x0, y1 - y0, fill=False, ec="lime"))
    for j, s in enumerate(ROWS):
        img, box = images[s][i]
        ok = verdicts[i, s]["success"]
        short = s.replace("ours, ", "").replace("ours w/o ", "w/o ").replace("-random-size", " rnd")
        show(ax[i, j + 1], img, box, f"{short[:18]}\n{'ok' if ok else 'x'}")
fig.tight_layout()
plt.show()

fails = [(i, s) for (i, s), v in verdicts.items() if not v["success"] and not s.startswith("oracle")]
cols = 6
rows_ = max(1, math.ceil(len(fails) / cols))
fig, ax = plt.subplots(rows_, cols, figsize=(2.1 * cols, 2.4 * rows_), squeeze=False)
for a_, (i, s) in zip(ax.flat, fails):
    v = verdicts[i, s]
    why = ("no new object" if not v["present"] else "old object left" if not v["old_gone"]
           else "neighbour damaged")
    show(a_, images[s][i][0], images[s][i][1], f"task {i}, {s[:18]}\n{why}")
for a_ in ax.flat[len(fails):]:
    a_.axis("off")
fig.suptitle(f"{len(fails)} failures among {N} tasks x {len(ROWS) - 1} strategies", fontsize=9)
plt.show()

# %% [markdown]
# ## Reading the table
# * **IoU** and **anchor_on_obj** measure *where* each strategy edits; **success** whether a user
#   would call the edit right; **psnr_out** how much else it touched.
# * The oracle row is the editor's own ceiling: with the perfect box, how often does the editor
#   paint the right thing? No region strategy can beat it on success.
# * With four tasks the numbers are noisy; the README's 200-task table is the one to quote
#   (`python -m lrlib.bench toy --n 200`), with its per-kind success and ours' failures by cause.
#   The checks below only assert what holds by construction.

# %%
assert summary["oracle (GT box)"]["IoU"] == 1.0
for s in ROWS:
    r = summary[s]
    assert 0 <= r["IoU"] <= 1 and 0 <= r["success"] <= 1 and 0 <= r["old success"] <= 1
best = max((s for s in ROWS if not s.startswith("oracle")), key=lambda s: summary[s]["IoU"])
print(f"highest IoU among region strategies on these {N} tasks: {best}")

# %% [markdown]
# ## Does the learned choice matter? The M boxes of one task
# Everything above compares whole strategies. Here we open the RGN's own decision on one task:
# each anchor gets M = 5 boxes, the editor fills every box once (the candidates), and the RGN
# picks one box per anchor; the ranking S then keeps one anchor's result. The toy judge grades
# **every** candidate, so we can see which picks would have worked before asking which one the
# RGN made. The same task runs three times, once per proposal family (`LRConfig.proposals`):
#
# * `"squares"`: the paper's proposals, squares of 5 sizes centred on the anchor;
# * `"ladder"`: lrlib's default, the box fitted to the anchor's DINO blob, scaled by 0.85 ... 1.7
#   (a tight part of the object ... the object with context);
# * `"fitted"`: the fitted box scaled by 1.1 ... 1.5: five boxes that all hold the object.
#
# Each figure has one row per anchor. Left: the scene with the anchor (white cross) and its 5
# boxes, one colour each. Then each box's candidate, pasted as `lrlib.edit` pastes it, titled
# with the judge's verdict (✓ success, ✗ failure) and the RGN's probability of that box **before
# training** (a fresh RGN, `epochs=0`) → **after training** with the paper's three losses
# (`objective="expected"`, no box terms) / with lrlib's default training (the softmin objective
# and the box terms L_cover, L_spill of notebook 04), the 20 updates `lrlib.edit` runs. The thick
# frame is the pick of lrlib's default training. The figure's title says which anchor the
# ranking keeps and whether that final result succeeds, under each training, next to what a
# random pick and the best possible pick would reach on this task.

# %%
import itertools

from lrlib.bench.learning import choice_summary, judge_candidates, outcome, ranker
from lrlib.bench.toy import user_paste
from lrlib.images import to_pil
from lrlib.pipeline import prepare, rank, train_and_choose

choice_task = task_set(12, "tuning", cfg.size)[11]
print(f"task ({choice_task.kind}): change '{choice_task.source_caption}' into a "
      f"{choice_task.target_colour} {choice_task.target_shape}; prompt '{choice_task.prompt[:48]}...'")
src_img = to_pil(torch.from_numpy(choice_task.scene.image).permute(2, 0, 1).float())
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")


def study_choice(family):
    """Prepare the task with one proposal family, paste and judge every candidate, and read the
    RGN's probabilities before and after training; the ranking's winner for any choice vector."""
    c = cfg.replace(proposals=family)
    p = prepare(src_img, choice_task.prompt, choice_task.source_caption, c, models)
    ox, oy, ox1, oy1 = p.content
    pasted = [[user_paste(p, p.C[k, j], p.masks[k, j], c) for j in range(p.M)] for k in range(p.K)]
    verdicts_ = [[judge_task(choice_task, im[:, oy:oy1, ox:ox1]) for im in row] for row in pasted]
    success = np.array([[float(v["success"]) for v in row] for row in verdicts_])
    before, _ = train_and_choose(p, c.replace(epochs=0))      # a fresh RGN: no update yet
    paper_losses = c.replace(objective="expected", lambda_cover=0.0, lambda_spill=0.0)
    after_paper, _ = train_and_choose(p, paper_losses)        # the paper's three losses
    after, _ = train_and_choose(p, c)                         # trained as lrlib.edit trains it
    with torch.no_grad():
        E = models.clip.encode_image(p.C.flatten(0, 1)).view(p.K, p.M, -1)
    winner = ranker(E, p, models.clip, c)                     # the ranking S of any choice vector
    valid = None if p.valid is None else p.valid.cpu().numpy()
    pick, pick_paper = tuple(after.argmax(-1).tolist()), tuple(after_paper.argmax(-1).tolist())
    return dict(family=family, p=p, cfg=c, pasted=pasted, success=success, valid=valid,
                verdicts=verdicts_, before=before.cpu(), after=after.cpu(),
                after_paper=after_paper.cpu(), winner=winner, pick=pick, pick_paper=pick_paper,
                learned=outcome(success, winner, pick),
                learned_paper=outcome(success, winner, pick_paper),
                summary=choice_summary(success, winner, valid))


def show_choice(r):
    p, K, M = r["p"], r["p"].K, r["p"].M
    fig, ax = plt.subplots(K, M + 1, figsize=(1.75 * (M + 1), 2.2 * K + 0.5), squeeze=False)
    for k in range(K):
        a_ = ax[k, 0]
        a_.imshow(choice_task.scene.image); a_.axis("off")
        for j in range(M):
            x0, y0, x1, y1 = p.boxes[k, j].tolist()
            a_.add_patch(plt.Rectangle((x0 - .5, y0 - .5), x1 - x0, y1 - y0, fill=False,
                                       ec=COLOURS[j], lw=1.2))
        a_.plot(*p.anchors[k].tolist(), "w+", ms=8, mew=2)
        a_.set_title(f"anchor {k}: its {M} boxes", fontsize=8)
        for j in range(M):
            a_ = ax[k, j + 1]
            a_.imshow(r["pasted"][k][j].permute(1, 2, 0).clamp(0, 1).numpy()); a_.axis("off")
            x0, y0, x1, y1 = p.boxes[k, j].tolist()
            mine = j == r["pick"][k]
            a_.add_patch(plt.Rectangle((x0 - .5, y0 - .5), x1 - x0, y1 - y0, fill=False,
                                       ec=COLOURS[j], lw=3 if mine else 1.2))
            v = r["verdicts"][k][j]
            why = ("" if v["success"] else " no new object" if not v["present"]
                   else " old one stays" if not v["old_gone"] else " neighbour hit")
            a_.set_title(f"box {j}: {'✓' if v['success'] else '✗'}{why}\n"
                         f"p {r['before'][k, j]:.2f} → {r['after_paper'][k, j]:.2f} / "
                         f"{r['after'][k, j]:.2f}" + (" (pick)" if mine else ""),
                         fontsize=7.5, color="green" if v["success"] else "red")
    s, kw = r["summary"], r["winner"](r["pick"])
    fig.suptitle(f"proposals={r['family']!r}: paper's losses {'✓' if r['learned_paper'] else '✗'}, "
                 f"lrlib's training {'✓' if r['learned'] else '✗'} (the ranking keeps anchor "
                 f"{kw}); over all choices: random {s['random']:.2f}, best {s['best']:.0f}, "
                 f"worst {s['worst']:.0f}", fontsize=9)
    fig.tight_layout()
    plt.show()


choices = {}
for family in ("squares", "ladder", "fitted"):
    choices[family] = study_choice(family)
    show_choice(choices[family])

# %% [markdown]
# What the three figures show:
#
# * **Before training the RGN has no opinion**: every box gets p ≈ 1/M = 0.20, so a fresh RGN's
#   pick is a random pick. The "random" figure in each title is what such a pick reaches on
#   average over every choice vector.
# * **Squares**: the choice decides everything here. Only two of the ten candidates succeed: the
#   small squares paint nothing or leave the old square (or part of it) standing, the largest
#   reaches a neighbour ("neighbour hit"), and anchor 1 (on the blue circle) fails whatever its
#   box. Trained by the paper's three losses
#   the RGN puts all its probability on anchor 0's smallest square, which the judge fails: the
#   paper's losses do not see "the old object is still there". Trained by lrlib's (the box terms
#   and softmin) it moves to box 2, one of the two that succeed.
# * **Ladder** (the default): boxes built on the object first, so more of them succeed (a random
#   pick 0.80); on anchor 0 both trainings pick box 2, which succeeds, and the ranking keeps it.
# * **Fitted**: on anchor 0 the five boxes differ little and all succeed; anchor 1 (between the
#   two objects) fails whatever its box, and the ranking drops it. Any pick works, so whatever
#   the RGN learns cannot change the outcome: worst pick = best pick = 1.
#
# One task is an anecdote. The benchmark `python -m lrlib.bench learning` runs the same
# enumeration on 200 held-out toy tasks per family and set (`lrlib/bench/LEARNING.md`, where
# every table is printed with its command; success, `LRConfig.cpu()`, first / second set, the
# RGN's pick minus the random pick in brackets, the RGN trained as here):
#
# | proposals | best pick (ceiling) | worst pick (floor) | random pick | RGN, paper's losses | RGN, lrlib's training |
# |---|---|---|---|---|---|
# | squares (the paper's) | 0.915 / 0.920 | 0.00 / 0.00 | 0.42 / 0.45 | 0.535 / 0.555 (+11 / +10) | 0.81 / 0.815 (+39 / +36) |
# | fitted | 0.96 / 0.945 | 0.725 / 0.715 | 0.89 / 0.87 | 0.90 / 0.87 (+1 / +0) | 0.935 / 0.885 (+4 / +2) |
# | **ladder (lrlib's default)** | 0.96 / 0.96 | 0.05 / 0.05 | 0.69 / 0.68 | 0.645 / 0.69 (-4 / +1) | **0.905 / 0.905 (+21 / +22)** |
#
# Read it plainly:
#
# * **With fitted boxes every proposal is good**: the best pick is only about 6 points above a
#   random one, so no training can gain much there.
# * **With squares or the ladder the choice matters a lot** (floor 0.00-0.05, ceiling 0.92-0.96),
#   and the paper's three losses get little of it: 10-11 points on squares, nothing on the
#   ladder. The paper's straight-through estimator is below a random pick on squares (0.335 /
#   0.38).
# * **Which loss carries the choice** (notebook 04): without L_dir the RGN falls to about random
#   on squares and ladder; L_str alone picks the smallest box on every anchor (0.00-0.27 success,
#   the old object stays), like the squares figure above.
# * **What lrlib's training adds, and why it is the default.** L_cover (the share of the anchor's
#   DINO blob left outside the box: the old object stays) and L_spill (the largest share of
#   another object inside the box: a neighbour is repainted) see the two failures the judge
#   counts (notebook 04); the softmin objective reaches each anchor's lowest-loss box where the
#   expected loss stalls (notebook 09). With them the learned choice gains 36-39 points over a
#   random pick on squares and 21-22 on the ladder, and on the ladder it succeeds as often as the
#   former default (fitted boxes, paper's losses: 0.90 / 0.875 on the toy benchmark's 200 tasks).
#   That is why `LRConfig()` is the ladder with this training: the success is kept and the choice
#   is learned. Two honest limits: always taking the ladder's rung 3 does as well on these sets
#   (0.92 / 0.90; but the best fixed rung differs on the tuning set, rung 2), and the chosen box is
#   looser than the fitted one (IoU with the object 0.56 vs 0.67). Fitted boxes with lrlib's
#   training reach 0.935 / 0.885 (`proposals="fitted"`), with little left for the choice to gain.
#
# **Check**: the benchmark's "random" and "best" rows come from `lrlib.bench.learning`. Below they
# are recomputed with a plain loop: every choice vector c (one box per anchor, `itertools.product`),
# its K chosen results ranked by `lrlib.pipeline.rank` (the function `lrlib.edit` ranks with), and
# the judge's verdict on the winner. The random pick's expected success is the mean over all c,
# the ceiling the max, the floor the min; the judge's table must match the benchmark's too.

# %%
for family, r in choices.items():
    p, success = r["p"], r["success"]
    options = [[j for j in range(p.M) if r["valid"] is None or r["valid"][k, j]] for k in range(p.K)]
    graded = []
    for c in itertools.product(*options):
        _, k = rank(p, torch.stack([p.C[k_, c[k_]] for k_ in range(p.K)]), models.clip, r["cfg"])
        graded.append(success[int(k), c[int(k)]])
    s = r["summary"]
    print(f"{family:8s} {len(graded):3d} choice vectors: random {np.mean(graded):.3f} "
          f"(benchmark {s['random']:.3f}), best {max(graded):.0f} ({s['best']:.0f}), "
          f"worst {min(graded):.0f} ({s['worst']:.0f}); the RGN's pick: paper's losses "
          f"{r['learned_paper']:.0f}, lrlib's training {r['learned']:.0f}")
    assert math.isclose(np.mean(graded), s["random"], abs_tol=1e-9)
    assert max(graded) == s["best"] and min(graded) == s["worst"]
    assert np.array_equal(success, judge_candidates(p, choice_task, r["cfg"]))
    assert torch.allclose(r["before"].sum(-1), torch.ones(p.K)) and r["before"].max() < 1.5 / p.M
if WORLD == "toy":      # what the prose above says of this task's three figures
    assert choices["squares"]["learned_paper"] == 0 and choices["squares"]["learned"] == 1
    assert choices["ladder"]["learned"] == 1
    assert choices["fitted"]["summary"]["worst"] == 1 and choices["squares"]["summary"]["best"] == 1

# %% [markdown]
# ## Exercises
# Each exercise cell holds a placeholder (`...`): replace it with your code and run the cell.
# The checker (`lrlib.course`) computes the answer its own way and prints "correct" or a hint;
# left as it is, it prints "not answered yet". Solutions: `solutions/08_ablations_solutions.ipynb`.

# %% [markdown]
# **Exercise (the random baseline, by hand).** The paper's random-size baseline draws boxes
# at random. Estimate by sampling the mean IoU with the object box (20, 20, 40, 40) of a
# 64 px image of a random square: centre uniform over the image, side uniform between 0.15 and
# 0.75 of the image side, clipped to the image (continuous coordinates; use 100,000 squares).
# Compare it with the rows above: how much of ours' IoU does the random box reach?

# %%
from lrlib import course

random_iou = ...              # your code: a number
course.check_random_box_iou(random_iou, (20, 20, 40, 40), 64)

# %% [markdown]
# ## Recap
# * In the toy world every task has ground truth, so a model-free judge grades success.
# * The anchors carry the method: random anchors succeed 0.07 of the time, ours 0.90.
# * Around ours' anchors a random ladder box succeeds 0.70 of the time, the RGN's pick 0.91
#   (200 tasks of the first set).
# * Boxes built on the object's DINO blob and caption anchors are the choices that move success
#   most (README table).
# * The RGN's choice matters only when the proposals differ: with fitted boxes every box works
#   (ceiling 6 points above random); with squares or the ladder the paper's losses beat a random
#   pick by 0-11 points, lrlib's training (box terms, softmin) by 21-39: the default's learned
#   choice is worth 21-22 points.
# * Four tasks here are an illustration; quote the 200-task table.
#
# Next: notebook 09, the whole loop written out.
