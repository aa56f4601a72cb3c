"""Fixtures for the judge, planning, metrics and pipeline tests.

The LLM tests load the real SmolLM2-135M-Instruct once per session. The model is
fetched into the pycomp cache on first use (CI runs ``pycomp models fetch
smollm2-135m`` first); if it cannot be fetched the tests fail loudly rather than
skip.
"""
import os

import pytest


@pytest.fixture(scope="session")
def backend():
    """The real SmolLM2-135M judge (CPU, float32), loaded once per test session."""
    from pycomp.judge.transformers_backend import TransformersBackend

    try:
        return TransformersBackend.load("smollm2-135m", device="cpu")
    except Exception as exc:  # noqa: BLE001 - turn any fetch/load failure into a loud failure
        pytest.fail(
            f"could not load the SmolLM2-135M judge ({type(exc).__name__}: {exc}); "
            f"run `pycomp models fetch smollm2-135m` (cache: {os.environ.get('PYCOMP_CACHE', '~/.cache/pycomp')})",
            pytrace=False,
        )


@pytest.fixture
def small_items():
    """Five short, clearly ordered items (gold = sentiment level)."""
    import pandas as pd

    return pd.DataFrame({
        "id": ["a", "b", "c", "d", "e"],
        "text": ["The movie was awful.", "The movie was bad.", "The movie was okay.",
                 "The movie was good.", "The movie was wonderful."],
        "stars": [1, 2, 3, 4, 5],
    })
