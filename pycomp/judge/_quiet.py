"""Keep third-party chatter that is not the user's concern off the terminal.

Each silencer is scoped to a block of pycomp's own code (loading a model,
importing an optional library); warnings raised by the user's code stay
visible. Set ``PYCOMP_VERBOSE=1`` to keep everything.
"""
from __future__ import annotations

import contextlib
import logging
import os
import warnings

# bitsandbytes logs this at import on CPUs with AVX512-BF16 when the optional
# `kernels` package is absent; it then uses its own CPU kernels, so nothing failed.
BITSANDBYTES_KERNEL_NOTICE = "Failed to load CPU gemm_4bit_forward from kernels-community"
_BITSANDBYTES_CPU_LOGGER = "bitsandbytes.backends.cpu.ops"


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


@contextlib.contextmanager
def no_bitsandbytes_kernel_notice():
    """Drop bitsandbytes' "Failed to load CPU gemm_4bit_forward" notice inside the block.

    Wrap imports of bitsandbytes, or of peft (which imports bitsandbytes when
    it is installed). Only that one message of that one logger is dropped;
    set ``PYCOMP_VERBOSE=1`` to keep it.
    """
    if os.environ.get("PYCOMP_VERBOSE"):
        yield
        return
    logger = logging.getLogger(_BITSANDBYTES_CPU_LOGGER)

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(BITSANDBYTES_KERNEL_NOTICE)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


@contextlib.contextmanager
def quiet_peft():
    """Import and apply peft without its third-party chatter inside the block.

    Drops bitsandbytes' kernel notice (peft imports bitsandbytes) and the
    ``FutureWarning`` transformers raises when peft reads the deprecated
    ``is_gradient_checkpointing``; every other warning passes.
    """
    if os.environ.get("PYCOMP_VERBOSE"):
        yield
        return
    with no_bitsandbytes_kernel_notice(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield
