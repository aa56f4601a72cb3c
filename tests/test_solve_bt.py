"""PoE-BT solver core against the independent NumPy reference (tests/reference.py)."""
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

import pycomp
import reference as R

ATOL = 1e-6  # max |score - reference optimum| for every method
OBJ_RTOL = 1e-10  # Solution.objective vs reference F at the returned scores
GRAD_ATOL = 1e-9  # Solution.grad_norm vs reference ||grad F||_inf at the returned scores
GRAD_RTOL = 1e-6
FD_RTOL = 1e-6  # reference gradient/Hessian vs finite differences
METHODS = ["newton", "mm", "newman"]
MAX_ITER = 200_000  # generous: the tolerances below are tight on purpose


# --------------------------------------------------------------------------- #
# cases
# --------------------------------------------------------------------------- #
def _duplicates(rng):
    base = R.random_comparisons(rng, 12, 30, "soft")
    # every pair repeated, once in the same and once in the reversed order
    i = np.concatenate([base.i, base.i, base.j])
    j = np.concatenate([base.j, base.j, base.i])
    p = np.concatenate([base.p, rng.uniform(0.05, 0.95, base.p.size), 1.0 - base.p])
    return R.Comparisons.make(i, j, p)


def _star(rng):
    n = 9
    i = np.zeros(2 * (n - 1), dtype=np.int64)
    j = np.concatenate([np.arange(1, n), np.arange(1, n)])
    p = np.concatenate([np.ones(n - 1), np.zeros(n - 1)])  # centre wins once and loses once vs each
    p[0] = 0.7
    return R.Comparisons.make(i, j, p)


def _chain_soft(rng):
    n = 17
    return R.Comparisons.make(np.arange(n - 1), np.arange(1, n), rng.uniform(0.1, 0.9, n - 1))


def _two_items(rng):
    return R.Comparisons.make([0, 1, 0], [1, 0, 1], [1.0, 1.0, 0.0])


def _isolated_extra(rng):
    c = R.random_comparisons(rng, 10, 30, "soft")
    return R.Comparisons(c.i, c.j, c.p, c.w, 14)  # items 10..13 never compared


def _disconnected(rng):
    a = R.random_comparisons(rng, 8, 20, "soft")
    b = R.random_comparisons(rng, 7, 20, "soft", weighted=True)
    return R.Comparisons(
        np.concatenate([a.i, b.i + 8]),
        np.concatenate([a.j, b.j + 8]),
        np.concatenate([a.p, b.p]),
        np.concatenate([a.w, b.w]),
        15,
    )


CASES = {
    "soft": lambda rng: R.random_comparisons(rng, 30, 90, "soft"),
    "hard": lambda rng: R.random_comparisons(rng, 20, 160, "hard", spread=0.8),
    "weighted": lambda rng: R.random_comparisons(rng, 25, 80, "soft", weighted=True),
    "mixed_ties": lambda rng: R.random_comparisons(rng, 23, 80, "mixed", weighted=True),
    "all_ties": lambda rng: R.random_comparisons(rng, 11, 30, "ties"),
    "duplicates": _duplicates,
    "prime_n": lambda rng: R.random_comparisons(rng, 31, 62, "soft", spread=3.0),
    "two_items": _two_items,
    "star": _star,
    "chain_soft": _chain_soft,
    "isolated_extra": _isolated_extra,
    "disconnected": _disconnected,
}
ALPHAS = [0.0, 0.1, 1.0]


def _case(name, seed=0):
    c = CASES[name](np.random.default_rng(seed))
    return c


def _solve(c, alpha, **kw):
    """pycomp.solve, checking warnings: with alpha == 0, GraphWarning iff >1 component."""
    expect_graph = alpha == 0 and np.unique(R.components(c)).size > 1
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sol = pycomp.solve(**c.kwargs(), alpha=alpha, **kw)
    graph = [w for w in rec if issubclass(w.category, pycomp.GraphWarning)]
    conv = [w for w in rec if issubclass(w.category, pycomp.ConvergenceWarning)]
    if alpha == 0:  # with alpha > 0 the spec leaves a GraphWarning open
        assert bool(graph) == expect_graph, (
            f"GraphWarning expected={expect_graph}, got {[str(w.message) for w in graph]}"
        )
    assert bool(conv) == (not sol.converged), [str(w.message) for w in conv]
    return sol


def check_against_reference(sol, c, alpha, ref, tol):
    """All the facts about a returned BT Solution that the reference can check."""
    n = c.n_items
    assert isinstance(sol.scores, np.ndarray)
    assert sol.scores.dtype == np.float64 and sol.scores.shape == (n,)
    assert np.all(np.isfinite(sol.scores))
    assert sol.converged is True or sol.converged is np.True_
    assert sol.grad_norm <= tol
    R.assert_close(sol.scores, ref, atol=ATOL, what="scores vs reference")
    g = R.bt_gradient(sol.scores, c, alpha)
    gn = float(np.max(np.abs(g)))
    assert abs(sol.grad_norm - gn) <= GRAD_ATOL + GRAD_RTOL * gn, (sol.grad_norm, gn)
    f = R.bt_objective(sol.scores, c, alpha)
    assert sol.objective == pytest.approx(f, rel=OBJ_RTOL, abs=1e-12)
    labels = R.components(c)
    assert R.same_partition(sol.labels, labels)
    assert sol.n_components == np.unique(labels).size
    assert sol.device == "cpu"
    assert int(sol.n_iter) >= 0
    if alpha == 0:
        # centred inside every component
        for lab in np.unique(labels):
            assert abs(sol.scores[labels == lab].mean()) <= 1e-12 * max(1.0, np.abs(sol.scores).max()) + 1e-13


# --------------------------------------------------------------------------- #
# the reference itself
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("alpha", [0.0, 0.7])
@pytest.mark.parametrize("kind", ["soft", "hard", "mixed"])
def test_reference_gradient_and_hessian_match_finite_differences(kind, alpha):
    rng = np.random.default_rng(1)
    c = R.random_comparisons(rng, 9, 25, kind, weighted=True)
    s = rng.normal(0, 2, c.n_items)
    g_fd = R.finite_difference_gradient(lambda x: R.bt_objective(x, c, alpha), s)
    R.assert_close(R.bt_gradient(s, c, alpha), g_fd, atol=1e-7, rtol=FD_RTOL, what="grad vs FD")
    H_fd = R.finite_difference_hessian(lambda x: R.bt_gradient(x, c, alpha), s)
    R.assert_close(R.bt_hessian(s, c, alpha), H_fd, atol=1e-7, rtol=FD_RTOL, what="Hessian vs FD")


def test_reference_objective_matches_literal_formula():
    rng = np.random.default_rng(2)
    c = R.random_comparisons(rng, 6, 10, "mixed", weighted=True)
    s = rng.normal(0, 1, 6)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    f = 0.0
    for a, b, p, w in zip(c.i, c.j, c.p, c.w):
        f -= w * (p * np.log(sig(s[a] - s[b])) + (1 - p) * np.log(sig(s[b] - s[a])))
    f -= 0.3 * sum(np.log(sig(x)) + np.log(sig(-x)) for x in s)
    assert R.bt_objective(s, c, 0.3) == pytest.approx(f, rel=1e-13)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("alpha", ALPHAS)
def test_reference_optimum_is_stationary_and_matches_scipy(name, alpha):
    c = _case(name)
    s = R.bt_solve(c, alpha)
    assert np.max(np.abs(R.bt_gradient(s, c, alpha))) <= 1e-10
    # independent optimiser: scipy trust-exact on F (+ a centring penalty when alpha == 0)
    labels = R.components(c)
    if alpha == 0:
        P = R._projector(labels)
        fun = lambda x: R.bt_objective(x, c, 0.0) + 0.5 * x @ P @ x  # noqa: E731
        jac = lambda x: R.bt_gradient(x, c, 0.0) + P @ x  # noqa: E731
        hess = lambda x: R.bt_hessian(x, c, 0.0) + P  # noqa: E731
    else:
        fun = lambda x: R.bt_objective(x, c, alpha)  # noqa: E731
        jac = lambda x: R.bt_gradient(x, c, alpha)  # noqa: E731
        hess = lambda x: R.bt_hessian(x, c, alpha)  # noqa: E731
    res = minimize(fun, np.zeros(c.n_items), jac=jac, hess=hess, method="trust-exact",
                   options={"gtol": 1e-11, "maxiter": 1000})
    # scipy stops a little short of 1e-11 on some cases ("bad approximation"): looser check
    assert np.max(np.abs(jac(res.x))) <= 1e-6, res.message
    R.assert_close(res.x, s, atol=1e-5, what="scipy trust-exact vs reference Newton")
    assert fun(res.x) >= fun(s) - 1e-12 * (1 + abs(fun(s)))


def test_reference_mle_existence_rule():
    # chain of hard wins: no MLE; the same pairs with a loss back: MLE
    assert not R.bt_mle_exists(R.Comparisons.make([0, 1], [1, 2]))
    assert R.bt_mle_exists(R.Comparisons.make([0, 1, 2], [1, 2, 0]))
    # the only loss of item 0 has weight zero: ignored
    assert R.bt_mle_exists(R.Comparisons.make([0, 1, 2, 1], [1, 2, 1, 0]))
    assert not R.bt_mle_exists(R.Comparisons.make([0, 1, 2, 1], [1, 2, 1, 0], w=[1, 1, 1, 0]))
    # a hard win plus a hard loss on the same pair is enough
    assert R.bt_mle_exists(R.Comparisons.make([0, 0], [1, 1], [1.0, 0.0]))
    # ties give arcs both ways
    assert R.bt_mle_exists(R.Comparisons.make([0, 1], [1, 2], [0.5, 0.5]))
    with pytest.raises(ValueError):
        R.bt_solve(R.Comparisons.make([0, 1], [1, 2]), 0.0)


# --------------------------------------------------------------------------- #
# the solver against the reference
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_methods_match_reference(name, alpha, method):
    c = _case(name)
    if alpha == 0 and not R.bt_mle_exists(c):
        pytest.skip("no MLE for this case with alpha = 0 (covered in test_graph.py)")
    ref = R.bt_solve(c, alpha)
    tol = R.fair_tol(R.bt_hessian(ref, c, alpha), ATOL, alpha)
    sol = _solve(c, alpha, method=method, tol=tol, max_iter=MAX_ITER)
    assert sol.method == method
    check_against_reference(sol, c, alpha, ref, tol)


def test_hard_case_has_an_mle_with_alpha_zero():
    # guard: the "hard" case above must really be exercised with alpha = 0
    assert R.bt_mle_exists(_case("hard"))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "shape, alpha",
    [("chain", 0.01), ("cycle", 0.0), ("cycle", 0.01), ("cycle_chords", 0.0), ("chain_back", 0.0)],
)
def test_sparse_hard_data_where_fixed_points_oscillate(shape, alpha, method):
    """Long chains / cycles of hard outcomes with little or no prior: all methods converge."""
    n = 12 if shape == "chain" else 25
    idx = np.arange(n)
    if shape == "chain":  # 0 > 1 > ... > n-1, only the prior holds it
        c = R.Comparisons.make(idx[:-1], idx[1:], n_items=n)
    elif shape == "cycle":  # 0 > 1 > ... > n-1 > 0
        c = R.Comparisons.make(idx, (idx + 1) % n)
    elif shape == "cycle_chords":
        c = R.Comparisons.make(np.concatenate([idx, idx[::3]]), np.concatenate([(idx + 1) % n, (idx[::3] + 7) % n]))
    else:  # chain with a single hard loss from the bottom back to the top
        c = R.Comparisons.make(np.concatenate([idx[:-1], [n - 1]]), np.concatenate([idx[1:], [0]]))
    ref = R.bt_solve(c, alpha)
    tol = max(R.fair_tol(R.bt_hessian(ref, c, alpha), ATOL, alpha), 1e-11)
    sol = _solve(c, alpha, method=method, tol=tol, max_iter=MAX_ITER)
    check_against_reference(sol, c, alpha, ref, tol)


@pytest.mark.parametrize("method", ["auto", "newton", "mm", "newman"])
def test_default_tolerance_gives_grad_norm_below_1e8(method, solve_clean):
    c = _case("weighted")
    sol = solve_clean(**c.kwargs(), alpha=1.0, method=method)
    assert sol.converged
    assert sol.grad_norm <= 1e-8
    assert np.max(np.abs(R.bt_gradient(sol.scores, c, 1.0))) <= 1e-8 + GRAD_ATOL
    assert sol.method == ("newton" if method == "auto" else method)


def test_default_model_and_alpha(solve_clean):
    c = _case("soft")
    sol = solve_clean(c.i, c.j, c.p)  # model "bt", alpha = 1, weights 1, n_items from data
    ref = R.bt_solve(R.Comparisons.make(c.i, c.j, c.p), 1.0)
    R.assert_close(sol.scores, ref, atol=ATOL)
    assert sol.se is None and sol.se_method is None


def test_winner_loser_rows_and_default_p(solve_clean):
    rng = np.random.default_rng(3)
    c = R.random_comparisons(rng, 10, 60, "hard")
    win = np.where(c.p == 1, c.i, c.j)
    lose = np.where(c.p == 1, c.j, c.i)
    rows = np.stack([win, lose], axis=1)
    ref = R.bt_solve(R.Comparisons.make(win, lose), 0.5)
    a = solve_clean(rows, alpha=0.5)
    b = solve_clean(win, lose, alpha=0.5)
    c2 = solve_clean(win, lose, np.ones(win.size), alpha=0.5)
    for sol in (a, b, c2):
        R.assert_close(sol.scores, ref, atol=ATOL)


def test_python_lists_and_int32_inputs(solve_clean):
    c = _case("soft")
    ref = R.bt_solve(c, 1.0)
    s_list = solve_clean(c.i.tolist(), c.j.tolist(), c.p.tolist(), weights=c.w.tolist()).scores
    s_32 = solve_clean(c.i.astype(np.int32), c.j.astype(np.int32), c.p, weights=c.w).scores
    R.assert_close(s_list, ref, atol=ATOL)
    R.assert_close(s_32, ref, atol=ATOL)


def test_n_items_larger_than_data_gives_exact_zero_to_isolated_items(solve_clean):
    c = R.random_comparisons(np.random.default_rng(4), 6, 20, "soft")
    for alpha in (0.0, 0.5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pycomp.GraphWarning)
            sol = pycomp.solve(c.i, c.j, c.p, n_items=9, alpha=alpha)
        assert sol.scores.shape == (9,)
        assert np.all(sol.scores[6:] == 0.0), sol.scores[6:]
        ref = R.bt_solve(R.Comparisons(c.i, c.j, c.p, c.w, 9), alpha)
        R.assert_close(sol.scores, ref, atol=ATOL)
        assert sol.n_components == 4


def test_swapping_sides_and_probabilities_is_invariant(solve_clean):
    c = _case("mixed_ties")
    a = solve_clean(c.i, c.j, c.p, weights=c.w, alpha=0.3, tol=1e-11).scores
    b = solve_clean(c.j, c.i, 1.0 - c.p, weights=c.w, alpha=0.3, tol=1e-11).scores
    R.assert_close(a, b, atol=1e-9)


def test_relabelling_items_permutes_scores(solve_clean):
    c = _case("weighted")
    perm = np.random.default_rng(5).permutation(c.n_items)
    a = solve_clean(**c.kwargs(), alpha=0.0, tol=1e-11).scores
    b = solve_clean(perm[c.i], perm[c.j], c.p, weights=c.w, alpha=0.0, tol=1e-11).scores
    R.assert_close(b[perm], a, atol=1e-9)


def test_scaling_weights_and_alpha_together_keeps_optimum(solve_clean):
    c = _case("weighted")
    a = solve_clean(**c.kwargs(), alpha=0.4, tol=1e-11).scores
    b = solve_clean(c.i, c.j, c.p, weights=3.0 * c.w, alpha=1.2, tol=1e-11).scores
    R.assert_close(a, b, atol=1e-9)


def test_weights_default_to_one(solve_clean):
    c = _case("soft")
    a = solve_clean(c.i, c.j, c.p, alpha=1.0).scores
    b = solve_clean(c.i, c.j, c.p, weights=np.ones(c.i.size), alpha=1.0).scores
    R.assert_close(a, b, atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_thread_counts_agree_on_a_large_graph(method, solve_clean):
    # large enough for the parallel paths; checked against the reference gradient
    c = R.random_comparisons(np.random.default_rng(6), 3000, 12000, "mixed", weighted=True)
    a = solve_clean(**c.kwargs(), alpha=0.5, method=method, n_threads=1, tol=1e-10, max_iter=MAX_ITER)
    b = solve_clean(**c.kwargs(), alpha=0.5, method=method, n_threads=2, tol=1e-10, max_iter=MAX_ITER)
    R.assert_close(a.scores, b.scores, atol=1e-8, what=method)
    for sol in (a, b):
        assert np.max(np.abs(R.bt_gradient(sol.scores, c, 0.5))) <= 1e-10 + GRAD_ATOL


@pytest.mark.parametrize("method", ["mm", "newman"])
def test_max_iter_one_warns_and_reports_honestly(method):
    c = _case("soft")
    with pytest.warns(pycomp.ConvergenceWarning):
        sol = pycomp.solve(**c.kwargs(), alpha=1.0, method=method, max_iter=1)
    assert not sol.converged
    assert sol.grad_norm > 1e-8
    gn = float(np.max(np.abs(R.bt_gradient(sol.scores, c, 1.0))))
    assert sol.grad_norm == pytest.approx(gn, rel=GRAD_RTOL, abs=GRAD_ATOL)
    assert sol.objective == pytest.approx(R.bt_objective(sol.scores, c, 1.0), rel=OBJ_RTOL)
    assert sol.n_iter <= 1


def test_warning_classes_are_user_warnings():
    assert issubclass(pycomp.ConvergenceWarning, UserWarning)
    assert issubclass(pycomp.GraphWarning, UserWarning)


def test_large_scores_stay_finite_and_accurate(solve_clean):
    # strong, nearly deterministic data with a tiny prior: large score spread
    rng = np.random.default_rng(7)
    c = R.random_comparisons(rng, 15, 100, "hard", spread=8.0)
    ref = R.bt_solve(c, 0.05)
    tol = max(R.fair_tol(R.bt_hessian(ref, c, 0.05), ATOL, 0.05), 1e-11)
    for method in METHODS:
        sol = solve_clean(**c.kwargs(), alpha=0.05, method=method, tol=tol, max_iter=MAX_ITER)
        check_against_reference(sol, c, 0.05, ref, tol)


def _extreme_cycle():
    # a 3-cycle of hard wins whose weights span nine orders of magnitude
    return R.Comparisons.make([0, 1, 2], [1, 2, 0], w=[1e3, 1.0, 1e-6]), 1e-3


def _extreme_random():
    rng = np.random.default_rng(2)
    c = R.random_comparisons(rng, 8, 10, "hard", spread=2.0)
    c.w[:] = np.exp(rng.normal(0.0, 3.0, c.w.size))  # weights from 1e-3 to 1e3
    return c, 0.01


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("make", [_extreme_cycle, _extreme_random], ids=["cycle", "random"])
def test_extreme_weight_ratios(make, method):
    """Strictly convex (alpha > 0) but badly scaled: never end worse than the start.

    Newton (with a globalising line search) and Newman must reach the optimum;
    MM is first-order and may legitimately need more than MAX_ITER sweeps here,
    so for MM only honest reporting and descent are required.
    """
    c, alpha = make()
    ref = R.bt_solve(c, alpha)
    tol = max(R.fair_tol(R.bt_hessian(ref, c, alpha), ATOL, alpha), 1e-11)
    f0 = R.bt_objective(np.zeros(c.n_items), c, alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.ConvergenceWarning)
        sol = pycomp.solve(**c.kwargs(), alpha=alpha, method=method, tol=tol, max_iter=MAX_ITER)
    assert np.all(np.isfinite(sol.scores))
    assert sol.objective <= f0, f"objective {sol.objective} is worse than F(0) = {f0}"
    if method == "mm":
        gn = float(np.max(np.abs(R.bt_gradient(sol.scores, c, alpha))))
        assert sol.grad_norm == pytest.approx(gn, rel=GRAD_RTOL, abs=GRAD_ATOL)
        assert bool(sol.converged) == (sol.grad_norm <= tol)
    else:
        check_against_reference(sol, c, alpha, ref, tol)


# --------------------------------------------------------------------------- #
# the objective: skipped by the solve, computed on first access
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("model", ["bt", "gaussian"])
@pytest.mark.parametrize("outcome,weighted", [("hard", False), ("soft", False), ("soft", True)])
def test_objective_on_first_access_matches_reference(model, outcome, weighted):
    rng = np.random.default_rng(31)
    c = R.random_comparisons(rng, 23, 97, outcome, weighted=weighted)
    sol = pycomp.solve(c.i, c.j, c.p, weights=c.w, n_items=c.n_items, model=model, alpha=0.7)
    assert sol._objective is None, "the solve should leave F to be computed on first access"
    ref = (R.bt_objective if model == "bt" else R.gaussian_objective)(sol.scores, c, 0.7)
    assert sol.objective == pytest.approx(ref, rel=OBJ_RTOL, abs=1e-12)
    assert sol._objective_of is None, "the comparison arrays should be released once F is known"
    assert sol.objective == pytest.approx(ref, rel=OBJ_RTOL, abs=1e-12)


@pytest.mark.parametrize("method", ["newton", "mm", "newman"])
def test_core_objective_flag(method):
    rng = np.random.default_rng(5)
    c = R.random_comparisons(rng, 40, 200, "soft", weighted=True)
    args = (c.i, c.j, c.p, c.w, c.n_items, method, 1.0, 1e-9, 100_000, 0)
    with_f = pycomp._core.solve_bt(*args)
    without = pycomp._core.solve_bt(*args, objective=False)
    assert np.isnan(without["objective"])
    np.testing.assert_array_equal(with_f["scores"], without["scores"])
    direct = pycomp._core.objective(c.i, c.j, c.p, c.w, without["scores"], c.n_items, model="bt", alpha=1.0)
    assert direct == pytest.approx(with_f["objective"], rel=1e-12)
    assert direct == pytest.approx(R.bt_objective(without["scores"], c, 1.0), rel=OBJ_RTOL)


def test_core_objective_bad_input():
    i, j = np.array([0, 1]), np.array([1, 2])
    with pytest.raises(ValueError, match="scores must be a float array of length n_items = 3"):
        pycomp._core.objective(i, j, scores=np.zeros(2))
    with pytest.raises(ValueError, match="scores must be"):
        pycomp._core.objective(i, j, scores=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="model = 'x'"):
        pycomp._core.objective(i, j, scores=np.zeros(3), model="x")
    with pytest.raises(ValueError, match="alpha"):
        pycomp._core.objective(i, j, scores=np.zeros(3), alpha=-1.0)
    with pytest.raises(ValueError, match=r"i\[1\]"):
        pycomp._core.objective(np.array([0, 5]), j, scores=np.zeros(3), n_items=3)


# --------------------------------------------------------------------------- #
# the passes for large graphs (prefetching gathers) and the baseline kernels
# --------------------------------------------------------------------------- #
def _as_given(c, kind):
    """(i, j, p, w) as a user would pass them: hard as (winner, loser) rows with p=None,
    soft with p only, weighted with p and w (so that each graph kind of the core runs)."""
    if kind == "hard":
        first_won = c.p == 1.0
        return np.where(first_won, c.i, c.j), np.where(first_won, c.j, c.i), None, None
    return c.i, c.j, c.p, (c.w if kind == "weighted" else None)


@pytest.mark.parametrize("kind", ["hard", "soft", "weighted"])
def test_newton_on_a_graph_larger_than_the_cache(kind):
    # More than 65,536 items: the Newton passes prefetch their gathers.
    rng = np.random.default_rng(11)
    c = R.random_comparisons(rng, 70_001, 150_001, "soft" if kind != "hard" else "hard", weighted=kind == "weighted")
    i, j, p, w = _as_given(c, kind)
    sol = pycomp.solve(i, j, p, weights=w, n_items=c.n_items, method="newton", tol=1e-9)
    assert sol.converged
    g = R.bt_gradient(sol.scores, c, 1.0)
    assert np.abs(g).max() <= 1e-9 + 1e-12
    assert sol.grad_norm == pytest.approx(np.abs(g).max(), rel=GRAD_RTOL, abs=GRAD_ATOL)


# Odd sizes (row tails of 1-3 entries) and one graph past the prefetching threshold.
BASE_KERNEL_CASES = [(37, 151, "hard"), (37, 151, "soft"), (41, 173, "weighted"), (70001, 150001, "hard")]
BASE_KERNELS_SCRIPT = f"CASES = {BASE_KERNEL_CASES!r}\n" + """
import json, sys
import numpy as np
import pycomp
from pycomp import _core
assert _core.build_info()["cpu_kernels"] == "base", _core.build_info()["cpu_kernels"]
out = {}
for seed, (n, m, kind) in enumerate(CASES):
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, m); j = (i + rng.integers(1, n, m)) % n
    p = None if kind == "hard" else rng.uniform(0, 1, m)
    w = rng.uniform(0, 2, m) if kind == "weighted" else None
    for method in ("newton", "mm", "newman"):
        if n > 1000 and method != "newton":
            continue
        sol = pycomp.solve(i, j, p, weights=w, n_items=n, method=method, tol=1e-9, max_iter=100000)
        out[f"{seed}-{method}"] = sol.scores.tolist()
json.dump(out, sys.stdout)
"""


def test_baseline_kernels_agree_with_the_dispatched_ones():
    import json
    import os
    import subprocess
    import sys

    if pycomp.build_info().get("cpu_kernels") != "avx2":
        pytest.skip("this machine runs the baseline kernels already")
    env = dict(os.environ, PYCOMP_CPU_KERNELS="base")
    run = subprocess.run([sys.executable, "-c", BASE_KERNELS_SCRIPT], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    base = json.loads(run.stdout)
    for seed, (n, m, kind) in enumerate(BASE_KERNEL_CASES):
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, m)
        j = (i + rng.integers(1, n, m)) % n
        p = None if kind == "hard" else rng.uniform(0, 1, m)
        w = rng.uniform(0, 2, m) if kind == "weighted" else None
        for method in ("newton", "mm", "newman"):
            key = f"{seed}-{method}"
            if key not in base:
                continue
            sol = pycomp.solve(i, j, p, weights=w, n_items=n, method=method, tol=1e-9, max_iter=100000)
            np.testing.assert_allclose(sol.scores, base[key], rtol=0, atol=1e-8, err_msg=key)


def test_reused_work_arrays_do_not_change_results():
    # Large enough for the graph and the Newton work arrays (>= 2 MiB) to be kept and reused.
    rng = np.random.default_rng(3)
    n, m = 140_000, 300_000
    i = rng.integers(0, n, m)
    j = (i + rng.integers(1, n, m)) % n
    pycomp.release_memory()
    first = pycomp.solve(i, j, n_items=n).scores
    assert pycomp._core.cached_memory() > 0
    # Other data of the same size: the arrays handed back hold its values, not zeros.
    other = pycomp.solve(j, i, rng.uniform(0, 1, m), n_items=n).scores
    again = pycomp.solve(i, j, n_items=n).scores
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    freed = pycomp.release_memory()
    assert freed > 0 and pycomp._core.cached_memory() == 0
    np.testing.assert_array_equal(pycomp.solve(i, j, n_items=n).scores, first)


# --------------------------------------------------------------------------- #
# alpha = 0 without an optimum: a structured NoOptimumError
# --------------------------------------------------------------------------- #
def _group_against_rest(direction, offset):
    """A tie between items 0 and 1 (component 0, whose optimum exists), then from
    `offset` on a cycle of wins among 7 items G and a cycle among 3 items R.

    direction "never beat": every R item beat a G item, so G never beat R.
    direction "never lost to": every G item beat an R item, so G never lost to R.
    """
    group = np.arange(offset, offset + 7)
    rest = np.arange(offset + 7, offset + 10)
    i = [0] + list(group) + list(rest)
    j = [1] + list(np.roll(group, -1)) + list(np.roll(rest, -1))
    p = [0.5] + [1.0] * 10
    for k, r in enumerate(rest):
        a, b = (r, group[k]) if direction == "never beat" else (group[k], r)
        i.append(a)
        j.append(b)
        p.append(1.0)
    return R.Comparisons.make(i, j, p), group


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("direction", ["never beat", "never lost to"])
def test_no_optimum_error_carries_the_whole_group(direction, method):
    from pycomp.exceptions import NoOptimumError

    c, group = _group_against_rest(direction, offset=2)
    assert not R.bt_mle_exists(c)
    with pytest.raises(NoOptimumError) as e:
        pycomp.solve(**c.kwargs(), alpha=0.0, method=method)
    err = e.value
    assert isinstance(err, ValueError)
    assert err.items.dtype == np.int64
    np.testing.assert_array_equal(err.items, group)  # all 7, not the 5 the message shows
    assert err.component == 1
    assert err.direction == direction
    limit = "-inf" if direction == "never beat" else "+inf"
    assert str(err) == (
        "alpha=0 but the maximum-likelihood scores do not exist: in component 1 (10 items), the group of 7 "
        f"items with 0-based item indices {{2, 3, 4, 5, 6, ...}} {direction} any of the other 3 items of that "
        f"component, so their scores diverge to {limit}. Use alpha > 0 (e.g. alpha=1.0, the virtual-games prior) "
        "or add comparisons."
    )


def test_no_optimum_error_for_a_single_item_and_pickling():
    import pickle

    from pycomp.exceptions import NoOptimumError

    with pytest.raises(NoOptimumError) as e:
        pycomp.solve([0, 0, 1], [1, 2, 2], [1.0, 1.0, 0.5], alpha=0.0)
    err = e.value
    np.testing.assert_array_equal(err.items, [0])
    assert (err.component, err.direction) == (0, "never lost to")
    assert "the group of 1 item with 0-based item index {0} never lost to" in str(err)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is NoOptimumError and str(back) == str(err)
    np.testing.assert_array_equal(back.items, err.items)
    assert (back.component, back.direction) == (err.component, err.direction)
