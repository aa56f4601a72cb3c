"""device="thrust": the CUDA backend's Thrust source, run by Thrust's OpenMP system, against
the NumPy reference (tests/reference.py) and the CPU backend."""
import warnings

import numpy as np
import pytest

import pycomp
import reference as R
from pycomp._native import core

pytestmark = pytest.mark.skipif(
    not pycomp.build_info().get("thrust", False),
    reason="device='thrust' is not part of this build (CCCL headers not found at build time)",
)

ATOL = 1e-6  # max |score - reference optimum|, as for the CPU backend
METHODS = ["newton", "mm", "newman"]
MAX_ITER = 200_000


def _disconnected(rng):
    a = R.random_comparisons(rng, 8, 20, "soft")
    b = R.random_comparisons(rng, 7, 20, "soft", weighted=True)
    return R.Comparisons(
        np.concatenate([a.i, b.i + 8]), np.concatenate([a.j, b.j + 8]), np.concatenate([a.p, b.p]),
        np.concatenate([a.w, b.w]), 15,
    )


def _zero_weights(rng):
    c = R.random_comparisons(rng, 13, 50, "mixed", weighted=True)
    w = c.w.copy()
    w[rng.random(w.size) < 0.2] = 0.0
    w[: c.n_items - 1] = 1.0  # keep the spanning path
    return R.Comparisons(c.i, c.j, c.p, w, c.n_items)


def _duplicates(rng):
    base = R.random_comparisons(rng, 12, 30, "soft")
    i = np.concatenate([base.i, base.i, base.j])
    j = np.concatenate([base.j, base.j, base.i])
    p = np.concatenate([base.p, rng.uniform(0.05, 0.95, base.p.size), 1.0 - base.p])
    return R.Comparisons.make(i, j, p)


def _skewed(rng):
    # 5 items, 100k comparisons: every row of the by-item graph holds ~40k entries
    m = 100_000
    true = np.array([1.0, 0.5, 0.0, -0.5, -1.0])
    i = rng.integers(0, 5, m)
    j = (i + rng.integers(1, 5, m)) % 5
    p = (rng.random(m) < 1 / (1 + np.exp(-(true[i] - true[j])))).astype(float)
    return R.Comparisons.make(i, j, p)


CASES = {
    "soft": lambda rng: R.random_comparisons(rng, 30, 90, "soft"),
    "hard": lambda rng: R.random_comparisons(rng, 20, 160, "hard", spread=0.8),
    "weighted": lambda rng: R.random_comparisons(rng, 25, 80, "soft", weighted=True),
    "mixed_ties": lambda rng: R.random_comparisons(rng, 23, 80, "mixed", weighted=True),
    "prime_n": lambda rng: R.random_comparisons(rng, 31, 62, "soft", spread=3.0),
    "two_items": lambda rng: R.Comparisons.make([0, 1, 0], [1, 0, 1], [1.0, 1.0, 0.0]),
    "isolated_extra": lambda rng: _isolated(rng),
    "disconnected": _disconnected,
    "zero_weights": _zero_weights,
    "duplicates": _duplicates,
    "skewed_5_items": _skewed,
}


def _isolated(rng):
    c = R.random_comparisons(rng, 10, 30, "soft")
    return R.Comparisons(c.i, c.j, c.p, c.w, 14)  # items 10..13 never compared


def _case(name):
    return CASES[name](np.random.default_rng(7))


def _solve(c, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.GraphWarning)
        return pycomp.solve(**c.kwargs(), **kw)


# --------------------------------------------------------------------------- #
# PoE-BT
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("alpha", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("name", sorted(CASES))
def test_bt_matches_reference_and_cpu(name, alpha, method):
    c = _case(name)
    if alpha == 0 and not R.bt_mle_exists(c):
        pytest.skip("no MLE with alpha = 0 (the error is tested below)")
    if name == "skewed_5_items" and method != "newton":
        pytest.skip("MM and Newman need more than 10^4 sweeps here, on the CPU backend too; newton covers it")
    ref = R.bt_solve(c, alpha)
    tol = max(R.fair_tol(R.bt_hessian(ref, c, alpha), ATOL, alpha), 1e-12)
    if name == "skewed_5_items":
        # fair_tol's pinv keeps the Laplacian's rounding-level eigenvalue here (||H^+|| ~ 1e12).
        # A row of ~40k entries is summed in order by the segmented reduction, which bounds
        # the gradient's accuracy near 1e-8; 1e-7 is ~1e-11 in the scores (curvature ~1e4)
        tol = 1e-7
    sol = _solve(c, alpha=alpha, method=method, tol=tol, max_iter=MAX_ITER, device="thrust")
    assert sol.device == "thrust" and sol.method == method
    assert sol.converged and sol.grad_norm <= tol
    R.assert_close(sol.scores, ref, atol=ATOL, what="thrust scores vs reference")
    gn = float(np.max(np.abs(R.bt_gradient(sol.scores, c, alpha))))
    assert abs(sol.grad_norm - gn) <= (1e-8 if name == "skewed_5_items" else 1e-9) + 1e-6 * gn
    assert sol.objective == pytest.approx(R.bt_objective(sol.scores, c, alpha), rel=1e-10, abs=1e-12)
    labels = R.components(c)
    assert R.same_partition(sol.labels, labels)
    assert sol.n_components == np.unique(labels).size
    cpu = _solve(c, alpha=alpha, method=method, tol=tol, max_iter=MAX_ITER, device="cpu")
    R.assert_close(sol.scores, cpu.scores, atol=ATOL, what="thrust vs cpu")
    np.testing.assert_array_equal(sol.labels, cpu.labels)  # both number components by first item
    if alpha == 0:
        for lab in np.unique(labels):
            assert abs(sol.scores[labels == lab].mean()) <= 1e-12 * max(1.0, np.abs(sol.scores).max()) + 1e-13


def test_isolated_items_get_exactly_zero():
    c = _case("isolated_extra")
    sol = _solve(c, alpha=0.5, device="thrust")
    assert np.all(sol.scores[10:] == 0.0)
    assert sol.n_components == 5


@pytest.mark.parametrize("method", METHODS)
def test_larger_graph_matches_cpu(method):
    c = R.random_comparisons(np.random.default_rng(6), 3001, 12007, "mixed", weighted=True)
    a = _solve(c, alpha=0.5, method=method, tol=1e-10, max_iter=MAX_ITER, device="thrust")
    b = _solve(c, alpha=0.5, method=method, tol=1e-10, max_iter=MAX_ITER, device="cpu")
    R.assert_close(a.scores, b.scores, atol=ATOL)
    assert np.max(np.abs(R.bt_gradient(a.scores, c, 0.5))) <= 1e-10 * 1.01


def test_long_path_components():
    # a path through 5001 items in shuffled order, plus a separate 3-cycle: label
    # propagation must carry the smallest item along the whole path
    rng = np.random.default_rng(11)
    perm = rng.permutation(5001)
    i = np.concatenate([perm[:-1], [5001, 5002, 5003]])
    j = np.concatenate([perm[1:], [5002, 5003, 5001]])
    labels, k = core().device_components("thrust", i, j, None, 5004)
    ref_labels, ref_k = core().components(i, j, None, 5004)
    assert k == ref_k == 2
    np.testing.assert_array_equal(labels, ref_labels)


def test_zero_weight_comparisons_do_not_connect():
    i, j = np.array([0, 1, 2]), np.array([1, 2, 3])
    w = np.array([1.0, 0.0, 1.0])
    labels, k = core().device_components("thrust", i, j, w, None)
    assert k == 2
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])


def test_alpha_zero_without_optimum_raises_the_cpu_error():
    c = R.Comparisons.make([0, 1, 2, 3], [1, 2, 3, 4])  # a chain of hard wins
    errors = []
    for device in ("cpu", "thrust"):
        with pytest.raises(pycomp.NoOptimumError) as info:
            pycomp.solve(**c.kwargs(), alpha=0.0, device=device)
        errors.append(info.value)
    assert str(errors[0]) == str(errors[1])
    np.testing.assert_array_equal(errors[0].items, errors[1].items)


# --------------------------------------------------------------------------- #
# PoE-Gaussian
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("beta", [0.5, 0.3])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gaussian_matches_reference_and_cpu(name, alpha, beta):
    c = _case(name)
    ref = R.gaussian_solve(c, alpha, beta)
    # rows of ~40k entries summed in order: the gradient is exact to ~1e-8 there (see above)
    tol = 1e-7 if name == "skewed_5_items" else 1e-11
    sol = _solve(c, model="gaussian", alpha=alpha, beta=beta, tol=tol, max_iter=MAX_ITER, device="thrust")
    assert sol.device == "thrust" and sol.method == "cg" and sol.converged
    R.assert_close(sol.scores, ref, atol=ATOL, what="thrust Gaussian vs reference")
    assert sol.objective == pytest.approx(R.gaussian_objective(sol.scores, c, alpha, beta), rel=1e-10, abs=1e-12)
    gn = float(np.max(np.abs(R.gaussian_gradient(sol.scores, c, alpha, beta))))
    assert abs(sol.grad_norm - gn) <= (1e-8 if name == "skewed_5_items" else 1e-9) + 1e-6 * gn
    if beta == 0.5:
        # With beta != 0.5 and hard outcomes the CPU backend's PoE-Gaussian disagrees with the
        # reference (a higher objective; 5 items / 300 comparisons suffice): compared with
        # the reference only, above, until that is fixed.
        cpu = _solve(c, model="gaussian", alpha=alpha, beta=beta, tol=tol, max_iter=MAX_ITER, device="cpu")
        R.assert_close(sol.scores, cpu.scores, atol=ATOL, what="thrust vs cpu")


# --------------------------------------------------------------------------- #
# standard errors
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("se_method", ["exact", "local"])
@pytest.mark.parametrize("model", ["bt", "gaussian"])
@pytest.mark.parametrize("name", ["soft", "disconnected", "zero_weights", "duplicates"])
def test_standard_errors_match_cpu(name, model, se_method):
    c = _case(name)
    kw = dict(model=model, alpha=0.7, tol=1e-11, return_se=True, se_method=se_method)
    a = _solve(c, device="thrust", **kw)
    b = _solve(c, device="cpu", **kw)
    assert a.se_method == b.se_method == se_method
    R.assert_close(a.se, b.se, atol=1e-8, rtol=1e-7, what="thrust vs cpu se")


def test_curvature_and_local_variance_match_reference():
    c = _case("mixed_ties")
    s = R.bt_solve(c, 0.4)
    curv, prior = core().device_bt_curvature("thrust", c.i, c.j, s, c.w, 0.4)
    d = s[c.i] - s[c.j]
    q = 1 / (1 + np.exp(-d))
    R.assert_close(curv, c.w * q * (1 - q), atol=1e-15, rtol=1e-12, what="curvature")
    e = 1 / (1 + np.exp(-s))
    R.assert_close(prior, 0.8 * e * (1 - e), atol=1e-15, rtol=1e-12, what="prior curvature")
    var = core().device_local_variance("thrust", c.i, c.j, curv, prior, c.n_items)
    R.assert_close(np.sqrt(var), R.bt_se_local(s, c, 0.4), atol=1e-12, rtol=1e-10, what="local se")


# --------------------------------------------------------------------------- #
# devices and bad input
# --------------------------------------------------------------------------- #
def test_auto_never_picks_thrust():
    c = _case("soft")
    assert pycomp.solve(**c.kwargs(), device="auto").device in ("cpu", "cuda")


BAD_INPUTS = {
    "index_out_of_range": dict(i=[0, 1, 5], j=[1, 2, 0], n_items=4),
    "negative_index": dict(i=[0, -1, 2], j=[1, 2, 0]),
    "j_out_of_range": dict(i=[0, 1, 2], j=[1, 2, 9], n_items=3),
    "self_comparison": dict(i=[0, 1, 2], j=[1, 1, 0]),
    "p_nan": dict(i=[0, 1, 2], j=[1, 2, 0], p=[0.5, np.nan, 0.5]),
    "p_above_one": dict(i=[0, 1, 2], j=[1, 2, 0], p=[0.5, 0.2, 1.5]),
    "negative_weight": dict(i=[0, 1, 2], j=[1, 2, 0], weights=[1.0, -2.0, 1.0]),
    "infinite_weight": dict(i=[0, 1, 2], j=[1, 2, 0], weights=[np.inf, 1.0, 1.0]),
    "one_item": dict(i=[0], j=[1], n_items=1),
    "bad_alpha": dict(i=[0, 1], j=[1, 0], alpha=-1.0),
    "float_indices": dict(i=[0.0, 1.0], j=[1.0, 0.0]),
    "length_mismatch": dict(i=[0, 1, 2], j=[1, 0]),
}


def _error_of(fn):
    try:
        fn()
    except Exception as exc:  # the type and text are what is compared
        return type(exc), str(exc)
    raise AssertionError("no error raised")


@pytest.mark.parametrize("model", ["bt", "gaussian"])
@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_gives_the_cpu_error(name, model):
    kw = dict(BAD_INPUTS[name], model=model)
    cpu = _error_of(lambda: pycomp.solve(**kw, device="cpu"))
    thrust = _error_of(lambda: pycomp.solve(**kw, device="thrust"))
    assert thrust == cpu


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("name", ["index_out_of_range", "negative_index", "j_out_of_range", "self_comparison",
                                  "p_nan", "p_above_one", "negative_weight", "infinite_weight"])
def test_arrays_in_device_memory_are_validated_with_the_cpu_messages(name, index_dtype):
    # device_solve_pointers is the torch-CUDA path; on the OpenMP system its "device
    # memory" is host memory, so the on-device validation runs here too
    kw = BAD_INPUTS[name]
    i = np.asarray(kw["i"], dtype=index_dtype)
    j = np.asarray(kw["j"], dtype=index_dtype)
    p = None if "p" not in kw else np.asarray(kw["p"], dtype=np.float64)
    w = None if "weights" not in kw else np.asarray(kw["weights"], dtype=np.float64)
    n_items = kw.get("n_items")
    cpu = _error_of(lambda: core().solve_bt(i, j, p, w, n_items))

    def on_device():
        ptr = lambda a: 0 if a is None else a.ctypes.data  # noqa: E731
        core().device_solve_pointers("thrust", "bt", ptr(i), ptr(j), ptr(p), ptr(w), i.size, i.itemsize, n_items)

    assert _error_of(on_device) == cpu


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_arrays_in_device_memory_solve_like_numpy(index_dtype):
    c = _case("mixed_ties")
    i, j = c.i.astype(index_dtype), c.j.astype(index_dtype)
    raw = core().device_solve_pointers("thrust", "bt", i.ctypes.data, j.ctypes.data, c.p.ctypes.data,
                                       c.w.ctypes.data, i.size, i.itemsize, None, "newton", 0.3, 0.5, 1e-11)
    ref = R.bt_solve(c, 0.3)
    R.assert_close(raw["scores"], ref, atol=ATOL)


def test_build_info_names_the_thrust_build():
    info = pycomp.build_info()
    assert info["thrust"] is True
    assert info["thrust_version"].startswith("Thrust ") and "OpenMP" in info["thrust_version"]
