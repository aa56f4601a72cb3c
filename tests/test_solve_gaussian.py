"""PoE-Gaussian solver against the dense NumPy reference (tests/reference.py)."""
import warnings

import numpy as np
import pytest

import pycomp
import reference as R

ATOL = 1e-6  # max |score - reference optimum|
OBJ_RTOL = 1e-10
GRAD_ATOL = 1e-9
GRAD_RTOL = 1e-6
SE_RTOL = 1e-6


def _disconnected(rng):
    a = R.random_comparisons(rng, 8, 20, "hard")
    b = R.random_comparisons(rng, 7, 20, "soft", weighted=True)
    return R.Comparisons(
        np.concatenate([a.i, b.i + 8]), np.concatenate([a.j, b.j + 8]),
        np.concatenate([a.p, b.p]), np.concatenate([a.w, b.w]), 17,  # + 2 isolated items
    )


CASES = {
    "soft": lambda rng: R.random_comparisons(rng, 30, 90, "soft"),
    "hard_no_bt_mle": lambda rng: R.Comparisons.make([0, 1, 2, 3], [1, 2, 3, 4]),  # chain of wins
    "weighted_mixed": lambda rng: R.random_comparisons(rng, 29, 70, "mixed", weighted=True),
    "ties": lambda rng: R.random_comparisons(rng, 10, 20, "ties"),
    "two_items": lambda rng: R.Comparisons.make([0, 1], [1, 0], [0.9, 0.2]),
    "star": lambda rng: R.Comparisons.make(np.zeros(8, int), np.arange(1, 9), rng.uniform(0, 1, 8)),
    "chain_long": lambda rng: R.Comparisons.make(np.arange(40), np.arange(1, 41), rng.uniform(0, 1, 40)),
    "disconnected": _disconnected,
}
ALPHAS = [0.0, 0.5]
BETAS = [0.5, 0.0, 0.3]


def _solve(c, alpha, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sol = pycomp.solve(**c.kwargs(), model="gaussian", alpha=alpha, **kw)
    conv = [w for w in rec if issubclass(w.category, pycomp.ConvergenceWarning)]
    assert bool(conv) == (not sol.converged)
    return sol


def test_reference_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    c = R.random_comparisons(rng, 8, 20, "mixed", weighted=True)
    s = rng.normal(0, 1, 8)
    for alpha, beta in [(0.0, 0.5), (0.7, 0.2)]:
        g_fd = R.finite_difference_gradient(lambda x: R.gaussian_objective(x, c, alpha, beta), s)
        R.assert_close(R.gaussian_gradient(s, c, alpha, beta), g_fd, atol=1e-7, rtol=1e-6)
        H_fd = R.finite_difference_hessian(lambda x: R.gaussian_gradient(x, c, alpha, beta), s)
        R.assert_close(R.gaussian_hessian(c, alpha), H_fd, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("alpha", ALPHAS)
def test_reference_optimum_is_stationary(name, alpha):
    c = CASES[name](np.random.default_rng(1))
    s = R.gaussian_solve(c, alpha, 0.3)
    assert np.max(np.abs(R.gaussian_gradient(s, c, alpha, 0.3))) <= 1e-10
    if alpha == 0:
        labels = R.components(c)
        for lab in np.unique(labels):
            assert abs(s[labels == lab].mean()) < 1e-12


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("method", ["cg", "auto"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cg_matches_reference(name, method, alpha, beta):
    c = CASES[name](np.random.default_rng(1))
    ref = R.gaussian_solve(c, alpha, beta)
    tol = R.fair_tol(R.gaussian_hessian(c, alpha), ATOL, alpha)
    sol = _solve(c, alpha, beta=beta, method=method, tol=tol)
    assert sol.method == "cg"
    assert sol.converged and sol.grad_norm <= tol
    assert sol.scores.dtype == np.float64 and sol.scores.shape == (c.n_items,)
    R.assert_close(sol.scores, ref, atol=ATOL, what="gaussian scores")
    gn = float(np.max(np.abs(R.gaussian_gradient(sol.scores, c, alpha, beta))))
    assert abs(sol.grad_norm - gn) <= GRAD_ATOL + GRAD_RTOL * gn
    assert sol.objective == pytest.approx(R.gaussian_objective(sol.scores, c, alpha, beta), rel=OBJ_RTOL, abs=1e-12)
    assert R.same_partition(sol.labels, R.components(c))
    assert sol.n_components == np.unique(R.components(c)).size


def test_default_beta_is_one_half_and_hard_data_is_fine():
    c = CASES["hard_no_bt_mle"](None)
    sol = _solve(c, 0.0)
    R.assert_close(sol.scores, R.gaussian_solve(c, 0.0, 0.5), atol=ATOL)
    # chain of hard wins with beta = 0.5: each step is +0.5
    R.assert_close(np.diff(sol.scores), -0.5 * np.ones(4), atol=ATOL)


def test_isolated_items_are_zero():
    c = CASES["disconnected"](np.random.default_rng(2))
    for alpha in ALPHAS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pycomp.GraphWarning)
            sol = _solve(c, alpha)
        assert np.all(sol.scores[15:] == 0.0)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_gaussian_standard_errors_match_dense(alpha):
    c = CASES["weighted_mixed"](np.random.default_rng(3))
    c.w[[3, 10]] = 0.0  # zero-weight rows do not count as observations
    assert np.unique(R.components(c)).size == 1
    sol = _solve(c, alpha, return_se=True, tol=1e-12)
    assert sol.se is not None and sol.se.shape == (c.n_items,) and sol.se.dtype == np.float64
    assert np.all(np.isfinite(sol.se)) and np.all(sol.se > 0)
    se_ref, diag = R.gaussian_se(sol.scores, c, alpha)
    # shape of the errors does not depend on the sigma^2 convention
    ratio = sol.se**2 / diag
    R.assert_close(ratio, np.full_like(ratio, ratio[0]), atol=0.0, rtol=SE_RTOL, what="se^2 / diag(H^-1)")
    # and with sigma^2 = weighted RSS / max(m - n_free, 1) (convention: see reference.gaussian_se)
    R.assert_close(sol.se, se_ref, atol=0.0, rtol=SE_RTOL, what="gaussian se")
    assert sol.se_method == "exact"


def test_gaussian_rejects_bt_methods():
    c = CASES["soft"](np.random.default_rng(4))
    for method in ("newton", "mm", "newman", "x"):
        with pytest.raises(ValueError, match="method"):
            pycomp.solve(**c.kwargs(), model="gaussian", method=method)
    with pytest.raises(ValueError, match="method"):
        pycomp.solve(**c.kwargs(), model="bt", method="cg")


@pytest.mark.parametrize("alpha", ALPHAS)
def test_large_graph_reaches_tolerance(alpha):
    c = R.random_comparisons(np.random.default_rng(5), 3000, 9000, "mixed", weighted=True)
    for n_threads in (1, 2):
        sol = _solve(c, alpha, tol=1e-10, n_threads=n_threads)
        assert sol.converged
        assert np.max(np.abs(R.gaussian_gradient(sol.scores, c, alpha))) <= 1e-10 + GRAD_ATOL
        if alpha == 0:
            assert abs(sol.scores.mean()) < 1e-10
