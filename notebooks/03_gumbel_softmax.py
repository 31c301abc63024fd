# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Gumbel-Softmax: choosing one box and still getting a gradient
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/learnable-regions/lrlib/blob/main/notebooks/03_gumbel_softmax.ipynb)
#
# **You will learn** how the method picks one of the M boxes of an anchor at random, following
# the RGN's probabilities, in a way that lets the loss train the RGN: sampling with the
# Gumbel-max trick, its soft relaxation and temperature, hard versus soft samples, and the
# straight-through estimator (forward: exactly one box; backward: the soft sample's gradient).
# We check each piece against `lrlib.regions.gumbel_softmax` and finish with a tiny optimisation
# in which logits learn to prefer the cheapest option through hard samples only.
#
# **Needs**: under half a CPU-minute; no model at all (the world only sets M, tau and the seed).
#
# | stage | this notebook | lrlib |
# |---|---|---|
# | Gumbel-Softmax picks a box, differentiably | here | `lrlib.regions.gumbel_softmax` |

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
# `world_and_config()` picks real checkpoints on a GPU machine that reaches the Hugging Face
# Hub, and the toy world otherwise (`lrlib.worlds.choose_world`), and returns the branch this
# notebook takes (`WORLD`) with its settings (`cfg`). Pass `"real"`, `"toy"` or `"random"` (or
# set the environment variable `LRLIB_WORLD`) to override. `LRLIB_WORLD=real-random` (CI,
# `make notebooks-real`) runs the real branch with small random-weight models of the real
# classes at CPU sizes: the same code as on a GPU, pictures that mean nothing. This notebook
# loads no model; it takes the number of proposals M, the temperature and the seed from the
# world's config.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import lrlib
from lrlib.course import world_and_config
from lrlib.worlds import banner

WORLD, cfg = world_and_config()           # override: world_and_config("toy")
print(banner(cfg))

# %% [markdown]
# ## The setting
# For one anchor the RGN gives M logits $\pi_1, \dots, \pi_M$, one per box, and
# $p = \mathrm{softmax}(\pi)$. We want to **sample** a box $j \sim p$ (exploring boxes the RGN is
# not yet sure about) and then learn from the loss of the edit in that box. Sampling an index is
# not differentiable; Gumbel-Softmax is the workaround. Here, logits of our own choosing:

# %%
M, tau = cfg.M, cfg.tau
gen = torch.Generator().manual_seed(cfg.seed)
logits = torch.linspace(-1.0, 1.5, M)[torch.randperm(M, generator=gen)]
p = logits.softmax(-1)
print(f"M = {M}, tau = {tau}; p = {[round(float(v), 3) for v in p]}")

# %% [markdown]
# ## Sampling with the Gumbel-max trick
# With $U_j \sim \mathcal U(0, 1)$ independent and $G_j = -\log(-\log U_j)$ (standard Gumbel
# noise),
#
# $$\arg\max_j\,(\pi_j + G_j) \;\sim\; \mathrm{Categorical}(\mathrm{softmax}(\pi)).$$
#
# (The maximum of Gumbel variables with locations $\pi_j$ is again Gumbel with location
# $\log\sum_j e^{\pi_j}$, and option $j$ wins with probability $e^{\pi_j} / \sum_l e^{\pi_l}$.)
# By hand, 20 000 samples, against $p$: each frequency must be within 5 standard errors.

# %%
def gumbel_noise(shape, generator):
    U = torch.rand(shape, generator=generator).clamp(1e-10, 1 - 1e-7)   # log never sees 0 or 1
    return -torch.log(-torch.log(U))


n = 20_000
G = gumbel_noise((n, M), torch.Generator().manual_seed(cfg.seed))
picks = (logits + G).argmax(-1)
freq = torch.bincount(picks, minlength=M).float() / n
stderr = (p * (1 - p) / n).sqrt()
assert ((freq - p).abs() < 5 * stderr).all()

fig, ax = plt.subplots(figsize=(4.5, 2.6))
ax.bar(np.arange(M) - 0.2, p, 0.4, label="softmax(π)")
ax.bar(np.arange(M) + 0.2, freq, 0.4, label=f"argmax(π + G), {n} samples")
ax.set_xlabel("option j"); ax.legend(fontsize=8); plt.show()

# %% [markdown]
# ## The soft sample and its temperature
# Replace the argmax by a softmax at temperature $\tau$:
#
# $$y_j = \frac{\exp\big((\pi_j + G_j)/\tau\big)}{\sum_l \exp\big((\pi_l + G_l)/\tau\big)} .$$
#
# $y$ is a point of the probability simplex, differentiable in $\pi$. lrlib's `gumbel_softmax`
# with `hard=False` is exactly this, given the same uniform draws:

# %%
from lrlib.regions import gumbel_softmax

batch = logits.expand(8, M)
y_hand = F.softmax((batch + gumbel_noise((8, M), torch.Generator().manual_seed(1))) / tau, -1)
y_lrlib = gumbel_softmax(batch, tau, hard=False, generator=torch.Generator().manual_seed(1))
torch.testing.assert_close(y_hand, y_lrlib)

# %% [markdown]
# With three options, the simplex is a triangle. Low $\tau$ pushes the samples into the corners
# (nearly one-hot, distributed like $p$); high $\tau$ pulls them to the centre (nearly uniform:
# **not** to $p$, the black cross). The argmax of $y$ is the same at every temperature for the
# same noise, so the corner each sample leans to does not change.

# %%
logits3 = torch.tensor([1.5, 0.5, -0.5])
corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
taus = (0.1, 1.0, 10.0)
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
peak = []
for a, t in zip(axes, taus):
    y3 = gumbel_softmax(logits3.expand(500, 3), t, hard=False,
                        generator=torch.Generator().manual_seed(2))
    xy = y3.numpy() @ corners
    a.fill(*corners.T, fc="none", ec="k", lw=0.8)
    a.scatter(*xy.T, s=4, c=y3.argmax(-1), cmap="viridis", alpha=0.6)
    a.scatter(*(logits3.softmax(0).numpy() @ corners), marker="x", c="k", s=60)
    for i, c in enumerate(corners):
        a.annotate(f"{i}", c, xytext=(-3, -12 if i < 2 else 4), textcoords="offset points")
    a.set_title(f"τ = {t}: mean max y = {float(y3.max(-1).values.mean()):.2f}", fontsize=9)
    a.set_aspect("equal"); a.axis("off")
    peak.append(float(y3.max(-1).values.mean()))
plt.show()
assert peak[0] > peak[1] > peak[2]

# %% [markdown]
# ## Hard samples, and why τ does not change them
# A hard sample is $\mathrm{onehot}(\arg\max_j y_j)$, and $\arg\max_j y_j =
# \arg\max_j(\pi_j + G_j)$ for every $\tau > 0$: the hard sample **is** the Gumbel-max sample.
# The temperature only changes the soft $y$, hence (below) the gradient. Same noise, three
# temperatures, identical forward values:

# %%
hard = [gumbel_softmax(logits.expand(1000, M), t, hard=True,
                       generator=torch.Generator().manual_seed(3)) for t in taus]
assert all(torch.equal(hard[0], hd) for hd in hard[1:])
gm = F.one_hot((logits + gumbel_noise((1000, M), torch.Generator().manual_seed(3))).argmax(-1), M)
torch.testing.assert_close(hard[0], gm.float())

y_one = [gumbel_softmax(logits[None], t, hard=False, generator=torch.Generator().manual_seed(4))[0]
         for t in taus]
fig, axes = plt.subplots(1, 4, figsize=(10, 2.2), sharey=True)
for a, t, yy in zip(axes, taus, y_one):
    a.bar(range(M), yy); a.set_title(f"soft y, τ = {t}", fontsize=9)
hard_one = gumbel_softmax(logits[None], tau, hard=True, generator=torch.Generator().manual_seed(4))[0]
axes[3].bar(range(M), hard_one.detach(), color="tab:red"); axes[3].set_title("hard (any τ)", fontsize=9)
for a in axes:
    a.set_xticks(range(M))
fig.tight_layout(); plt.show()

# %% [markdown]
# ## The straight-through estimator
# The method needs both: a **hard** choice in the forward pass (the edit is in exactly one box)
# and a gradient for $\pi$. Straight-through (ST) glues them:
#
# $$g = \mathrm{onehot}(\arg\max y) - \mathrm{sg}(y) + y ,$$
#
# with sg the stop-gradient (`.detach()`). Forward: $g$ equals the one-hot (up to float
# rounding). Backward: the one-hot and $\mathrm{sg}(y)$ have no gradient, so
# $\partial g / \partial \pi = \partial y / \partial \pi$. For a loss $L = c \cdot g$ (say $c_j$
# is the loss of the edit in box $j$), the soft sample's Jacobian
# $\partial y_j / \partial \pi_l = y_j(\delta_{jl} - y_l)/\tau$ gives
#
# $$\frac{\partial L}{\partial \pi_l} = \frac{y_l\,(c_l - c \cdot y)}{\tau}.$$
#
# Three checks: lrlib's hard sample is one-hot; its gradient equals that of the soft sample
# drawn with the same noise, and the formula; and a finite difference of the soft sample
# agrees with it too.

# %%
cost = torch.linspace(1.0, 0.0, M)[torch.randperm(M, generator=torch.Generator().manual_seed(5))]


def grad_of(hard, t, seed):
    pi = logits.clone().requires_grad_(True)
    g = gumbel_softmax(pi, t, hard=hard, generator=torch.Generator().manual_seed(seed))
    (cost * g).sum().backward()
    return g.detach(), pi.grad


for t in (tau, 0.5):
    g_st, grad_st = grad_of(True, t, seed=6)
    y, grad_soft = grad_of(False, t, seed=6)
    torch.testing.assert_close(g_st, F.one_hot(y.argmax(), M).float(), rtol=0, atol=1e-6)
    torch.testing.assert_close(grad_st, grad_soft)
    torch.testing.assert_close(grad_st, y * (cost - cost @ y) / t)

    G6 = gumbel_noise((M,), torch.Generator().manual_seed(6)).double()
    soft_cost = lambda pi: float(cost.double() @ F.softmax((pi + G6) / t, -1))
    eps, pi0 = 1e-6, logits.double()
    fd = torch.tensor([(soft_cost(pi0 + eps * e) - soft_cost(pi0 - eps * e)) / (2 * eps)
                       for e in torch.eye(M, dtype=torch.float64)])
    torch.testing.assert_close(fd.float(), grad_st, rtol=1e-4, atol=1e-6)
    print(f"τ = {t}: forward one-hot at option {int(g_st.argmax())}; ST gradient "
          f"{[round(float(v), 4) for v in grad_st]} == soft == formula == finite difference")

# %% [markdown]
# Note what ST is *not*: the derivative of its own forward value. The one-hot is piecewise
# constant in $\pi$; nudging a logit does not change it, so its true derivative is zero almost
# everywhere (a finite difference shows it), while ST reports the soft gradient. That substitute
# is what makes learning possible, and it is biased: averaged over many samples it is not the
# gradient of the expected cost $\nabla_\pi\, (p \cdot c)$, only a direction that usually
# points the same way.

# %%
hard_cost = lambda pi: float(cost @ gumbel_softmax(pi, tau, hard=True,
                                                   generator=torch.Generator().manual_seed(6)))
fd_hard = torch.tensor([(hard_cost(logits + 1e-3 * e) - hard_cost(logits - 1e-3 * e)) / 2e-3
                        for e in torch.eye(M)])
assert (fd_hard == 0).all() and (grad_st.abs() > 0).any()

n = 20_000
pi = logits.expand(n, M).clone().requires_grad_(True)
g = gumbel_softmax(pi, tau, hard=True, generator=torch.Generator().manual_seed(7))
(g @ cost).sum().backward()
st_mean = pi.grad.mean(0)
exact = p * (cost - cost @ p)                               # d(p . c) / d(pi)
cos = float(F.cosine_similarity(st_mean, exact, dim=0))

fig, ax = plt.subplots(figsize=(4.5, 2.6))
ax.bar(np.arange(M) - 0.2, exact, 0.4, label="∇ E[c·onehot] (exact)")
ax.bar(np.arange(M) + 0.2, st_mean, 0.4, label=f"mean ST gradient, {n} samples")
ax.axhline(0, c="k", lw=0.5); ax.set_xlabel("logit j"); ax.legend(fontsize=7)
ax.set_title(f"cosine similarity {cos:.3f}", fontsize=9); plt.show()

# %% [markdown]
# ## A tiny optimisation through hard samples
# Free logits (standing in for the RGN's output), M options with fixed costs (standing in for
# the losses of the M candidate edits, notebook 04), all logits equal at the start. Each step
# draws **one** hard ST sample, pays the cost of the chosen option only, and takes an Adam step,
# as the method's training loop does (`lrlib.train`, `estimator="st"`). For comparison, the same
# optimiser on the exact expected cost $p \cdot c$ (`estimator="expected"`).

# %%
steps, lr = 300, 0.05
best = int(cost.argmin())


def optimise(estimator):
    pi = torch.zeros(M, requires_grad=True)
    opt = torch.optim.Adam([pi], lr=lr)
    g_noise = torch.Generator().manual_seed(cfg.seed)
    p_best, expected = [], []
    for _ in range(steps):
        if estimator == "st":
            loss = cost @ gumbel_softmax(pi, tau, hard=True, generator=g_noise)
        else:
            loss = cost @ pi.softmax(-1)
        opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad():
            q = pi.softmax(-1)
            p_best.append(float(q[best])); expected.append(float(cost @ q))
    return p_best, expected


runs = {e: optimise(e) for e in ("st", "expected")}
fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
for e, (pb, ex) in runs.items():
    axes[0].plot(pb, label=e); axes[1].plot(ex, label=e)
axes[0].axhline(1 / M, c="k", ls=":", lw=0.8)
axes[0].set_title(f"p(cheapest option {best})", fontsize=9)
axes[1].set_title("expected cost p·c", fontsize=9)
for a in axes:
    a.set_xlabel("step"); a.legend(fontsize=8)
fig.tight_layout(); plt.show()
print({e: round(pb[-1], 3) for e, (pb, _) in runs.items()})
assert runs["st"][0][-1] > 0.9, "hard ST samples should learn the cheapest option"

# %% [markdown]
# ## Exercises
# Each exercise cell holds a placeholder (`...`): replace it with your code and run the cell.
# The checker (`lrlib.course`) computes the answer its own way and prints "correct" or a hint;
# left as it is, it prints "not answered yet". Solutions: `solutions/03_gumbel_softmax_solutions.ipynb`.

# %% [markdown]
# **Exercise (sampling by hand).** Draw 20,000 Gumbel-max samples for the logits below
# yourself (numpy: $g = -\log(-\log u)$, $u$ uniform, one $g$ per logit per draw; the pick is
# $\arg\max(z + g)$) and give how often each index wins, as fractions. They should approach
# softmax(z); try uniform noise instead of Gumbel noise and see the checker refuse it.

# %%
from lrlib import course

z_ex = np.array([2.0, 1.0, 0.0, -1.0])
n_ex = 20_000
frequencies = ...             # your code: 4 fractions that add up to 1
course.check_gumbel_frequencies(frequencies, z_ex, n_ex)

# %% [markdown]
# ## Recap
# * $\arg\max(\pi + G)$ with Gumbel noise samples exactly from $\mathrm{softmax}(\pi)$.
# * The soft sample $\mathrm{softmax}((\pi + G)/\tau)$ is differentiable; τ sets how close to
#   one-hot it is, never which option wins.
# * Straight-through: the forward is the hard one-hot (one box, one edit), the backward the
#   soft sample's gradient, $y_l (c_l - c\cdot y)/\tau$. A biased but useful substitute for the
#   zero derivative of an argmax.
# * Through such samples alone, logits learn to prefer the cheapest option, which is how the
#   paper's RGN learns which box to edit (`LRConfig.estimator="st"`, `LRConfig.paper()`).
#   lrlib's default, `estimator="expected"`, needs no sample: the candidates are cached, so it
#   takes the exact gradient of $\sum_j p_j L_j$ (notebook 09; toy benchmark: success 0.90 for
#   both, IoU 0.67 expected vs 0.60 straight-through).
#
# Next: notebook 04, where the costs come from: L_clip, L_dir and L_str.
