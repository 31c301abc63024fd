"""Loading the four models, in one place: DINO (timm), CLIP (open_clip), and an editor (diffusers).

Each accepts a public id (downloaded and cached by the Hugging Face Hub on first use) or a local
folder. When neither works (offline, HF_HUB_OFFLINE=1, wrong id, missing folder), the error names
the checkpoint and says how to fix it (lrlib.errors.checkpoint_error).

    models = load_models(LRConfig())            # real checkpoints, CUDA if present
    models = load_models(LRConfig.cpu())        # the shipped toy world, CPU

Loaded models are cached per (kind, name, device), so repeated edits (widgets, batch runs) do
not reload them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from lrlib.anchors import Dino
from lrlib.clip import Clip
from lrlib.config import LRConfig
from lrlib.editors.base import Editor, EditorSettings
from lrlib.errors import REPLACED_IDS, LRError, checkpoint_error
from lrlib.worlds import model_sources

_CACHE: dict[tuple, object] = {}


def pick_device(pref: str = "auto") -> torch.device:
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(pref)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LRError(f"device={pref!r} was asked for but no CUDA GPU is visible; use device='auto' "
                      "or 'cpu' (slow with real checkpoints), or run on a GPU machine / Colab.")
    return dev


def _cached(key, build):
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def load_dino(name: str, device="cpu", size: int | None = None) -> Dino:
    """timm id (e.g. 'vit_base_patch16_224.dino') or a folder saved by timm.models.save_for_hf,
    fed at `size` px (None: the model's own input size; see `Dino` for why 448)."""
    import timm

    def build():
        local = Path(name).is_dir()
        try:
            vit = timm.create_model(f"local-dir:{name}" if local else name, pretrained=True,
                                    num_classes=0)
        except Exception as e:
            raise checkpoint_error("DINO", name, e, option="dino") from e
        return Dino(vit, size).to(device)
    return _cached(("dino", name, size, str(device)), build)


def clip_arch_kwargs(name: str, pretrained: str | None) -> dict:
    """What the pretrained weights need of the architecture. The OpenAI CLIP weights were trained
    with QuickGELU, x * sigmoid(1.702 x); open_clip's `ViT-B-16` config builds GELU, and loading
    `openai` weights into it only warns. open_clip's pretrained config says which
    (`quick_gelu: True`), so build what it asks for."""
    import open_clip

    if not pretrained:
        return {}
    cfg = open_clip.pretrained.get_pretrained_cfg(name, pretrained) or {}
    return {"force_quick_gelu": True} if cfg.get("quick_gelu", False) else {}


def clip_model(name: str, pretrained: str | None, weights: bool = True):
    """The open_clip model for an architecture + pretrained tag (or a local folder), built as
    the weights need (`clip_arch_kwargs`); weights=False builds the same network, randomly
    initialised (what the tests check without a download)."""
    import open_clip

    if Path(name).is_dir():
        return open_clip.create_model(f"local-dir:{name}", pretrained=None, load_weights=weights)
    return open_clip.create_model(name, pretrained=pretrained if weights else None,
                                  **clip_arch_kwargs(name, pretrained))


def load_clip(name: str, pretrained: str | None = "openai", device="cpu") -> Clip:
    """open_clip architecture + pretrained tag (e.g. 'ViT-B-16', 'openai': built with QuickGELU,
    as those weights need) or a folder holding open_clip_config.json and
    open_clip_model.safetensors."""
    import open_clip

    def build():
        local = Path(name).is_dir()
        model_id = f"local-dir:{name}" if local else name
        try:
            model = clip_model(name, pretrained)
            tok = open_clip.get_tokenizer(model_id)
        except Exception as e:
            raise checkpoint_error("CLIP", f"{name}" + ("" if local else f" ({pretrained})"), e,
                                   option="clip") from e
        pc = getattr(model.visual, "preprocess_cfg", {}) or {}
        mean = pc.get("mean", (0.48145466, 0.4578275, 0.40821073))
        std = pc.get("std", (0.26862954, 0.26130258, 0.27577711))
        return Clip(model, tok, mean, std).to(device)
    return _cached(("clip", name, pretrained, str(device)), build)


def editor_dtype(cfg: LRConfig, device) -> torch.dtype:
    """fp16 on CUDA and fp32 on CPU by default; bf16 / fp16 / fp32 when asked."""
    if cfg.dtype == "auto":
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    return getattr(torch, cfg.dtype)


def replacement_id(name: str) -> str:
    """A hub id that was removed (lrlib.errors.REPLACED_IDS) -> the id that serves the same
    weights, with a warning; unless it is in the local Hugging Face cache (then it still loads)."""
    new = REPLACED_IDS.get(name)
    if new is None:
        return name
    from huggingface_hub import try_to_load_from_cache
    if isinstance(try_to_load_from_cache(name, "model_index.json"), str):
        return name
    warnings.warn(f"'{name}' was removed from the Hugging Face Hub; loading '{new}' (the same "
                  f"weights) instead. Pass LRConfig(sd_model='{new}') to silence this.", stacklevel=3)
    return new


def load_editor(cfg: LRConfig, device="cpu", name: str | None = None) -> Editor:
    """The editor cfg.editor ('sd' | 'maskgit') from cfg.sd_model / cfg.maskgit_model (or `name`),
    in cfg.dtype. An SD checkpoint whose model_index.json names an SDXL pipeline gets the SDXL
    editor (lrlib.editors.sdxl). diffusers uses PyTorch's fused scaled-dot-product attention (flash /
    memory-efficient kernels on CUDA) by default.

    The weights are loaded once per (checkpoint, device, dtype, LoRA) and cached; what is returned
    is a light view of them whose calls without settings run cfg's sampler settings
    (`EditorSettings.from_config(cfg)`, see `Editor.with_defaults`). The cached editor itself is
    never changed, so a later load_editor with other settings leaves the editors returned before
    as they were."""
    dtype = editor_dtype(cfg, device)
    if cfg.editor == "sd":
        from lrlib.editors.load import load_sd_editor
        name = replacement_id(name or cfg.sd_model)

        def build():
            ed = load_sd_editor(name, device=device, dtype=dtype)
            return ed.load_lora(cfg.lora) if cfg.lora else ed   # a weight change: in the key
        ed = _cached(("sd", name, str(device), dtype, cfg.lora), build)
    else:
        from lrlib.editors.maskgit import MaskGITEditor
        name = name or cfg.maskgit_model
        ed = _cached(("maskgit", name, str(device), dtype),
                     lambda: MaskGITEditor.from_pretrained(name, device=device, dtype=dtype))
    keep_only_on_gpu(ed)
    return ed.with_defaults(EditorSettings.from_config(cfg))


def keep_only_on_gpu(editor: Editor) -> None:
    """GPU memory for one editor at a time: when `editor` lives on a CUDA device, every other
    cached editor that lives on one is moved to the CPU (its weights stay cached; its next call
    moves them back, `Editor.place`), and `editor` is put back on its device if it was moved."""
    if torch.device(getattr(editor, "device", "cpu")).type != "cuda":
        return
    moved = False
    for other in _CACHE.values():
        if isinstance(other, Editor) and other is not editor \
                and torch.device(getattr(other, "device", "cpu")).type == "cuda":
            other.offload()
            moved = True
    editor.place()
    if moved:
        torch.cuda.empty_cache()


@dataclass
class Models:
    dino: Dino | None
    clip: Clip | None
    editor: Editor | None
    device: torch.device
    world: str


def load_models(cfg: LRConfig, parts=("dino", "clip", "editor")) -> Models:
    """The models the config asks for (`lrlib.worlds.model_sources`): real checkpoints, the
    shipped toy world, or small random-weight stand-ins (built once, cached on disk). `parts`
    limits what is loaded (e.g. a notebook about anchors needs no editor); the others are None."""
    cfg.validate()
    device = pick_device(cfg.device)
    src = model_sources(cfg, parts)                       # ids or folders, per cfg.world
    if cfg.world == "real" and device.type == "cpu":
        warnings.warn("running real checkpoints on the CPU: expect minutes to hours per edit. "
                      "Use a CUDA GPU (e.g. Colab), or --world toy / LRConfig.cpu() for the small "
                      "CPU world.", stacklevel=2)
    # the toy and random DINOs keep the size they were built / trained at
    dino_size = cfg.dino_size if cfg.world == "real" else None
    return Models(dino=load_dino(src["dino"], device, dino_size) if "dino" in parts else None,
                  clip=load_clip(src["clip"], src["clip_pretrained"], device) if "clip" in parts else None,
                  editor=load_editor(cfg, device, src["editor"]) if "editor" in parts else None,
                  device=device, world=cfg.world)


def check_models(models: Models, cfg: LRConfig) -> None:
    """Raise an LRError saying what to do when `models` cannot run `cfg`'s edit: no editor, or an
    editor of another kind than cfg.editor (its settings and the result's record would not match
    what ran)."""
    ed = models.editor
    if ed is None:
        raise LRError("these models have no editor; load them with load_models(cfg) (the "
                      "default parts include 'editor').")
    kind = getattr(ed, "kind", None)
    if kind != cfg.editor:
        raise LRError(f"config.editor={cfg.editor!r} but the models hold a {kind!r} editor; pass "
                      f"models=load_models(config) for this config, or set "
                      f"config.editor={kind!r} to use these models.")
