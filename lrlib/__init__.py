"""lrlib: Text-Driven Image Editing via Learnable Regions (Lin et al., CVPR 2024), tested.

    import lrlib
    result = lrlib.edit("photo.jpg", "a bowl of ramen", caption="salad")
    result.save("outputs/ramen")

Stages, one module each: anchors (DINO) -> regions (proposals, ROI-align, RGN, Gumbel) ->
editors (SD inpainting, MaskGIT) -> losses (L_clip, L_dir, L_str) -> train -> scoring.
"""
from lrlib.config import LRConfig
from lrlib.errors import CheckpointUnavailableError, LRError

__version__ = "0.1.0"


def edit(*args, **kwargs):
    """See `lrlib.pipeline.edit`."""
    from lrlib.pipeline import edit as _edit
    return _edit(*args, **kwargs)


__all__ = ["LRConfig", "LRError", "CheckpointUnavailableError", "edit"]
