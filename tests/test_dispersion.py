"""solve(..., dispersion=...): the quasi-likelihood dispersion of PoE-BT, against plain references."""
import warnings

import numpy as np
import pytest
from scipy.special import expit
from typer.testing import CliRunner

import pycomp
from pycomp.cli import app
from pycomp.dispersion import FIXED_POINT_RTOL, parse_option
from reference import Comparisons, bt_se, bt_solve, random_comparisons
from reference import components as reference_components


def _pearson_reference(c: Comparisons, s: np.ndarray):
    """Pearson's X^2 / df on the unique unordered pairs, by a plain loop over the rows."""
    sums = {}
    for a, b, p, w in zip(c.i.tolist(), c.j.tolist(), c.p.tolist(), c.w.tolist()):
        key, win = ((a, b), p) if a < b else ((b, a), 1.0 - p)
        acc = sums.setdefault(key, [0.0, 0.0, 0.0])
        acc[0] += w * win
        acc[1] += w
        acc[2] += w * w
    x2, used = 0.0, []
    for (a, b), (wins, total, squares) in sums.items():
        if squares == 0.0:
            continue
        q = expit(s[a] - s[b])
        x2 += (wins - total * q) ** 2 / (squares * q * (1.0 - q))
        used.append((a, b))
    items = sorted({x for pair in used for x in pair})
    index = {x: k for k, x in enumerate(items)}
    graph = Comparisons.make([index[a] for a, _ in used], [index[b] for _, b in used], n_items=max(len(items), 2))
    components = len(np.unique(reference_components(graph)[: len(items)]))
    df = len(used) - (len(items) - components)
    return (x2 / df if df >= 1 else float("nan")), df


def _beta_judge(rng, n, m, k, spread=1.0):
    truth = rng.normal(0.0, spread, n)
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j = j + (j >= i)
    return i, j, rng.beta(k * expit(truth[i] - truth[j]), k * expit(truth[j] - truth[i])), truth


@pytest.mark.parametrize("n_items, m, kind, weighted, alpha",
                         [(7, 40, "soft", False, 1.0), (23, 150, "mixed", True, 0.7), (13, 300, "hard", False, 2.0),
                          (5, 9, "soft", True, 0.0), (31, 97, "ties", True, 1.0)])
def test_pearson_fixed_point_scores_and_se_match_the_reference(n_items, m, kind, weighted, alpha):
    rng = np.random.default_rng(n_items + m)
    c = random_comparisons(rng, n_items, m, kind=kind, weighted=weighted)
    if kind == "ties":  # every p = 0.5 fits exactly at s = 0: X^2 = 0 needs the floor
        c.p[: m // 2] = rng.random(m // 2)
    sol = pycomp.solve(c.i, c.j, c.p, weights=c.w, n_items=n_items, alpha=alpha, return_se=True, tol=1e-12,
                       dispersion="pearson")
    phi = sol.dispersion
    # the scores are the reference optimum at alpha * phi, its standard errors times sqrt(phi)
    ref = bt_solve(c, alpha * phi, gtol=1e-11)
    np.testing.assert_allclose(sol.scores, ref, rtol=0, atol=1e-8)
    np.testing.assert_allclose(sol.se, np.sqrt(phi) * bt_se(ref, c, alpha * phi), rtol=1e-7)
    # and phi is Pearson's statistic at those scores (a fixed point, to its tolerance)
    want, df = _pearson_reference(c, ref)
    assert sol.dispersion_df == df
    np.testing.assert_allclose(phi, want, rtol=(3 * FIXED_POINT_RTOL if alpha > 0 else 1e-9))


def test_the_plain_solve_is_unchanged_by_default():
    c = random_comparisons(np.random.default_rng(1), 9, 60)
    plain = pycomp.solve(c.i, c.j, c.p, n_items=9, return_se=True)
    none = pycomp.solve(c.i, c.j, c.p, n_items=9, return_se=True, dispersion=None)
    assert plain.dispersion is None and none.dispersion is None
    np.testing.assert_array_equal(plain.scores, none.scores)
    np.testing.assert_allclose(plain.scores, bt_solve(c, 1.0), atol=1e-8)


def test_a_given_phi_scales_the_prior_and_the_standard_errors():
    c = random_comparisons(np.random.default_rng(2), 11, 50, weighted=True)
    sol = pycomp.solve(c.i, c.j, c.p, weights=c.w, n_items=11, alpha=2.0, return_se=True, dispersion=0.25,
                       tol=1e-12)
    ref = bt_solve(c, 0.5, gtol=1e-11)
    np.testing.assert_allclose(sol.scores, ref, atol=1e-8)
    np.testing.assert_allclose(sol.se, 0.5 * bt_se(ref, c, 0.5), rtol=1e-7)
    assert sol.dispersion == 0.25 and sol.dispersion_df is None


def test_sandwich_and_bootstrap_take_only_the_prior_from_the_dispersion():
    c = random_comparisons(np.random.default_rng(3), 8, 80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.PriorWarning)
        sand = pycomp.solve(c.i, c.j, c.p, n_items=8, return_se=True, se_method="sandwich", dispersion=0.3)
        plain = pycomp.solve(c.i, c.j, c.p, n_items=8, alpha=0.3, return_se=True, se_method="sandwich")
        boot = pycomp.solve(c.i, c.j, c.p, n_items=8, bootstrap=20, seed=4, dispersion=0.3)
        boot_plain = pycomp.solve(c.i, c.j, c.p, n_items=8, alpha=0.3, bootstrap=20, seed=4)
    np.testing.assert_array_equal(sand.se, plain.se)
    np.testing.assert_array_equal(boot.replicates, boot_plain.replicates)


def test_phi_estimates_the_judges_variance_against_a_coin_flip():
    rng = np.random.default_rng(4)
    # soft judgements p ~ Beta(k q, k (1 - q)) have variance q (1 - q) / (k + 1)
    for k in (2.0, 20.0):
        i, j, p, _ = _beta_judge(rng, 60, 20000, k)
        phi = pycomp.solve(i, j, p, n_items=60, alpha=1.0, dispersion="pearson").dispersion
        assert abs(phi * (k + 1) - 1.0) < 0.05, (k, phi)
    # independent hard outcomes: a coin flip's own variance
    i, j, p, _ = _beta_judge(rng, 60, 20000, 20.0)
    hard = (rng.random(p.shape[0]) < p).astype(float)
    assert abs(pycomp.solve(i, j, hard, n_items=60, dispersion="pearson").dispersion - 1.0) < 0.05
    # repeats of a pair sharing a bias: over-dispersed, which only the collapsed pairs can see
    n, m = 10, 4000
    truth = rng.normal(size=n)
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j = j + (j >= i)
    shared = rng.beta(10 * expit(truth[:, None] - truth[None, :]), 10 * expit(truth[None, :] - truth[:, None]))
    q = np.where(i < j, shared[np.minimum(i, j), np.maximum(i, j)], 1.0 - shared[np.minimum(i, j), np.maximum(i, j)])
    outcome = (rng.random(m) < q).astype(float)
    phi = pycomp.solve(i, j, outcome, n_items=n, dispersion="pearson").dispersion
    assert phi > 3.0  # about 1 + (89 - 1) / 11 = 9 comparisons' worth of shared bias per pair


def test_coverage_of_the_dispersion_interval_on_a_confident_sparse_judge():
    """The case bench_coverage shows the plain intervals fail at alpha = 1 (47% for the bootstrap,
    100% for the Hessian): the dispersion interval holds the truth about 90% of the time."""
    rng = np.random.default_rng(5)
    hits, plain_hits = [], []
    for _ in range(20):
        i, j, p, truth = _beta_judge(rng, 100, 400, 20.0)
        sol = pycomp.solve(i, j, p, n_items=100, return_se=True, dispersion="pearson")
        low, high = sol.interval(0.9)
        on_level = truth - truth.mean() + sol.scores.mean()
        hits.append((low <= on_level) & (on_level <= high))
        plain = pycomp.solve(i, j, p, n_items=100, return_se=True)
        low, high = plain.interval(0.9)
        on_level = truth - truth.mean() + plain.scores.mean()
        plain_hits.append((low <= on_level) & (on_level <= high))
    assert 0.85 <= np.mean(hits) <= 0.95, np.mean(hits)
    assert np.mean(plain_hits) > 0.97  # the plain Hessian: far too wide for this judge


def test_auto_falls_back_to_the_plain_fit_without_residual_degrees_of_freedom():
    i, j, p = [0, 1, 2], [1, 2, 3], [0.9, 0.7, 0.6]  # a spanning tree: df = 0
    auto = pycomp.solve(i, j, p, return_se=True, dispersion="auto")
    plain = pycomp.solve(i, j, p, return_se=True)
    assert auto.dispersion is None
    np.testing.assert_array_equal(auto.scores, plain.scores)
    np.testing.assert_array_equal(auto.se, plain.se)
    with pytest.raises(ValueError, match="df = 0 residual degrees of freedom"):
        pycomp.solve(i, j, p, dispersion="pearson")
    # a repeated pair is one unique pair: still no residual degree of freedom
    with pytest.raises(ValueError, match="3 unique pairs leave df = 0"):
        pycomp.solve([0, 1, 2, 1], [1, 2, 3, 0], [0.9, 0.7, 0.6, 0.2], dispersion="pearson")
    # zero-weight rows and an item without comparisons are not counted
    sol = pycomp.solve([0, 1, 2, 0, 0], [1, 2, 0, 3, 2], [0.9, 0.7, 0.6, 0.1, 0.3], weights=[1, 1, 1, 0, 1],
                       n_items=5, dispersion="pearson")
    assert sol.dispersion_df == 1


def test_auto_is_the_plain_fit_for_the_gaussian_model_and_others_are_refused():
    c = random_comparisons(np.random.default_rng(6), 6, 30)
    auto = pycomp.solve(c.i, c.j, c.p, n_items=6, model="gaussian", return_se=True, dispersion="auto")
    plain = pycomp.solve(c.i, c.j, c.p, n_items=6, model="gaussian", return_se=True)
    assert auto.dispersion is None
    np.testing.assert_array_equal(auto.se, plain.se)
    with pytest.raises(ValueError, match="dispersion applies to model='bt'"):
        pycomp.solve(c.i, c.j, c.p, n_items=6, model="gaussian", dispersion="pearson")


@pytest.mark.parametrize("bad", ["foo", 0, -1.0, float("nan"), float("inf"), [0.5]])
def test_bad_dispersion_values_name_the_option(bad):
    c = random_comparisons(np.random.default_rng(7), 5, 20)
    with pytest.raises(ValueError, match="dispersion="):
        pycomp.solve(c.i, c.j, c.p, n_items=5, dispersion=bad)


def test_alpha_zero_without_an_optimum_is_the_plain_error():
    with pytest.raises(pycomp.NoOptimumError):
        pycomp.solve([0, 1, 0], [1, 2, 2], None, alpha=0.0, dispersion="pearson")


@pytest.mark.parametrize("text, want", [("auto", "auto"), ("Pearson", "pearson"), ("none", None), ("0.25", 0.25)])
def test_the_option_text(text, want):
    assert parse_option(text) == want


@pytest.mark.parametrize("text", ["0", "-2", "nan", "inf", "x"])
def test_bad_option_text_names_the_option(text):
    with pytest.raises(ValueError, match=f"--dispersion '{text}' must be auto, pearson, none or a number > 0"):
        parse_option(text)


def test_command_line_default_is_auto_and_prints_phi(tmp_path):
    rng = np.random.default_rng(8)
    i, j, p, _ = _beta_judge(rng, 12, 90, 20.0)
    inp = tmp_path / "c.csv"
    inp.write_text("a,b,p\n" + "".join(f"{a},{b},{x!r}\n" for a, b, x in zip(i, j, p.tolist())))
    runner = CliRunner()
    res = runner.invoke(app, ["solve", str(inp), "--out", str(tmp_path / "s.csv")])
    assert res.exit_code == 0, res.output
    sol = pycomp.solve(i, j, p, n_items=12, return_se=True, dispersion="auto")
    import pandas as pd

    got = pd.read_csv(tmp_path / "s.csv")
    np.testing.assert_allclose(got["score"], sol.scores, atol=1e-12)
    np.testing.assert_allclose(got["se"], sol.se, rtol=1e-12)
    assert f"dispersion phi = {sol.dispersion:.3g} (estimated on {sol.dispersion_df} residual degrees" in res.output
    res = runner.invoke(app, ["solve", str(inp), "--out", str(tmp_path / "s.csv"), "--dispersion", "none"])
    assert res.exit_code == 0 and "dispersion phi" not in res.output
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv")["score"],
                               pycomp.solve(i, j, p, n_items=12).scores, atol=1e-12)
    res = runner.invoke(app, ["solve", str(inp), "--out", str(tmp_path / "s.csv"), "--dispersion", "-1"])
    assert res.exit_code == 2 and "--dispersion '-1' must be auto, pearson, none or a number > 0" in res.output
    res = runner.invoke(app, ["solve", str(inp), "--out", str(tmp_path / "s.csv"), "--model", "gaussian",
                              "--dispersion", "pearson"])
    assert res.exit_code == 2 and "--dispersion pearson applies to --model bt" in res.output


@pytest.mark.parametrize("seed", range(6))
def test_df_counts_components_isolated_items_and_zero_weights(seed):
    """Several components (chains cut into pieces or random pieces), items never compared and
    zero-weight rows: df and phi as the plain reference counts them."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 200))
    if seed % 2:  # long chains cut into pieces, repeats of their pairs, and a few chords closing cycles
        perm = rng.permutation(n - 2)
        keep = rng.random(n - 3) > 0.1
        a, b = perm[:-1][keep], perm[1:][keep]
        a, b = np.concatenate([a, a[::3], perm[:-2][::5]]), np.concatenate([b, b[::3], perm[2:][::5]])
    else:  # two random pieces
        half = (n - 2) // 2
        m = int(rng.integers(half, 3 * half))
        a = np.concatenate([rng.integers(0, half, m), rng.integers(half, n - 2, m)])
        b = np.concatenate([rng.integers(0, half, m), rng.integers(half, n - 2, m)])
        a, b = a[a != b], b[a != b]
    w = np.where(rng.random(a.shape[0]) < 0.1, 0.0, rng.uniform(0.5, 2.0, a.shape[0]))
    p = rng.random(a.shape[0])
    c = Comparisons(a.astype(np.int64), b.astype(np.int64), p, w, n)  # items n - 2, n - 1: never compared
    want_phi, want_df = _pearson_reference(c, bt_solve(c, 1.0))
    if want_df < 1:
        with pytest.raises(ValueError, match=f"df = {want_df} residual"):
            pycomp.solve(c.i, c.j, c.p, weights=c.w, n_items=n, dispersion="pearson")
        return
    sol = pycomp.solve(c.i, c.j, c.p, weights=c.w, n_items=n, dispersion=1.0)  # phi = 1: the plain fit
    from pycomp import collapse as C
    from pycomp.dispersion import pearson

    phi, df = pearson(C.collapse(c.i, c.j, c.p, weights=c.w, n_items=n, units=False), sol.scores, sol.n_components)
    assert df == want_df
    np.testing.assert_allclose(phi, want_phi, rtol=1e-9)


def test_without_standard_errors_the_fitted_solve_is_returned_and_its_warnings_said_once():
    c = random_comparisons(np.random.default_rng(9), 12, 80)
    sol = pycomp.solve(c.i, c.j, c.p, n_items=12, alpha=1.5, dispersion="pearson", tol=1e-12)
    assert sol.se is None
    np.testing.assert_allclose(sol.scores, bt_solve(c, 1.5 * sol.dispersion, gtol=1e-11), atol=1e-8)
    want, _ = _pearson_reference(c, sol.scores)
    np.testing.assert_allclose(sol.dispersion, want, rtol=FIXED_POINT_RTOL)
    # two separate groups at alpha = 0: one GraphWarning, as the plain solve gives
    a, b = np.array([0, 1, 2, 0, 3, 4, 5, 3]), np.array([1, 2, 0, 2, 4, 5, 3, 5])
    p = np.array([0.7, 0.6, 0.2, 0.4, 0.9, 0.3, 0.5, 0.45])
    with pytest.warns(pycomp.GraphWarning) as record:
        sol = pycomp.solve(a, b, p, alpha=0.0, dispersion="pearson")
    assert sum(issubclass(w.category, pycomp.GraphWarning) for w in record) == 1
    assert sol.dispersion_df == 6 - (6 - 2)  # 6 unique pairs (two repeats), 6 items, 2 components
    with pytest.warns(pycomp.ConvergenceWarning) as record:
        pycomp.solve(c.i, c.j, c.p, n_items=12, dispersion="pearson", max_iter=1)
    assert sum(issubclass(w.category, pycomp.ConvergenceWarning) for w in record) == 1
