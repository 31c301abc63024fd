"""Which editor class serves an SD checkpoint: the one place that knows both.

SD 1.x / 2.x inpainting checkpoints run through `StableDiffusionEditor` (lrlib/editors/sd.py),
SDXL inpainting ones through its subclass `StableDiffusionXLEditor` (lrlib/editors/sdxl.py); the
checkpoint's own `model_index.json` says which (its pipeline class name contains "XL"). Kept
apart from both so that neither editor module imports the other's dependant (no import cycle).
"""
from __future__ import annotations

from lrlib.editors.sd import DEFAULT_SD, StableDiffusionEditor, pipeline_class_name
from lrlib.editors.sdxl import StableDiffusionXLEditor
from lrlib.errors import checkpoint_error


def load_sd_editor(name_or_path: str = DEFAULT_SD, device=None, dtype=None,
                   **kwargs) -> "StableDiffusionEditor":
    """The right editor for an SD checkpoint: SDXL ones (their pipeline class says "XL") by
    `StableDiffusionXLEditor`, SD 1.x / 2.x by `StableDiffusionEditor`."""
    try:
        xl = "XL" in pipeline_class_name(str(name_or_path))
    except Exception as e:
        raise checkpoint_error("Stable Diffusion inpainting", str(name_or_path), e,
                               option="sd_model") from e
    if xl:
        return StableDiffusionXLEditor.from_pretrained(name_or_path, device, dtype, **kwargs)
    return StableDiffusionEditor.from_pretrained(name_or_path, device, dtype, **kwargs)
