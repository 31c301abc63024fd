"""Errors that tell the user what to do.

Every error lrlib raises on bad input is a subclass of `LRError` (itself a `ValueError`, so code
that already catches `ValueError` keeps working). The message always ends with the fix.
"""


class LRError(ValueError):
    """Base class: bad input or an impossible setting, with the fix in the message."""


class UnknownSettingError(LRError, TypeError):
    """A setting LRConfig does not have (`LRConfig(step=5)`); the message names the closest one.
    A TypeError too, as Python raises for any unexpected keyword argument."""


class CheckpointUnavailableError(LRError, OSError):
    """A pretrained checkpoint could not be loaded (offline hub, wrong id, missing folder)."""


#: hub ids that were removed, and the id that serves the same weights today (late 2026)
REPLACED_IDS = {
    "stabilityai/stable-diffusion-2-inpainting": "sd2-community/stable-diffusion-2-inpainting",
    "runwayml/stable-diffusion-inpainting": "stable-diffusion-v1-5/stable-diffusion-inpainting",
}
#: the editor checkpoints lrlib is built and tested against (by their classes, without weights)
SUPPORTED_SD_IDS = ("sd2-community/stable-diffusion-2-inpainting",
                    "stable-diffusion-v1-5/stable-diffusion-inpainting",
                    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it ("1", "true", "yes", "on"), read now:
    huggingface_hub.constants.HF_HUB_OFFLINE is fixed when the hub library is imported, so a
    notebook that sets the variable afterwards would not be seen."""
    import os
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


def repo_not_found(exc: BaseException | None) -> bool:
    """True if `exc` (or an exception it was raised from) says the hub has no such repository."""
    while exc is not None:
        text = f"{type(exc).__name__} {exc}"
        if ("RepositoryNotFound" in text or "Repository Not Found" in text
                or "is not a valid model identifier" in text):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def checkpoint_error(kind: str, name: str, exc: BaseException | None = None,
                     option: str | None = None) -> CheckpointUnavailableError:
    """Build the one message we show for every model we cannot load.

    `kind` is what the model is for ("DINO", "CLIP", "Stable Diffusion inpainting", "MaskGIT"),
    `name` the id or path we tried, `option` the LRConfig field that selects it (its command-line
    flag is the same name with dashes: sd_model -> --sd-model).
    """
    opt = (f"LRConfig({option}='path/to/folder') (on the command line: "
           f"--{option.replace('_', '-')} path/to/folder)" if option else "a local folder path")
    if repo_not_found(exc):
        new = REPLACED_IDS.get(name)
        fix = (f"LRConfig({option}='{new}') (command line: --{option.replace('_', '-')} {new})"
               if new and option else f"an id that exists, or {opt}")
        msg = (f"Could not load the {kind} checkpoint '{name}': the Hugging Face Hub has no such "
               f"repository{f' (it was removed; {new!r} serves the same weights)' if new else ''}."
               f"\nTo fix it: pass {fix}.")
        if option == "sd_model":
            msg += (" Supported editor checkpoints: " + ", ".join(SUPPORTED_SD_IDS)
                    + " (any SD 1.x / 2.x / SDXL inpainting checkpoint in the diffusers layout).")
    else:
        why = ("HF_HUB_OFFLINE is set and it is not in the local cache" if hub_offline()
               else "it is not a local folder and the Hugging Face Hub could not be reached "
                    "(no network, or the id is wrong)")
        msg = (f"Could not load the {kind} checkpoint '{name}': {why}.\n"
               f"To fix it: connect to the internet once so it is downloaded and cached "
               f"(unset HF_HUB_OFFLINE), or download it elsewhere and pass a local folder with "
               f"{opt}, or run on the shipped toy world: LRConfig(world='toy') "
               f"(command line: --world toy or LRLIB_WORLD=toy).")
    if exc is not None:
        msg += f"\n(underlying error: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''})"
    return CheckpointUnavailableError(msg)
