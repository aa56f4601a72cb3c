"""Keep transformers' loading chatter (progress bars, info warnings) off the terminal."""
from __future__ import annotations

import contextlib
import os
import warnings


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' progress bars and below-error logging inside the block.

    Set ``PYCOMP_VERBOSE=1`` to keep them.
    """
    if os.environ.get("PYCOMP_VERBOSE"):
        yield
        return
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
