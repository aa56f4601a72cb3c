"""Shared fixtures for the pycomp CPU test suite."""
import glob
import os
import sys
import warnings


def _test_the_installed_package() -> None:
    """Keep the clone's source folder ``pycomp/`` from shadowing the installed package.

    ``python -m pytest`` (and ``python -c``/``-m`` in a test's subprocess) put the current
    folder first on ``sys.path``; in a clone that folder holds the sources of pycomp without
    the compiled core, so ``import pycomp`` would fail there. An editable install maps
    ``pycomp`` through its own import hook and is not affected.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if glob.glob(os.path.join(root, "pycomp", "_core*")):
        return  # built in place: the source folder is importable
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != root]
    os.environ["PYTHONSAFEPATH"] = "1"  # the same for subprocesses (Python >= 3.11)


_test_the_installed_package()

# CI and dev machines here are small and shared: with libgomp's default (spinning)
# wait policy an oversubscribed 2-core box spends ~100 ms per parallel region.
# Must be set before the compiled core (and libgomp) is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _cuda_present() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


# Triton fixes its interpreter mode when it is first imported, by whichever test
# module comes first: without a GPU the kernels run under the interpreter.
if not _cuda_present():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np
import pytest
from hypothesis import settings

# suite-wide: no deadlines (shared, loaded machines) and reproducible examples;
# each fuzz test sets its own max_examples
settings.register_profile("pycomp", deadline=None, derandomize=True)
settings.load_profile("pycomp")


@pytest.fixture
def rng():
    """A seeded random generator (each test gets a fresh one)."""
    return np.random.default_rng(20240611)


@pytest.fixture
def solve_clean():
    """Call ``pycomp.solve`` and fail on a ConvergenceWarning, or a GraphWarning with ``alpha == 0``.

    (With ``alpha > 0`` the spec neither requires nor forbids a GraphWarning for
    a disconnected graph, so it is not checked here.)

    Returns
    -------
    callable
        ``solve_clean(*args, **kwargs) -> pycomp.Solution``.
    """
    import pycomp

    def run(*args, **kwargs):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            sol = pycomp.solve(*args, **kwargs)
        kinds = (pycomp.ConvergenceWarning,)
        if kwargs.get("alpha", 1.0) == 0:
            kinds += (pycomp.GraphWarning,)
        bad = [w for w in rec if issubclass(w.category, kinds)]
        assert not bad, f"unexpected warnings: {[str(w.message) for w in bad]}"
        return sol

    return run


@pytest.fixture(autouse=True)
def _private_judgement_cache(tmp_path_factory, monkeypatch):
    """Each test its own judgement cache: never the user's, never another test's."""
    monkeypatch.setenv("PYCOMP_CACHE_DIR", str(tmp_path_factory.mktemp("judgement-cache")))
