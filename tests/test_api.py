"""The API a newcomer discovers: help(lrlib.edit), EditResult, saving toy scenes."""
import dataclasses
import inspect

import numpy as np

import lrlib
from lrlib.config import LRConfig


def test_help_shows_the_real_signature_and_every_parameter():
    """Catches `edit(*args, **kwargs)` (what help() showed) and the wrapper drifting from the
    implementation it calls."""
    import lrlib.pipeline
    assert inspect.signature(lrlib.edit) == inspect.signature(lrlib.pipeline.edit)
    doc = lrlib.edit.__doc__
    for name in inspect.signature(lrlib.edit).parameters:
        assert f"\n    {name} " in doc, name


def test_edit_result_is_exported_and_documents_every_field():
    """Catches a field added to EditResult without a word in its docstring."""
    from lrlib import EditResult
    assert EditResult is lrlib.results.EditResult and "EditResult" in lrlib.__all__
    for f in dataclasses.fields(EditResult):
        assert f.name in EditResult.__doc__, f.name


def test_edit_result_repr_is_short_and_names_what_matters(models, scene):
    """Catches the dataclass repr that printed every tensor and image (13,656 characters)."""
    long = "a blue square with a yellow border " * 8
    r = lrlib.edit(scene, long, config=LRConfig.cpu(progress=False, epochs=1, iters_per_epoch=2),
                   models=models("sd"))
    text = repr(r)
    assert len(text) < 400, len(text)
    for key in ("prompt=", "best=", "box=", "seconds="):
        assert key in text, key
    assert str(r.best_box) in text


def test_toy_scene_saves_in_one_call(tmp_path):
    """Catches a saved scene that is not the scene (wrong channel order, range or rounding)."""
    from lrlib.images import load_image, to_tensor
    from lrlib.toy import render_scene
    scene = render_scene(3, size=64)
    path = scene.save(tmp_path / "scene.png")
    back = to_tensor(load_image(path)).permute(1, 2, 0).numpy()
    assert back.shape == scene.image.shape
    assert np.abs(back - scene.image).max() <= 0.5 / 255 + 1e-6
    assert scene.pil().size == (64, 64)
