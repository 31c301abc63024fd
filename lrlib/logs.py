"""Keep a run's output to lrlib's own progress bars and results (CLI, benchmarks, notebooks)."""
from __future__ import annotations


def quiet_libraries():
    """Keep the CLI's output to lrlib's own progress bars and results."""
    import warnings
    try:
        from diffusers.utils import logging as dlog
        from transformers.utils import logging as tlog
        dlog.set_verbosity_error()
        dlog.disable_progress_bar()
        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    except Exception:  # older versions: noisy but harmless
        pass
    warnings.filterwarnings("ignore", category=FutureWarning)
