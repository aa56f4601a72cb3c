"""scikit-learn style estimators, id encoding and solve_table."""
import numpy as np
import pandas as pd
import pytest

import pycomp
import reference as R

ATOL = 1e-6
TOL = 1e-10


def _string_data():
    rng = np.random.default_rng(0)
    c = R.random_comparisons(rng, 9, 30, "soft", weighted=True)
    names = np.array(["kiwi", "apple", "fig", "date", "banana", "cherry", "lime", "grape", "elder"])
    return c, names


def test_encode_ids_sorted_unique():
    a = np.array(["b", "c", "a", "b"])
    b = np.array(["c", "d", "c", "a"])
    i, j, ids = pycomp.encode_ids(a, b)
    assert list(ids) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(np.asarray(ids)[i], a)
    np.testing.assert_array_equal(np.asarray(ids)[j], b)
    assert np.issubdtype(np.asarray(i).dtype, np.integer) and np.issubdtype(np.asarray(j).dtype, np.integer)


def test_encode_ids_integers_and_mixed_sources():
    i, j, ids = pycomp.encode_ids([30, 10, 20], [10, 40, 30])
    np.testing.assert_array_equal(ids, [10, 20, 30, 40])
    np.testing.assert_array_equal(i, [2, 0, 1])
    np.testing.assert_array_equal(j, [0, 3, 2])
    # pandas Series of objects work too
    i, j, ids = pycomp.encode_ids(pd.Series(["x", "y"]), pd.Series(["y", "z"]))
    assert list(ids) == ["x", "y", "z"]


def test_bradley_terry_with_string_ids_matches_reference():
    c, names = _string_data()
    a, b = names[c.i], names[c.j]
    est = pycomp.BradleyTerry(alpha=0.5, tol=TOL, return_se=True)
    assert est.fit(a, b, c.p, weights=c.w) is est
    order = np.argsort(names)  # items_ are the sorted unique ids
    assert list(est.items_) == sorted(names)
    ref = R.bt_solve(c, 0.5)
    R.assert_close(est.scores_, ref[order], atol=ATOL)
    R.assert_close(est.se_, R.bt_se(ref, c, 0.5)[order], atol=0, rtol=1e-5)
    assert est.converged_ and est.n_iter_ >= 0
    assert isinstance(est.solution_, pycomp.Solution)
    R.assert_close(est.solution_.scores, est.scores_, atol=0)
    # score_of looks up by id
    R.assert_close(est.score_of(["fig", "kiwi"]), [ref[2], ref[0]], atol=ATOL)
    df = est.to_frame()
    assert list(df.columns) == ["id", "score", "se"]
    assert list(df["id"]) == sorted(names)
    R.assert_close(df["score"].to_numpy(), est.scores_, atol=0)
    R.assert_close(df["se"].to_numpy(), est.se_, atol=0)


def test_bradley_terry_with_integer_ids():
    c = R.random_comparisons(np.random.default_rng(1), 8, 20, "soft")
    est = pycomp.BradleyTerry(alpha=1.0, tol=TOL).fit(c.i, c.j, c.p, n_items=11)
    np.testing.assert_array_equal(est.items_, np.arange(11))
    ref = R.bt_solve(R.Comparisons(c.i, c.j, c.p, c.w, 11), 1.0)
    R.assert_close(est.scores_, ref, atol=ATOL)
    assert est.se_ is None
    df = est.to_frame()
    assert df.shape == (11, 3) and list(df.columns) == ["id", "score", "se"]


def test_bradley_terry_default_p_is_a_wins():
    c = R.random_comparisons(np.random.default_rng(2), 6, 30, "hard")
    win = np.where(c.p == 1, c.i, c.j)
    lose = np.where(c.p == 1, c.j, c.i)
    est = pycomp.BradleyTerry(alpha=1.0, tol=TOL).fit(win, lose)
    R.assert_close(est.scores_, R.bt_solve(R.Comparisons.make(win, lose), 1.0), atol=ATOL)


@pytest.mark.parametrize("method", ["newton", "mm", "newman"])
def test_bradley_terry_methods(method):
    c = R.random_comparisons(np.random.default_rng(3), 10, 40, "mixed")
    est = pycomp.BradleyTerry(alpha=0.2, method=method, tol=TOL, max_iter=200_000).fit(c.i, c.j, c.p)
    assert est.solution_.method == method
    R.assert_close(est.scores_, R.bt_solve(c, 0.2), atol=ATOL)


def test_poe_gaussian_estimator():
    c, names = _string_data()
    est = pycomp.PoEGaussian(alpha=0.3, beta=0.4, tol=TOL, return_se=True)
    assert est.fit(names[c.i], names[c.j], c.p, weights=c.w) is est
    order = np.argsort(names)
    ref = R.gaussian_solve(c, 0.3, 0.4)
    R.assert_close(est.scores_, ref[order], atol=ATOL)
    se_ref, _ = R.gaussian_se(ref, c, 0.3, 0.4)
    R.assert_close(est.se_, se_ref[order], atol=0, rtol=1e-5)
    assert list(est.to_frame().columns) == ["id", "score", "se"]


@pytest.mark.parametrize("cls", ["BradleyTerry", "PoEGaussian"])
def test_unfitted_use_raises_not_fitted(cls):
    est = getattr(pycomp, cls)()
    assert issubclass(pycomp.NotFittedError, (ValueError, AttributeError))
    with pytest.raises(pycomp.NotFittedError):
        est.score_of([0])
    with pytest.raises(pycomp.NotFittedError):
        est.to_frame()


def test_estimator_init_only_stores_parameters():
    est = pycomp.BradleyTerry(alpha=0.25, method="mm", tol=1e-6, max_iter=7, return_se=True)
    assert (est.alpha, est.method, est.tol, est.max_iter, est.return_se) == (0.25, "mm", 1e-6, 7, True)
    assert not hasattr(est, "scores_")
    est = pycomp.PoEGaussian(alpha=0.5, beta=0.1)
    assert (est.alpha, est.beta) == (0.5, 0.1)


def test_estimator_bad_parameters_raise_on_fit():
    c = R.random_comparisons(np.random.default_rng(4), 5, 10, "soft")
    with pytest.raises(ValueError, match="alpha"):
        pycomp.BradleyTerry(alpha=-1.0).fit(c.i, c.j, c.p)
    with pytest.raises(ValueError, match="method"):
        pycomp.BradleyTerry(method="cg").fit(c.i, c.j, c.p)


def test_estimator_bad_rows_are_reported():
    with pytest.raises(ValueError, match=r"p\[1\]"):
        pycomp.BradleyTerry().fit(["a", "b"], ["b", "c"], [0.5, 1.5])
    with pytest.raises(ValueError, match=r"\[1\]"):
        pycomp.BradleyTerry().fit(["a", "b"], ["b", "b"])


def test_score_of_unknown_id_raises():
    est = pycomp.BradleyTerry().fit(["a", "b"], ["b", "c"], [0.7, 0.4])
    with pytest.raises((KeyError, ValueError)):
        est.score_of(["zzz"])


# --------------------------------------------------------------------------- #
# solve_table
# --------------------------------------------------------------------------- #
def test_solve_table_matches_estimator_and_reference():
    c, names = _string_data()
    df = pd.DataFrame({"left": names[c.i], "right": names[c.j], "prob": c.p, "wt": c.w})
    out = pycomp.solve_table(df, a="left", b="right", p="prob", weight="wt", alpha=0.5, tol=TOL, return_se=True)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["id", "score", "se"]
    order = np.argsort(names)
    assert list(out["id"]) == sorted(names)
    ref = R.bt_solve(c, 0.5)
    R.assert_close(out["score"].to_numpy(), ref[order], atol=ATOL)
    assert not out["se"].isna().any()
    R.assert_close(out["se"].to_numpy(), R.bt_se(ref, c, 0.5)[order], atol=0, rtol=1e-5)


def test_solve_table_defaults_and_gaussian():
    c, names = _string_data()
    df = pd.DataFrame({"a": names[c.i], "b": names[c.j], "p": c.p})
    out = pycomp.solve_table(df, model="gaussian", alpha=0.0, tol=TOL)
    order = np.argsort(names)
    ref = R.gaussian_solve(R.Comparisons(c.i, c.j, c.p, np.ones_like(c.w), c.n_items), 0.0)
    R.assert_close(out["score"].to_numpy(), ref[order], atol=ATOL)
    assert "se" in out.columns


def test_solve_table_without_p_means_a_won():
    df = pd.DataFrame({"a": ["x", "y", "z", "x"], "b": ["y", "z", "x", "z"]})
    out = pycomp.solve_table(df, p=None, alpha=1.0, tol=TOL)
    c = R.Comparisons.make([0, 1, 2, 0], [1, 2, 0, 2])
    R.assert_close(out["score"].to_numpy(), R.bt_solve(c, 1.0), atol=ATOL)


@pytest.mark.parametrize("kw, missing", [(dict(a="left"), "left"), (dict(b="nope"), "nope"),
                                          (dict(p="prob"), "prob"), (dict(weight="wt"), "wt")])
def test_solve_table_missing_column(kw, missing):
    df = pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "p": [0.6, 0.3]})
    with pytest.raises(ValueError, match=missing):
        pycomp.solve_table(df, **kw)


def test_solve_table_bad_value_names_column_or_row():
    df = pd.DataFrame({"a": ["x", "y", "z"], "b": ["y", "z", "x"], "p": [0.6, np.nan, 0.2]})
    with pytest.raises(ValueError, match=r"row 2: column 'p' is empty \(NaN\)"):
        pycomp.solve_table(df)


# --------------------------------------------------------------------------- #
# scikit-learn's parameter contract: fit reads the attributes as they are
# --------------------------------------------------------------------------- #
def _alpha_zero_data():
    """Soft outcomes on a connected graph: the alpha = 0 optimum exists and differs from alpha = 1."""
    return R.random_comparisons(np.random.default_rng(11), 8, 40, "soft")


@pytest.mark.parametrize("cls", ["BradleyTerry", "PoEGaussian"])
def test_attribute_changed_after_construction_is_used_by_fit(cls):
    c = _alpha_zero_data()
    model = "bt" if cls == "BradleyTerry" else "gaussian"
    est = getattr(pycomp, cls)(alpha=1.0, tol=TOL)
    est.alpha = 0.0
    est.fit(c.i, c.j, c.p)
    ref = pycomp.solve(c.i, c.j, c.p, model=model, alpha=0.0, tol=TOL)
    np.testing.assert_array_equal(est.scores_, ref.scores)
    assert est.get_params()["alpha"] == 0.0
    assert "alpha=0.0" in repr(est)
    # and the alpha = 0 answer is not the alpha = 1 one
    assert np.max(np.abs(est.scores_ - pycomp.solve(c.i, c.j, c.p, model=model, alpha=1.0).scores)) > 1e-3


def test_set_params_changes_what_fit_uses():
    c = _alpha_zero_data()
    est = pycomp.BradleyTerry(alpha=1.0, tol=TOL)
    assert est.set_params(alpha=0.0, method="mm", max_iter=50_000) is est
    assert est.alpha == 0.0 and est.method == "mm"
    assert est.get_params() == dict(alpha=0.0, method="mm", tol=TOL, max_iter=50_000, return_se=False,
                                    n_threads=None, dispersion=None)
    est.fit(c.i, c.j, c.p)
    assert est.solution_.method == "mm"
    R.assert_close(est.scores_, R.bt_solve(c, 0.0), atol=ATOL)


def test_get_params_lists_every_init_parameter():
    assert pycomp.BradleyTerry().get_params() == dict(alpha=1.0, method="auto", tol=1e-8, max_iter=None,
                                                      return_se=False, n_threads=None, dispersion=None)
    assert pycomp.PoEGaussian(beta=0.2).get_params() == dict(alpha=1.0, beta=0.2, tol=1e-8, max_iter=None,
                                                             return_se=False, n_threads=None)


def test_set_params_unknown_name_raises_and_changes_nothing():
    est = pycomp.BradleyTerry(alpha=0.5)
    with pytest.raises(ValueError) as e:
        est.set_params(alpha=2.0, beta=0.3)
    assert str(e.value) == (
        "BradleyTerry has no parameter 'beta'; valid parameters: alpha, method, tol, max_iter, return_se, n_threads, "
        "dispersion"
    )
    assert est.alpha == 0.5


def test_sklearn_clone_copies_the_current_parameters():
    base = pytest.importorskip("sklearn.base")
    est = pycomp.PoEGaussian(alpha=0.3, beta=0.4)
    est.tol = 1e-9
    twin = base.clone(est)
    assert type(twin) is pycomp.PoEGaussian and twin is not est
    assert twin.get_params() == est.get_params()
    assert twin.tol == 1e-9


def test_string_id_errors_name_the_ids():
    """With string ids, errors name the ids, not the internal indices they were mapped to."""
    with pytest.raises(ValueError, match=r"a\[2\] == b\[2\] = 'y': comparison 2 \(0-based\) compares an item with itself"):
        pycomp.BradleyTerry().fit(["x", "y", "y"], ["y", "z", "y"])
    with pytest.raises(pycomp.NoOptimumError, match=r"'x'") as info:
        pycomp.BradleyTerry(alpha=0).fit(["x", "x", "y"], ["y", "z", "z"])
    assert "0-based item index" not in str(info.value)


def test_bradley_terry_passes_the_dispersion_to_solve():
    c = R.random_comparisons(np.random.default_rng(11), 9, 70)
    est = pycomp.BradleyTerry(return_se=True, dispersion="pearson", tol=TOL).fit(c.i, c.j, c.p)
    sol = pycomp.solve(c.i, c.j, c.p, return_se=True, dispersion="pearson", tol=TOL)
    assert est.solution_.dispersion == sol.dispersion and sol.dispersion is not None
    R.assert_close(est.scores_, R.bt_solve(c, sol.dispersion), atol=ATOL)
    np.testing.assert_array_equal(est.se_, sol.se)
