"""Editor settings travel with each call (`EditorSettings`), never on the shared editor: a
result records what ran, one loaded editor serves several configs at once, and no call leaves a
sampler behind. Plus the loading keyword (`dtype` / `torch_dtype`) and SDXL's start from pure
noise."""
import warnings

import pytest
import torch

import lrlib
from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.regions import boxes_to_masks

CFG = LRConfig.cpu(world="random", K=1, M=2, epochs=1, iters_per_epoch=1, prune_margin=None,
                   progress=False)
BOX = boxes_to_masks(torch.tensor([[8, 8, 40, 40]]), 64, 64)


class UNetCalls:
    """Counts the UNet's forward calls (diffusers' module, whatever called it)."""

    def __init__(self, unet):
        self.n, self.timesteps = 0, []
        self.h = unet.register_forward_pre_hook(self.count, with_kwargs=True)

    def count(self, module, args, kwargs):
        self.n += 1
        self.timesteps.append(float(args[1] if len(args) > 1 else kwargs["timestep"]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.h.remove()


def timesteps(editor, scheduler, steps):
    """The timesteps diffusers' scheduler `scheduler` sets for `steps` (on a copy)."""
    s = editor.pipe.scheduler if scheduler == "default" else editor.pipeline(scheduler).scheduler
    s = type(s).from_config(s.config)
    s.set_timesteps(steps)
    return [float(t) for t in s.timesteps]


def test_a_second_load_leaves_the_first_models_editor_as_it_was(scene):
    """load_models with steps=2, then with steps=3 (the same cached weights): the first Models'
    editor still runs 2 steps, the second 3. Bug caught: load_editor writing the new config's
    settings onto the cached editor that an earlier Models holds."""
    from lrlib.models import load_models
    a = load_models(CFG.replace(steps=2), parts=("editor",))
    b = load_models(CFG.replace(steps=3), parts=("editor",))
    assert a.editor.pipe is b.editor.pipe                   # one copy of the weights
    runs = []
    for m in (a, b):
        with UNetCalls(m.editor.pipe.unet) as calls:
            m.editor.inpaint(scene[None], BOX, ["a cat"], torch.Generator().manual_seed(0))
        runs.append(calls.n)
    assert runs == [len(timesteps(a.editor, "default", n)) for n in (2, 3)]
    assert (a.editor.steps, b.editor.steps) == (2, 3)


def test_edit_runs_and_records_the_configs_steps(models, scene):
    """edit(config steps=3, models loaded with 4): 3 steps run for every candidate and 3 are
    recorded. Bug caught: the editor's load-time steps running while result.config says 3."""
    m = models("sd")
    assert m.editor.steps == 4                       # the random world's own setting
    cfg = CFG.replace(steps=3, guidance_scale=3.0)
    with UNetCalls(m.editor.pipe.unet) as calls:
        r = lrlib.edit(scene, "a blue square", config=cfg, models=m)
    assert calls.n == len(timesteps(m.editor, "default", 3))     # one batched call of K*M
    assert r.config.steps == 3 and m.editor.steps == 4


def test_maskgit_config_with_sd_models_is_refused_before_any_work(models, scene):
    """config.editor='maskgit' with SD models: an LRError that says what to do, before DINO or
    the UNet ran. Bug caught: SD running while the result records maskgit."""
    m = models("sd")
    seen = []
    h = m.dino.register_forward_pre_hook(lambda mod, args: seen.append("dino"))
    try:
        with UNetCalls(m.editor.pipe.unet) as calls, \
                pytest.raises(LRError, match="load_models") as info:
            lrlib.edit(scene, "a blue square", config=CFG.replace(editor="maskgit"), models=m)
    finally:
        h.remove()
    assert calls.n == 0 and not seen
    assert "'sd'" in str(info.value) and "maskgit" in str(info.value)


def test_a_failing_call_leaves_the_shared_scheduler_alone(models, scene):
    """A DPM-Solver++ call that fails half-way (the UNet raises) and a successful one: the
    shared pipeline keeps its own scheduler object, of its own class, and the next call without
    settings samples on the default timesteps. Bug caught: a scheduler swapped in place on the
    cached pipeline (and not put back when the call raises)."""
    from lrlib.editors.base import EditorSettings
    ed = models("sd").editor
    before = ed.pipe.scheduler
    kind = type(before)

    def boom(module, args, kwargs):
        raise RuntimeError("boom")
    h = ed.pipe.unet.register_forward_pre_hook(boom, with_kwargs=True)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            ed.inpaint(scene[None], BOX, ["a cat"], torch.Generator().manual_seed(0),
                       settings=EditorSettings(scheduler="dpm++", steps=3))
    finally:
        h.remove()
    with UNetCalls(ed.pipe.unet) as dpm:
        ed.inpaint(scene[None], BOX, ["a cat"], torch.Generator().manual_seed(0),
                   settings=EditorSettings(scheduler="dpm++", steps=3))
    assert ed.pipe.scheduler is before and type(ed.pipe.scheduler) is kind
    with UNetCalls(ed.pipe.unet) as plain:
        ed.inpaint(scene[None], BOX, ["a cat"], torch.Generator().manual_seed(0))
    assert dpm.timesteps == timesteps(ed, "dpm++", 3)
    assert plain.timesteps == timesteps(ed, "default", ed.steps) != dpm.timesteps


def test_settings_from_config_and_their_checks(models):
    """from_config reads the fields of the config's editor (drafts: DPM-Solver++ at
    draft_steps); a field left None is the editor's own; bad values are LRErrors that say what
    to pass. Bugs caught: maskgit given SD's steps, a draft without the fast sampler."""
    from lrlib.editors.base import EditorSettings
    cfg = LRConfig.cpu(world="random", steps=7, guidance_scale=2.0, maskgit_steps=5,
                       maskgit_guidance=6.0, scheduler="pndm", prompt_template="a {}")
    assert EditorSettings.from_config(cfg) == EditorSettings(7, 2.0, "pndm", "a {}")
    assert EditorSettings.from_config(cfg, draft_steps=3) == EditorSettings(3, 2.0, "dpm++", "a {}")
    assert EditorSettings.from_config(cfg.replace(editor="maskgit", scheduler="default")) == \
        EditorSettings(5, 6.0, "default", "a {}")
    assert EditorSettings.from_config(cfg.replace(prompt_template=None)).prompt_template == ""
    with pytest.raises(LRError, match="draft_steps"):
        EditorSettings.from_config(cfg.replace(editor="maskgit"), draft_steps=2)
    sd, mg = models("sd").editor, models("maskgit").editor
    assert sd.resolve(EditorSettings(steps=2)) == sd.defaults.replace(steps=2)
    for ed, bad, match in ((sd, EditorSettings(steps=0), "steps"),
                           (sd, EditorSettings(scheduler="euler"), "scheduler"),
                           (sd, EditorSettings(guidance_scale=float("nan")), "guidance"),
                           (sd, EditorSettings(prompt_template="no slot"), "prompt_template"),
                           (mg, EditorSettings(scheduler="dpm++"), "no sampler choice")):
        with pytest.raises(LRError, match=match):
            ed.resolve(bad)
    with pytest.raises(AttributeError):
        sd.steps = 3                                 # read-only: pass settings instead


def test_maskgit_runs_the_steps_it_is_given(models, scene):
    """MaskGIT with settings steps=3: three transformer passes (guidance doubles the batch, not
    the calls); the editor's own default is untouched. Bug caught: settings ignored by MaskGIT."""
    from lrlib.editors.base import EditorSettings
    ed = models("maskgit").editor
    n = []
    h = ed.transformer.register_forward_pre_hook(lambda mod, args: n.append(1))
    try:
        ed.inpaint(scene[None], BOX, ["a cat"], torch.Generator().manual_seed(0),
                   settings=EditorSettings(steps=3))
    finally:
        h.remove()
    assert len(n) == 3 and ed.steps == 4


def test_cli_steps_reaches_the_maskgit_editor(tmp_path, monkeypatch):
    """`--editor maskgit --steps 3`: MaskGIT decodes in 3 steps and result.json records
    maskgit_steps 3. Bug caught: --steps written to the SD field, which MaskGIT never reads."""
    import json

    from lrlib.cli import main
    from lrlib.editors.maskgit import MaskGITEditor
    ran = []
    generate = MaskGITEditor.generate_tokens

    def spy(self, *args, **kwargs):
        s = kwargs.get("settings")
        ran.append(self.steps if s is None else self.resolve(s).steps)
        return generate(self, *args, **kwargs)
    monkeypatch.setattr(MaskGITEditor, "generate_tokens", spy)
    img = tmp_path / "in.png"
    from PIL import Image
    Image.new("RGB", (64, 64), (120, 40, 40)).save(img)
    out = tmp_path / "out"
    assert main(["edit", str(img), "--prompt", "a blue square", "--out", str(out), "--world",
                 "random", "--editor", "maskgit", "--steps", "3", "--K", "1", "--M", "2",
                 "--epochs", "1"]) == 0
    cfg = json.loads((out / "result.json").read_text())["config"]
    assert cfg["maskgit_steps"] == 3 and ran and set(ran) == {3}


def test_loading_passes_dtype_by_the_installed_diffusers(tiny_dirs):
    """The editors load through the keyword the installed diffusers takes (`dtype` from 0.40,
    `torch_dtype` before) and loading warns nothing about it. Bug caught: `torch_dtype=` on a
    diffusers that deprecates it (a FutureWarning today, an error in 1.0)."""
    import diffusers

    from lrlib.editors.base import dtype_kwarg
    from lrlib.editors.maskgit import MaskGITEditor
    from lrlib.editors.sd import StableDiffusionEditor
    release = tuple(int(v) for v in diffusers.__version__.split(".")[:2])
    assert dtype_kwarg(torch.float16) == {("dtype" if release >= (0, 40) else "torch_dtype"):
                                          torch.float16}
    assert dtype_kwarg(None) == {}
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        StableDiffusionEditor.from_pretrained(tiny_dirs["sd"], device="cpu", dtype=torch.float32)
        MaskGITEditor.from_pretrained(tiny_dirs["maskgit"], device="cpu", dtype=torch.float32)
    about_dtype = [str(w.message) for w in said if "dtype" in str(w.message)]
    assert not about_dtype, about_dtype


def test_sdxl_starts_from_pure_noise(tmp_path, scene):
    """SDXL at 2 steps: the first UNet call is at the schedule's first (noisiest) timestep, not
    the second. Bug caught: SDXL's pipeline default strength 0.9999, which at few steps drops
    the first timestep and leaves part of the source in the box."""
    from lrlib.editors.load import load_sd_editor
    from lrlib.worlds.random_world import make_tiny_sdxl
    ed = load_sd_editor(make_tiny_sdxl(tmp_path / "sdxl"), device="cpu", steps=2)
    assert type(ed).__name__ == "StableDiffusionXLEditor"
    with UNetCalls(ed.pipe.unet) as calls:
        ed.inpaint(scene[None], BOX, ["a cat"], torch.Generator().manual_seed(0))
    full = timesteps(ed, "default", 2)
    assert calls.timesteps == full and len(full) == 2
