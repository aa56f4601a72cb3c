"""Bad input gets a clear error naming the field and the first offending row."""
import math
import re

import numpy as np
import pytest

import pycomp
from pycomp import _core

N = 10
M = 20


def _data():
    rng = np.random.default_rng(0)
    i = rng.integers(0, N, M)
    j = (i + rng.integers(1, N, M)) % N
    p = rng.uniform(0, 1, M)
    w = rng.uniform(0.5, 2, M)
    return i.astype(np.int64), j.astype(np.int64), p, w


def _msg(excinfo):
    return str(excinfo.value)


def test_valid_base_data_solves():
    # guard: the data every test below corrupts is valid as it stands
    i, j, p, w = _data()
    sol = pycomp.solve(i, j, p, weights=w, n_items=N)
    assert np.all(np.isfinite(sol.scores))


# --------------------------------------------------------------------------- #
# indices
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("field", ["i", "j"])
def test_index_out_of_range_names_field_and_first_row(field):
    i, j, p, w = _data()
    arr = i if field == "i" else j
    other = j if field == "i" else i
    arr[17], other[17] = 12, 0
    arr[19], other[19] = 15, 0  # a later bad row: the first one is reported
    with pytest.raises(ValueError, match=re.escape(f"{field}[17]")) as e:
        pycomp.solve(i, j, p, weights=w, n_items=N)
    assert "12" in _msg(e) and "n_items" in _msg(e)


@pytest.mark.parametrize("field", ["i", "j"])
def test_negative_index_is_out_of_range(field):
    i, j, p, w = _data()
    arr = i if field == "i" else j
    arr[4] = -1
    with pytest.raises(ValueError, match=re.escape(f"{field}[4]")) as e:
        pycomp.solve(i, j, p, weights=w, n_items=N)
    assert "-1" in _msg(e)


def test_self_comparison_names_row():
    i, j, p, w = _data()
    i[5] = j[5] = 3
    i[8] = j[8] = 4
    with pytest.raises(ValueError, match=r"i\[5\]") as e:
        pycomp.solve(i, j, p, weights=w, n_items=N)
    assert "j[5]" in _msg(e) and "3" in _msg(e)


def test_n_items_smaller_than_largest_index():
    i = np.array([0, 1, 7, 8, 2])
    j = np.array([1, 2, 0, 1, 9])
    with pytest.raises(ValueError, match=r"n_items") as e:
        pycomp.solve(i, j, n_items=7)
    assert "i[2]" in _msg(e) and "7" in _msg(e)


@pytest.mark.parametrize("n_items", [0, -3])
def test_non_positive_n_items(n_items):
    i, j, p, w = _data()
    with pytest.raises(ValueError, match="n_items"):
        pycomp.solve(i, j, p, weights=w, n_items=n_items)


def test_winner_loser_rows_report_the_row():
    rows = np.array([[0, 1], [1, 2], [2, 2], [3, 0]])
    with pytest.raises(ValueError, match=r"\[2"):
        pycomp.solve(rows)
    rows = np.array([[0, 1], [1, 2], [2, 3], [3, 40]])
    with pytest.raises(ValueError, match=r"\[3") as e:
        pycomp.solve(rows, n_items=5)
    assert "40" in _msg(e)


# --------------------------------------------------------------------------- #
# probabilities and weights
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1.5, -0.1, 1 + 1e-9])
def test_bad_probability_names_row(bad):
    i, j, p, w = _data()
    p[3] = bad
    p[11] = bad
    with pytest.raises(ValueError, match=r"p\[3\]"):
        pycomp.solve(i, j, p, weights=w, n_items=N)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, -1e-300])
def test_bad_weight_names_row(bad):
    i, j, p, w = _data()
    w[2] = bad
    w[9] = bad
    with pytest.raises(ValueError, match=r"weights\[2\]"):
        pycomp.solve(i, j, p, weights=w, n_items=N)


def test_probability_bounds_and_zero_weights_are_valid():
    i, j, p, w = _data()
    p[:3] = [0.0, 1.0, 0.5]
    w[4] = 0.0
    sol = pycomp.solve(i, j, p, weights=w, n_items=N)
    assert np.all(np.isfinite(sol.scores))


# --------------------------------------------------------------------------- #
# shapes and lengths
# --------------------------------------------------------------------------- #
def test_length_mismatch_names_both_fields():
    with pytest.raises(ValueError) as e:
        pycomp.solve(np.array([0, 1, 2, 3, 4]), np.array([1, 2, 3, 4]))
    msg = _msg(e)
    assert re.search(r"\bj\b", msg) and re.search(r"\bi\b", msg), msg
    assert "4" in msg and "5" in msg, msg


@pytest.mark.parametrize("field", ["p", "weights"])
def test_length_mismatch_of_p_and_weights(field):
    i, j, p, w = _data()
    kw = dict(p=p, weights=w)
    kw[field] = kw[field][:-3]
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        pycomp.solve(i, j, n_items=N, **kw)


@pytest.mark.parametrize(
    "args",
    [
        (np.array([], dtype=np.int64), np.array([], dtype=np.int64)),
        (np.zeros((0, 2), dtype=np.int64), None),
    ],
)
def test_empty_input(args):
    with pytest.raises(ValueError, match="empty"):
        pycomp.solve(*args, n_items=3)


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(i=np.zeros((4, 3), dtype=np.int64)), "i"),
        (dict(i=np.zeros((4, 2), dtype=np.int64), j=np.ones(4, dtype=np.int64)), "i"),
        (dict(i=np.array([0, 1]), j=np.array([[1, 2]])), "j"),
        (dict(i=np.array([0, 1]), j=np.array([1, 2]), p=np.array([[0.5, 0.5]])), "p"),
        (dict(i=np.array([0, 1]), j=np.array([1, 2]), weights=np.ones((2, 1))), "weights"),
        (dict(i=np.int64(0), j=np.int64(1)), "i"),
    ],
)
def test_wrong_ndim_names_field(kw, field):
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        pycomp.solve(**kw)


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(i=np.array([0.0, 1.0]), j=np.array([1, 2])), "i"),
        (dict(i=np.array([0, 1]), j=np.array([1.0, 2.0])), "j"),
        (dict(i=np.array(["a", "b"]), j=np.array([1, 2])), "i"),
        (dict(i=np.array([0, 1]), j=np.array(["b", "c"])), "j"),
        (dict(i=np.array([0, 1]), j=np.array([1, 2]), p=np.array(["x", "y"])), "p"),
    ],
)
def test_wrong_dtype_is_type_error_naming_field(kw, field):
    with pytest.raises(TypeError, match=rf"\b{field}\b"):
        pycomp.solve(**kw)


# --------------------------------------------------------------------------- #
# options
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(model="x"), "model"),
        (dict(method="x"), "method"),
        (dict(model="gaussian", method="x"), "method"),
        (dict(alpha=-0.1), "alpha"),
        (dict(alpha=math.nan), "alpha"),
        (dict(tol=0.0), "tol"),
        (dict(tol=-1e-8), "tol"),
        (dict(tol=math.nan), "tol"),
        (dict(device="tpu"), "device"),
        (dict(return_se=True, se_method="x"), "se_method"),
    ],
)
def test_bad_option_names_parameter(kw, name):
    i, j, p, w = _data()
    with pytest.raises(ValueError, match=name):
        pycomp.solve(i, j, p, weights=w, n_items=N, **kw)


# --------------------------------------------------------------------------- #
# the compiled core validates again
# --------------------------------------------------------------------------- #
def _core_bt(i, j, p, w, n_items, method="newton", alpha=1.0, tol=1e-8, max_iter=1000, n_threads=0):
    return _core.solve_bt(i, j, p, w, n_items, method, alpha, tol, max_iter, n_threads)


def _core_gaussian(i, j, p, w, n_items, alpha=1.0, beta=0.5, tol=1e-8, max_iter=1000, n_threads=0):
    return _core.solve_gaussian(i, j, p, w, n_items, alpha, beta, tol, max_iter, n_threads)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("call", [_core_bt, _core_gaussian])
def test_core_names_field_and_row(call, dtype):
    i, j, p, w = _data()
    i, j = i.astype(dtype), j.astype(dtype)
    bad = i.copy()
    bad[17] = 12
    with pytest.raises(ValueError, match=r"i\[17\]"):
        call(bad, j, p, w, N)
    bad = j.copy()
    bad[6] = -2
    with pytest.raises(ValueError, match=r"j\[6\]"):
        call(i, bad, p, w, N)
    bad_i, bad_j = i.copy(), j.copy()
    bad_i[5] = bad_j[5] = 3
    with pytest.raises(ValueError, match=r"i\[5\]"):
        call(bad_i, bad_j, p, w, N)
    bad = p.copy()
    bad[3] = math.nan
    with pytest.raises(ValueError, match=r"p\[3\]"):
        call(i, j, bad, w, N)
    bad = w.copy()
    bad[2] = -1.0
    with pytest.raises(ValueError, match=r"weights?\[2\]"):
        call(i, j, p, bad, N)
    with pytest.raises(ValueError, match="empty"):
        call(i[:0], j[:0], p[:0], w[:0], N)
    with pytest.raises(ValueError, match=r"\bj\b"):
        call(i, j[:-1], p, w, N)


def test_core_bad_method_and_alpha():
    i, j, p, w = _data()
    with pytest.raises(ValueError, match="method"):
        _core_bt(i, j, p, w, N, method="cg")
    with pytest.raises(ValueError, match="alpha"):
        _core_bt(i, j, p, w, N, alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        _core_gaussian(i, j, p, w, N, alpha=-1.0)
    with pytest.raises(ValueError, match="tol"):
        _core_bt(i, j, p, w, N, tol=0.0)


# --------------------------------------------------------------------------- #
# the messages say that rows and items are counted from 0
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_core_messages_say_what_the_indices_are(dtype):
    i, j, p, w = _data()
    i, j = i.astype(dtype), j.astype(dtype)
    cases = []
    bad_i, bad_j = i.copy(), j.copy()
    bad_i[1] = bad_j[1] = 1
    cases.append(((bad_i, bad_j, p, w),
                  "i[1] == j[1] = 1: comparison 1 (0-based) compares item 1 with itself; "
                  "an item cannot be compared with itself"))
    bad = i.copy()
    bad[17] = 12
    cases.append(((bad, j, p, w), "i[17] = 12 is outside [0, n_items=10) (comparison 17, 0-based): "
                                  "item indices count from 0"))
    bad = p.copy()
    bad[3] = 1.5
    cases.append(((i, j, bad, w), "p[3] = 1.5 (comparison 3, 0-based) is not a probability: "
                                  "p must be finite and in [0, 1]"))
    bad = w.copy()
    bad[2] = -1.0
    cases.append(((i, j, p, bad), "weights[2] = -1 (comparison 2, 0-based) is not allowed: "
                                  "weights must be finite and >= 0"))
    for args, message in cases:
        with pytest.raises(ValueError) as e:
            pycomp.solve(*args[:3], weights=args[3], n_items=N)
        assert _msg(e) == message


def test_index_above_int64_says_the_row_is_zero_based():
    with pytest.raises(ValueError) as e:
        pycomp.solve(np.array([0, 2**63 + 5], dtype=np.uint64), np.array([1, 0], dtype=np.uint64))
    assert _msg(e) == "i[1] is above 2^63 (comparison 1, 0-based)"
