"""The toy trainers (lrlib/toy/train/): each runs end to end at a tiny size through the command
line's own code, reproducibly, into a folder the runtime loads; the editors' trainers encode
prompts exactly as the editors do; options, schedule and the weights folder behave."""
import json
from pathlib import Path

import pytest
import torch

from lrlib.errors import LRError
from lrlib.toy.__main__ import main as toy_main
from lrlib.toy.train import TRAINERS, trainer
from lrlib.toy.train.common import lr_at, parse_args, save_folder


def tiny_run(name: str, root: Path, *extra: str) -> Path:
    """`python -m lrlib.toy train NAME --tiny ...` into root/out (work files in root/work)."""
    args = ["train", name, "--tiny", "--quiet", "--out", str(root / "out"), *extra]
    if name in ("sd", "maskgit"):
        args += ["--work_dir", str(root / "work")]
    with torch.random.fork_rng():
        assert toy_main(args) == 0
    return root / "out"


@pytest.mark.parametrize("name", TRAINERS)
def test_tiny_run_is_reproducible_and_loads(name, tmp_path):
    """Two `--tiny` runs through the command line write the same bytes, and the folder loads
    through lrlib's own loaders and runs. Catches an unseeded random draw in a trainer or in the
    shared setup (`common.begin`), and a saved folder the runtime cannot load (wrong layout, file
    names, missing tokenizer or editor defaults)."""
    from lrlib.editors.base import EditorSettings
    from lrlib.models import load_clip, load_dino
    from lrlib.toy import benchmark_tasks
    from lrlib.toy.eval_editors import load_editor, task_tensors

    outs = [tiny_run(name, tmp_path / f"run{i}") for i in range(2)]
    weights = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*.safetensors"))
    assert len(weights) == {"clip": 1, "dino": 2, "sd": 3, "maskgit": 3}[name]
    for w in weights:
        assert (outs[0] / w).read_bytes() == (outs[1] / w).read_bytes(), w
    run = json.loads((outs[0] / "training.json").read_text())
    assert run["config"] == {**run["config"], **trainer(name).TrainConfig.TINY}
    if name == "clip":
        c = load_clip(str(outs[0]), None)
        image, text = c.encode_image(torch.rand(1, 3, 32, 32)), c.encode_text(["a red circle"])
        assert image.shape == text.shape == (1, 16)
    elif name == "dino":
        assert load_dino(str(outs[0]))(torch.rand(1, 3, 32, 32)).attn_mean.shape == (1, 2, 2)
    else:
        assert json.loads((outs[0] / "lrlib_editor.json").read_text())["crop_margin"] == 1.5
        ed = load_editor(name, outs[0])
        assert ed.crop_margin == 1.5 and ed.resolution == 32
        x, m = task_tensors(benchmark_tasks(1))
        y = ed.inpaint(x, m, ["a red circle"], torch.Generator().manual_seed(0),
                       settings=EditorSettings(steps=2))
        assert y.shape == x.shape and torch.isfinite(y).all()


def test_maskgit_whole_scene_mode_writes_no_crop(tmp_path):
    """`--resolution 0` trains on whole 64 px scenes: no lrlib_editor.json, so the editor does not
    crop and works at 64 px. Catches a folder that tells the editor to crop although the model
    was trained on whole scenes."""
    from lrlib.toy.eval_editors import load_editor

    out = tiny_run("maskgit", tmp_path, "--resolution", "0")
    assert not (out / "lrlib_editor.json").exists()
    ed = load_editor("maskgit", out)
    assert ed.crop_margin is None and ed.resolution == 64


@pytest.mark.parametrize("kind", ["sd", "maskgit"])
def test_trainer_encodes_prompts_as_the_editor(kind, tiny_dirs):
    """The encoder a trainer builds (one batched, differentiable call) gives the editor's
    conditioning (each prompt on its own, cached) on the same tiny model, for short and long
    (3 chunks) prompts in one batch, and passes the gradient to the text encoder. Catches the
    drift the shared module exists to prevent: a trainer conditioning on the last layer where
    aMUSEd takes the penultimate, padding with zeros instead of the empty prompt's chunk, an
    unweighted pooled mean, or a graph cut by no_grad."""
    from lrlib.editors.maskgit import MaskGITEditor
    from lrlib.editors.sd import StableDiffusionEditor

    cls = StableDiffusionEditor if kind == "sd" else MaskGITEditor
    ed = cls.from_pretrained(tiny_dirs[kind], device="cpu")
    tok, text = (ed.pipe.tokenizer, ed.pipe.text_encoder) if kind == "sd" else \
        (ed.tokenizer, ed.text_encoder)
    long = " ".join(["a red circle left of a blue square on a grey ground"] * 15)
    prompts = ["a red circle", long, "a blue square"]
    want = ed.encode_prompts(prompts)
    text.requires_grad_(True)
    try:
        context, pooled = trainer(kind).prompt_encoder(tok, text)(prompts)
        assert context.shape == want[0].shape and context.shape[1] == 3 * 77
        torch.testing.assert_close(context, want[0], rtol=1e-5, atol=1e-6)
        if kind == "maskgit":
            torch.testing.assert_close(pooled, want[1], rtol=1e-5, atol=1e-6)
            (context.sum() + pooled.sum()).backward()
        else:
            assert pooled is None
            context.sum().backward()
        assert all(p.grad is not None for p in text.parameters() if p.requires_grad)
    finally:
        text.requires_grad_(False)
    # a short prompt is padded with the empty prompt's chunk: the unconditional context's
    uncond = want[1] if kind == "sd" else want[2]
    assert torch.equal(want[0][0, 77:], uncond[0, 77:])


def test_every_field_is_an_option_and_tiny_yields_to_options(capsys):
    """`--<field>` exists for every TrainConfig field, typed; `--tiny` starts from TINY but an
    explicit option wins; booleans read 'false' as False. Catches a field with no option,
    `--tiny` overriding what the user asked for, and `bool('false') == True`."""
    import dataclasses

    for name in TRAINERS:
        mod = trainer(name)
        with pytest.raises(SystemExit):
            parse_args(mod, ["--help"])
        help_text = capsys.readouterr().out
        for f in dataclasses.fields(mod.TrainConfig):
            assert f"--{f.name}" in help_text, (name, f.name)
        cfg, out, quiet = parse_args(mod, ["--tiny", "--steps", "3", "--quiet"])
        assert cfg.steps == 3 and cfg.batch == mod.TrainConfig.TINY["batch"] and quiet
        assert out == str(mod.DEFAULT_OUT) and Path(out).is_dir()  # the shipped folder
        assert parse_args(mod, [])[0] == mod.TrainConfig()
    cfg, _, _ = parse_args(trainer("dino"), ["--permute_channels", "false"])
    assert cfg.permute_channels is False


def test_lr_warms_up_then_follows_the_cosine_to_its_floor():
    """eta_s = eta (s+1)/W in the warm-up, then eta_min + (eta - eta_min)(1 + cos(pi t))/2.
    Catches a warm-up that starts at 0 or overshoots, and a cosine that ends off its floor."""
    assert lr_at(0, 10, 4, 1.0) == 0.25 and lr_at(3, 10, 4, 1.0) == 1.0
    assert lr_at(4, 10, 4, 1.0) == 1.0                       # the cosine starts at the base rate
    assert lr_at(7, 10, 4, 1.0) == pytest.approx(0.5)         # half way: (1 + cos(pi/2)) / 2
    assert lr_at(10, 10, 4, 1.0, final=0.01) == pytest.approx(0.01)
    lrs = [lr_at(s, 10, 4, 1.0) for s in range(4, 11)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_weights_folder_replaces_only_a_trained_folder(tmp_path):
    """A folder that is not a trainer's output is refused (LRError) and left untouched; a previous
    output is replaced whole, its model card kept. Catches `--out ~/photos` deleting the user's
    files, stale files of an older run surviving, and a retrain losing the card."""
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.png").write_bytes(b"mine")

    def write(folder):
        (folder / "weights.safetensors").write_bytes(b"new")

    with pytest.raises(LRError, match="not a trained model folder"):
        save_folder(mine, write, {"config": {}})
    assert (mine / "cat.png").read_bytes() == b"mine" and not (tmp_path / "photos.tmp").exists()

    old = tmp_path / "model"
    old.mkdir()
    for name, data in (("training.json", "{}"), ("README.md", "card"), ("stale.bin", "old")):
        (old / name).write_text(data)
    assert save_folder(old, write, {"config": {"steps": 2}}) == str(old)
    assert sorted(p.name for p in old.iterdir()) == ["README.md", "training.json",
                                                      "weights.safetensors"]
    assert (old / "README.md").read_text() == "card"
    assert json.loads((old / "training.json").read_text()) == {"config": {"steps": 2}}
    assert not (tmp_path / "model.tmp").exists()
