"""Fixtures for the judge fine-tuning tests (tests/train).

The LLM tests load the real SmolLM2-135M-Instruct once per session (fetched
into the pycomp cache first: ``pycomp models fetch smollm2-135m``) and give
every test a fresh deep copy, since LoRA adapters are injected into a model in
place. If the model cannot be loaded the tests fail loudly rather than skip.
"""
import copy
import os

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread during these tests (a shared 2-core machine runs small models ~3x faster so)."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def base_model():
    """(model, tokenizer, info) of SmolLM2-135M on CPU in float32, loaded once."""
    from pycomp.train.model import load_base_model

    try:
        return load_base_model("smollm2-135m", device="cpu", quantization="none")
    except Exception as exc:  # noqa: BLE001 - any fetch/load failure fails loudly
        pytest.fail(
            f"could not load SmolLM2-135M ({type(exc).__name__}: {exc}); run `pycomp models fetch smollm2-135m` "
            f"(cache: {os.environ.get('PYCOMP_CACHE', '~/.cache/pycomp')})",
            pytrace=False,
        )


@pytest.fixture
def fresh_base(base_model):
    """A deep copy of the base model (adapters get injected into it), with the shared tokenizer."""
    model, tokenizer, info = base_model
    return copy.deepcopy(model), tokenizer, dict(info)


@pytest.fixture
def tiny_items():
    """Two groups of three short texts with clearly ordered gold scores."""
    import pandas as pd

    rows = []
    for g, topic in enumerate(["The film", "The meal"]):
        for level, word in ((1, "awful"), (3, "fine"), (5, "wonderful")):
            rows.append({"id": f"{g}-{level}", "text": f"{topic} was {word}.", "gold": float(level),
                         "group": f"g{g}"})
    return pd.DataFrame(rows)

