"""Errors that tell the user what to do.

Every error lrlib raises on bad input is a subclass of `LRError` (itself a `ValueError`, so code
that already catches `ValueError` keeps working). The message always ends with the fix.
"""


class LRError(ValueError):
    """Base class: bad input or an impossible setting, with the fix in the message."""


class CheckpointUnavailableError(LRError, OSError):
    """A pretrained checkpoint could not be loaded (offline hub, wrong id, missing folder)."""


def checkpoint_error(kind: str, name: str, exc: BaseException | None = None,
                     option: str | None = None) -> CheckpointUnavailableError:
    """Build the one message we show for every model we cannot load.

    `kind` is what the model is for ("DINO", "CLIP", "Stable Diffusion inpainting", "MaskGIT"),
    `name` the id or path we tried, `option` the LRConfig field that selects it (its command-line
    flag is the same name with dashes: sd_model -> --sd-model).
    """
    import os

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    why = ("HF_HUB_OFFLINE is set and it is not in the local cache" if offline
           else "it is not a local folder and the Hugging Face Hub could not be reached "
                "(no network, or the id is wrong)")
    opt = (f"LRConfig({option}='path/to/folder') (on the command line: "
           f"--{option.replace('_', '-')} path/to/folder)" if option else "a local folder path")
    msg = (f"Could not load the {kind} checkpoint '{name}': {why}.\n"
           f"To fix it: connect to the internet once so it is downloaded and cached "
           f"(unset HF_HUB_OFFLINE), or download it elsewhere and pass a local folder with "
           f"{opt}, or run on the shipped toy world: LRConfig(world='toy') "
           f"(command line: LRLIB_WORLD=toy).")
    if exc is not None:
        msg += f"\n(underlying error: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''})"
    return CheckpointUnavailableError(msg)
