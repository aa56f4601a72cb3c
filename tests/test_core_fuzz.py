"""Hypothesis fuzz of the compiled core (``pycomp._core``): never crash, never a silent wrong answer."""
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference as R
from pycomp import _core

ALLOWED = (ValueError, TypeError)
MAX_ITER = 100_000
TOL = 1e-8
GRAD_SLACK = 1e-9  # reference gradient at the returned scores may exceed tol by rounding only


def core_bt(i, j, p, w, n_items, method="newton", alpha=1.0, tol=TOL, max_iter=MAX_ITER, n_threads=0):
    return _core.solve_bt(i, j, p, w, n_items, method, alpha, tol, max_iter, n_threads)


def core_gaussian(i, j, p, w, n_items, alpha=1.0, beta=0.5, tol=TOL, max_iter=MAX_ITER, n_threads=0):
    return _core.solve_gaussian(i, j, p, w, n_items, alpha, beta, tol, max_iter, n_threads)


RESULT_KEYS = {"scores", "n_iter", "converged", "grad_norm", "objective", "n_components", "labels"}


# --------------------------------------------------------------------------- #
# strategies
# --------------------------------------------------------------------------- #
@st.composite
def valid_cases(draw, extreme_p=False):
    """Valid core input. Unless ``extreme_p``, soft probabilities stay in [1e-3, 1 - 1e-3]
    (besides exact 0, 0.5, 1): a p like 1e-60 makes the optimum ~140 units away along a
    nearly flat direction, where no gradient tolerance bounds the scores."""
    n = draw(st.integers(2, 12))
    m = draw(st.integers(1, 30))
    i = np.array(draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)), dtype=np.int64)
    shift = np.array(draw(st.lists(st.integers(1, n - 1), min_size=m, max_size=m)), dtype=np.int64)
    j = (i + shift) % n
    soft = st.floats(0.0, 1.0, allow_nan=False) if extreme_p else st.floats(1e-3, 1 - 1e-3)
    prob = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), soft)
    p = np.array(draw(st.lists(prob, min_size=m, max_size=m)), dtype=np.float64)
    weight = st.one_of(st.just(0.0), st.just(1.0), st.floats(1e-3, 5.0))
    w = np.array(draw(st.lists(weight, min_size=m, max_size=m)), dtype=np.float64)
    if not np.any(w > 0):
        w[0] = 1.0
    n_items = n + draw(st.integers(0, 2))  # sometimes isolated items
    idx_dtype = draw(st.sampled_from([np.int32, np.int64]))
    p_none = draw(st.booleans()) and draw(st.booleans())
    w_none = draw(st.booleans()) and draw(st.booleans())
    return dict(
        i=i.astype(idx_dtype), j=j.astype(idx_dtype),
        p=None if p_none else p, w=None if w_none else w, n_items=n_items,
    )


def _ref_comparisons(case):
    return R.Comparisons.make(case["i"], case["j"], case["p"], case["w"], case["n_items"])


def _check_result(res, c, alpha, grad_fn, obj_fn):
    assert RESULT_KEYS <= set(res), set(res)
    s = np.asarray(res["scores"])
    assert s.shape == (c.n_items,) and s.dtype == np.float64
    assert np.all(np.isfinite(s))
    assert bool(res["converged"])
    g = float(np.max(np.abs(grad_fn(s))))
    assert res["grad_norm"] <= TOL
    assert g <= TOL + GRAD_SLACK, g
    assert res["objective"] == pytest.approx(obj_fn(s), rel=1e-9, abs=1e-12)
    labels = R.components(c)
    assert res["n_components"] == np.unique(labels).size
    assert R.same_partition(np.asarray(res["labels"]), labels)


# --------------------------------------------------------------------------- #
# valid input: finite scores, small gradient
# --------------------------------------------------------------------------- #
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(case=valid_cases(), alpha=st.sampled_from([0.0, 0.01, 1.0, 10.0]),
       method=st.sampled_from(["newton", "mm", "newman"]))
def test_core_bt_valid_input(case, alpha, method):
    c = _ref_comparisons(case)
    if alpha == 0 and not R.bt_mle_exists(c):
        with pytest.raises(ValueError, match="alpha"):
            core_bt(**case, method=method, alpha=alpha)
        return
    res = core_bt(**case, method=method, alpha=alpha)
    _check_result(res, c, alpha, lambda s: R.bt_gradient(s, c, alpha), lambda s: R.bt_objective(s, c, alpha))


@settings(max_examples=60)
@given(case=valid_cases(extreme_p=True), alpha=st.sampled_from([0.0, 0.01, 1.0]),
       beta=st.sampled_from([0.5, 0.0, 0.2]))
def test_core_gaussian_valid_input(case, alpha, beta):
    c = _ref_comparisons(case)
    res = core_gaussian(**case, alpha=alpha, beta=beta)
    _check_result(res, c, alpha, lambda s: R.gaussian_gradient(s, c, alpha, beta),
                  lambda s: R.gaussian_objective(s, c, alpha, beta))
    tol = R.fair_tol(R.gaussian_hessian(c, alpha), 1e-6, alpha)
    if tol >= TOL:  # the 1e-8 gradient guarantees 1e-6 on the scores
        R.assert_close(res["scores"], R.gaussian_solve(c, alpha, beta), atol=1e-6)


@settings(max_examples=40)
@given(case=valid_cases(extreme_p=True), alpha=st.sampled_from([0.0, 0.01, 1.0]),
       method=st.sampled_from(["newton", "mm", "newman"]))
def test_core_bt_extreme_probabilities_are_reported_honestly(case, alpha, method):
    """Any p in [0, 1] (1e-60 included): finite scores, and converged/grad_norm tell the truth."""
    c = _ref_comparisons(case)
    if alpha == 0 and not R.bt_mle_exists(c):
        with pytest.raises(ValueError, match="alpha"):
            core_bt(**case, method=method, alpha=alpha, max_iter=2000)
        return
    res = core_bt(**case, method=method, alpha=alpha, max_iter=2000)
    s = np.asarray(res["scores"])
    assert np.all(np.isfinite(s))
    g = float(np.max(np.abs(R.bt_gradient(s, c, alpha))))
    assert res["grad_norm"] == pytest.approx(g, rel=1e-6, abs=1e-9)
    assert bool(res["converged"]) == (res["grad_norm"] <= TOL)


# --------------------------------------------------------------------------- #
# invalid input: ValueError / TypeError naming the row
# --------------------------------------------------------------------------- #
ROW_MUTATIONS = [
    ("i", "out_of_range"), ("j", "out_of_range"), ("i", "negative"), ("j", "negative"),
    ("i", "self"), ("p", "nan"), ("p", "inf"), ("p", "above"), ("p", "below"),
    ("w", "negative"), ("w", "nan"), ("w", "inf"),
]


@settings(max_examples=100)
@given(case=valid_cases(), mutation=st.sampled_from(ROW_MUTATIONS), data=st.data(),
       model=st.sampled_from(["bt", "gaussian"]))
def test_core_rejects_bad_row(case, mutation, data, model):
    field, kind = mutation
    m = case["i"].size
    row = data.draw(st.integers(0, m - 1))
    n = case["n_items"]
    i, j = case["i"].copy(), case["j"].copy()
    p = np.ones(m) if case["p"] is None else case["p"].copy()
    w = np.ones(m) if case["w"] is None else case["w"].copy()
    arrays = dict(i=i, j=j, p=p, w=w)
    if kind == "out_of_range":
        arrays[field][row] = data.draw(st.sampled_from([n, n + 1, np.iinfo(i.dtype).max]))
    elif kind == "negative" and field in "ij":
        arrays[field][row] = data.draw(st.sampled_from([-1, np.iinfo(i.dtype).min]))
    elif kind == "self":
        j[row] = i[row]
    elif kind == "nan":
        arrays[field][row] = math.nan
    elif kind == "inf":
        arrays[field][row] = data.draw(st.sampled_from([math.inf, -math.inf]))
    elif kind == "above":
        arrays[field][row] = data.draw(st.sampled_from([1.0 + 1e-12, 2.0, 1e300]))
    elif kind in ("below", "negative"):
        arrays[field][row] = data.draw(st.sampled_from([-1e-12, -1.0, -1e300]))
    call = core_bt if model == "bt" else core_gaussian
    with pytest.raises(ValueError) as e:
        call(i, j, p, w, n)
    assert f"[{row}]" in str(e.value), str(e.value)


GARBAGE_ARRAYS = st.sampled_from([
    "float_idx", "bool_idx", "str_idx", "object_idx", "2d", "0d", "none_idx", "list_idx",
    "short_j", "short_p", "short_w", "empty", "uint64_huge", "str_p", "complex_p", "noncontig",
])


def _garbage(case, kind):
    i, j = case["i"], case["j"]
    m = i.size
    p = np.full(m, 0.7) if case["p"] is None else case["p"]
    w = np.ones(m) if case["w"] is None else case["w"]
    must_raise = True
    if kind == "float_idx":
        i = i.astype(np.float64) + 0.25
    elif kind == "bool_idx":
        i = i.astype(bool)
    elif kind == "str_idx":
        i = i.astype(str)
    elif kind == "object_idx":
        i = i.astype(object)
        must_raise = False  # may be converted; values are valid
    elif kind == "2d":
        i = np.stack([i, i])
    elif kind == "0d":
        i = np.asarray(i[0])
    elif kind == "none_idx":
        i = None
    elif kind == "list_idx":
        i = i.tolist()
        must_raise = False  # may be converted; values are valid
    elif kind == "short_j":
        j = j[:-1] if m > 1 else j[:0]
    elif kind == "short_p":
        p = np.append(p, 0.5)
    elif kind == "short_w":
        w = w[: m - 1]
    elif kind == "empty":
        i, j, p, w = i[:0], j[:0], p[:0], w[:0]
    elif kind == "uint64_huge":
        i = i.astype(np.uint64)
        i[0] = np.uint64(2**64 - 1)
    elif kind == "str_p":
        p = p.astype(str)
    elif kind == "complex_p":
        p = p.astype(np.complex128) + 1j
    elif kind == "noncontig":
        i = np.repeat(i, 2)[::2]
        j = np.repeat(j, 2)[::2]
        p = np.repeat(p, 2)[::2]
        must_raise = False  # strided views of valid data are valid
    return dict(i=i, j=j, p=p, w=w, n_items=case["n_items"]), must_raise


@settings(max_examples=80)
@given(case=valid_cases(), kind=GARBAGE_ARRAYS, model=st.sampled_from(["bt", "gaussian"]))
def test_core_garbage_arrays_never_crash(case, kind, model):
    args, must_raise = _garbage(case, kind)
    call = core_bt if model == "bt" else core_gaussian
    try:
        res = call(**args) if model == "gaussian" else call(**args, alpha=1.0)
    except ALLOWED:
        return
    assert not must_raise, f"{kind}: accepted bad input and returned {res}"
    s = np.asarray(res["scores"])
    assert s.shape == (args["n_items"],) and np.all(np.isfinite(s))
    if kind == "noncontig":
        ref = call(case["i"], case["j"], args["p"], case["w"], case["n_items"])
        R.assert_close(s, ref["scores"], atol=1e-12)


@settings(max_examples=50)
@given(
    case=valid_cases(),
    n_items=st.sampled_from([0, -1, 1, -(2**31), 2**64, -(2**64), 1.5, "10"]),
    model=st.sampled_from(["bt", "gaussian"]),
)
def test_core_bad_n_items(case, n_items, model):
    args = dict(case, n_items=n_items)
    call = core_bt if model == "bt" else core_gaussian
    with pytest.raises(ALLOWED + (OverflowError,)):
        call(**args)


@settings(max_examples=50)
@given(
    case=valid_cases(),
    option=st.sampled_from([
        ("method", "cg"), ("method", ""), ("method", None), ("method", 3),
        ("alpha", -1.0), ("alpha", math.nan), ("alpha", "1"),
        ("tol", 0.0), ("tol", -1.0), ("tol", math.nan),
    ]),
)
def test_core_bad_options_raise(case, option):
    name, value = option
    with pytest.raises(ALLOWED):
        core_bt(**case, **{name: value})


@settings(max_examples=60)
@given(case=valid_cases(), max_iter=st.sampled_from([None, 0, 1, 2, -1]),
       n_threads=st.sampled_from([None, 0, 1, 2, 3, -1]), method=st.sampled_from(["newton", "mm", "newman"]))
def test_core_iteration_and_thread_limits_never_crash(case, max_iter, n_threads, method):
    """Unspecified but must be safe: either a clean error or a finite, honest result."""
    c = _ref_comparisons(case)
    try:
        res = core_bt(**case, method=method, alpha=1.0, max_iter=max_iter, n_threads=n_threads)
    except ALLOWED:
        return
    s = np.asarray(res["scores"])
    assert np.all(np.isfinite(s))
    g = float(np.max(np.abs(R.bt_gradient(s, c, 1.0))))
    assert res["grad_norm"] == pytest.approx(g, rel=1e-6, abs=1e-9)
    assert bool(res["converged"]) == (res["grad_norm"] <= TOL)


# --------------------------------------------------------------------------- #
# huge n_items, in a child process with a memory cap (a crash there fails the test)
# --------------------------------------------------------------------------- #
HUGE_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
    import numpy as np
    import pycomp
    from pycomp import _core
    i = np.array([0, 1, 2], dtype=np.int64)
    j = np.array([1, 2, 0], dtype=np.int64)
    p = np.array([0.8, 0.6, 0.3])
    w = np.ones(3)
    out = []
    for n in [2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1, 2**63]:
        for name, call in [
            ("bt", lambda n: _core.solve_bt(i, j, p, w, n, "newton", 1.0, 1e-8, 100, 0)),
            ("bt_mm", lambda n: _core.solve_bt(i, j, p, w, n, "mm", 1.0, 1e-8, 100, 0)),
            ("gaussian", lambda n: _core.solve_gaussian(i, j, p, w, n, 1.0, 0.5, 1e-8, 100, 0)),
            ("solve", lambda n: pycomp.solve(i, j, p, n_items=n)),
        ]:
            try:
                r = call(n)
                s = r["scores"] if isinstance(r, dict) else r.scores
                out.append([name, n, "ok", int(len(s))])
            except (ValueError, TypeError, OverflowError, MemoryError) as e:
                out.append([name, n, type(e).__name__, str(e)[:200]])
            sys.stdout.flush()
    print(json.dumps(out))
    """
)


def test_huge_n_items_is_an_error_not_a_crash():
    env = dict(__import__("os").environ, OMP_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, "-c", HUGE_SCRIPT], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, f"child died (rc={proc.returncode}): {proc.stderr[-2000:]}"
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, n, outcome, detail in rows:
        # under an 8 GiB address-space cap none of these can really be allocated
        assert outcome != "ok", (name, n, detail)
        if outcome in ("ValueError", "OverflowError"):
            assert "n_items" in detail or outcome == "OverflowError", (name, n, detail)
