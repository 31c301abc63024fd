"""Finite or refused: an editor output holding NaN / Inf (an fp16 VAE overflowing) never reaches
the RGN, the ranking or the pixels outside the box. Each candidate is checked; a bad one is made
again with the autoencoder in float32, else it is out of the choice; nothing finite at all is an
LRError. Plus the memory side of candidate generation: a call that runs out of GPU memory is
split and retried without changing a single candidate."""
import warnings

import numpy as np
import pytest
import torch

import lrlib
from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.images import load_image
from lrlib.models import Models
from lrlib.editors.candidates import generate_candidates
from lrlib.canvas import paste_back
from lrlib.regions import boxes_to_masks
from lrlib.train import composites, train_rgn

CFG = LRConfig.cpu(world="random", K=2, M=3, epochs=1, iters_per_epoch=3, prune_margin=None,
                   progress=False)


class NaNEditor:
    """A real editor whose candidates number `bad` (counted over the calls without upcast_vae,
    in generation order) come back all NaN. `fp16_only`: a call with upcast_vae (the float32
    decode) gives the real editor's output, as when the fp16 VAE was the culprit; otherwise
    that call is NaN too."""

    def __init__(self, editor, bad, fp16_only=False):
        self.editor, self.bad, self.fp16_only = editor, set(bad), fp16_only
        self.seen, self.upcast_calls = 0, 0

    def __getattr__(self, name):
        return getattr(self.editor, name)

    def inpaint(self, images, masks, prompts, generator, settings=None):
        kw = {} if settings is None else {"settings": settings}
        out = self.editor.inpaint(images, masks, prompts, generator, **kw).clone()
        if settings is not None and settings.upcast_vae:
            self.upcast_calls += 1
            return out if self.fp16_only else torch.full_like(out, float("nan"))
        for j in range(len(prompts)):
            if self.seen + j in self.bad:
                out[j] = float("nan")
        self.seen += len(prompts)
        return out


def wrapped(models, editor):
    return Models(dino=models.dino, clip=models.clip, editor=editor, device=models.device,
                  world=models.world)


class Logits(torch.nn.Module):
    """An "RGN" that is its logits (K, M), whatever the features."""

    def __init__(self, K, M):
        super().__init__()
        self.pi = torch.nn.Parameter(torch.zeros(K, M))

    def forward(self, pooled, geom):
        return self.pi


@pytest.mark.parametrize("estimator", ["st", "expected"])
def test_rgn_training_never_sees_a_nan_candidate(estimator):
    """A NaN composite among the candidates: every loss, probability and parameter stays finite
    and the NaN one has probability exactly 0 throughout, in both estimators. Bugs caught: the
    straight-through composite sum_j g_ij C_ij taking 0 * NaN = NaN, a loss table averaging a
    NaN entry, a logit not masked (probability > 0 for a candidate that does not exist)."""
    K, M = 2, 3
    C = torch.rand(K, M, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    C[0, 1] = float("nan")
    C[1, 2, :, 2:4, 2:4] = float("inf")
    rgn = Logits(K, M)
    hist = train_rgn(rgn, None, None, C, lambda e, g: {"L": e.flatten(1).mean(1)}, iterations=5,
                     generator=torch.Generator().manual_seed(0), progress=False,
                     estimator=estimator, table_views=0)
    probs = torch.tensor(hist.probs)                                  # (T, K, M)
    assert torch.isfinite(torch.tensor(hist.loss)).all() and torch.isfinite(probs).all()
    assert torch.isfinite(rgn.pi).all()
    assert (probs[:, 0, 1] == 0).all() and (probs[:, 1, 2] == 0).all()
    assert all(c[0] != 1 and c[1] != 2 for c in hist.chosen)


def test_outside_the_box_is_the_input_whatever_the_edit_holds():
    """A NaN edit: the composite, the final paste and the blend weight are the input bit for bit
    outside the box. Bug caught: the blend m * E + (1 - m) * x, where 0 * NaN is NaN everywhere."""
    from lrlib.blend import keep_changes
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    m = boxes_to_masks(torch.tensor([[4, 4, 10, 12]]), 16, 16)                   # (1, 1, 16, 16)
    E = torch.full((1, 3, 16, 16), float("nan"))
    out = ~m.bool().expand(1, 3, 16, 16)
    assert torch.equal(composites(E, m, x)[out], x[out])
    final = paste_back(x, E[0], m[0])
    assert torch.equal(final[out], x[out])
    w = keep_changes(m[0].clone(), m[0], E[0], x[0], 0.5)
    assert torch.equal(w[~m[0].bool()], torch.zeros(int((~m[0].bool()).sum())))


def test_edit_drops_nan_candidates_and_keeps_the_rest_exact(models, scene):
    """Two of six candidates NaN even in float32: the RGN's probabilities stay finite, the two
    have probability 0 and are never chosen, the scores are finite and the final image equals
    the input bit for bit outside the winning box. Bugs caught: no check of the editor's output
    (every probability NaN, every anchor falling back to box 0), a dropped candidate left in the
    argmax, a NaN final paste."""
    m = models("sd")
    ed = NaNEditor(m.editor, bad={1, 5})
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        r = lrlib.edit(scene, "a blue square", config=CFG, models=wrapped(m, ed))
    probs = torch.tensor(r.probs)
    assert torch.isfinite(probs).all() and probs[0, 1] == 0 and probs[1, 2] == 0
    assert any("2 of 6 candidate" in str(w.message) for w in said)
    assert r.chosen[0] != 1 and r.chosen[1] != 2
    assert all(torch.isfinite(torch.tensor(v)).all() for v in r.scores.values())
    assert ed.upcast_calls == 2                             # each retried once in float32
    x0, y0, x1, y1 = r.best_box_image
    src = torch.from_numpy(np.asarray(load_image(scene)).copy())
    fin = torch.from_numpy(np.asarray(r.image).copy())
    outside = torch.ones(src.shape[:2], dtype=torch.bool)
    outside[y0:y1, x0:x1] = False
    assert torch.equal(fin[outside], src[outside])


def test_anchor_without_a_finite_candidate_is_out_of_the_ranking(models, scene):
    """Every candidate of anchor 0 NaN: the edit goes on with anchor 1 alone (the ranking cannot
    pick the dropped one). Bug caught: an anchor whose row is all NaN ranked (its S NaN, or its
    first box chosen and pasted)."""
    m = models("sd")
    full = lrlib.edit(scene, "a blue square", config=CFG, models=m)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "3 of 6 candidate")
        r = lrlib.edit(scene, "a blue square", config=CFG,
                       models=wrapped(m, NaNEditor(m.editor, {0, 1, 2})))
    assert len(r.results) == 1 and r.anchors == full.anchors[1:] and r.boxes == full.boxes[1:]
    assert torch.isfinite(torch.tensor(r.scores["S"])).all()


def test_no_finite_candidate_raises_with_the_fix(models, scene):
    """All candidates NaN in fp16 and in float32: an LRError that says to run in float32.
    Bug caught: an all-zero or all-NaN image returned as the edit."""
    m = models("sd")
    with pytest.raises(LRError, match="float32"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "6 of 6 candidate")
        lrlib.edit(scene, "a blue square", config=CFG,
                   models=wrapped(m, NaNEditor(m.editor, range(6))))


def test_float32_regeneration_repairs_an_fp16_nan(models, scene):
    """A candidate NaN only in fp16 is made again, alone, from its own noise with the VAE in
    float32: it equals the clean run's candidate (this editor is float32, so the upcast changes
    nothing else), and the others are untouched. Bug caught: no retry, or a retry with other
    noise (a different image than the one the batch would have made)."""
    from lrlib.editors.base import EditorSettings
    m = models("sd")
    x = scene[None]
    masks = boxes_to_masks(torch.tensor([[8, 8, 40, 40], [20, 10, 60, 50], [4, 30, 30, 60]]), 64, 64)
    s = EditorSettings.from_config(CFG)
    clean = generate_candidates(m.editor, x, masks, "a cat", 0, 3, False, settings=s)
    ed = NaNEditor(m.editor, bad={1}, fp16_only=True)
    fixed = generate_candidates(ed, x, masks, "a cat", 0, 3, False, settings=s)
    assert ed.upcast_calls == 1 and torch.isfinite(fixed).all()
    torch.testing.assert_close(fixed, clean, atol=1e-4, rtol=0)


def test_upcast_vae_decodes_in_float32_and_leaves_the_vae_as_it_was(tiny_dirs, scene):
    """upcast_vae on a bfloat16 editor: the VAE decoder sees float32 latents, the pipeline's VAE
    is still bfloat16 afterwards. Bugs caught: the option ignored (the fp16 decode that made the
    NaN runs again), the shared VAE cast in place and left in float32."""
    from lrlib.editors.base import EditorSettings
    from lrlib.editors.sd import StableDiffusionEditor
    ed = StableDiffusionEditor.from_pretrained(tiny_dirs["sd"], device="cpu", dtype=torch.bfloat16,
                                               steps=2)
    seen = []
    h = ed.pipe.vae.decoder.register_forward_pre_hook(lambda mod, args: seen.append(args[0].dtype))
    try:
        box = boxes_to_masks(torch.tensor([[8, 8, 40, 40]]), 64, 64)
        ed.inpaint(scene[None], box, ["a cat"], torch.Generator().manual_seed(0))
        ed.inpaint(scene[None], box, ["a cat"], torch.Generator().manual_seed(0),
                   settings=EditorSettings(upcast_vae=True))
    finally:
        h.remove()
    assert seen == [torch.bfloat16, torch.float32]
    assert ed.pipe.vae.dtype == torch.bfloat16


class OOMEditor:
    """A real editor that runs out of memory on calls of more than `limit` images."""

    def __init__(self, editor, limit=2):
        self.editor, self.limit, self.sizes = editor, limit, []

    def __getattr__(self, name):
        return getattr(self.editor, name)

    def inpaint(self, images, masks, prompts, generator, settings=None):
        self.sizes.append(len(prompts))
        if len(prompts) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.editor.inpaint(images, masks, prompts, generator, settings=settings)


def test_out_of_memory_halves_the_call_and_changes_no_candidate(models, scene):
    """Batches of 8 on an editor that holds only 2: every call is halved until it fits, every
    candidate is made, and they equal those of the run that fit in one call of 8 (the SD
    editor's per-image seeds, each sub-call started from its batch's generator at its position)
    and those of a run told to call 2 at a time. Bugs caught: the OOM escaping, candidates lost
    or repeated, a split that changes the noise (results depending on free GPU memory)."""
    from lrlib.editors.base import EditorSettings
    m = models("sd")
    x = scene[None]
    masks = boxes_to_masks(torch.tensor([[4 + 3 * i, 6, 30 + 3 * i, 40] for i in range(10)]), 64, 64)
    s = EditorSettings.from_config(CFG)
    whole = generate_candidates(m.editor, x, masks, "a cat", 0, 8, False, settings=s)
    ed = OOMEditor(m.editor)
    split = generate_candidates(ed, x, masks, "a cat", 0, 8, False, settings=s)
    assert ed.sizes == [8, 4, 2, 2, 2, 2, 2]                  # batch of 8: 8 fails, 4 fails, 4 x 2; then 2
    torch.testing.assert_close(split, whole, atol=1e-4, rtol=0)
    at_two = generate_candidates(m.editor, x, masks, "a cat", 0, 8, False, settings=s, max_batch=2)
    torch.testing.assert_close(at_two, split, atol=1e-6, rtol=0)
    with pytest.raises(LRError, match="GPU memory"):
        generate_candidates(OOMEditor(m.editor, limit=0), x, masks, "a cat", 0, 8, False)


def test_editor_batch_follows_free_gpu_memory(monkeypatch):
    """On CUDA the call size is what 80% of the free memory holds at the per-image estimate
    (scaled to the editor's resolution), at least 1 and at most the configured batch; on the
    CPU the configured batch. Bug caught: a batch size that ignores free memory."""
    from types import SimpleNamespace

    from lrlib.editors.candidates import editor_batch
    gib = 2**30
    ed = SimpleNamespace(device=torch.device("cuda"), resolution=1024, dtype=torch.float16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for free, want in ((3 * gib, 1), (8 * gib, 4), (80 * gib, 8), (0, 1)):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev, f=free: (f, 80 * gib))
        assert editor_batch(ed, 8) == want, free
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev: (3 * gib, 80 * gib))
    assert editor_batch(SimpleNamespace(device=torch.device("cuda"), resolution=512,
                                        dtype=torch.float16), 8) == 6
    assert editor_batch(SimpleNamespace(device=torch.device("cpu"), resolution=512), 8) == 8


def test_loading_an_editor_moves_the_other_gpu_editors_off_the_gpu(monkeypatch):
    """Three cached editors, two living on CUDA: keeping the one in use moves the other CUDA one
    to the CPU, leaves the CPU one alone and puts the one in use back on its device. Bug caught:
    every editor ever loaded held on the GPU at once."""
    from lrlib import models as models_mod
    from lrlib.editors.base import Editor

    class Dummy(Editor):
        def __init__(self, device):
            self.device, self.calls = torch.device(device), []

        def inpaint(self, images, masks, prompts, generator, settings=None):
            return images

        def offload(self):
            self.calls.append("offload")

        def place(self):
            self.calls.append("place")

    a, b, c = Dummy("cuda"), Dummy("cuda"), Dummy("cpu")
    monkeypatch.setattr(models_mod, "_CACHE", {("sd", "a"): a, ("sd", "b"): b, ("maskgit", "c"): c,
                                               ("clip", "x"): object()})
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    models_mod.keep_only_on_gpu(a)
    assert (a.calls, b.calls, c.calls) == (["place"], ["offload"], [])
    models_mod.keep_only_on_gpu(c)                  # a CPU editor needs no GPU room
    assert (a.calls, b.calls, c.calls) == (["place"], ["offload"], [])
