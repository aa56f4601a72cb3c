"""The compiled core never crashes, and never reports a NaN gradient as converged.

Calls that once crashed the interpreter run in a child process, so that a crash
fails the test instead of killing pytest.
"""
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import pycomp
import reference as R
from pycomp import _core


def _run_child(script: str, timeout: float = 120) -> dict:
    """Run ``script`` in a fresh interpreter; it prints one JSON line, which is returned."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"child exited with {proc.returncode}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- #
# None where an array is needed
# --------------------------------------------------------------------------- #
NONE_SCRIPT = """
import json
import numpy as np
from pycomp import _core
i = np.array([0, 1, 2]); j = np.array([1, 2, 0]); x = np.ones(3)
calls = {
    "local_variance curv": lambda: _core.local_variance(i, j, None, x),
    "local_variance prior": lambda: _core.local_variance(i, j, x, None),
    "local_variance i": lambda: _core.local_variance(None, j, x, x),
    "local_variance j": lambda: _core.local_variance(i, None, x, x),
    "objective scores": lambda: _core.objective(i, j, None, None, None),
    "objective i": lambda: _core.objective(None, j, None, None, x),
    "solve_bt i": lambda: _core.solve_bt(None, j),
    "solve_bt j": lambda: _core.solve_bt(i, None),
    "solve_gaussian i": lambda: _core.solve_gaussian(None, j),
    "components j": lambda: _core.components(i, None),
    "solve_bt p w": lambda: _core.solve_bt(i, j, None, None),
    "solve_gaussian p w": lambda: _core.solve_gaussian(i, j, None, None),
    "components w": lambda: _core.components(i, j, None),
}
out = {}
for name, call in calls.items():
    try:
        call()
        out[name] = ["ok", ""]
    except Exception as e:
        out[name] = [type(e).__name__, str(e)]
print(json.dumps(out))
"""

NONE_EXPECTED = {
    "local_variance curv": ("TypeError", "curv must be a float array with one curvature per comparison, got None"),
    "local_variance prior": ("ValueError", "prior must be a float array of length n_items = 3"),
    "local_variance i": ("TypeError", "i must be a numpy array, got NoneType"),
    "local_variance j": ("TypeError", "j must be a numpy array, got NoneType"),
    "objective scores": ("ValueError", "scores must be a float array of length n_items = 3"),
    "objective i": ("TypeError", "i must be a numpy array, got NoneType"),
    "solve_bt i": ("TypeError", "i must be a numpy array, got NoneType"),
    "solve_bt j": ("TypeError", "j must be a numpy array, got NoneType"),
    "solve_gaussian i": ("TypeError", "i must be a numpy array, got NoneType"),
    "components j": ("TypeError", "j must be a numpy array, got NoneType"),
    "solve_bt p w": ("ok", ""),  # None means "i won" and "weight 1"
    "solve_gaussian p w": ("ok", ""),
    "components w": ("ok", ""),
}


def test_none_arrays_raise_naming_the_argument_instead_of_crashing():
    got = _run_child(NONE_SCRIPT)
    assert {k: tuple(v) for k, v in got.items()} == NONE_EXPECTED


def test_local_variance_names_curv_in_its_value_errors():
    i, j, prior = np.array([0, 1]), np.array([1, 2]), np.ones(3)
    with pytest.raises(ValueError, match=r"^curv\[1\] = -1 \(comparison 1, 0-based\) is not allowed: curv must be"):
        _core.local_variance(i, j, np.array([1.0, -1.0]), prior)
    with pytest.raises(ValueError, match=r"^curv has length 1 but i has length 2$"):
        _core.local_variance(i, j, np.array([1.0]), prior)


# --------------------------------------------------------------------------- #
# a NaN gradient is never "converged"
# --------------------------------------------------------------------------- #
def _overflowing():
    """Two items, a beat b 3 times and lost twice, every weight 1e308.

    Each item's summed weight overflows to inf, so the gradient pass computes
    inf - inf = NaN. The optimum itself is finite: s_a - s_b = log(3/2) (the prior,
    of weight 1 against 5e308, is negligible), so scores of 0 are wrong.
    """
    c = R.Comparisons.make([0] * 5, [1] * 5, [1.0, 1.0, 1.0, 0.0, 0.0], np.full(5, 1e308))
    optimum = np.array([0.5, -0.5]) * np.log(1.5)
    return c, optimum


@pytest.mark.parametrize("method", ["newton", "mm", "newman"])
def test_overflowing_gradient_is_not_reported_converged(method):
    c, optimum = _overflowing()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sol = pycomp.solve(**c.kwargs(), alpha=1.0, method=method)
    nonconv = [w for w in rec if issubclass(w.category, pycomp.ConvergenceWarning)]
    if sol.converged:
        # Newman's update never forms the overflowing sums: its answer must then be right.
        R.assert_close(sol.scores, optimum, atol=1e-9)
        assert np.isfinite(sol.grad_norm) and not nonconv
    else:
        assert len(nonconv) == 1
        assert "the gradient of the objective is NaN" in str(nonconv[0].message)
        assert np.isnan(sol.grad_norm)


@pytest.mark.parametrize("method", ["newton", "mm"])
def test_core_reports_the_nan_gradient_norm(method):
    c, _ = _overflowing()
    res = _core.solve_bt(c.i, c.j, c.p, c.w, None, method, 1.0, 1e-8, 100, 0)
    assert res["converged"] is False
    assert np.isnan(res["grad_norm"])
    assert res["n_iter"] == 0  # nothing to gain from iterating on NaN


# --------------------------------------------------------------------------- #
# n_threads
# --------------------------------------------------------------------------- #
THREADS_SCRIPT = """
import json
import numpy as np
import pycomp
from pycomp import _core
rng = np.random.default_rng(5)
i = rng.integers(0, 40, 300); j = (i + rng.integers(1, 40, 300)) % 40; p = rng.uniform(0, 1, 300)
out = {}
for n_threads in (1, 100_000, 2**40):
    bt = pycomp.solve(i, j, p, n_threads=n_threads, return_se=True, se_method="local")
    ga = pycomp.solve(i, j, p, model="gaussian", n_threads=n_threads)
    core = _core.solve_bt(i, j, p, None, None, "mm", 1.0, 1e-8, 10000, min(n_threads, 2**31 - 1))
    out[str(n_threads)] = [bt.scores.tolist(), bt.se.tolist(), ga.scores.tolist(), core["scores"].tolist()]
print(json.dumps(out))
"""


def test_huge_thread_counts_are_capped_and_give_the_same_results():
    out = _run_child(THREADS_SCRIPT, timeout=300)
    # the results do not depend on the thread count, bit for bit
    assert out["100000"] == out["1"]
    assert out["1099511627776"] == out["1"]


@pytest.mark.parametrize("call", ["solve", "local_variance", "solve_bt", "objective"])
def test_negative_thread_count_is_rejected(call):
    i, j, x = np.array([0, 1, 2]), np.array([1, 2, 0]), np.ones(3)
    calls = {
        "solve": lambda: pycomp.solve(i, j, n_threads=-1),
        "local_variance": lambda: _core.local_variance(i, j, x, x, None, -1),
        "solve_bt": lambda: _core.solve_bt(i, j, None, None, None, "newton", 1.0, 1e-8, 100, -2),
        "objective": lambda: _core.objective(i, j, None, None, x, n_threads=-3),
    }
    with pytest.raises(ValueError, match=r"^n_threads = -\d is not allowed"):
        calls[call]()


# --------------------------------------------------------------------------- #
# 32-bit block arithmetic of the item loops
# --------------------------------------------------------------------------- #
@pytest.mark.slow
def test_item_loop_reaches_the_largest_item_count():
    """n_items = 2^31 - 1, the largest allowed: for_items' block count once overflowed int32.

    The scores are zeros that numpy maps lazily (no memory is touched but page tables),
    so the pass reads 16 GiB of zero pages in a few seconds.
    """
    n = 2**31 - 1
    try:
        scores = np.zeros(n)
    except MemoryError:
        pytest.skip("no room for 16 GiB of address space")
    # PoE-Gaussian at s = 0: each comparison contributes 1/2 (0 + 0.5 - 1)^2, the prior 0.
    value = _core.objective(np.array([0, n - 1]), np.array([n - 2, 0]), None, None, scores, n,
                            model="gaussian", alpha=1.0, beta=0.5, n_threads=2)
    assert value == 0.25
