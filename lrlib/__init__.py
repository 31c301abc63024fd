"""lrlib: Text-Driven Image Editing via Learnable Regions (Lin et al., CVPR 2024), tested.

    import lrlib
    result = lrlib.edit("photo.jpg", "a bowl of ramen", caption="salad")
    result.save("outputs/ramen")

Stages, one module each: anchors (DINO) -> regions (proposals, ROI-align, RGN, Gumbel) ->
editors (SD inpainting, MaskGIT) -> losses (L_clip, L_dir, L_str) -> train -> scoring.
`help(lrlib.edit)`, `help(lrlib.EditResult)` and `help(lrlib.LRConfig)` document the API.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from lrlib.config import LRConfig
from lrlib.errors import CheckpointUnavailableError, LRError
from lrlib.version import __version__

if TYPE_CHECKING:  # names for the signature only: importing them loads torch
    from lrlib.models import Models
    from lrlib.results import EditResult



def edit(image, prompt: str, caption: str | None = None, config: LRConfig | None = None,
         models: Models | None = None) -> EditResult:
    """Edit `image` so that the region the prompt is about shows `prompt`; no mask needed.

    image    a path, PIL image, numpy array (H, W, 3) or tensor (3, H, W) in [0, 1]; any size
             (worked on at config.size, the editor's resolution by default; the winning box is
             painted again on the input itself at its own resolution, `config.full_res`)
    prompt   what the edited region should show, e.g. "a bowl of ramen" (any length: prompts
             over CLIP's 77 tokens are encoded in chunks, not cut)
    caption  a few words of what is being changed, e.g. "salad". With LRConfig() it chooses the
             anchors (the K of a pool of attention peaks whose regions match it best, others
             pruned), steers L_dir, and enters the ranking (gamma S_dir + delta S_cap); the
             paper's method uses it in L_dir only. Default: config.default_caption ("a photo")
    config   an LRConfig: default LRConfig(), lrlib's method with real checkpoints
             (LRConfig.paper(): the paper's exactly);
             LRConfig.cpu() is the CPU-sized toy world (synthetic shapes only)
    models   lrlib.models.load_models(config), to reuse across edits (default: loaded here)

    Returns an EditResult: `.image` (the edit, input size), `.best_box`, `.scores`,
    `.save(folder)` (final.png, figure.png, result.json, ...), `.figure()`; see
    help(lrlib.EditResult). Bad input raises an LRError before any model is loaded.
    """
    from lrlib.pipeline import edit as _edit
    return _edit(image, prompt, caption=caption, config=config, models=models)


def __getattr__(name):            # EditResult without importing torch at `import lrlib`
    if name == "EditResult":
        from lrlib.results import EditResult
        return EditResult
    raise AttributeError(f"module 'lrlib' has no attribute {name!r}")


__all__ = ["LRConfig", "LRError", "CheckpointUnavailableError", "EditResult", "edit"]
