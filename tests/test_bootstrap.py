"""The bootstrap: each replicate against a NumPy solve of its drawn comparisons, the draws against the
multinomial they should follow, the summaries against NumPy, and the errors."""
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import pycomp
import pycomp.exceptions
import reference as R
from pycomp._native import core
from pycomp.collapse import collapse
from pycomp.cli import app


def _arena(rng, n, m, ties=0.1, soft=False):
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j[j >= i] += 1
    truth = rng.normal(size=n)
    q = 1.0 / (1.0 + np.exp(-(truth[i] - truth[j])))
    p = rng.beta(4 * q + 0.5, 4 * (1 - q) + 0.5) if soft else (rng.random(m) < q).astype(float)
    if not soft:
        p[rng.random(m) < ties] = 0.5
    return i, j, p


def _unit_comparisons(c, counts):
    """The drawn comparisons of one replicate as plain rows: one weighted row per unit entry."""
    entry_unit = np.repeat(np.arange(c.n_units), np.diff(c.unit_start))
    w = counts[entry_unit] * c.unit_total
    with np.errstate(invalid="ignore"):
        p = np.where(c.unit_total > 0, c.unit_wins / np.where(c.unit_total > 0, c.unit_total, 1), 0.5)
    pair = c.unit_pair
    return R.Comparisons.make(c.a[pair], c.b[pair], np.clip(p, 0, 1), w, n_items=c.n_items)


@pytest.mark.parametrize("model,alpha", [("bt", 1.0), ("bt", 0.0), ("gaussian", 0.5)])
@pytest.mark.parametrize("soft", [False, True])
def test_each_replicate_is_the_solve_of_its_draw(model, alpha, soft):
    rng = np.random.default_rng(1)
    i, j, p = _arena(rng, 7, 400, soft=soft)
    sol = pycomp.solve(i, j, p, model=model, alpha=alpha, bootstrap=6, seed=11, tol=1e-10)
    c = collapse(i, j, p)
    counts = core().bootstrap_counts(c, 6, 11)
    for r in range(6):
        drawn = _unit_comparisons(c, counts[r])
        ref = R.bt_solve(drawn, alpha, gtol=1e-10) if model == "bt" else R.gaussian_solve(drawn, alpha)
        np.testing.assert_allclose(sol.replicates[r], ref, atol=1e-8)
    assert sol.replicates_converged.all()


def test_sparse_path_equals_dense_path():
    rng = np.random.default_rng(2)
    i, j, p = _arena(rng, 9, 700)
    sol = pycomp.solve(i, j, p, alpha=0.5, tol=1e-11)
    c = collapse(i, j, p)
    dense, _, ok1 = core().bootstrap(c, sol.scores, "bt", 0.5, 0.5, 1e-11, 100, 5, 3, 1, None, 1500)
    sparse, _, ok2 = core().bootstrap(c, sol.scores, "bt", 0.5, 0.5, 1e-11, 100, 5, 3, 1, None, 0)
    assert ok1.all() and ok2.all()
    np.testing.assert_allclose(dense, sparse, atol=1e-8)


def _far_replicates(boosts):
    """6 items, and given counts where item 0 loses none of its comparisons and wins each
    `boost` times as often: replicates whose optimum is far from the full solution, where
    the chord step with the full data's Hessian fails and Newton takes over."""
    i, j, p = _arena(np.random.default_rng(8), 6, 600)
    c = collapse(i, j, p)
    unit = np.repeat(np.arange(c.n_units), np.diff(c.unit_start))
    a, b = c.a[c.unit_pair], c.b[c.unit_pair]
    frac = c.unit_wins / c.unit_total
    wins = unit[((a == 0) & (frac == 1)) | ((b == 0) & (frac == 0))]
    losses = unit[((a == 0) & (frac < 1)) | ((b == 0) & (frac > 0))]
    counts = np.tile(c.unit_count, (len(boosts), 1))
    for r, boost in enumerate(boosts):
        counts[r, wins] *= boost
        counts[r, losses] = 0
    return (i, j, p), c, counts


@pytest.mark.parametrize("model,alpha", [("bt", 1.0), ("gaussian", 0.5)])
def test_replicates_far_from_the_full_solution(model, alpha):
    rows, c, counts = _far_replicates((1, 4, 10, 40))
    s0 = pycomp.solve(*rows, model=model, alpha=alpha, tol=1e-12).scores
    s, _, ok = core().bootstrap(c, s0, model, alpha, 0.5, 1e-10, 100, len(counts), 0, 1, counts, 1500)
    assert ok.all()
    for r in range(len(counts)):
        drawn = _unit_comparisons(c, counts[r])
        ref = R.bt_solve(drawn, alpha, gtol=1e-12) if model == "bt" else R.gaussian_solve(drawn, alpha)
        if model == "bt":
            assert np.abs(ref - s0).max() > 3  # far: Newton takes over
        np.testing.assert_allclose(s[r], ref, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.2, 0.05])
def test_newton_does_not_leap_past_the_optimum(alpha):
    # A weak prior and an item that wins everything: the Newton step from a nearly singular
    # Hessian once leapt to scores ~1e14 where the gradient was also small. Near-saturated
    # pairs leave the item little curvature: the replicate's relative stopping rule
    # (1e-9 x the largest item weight) holds its scores to about 1e-5 here.
    rows, c, counts = _far_replicates((40,))
    s0 = pycomp.solve(*rows, alpha=alpha, tol=1e-12).scores
    s, _, ok = core().bootstrap(c, s0, "bt", alpha, 0.5, 1e-10, 100, 1, 0, 1, counts, 1500)
    assert ok.all()
    ref = R.bt_solve(_unit_comparisons(c, counts[0]), alpha, gtol=1e-12)
    assert np.abs(ref - s0).max() > 8
    np.testing.assert_allclose(s[0], ref, atol=1e-4)

def test_draws_follow_the_multinomial_of_the_rows():
    # Drawing m rows with replacement puts Multinomial(m, N_u / m) copies on the units.
    rng = np.random.default_rng(3)
    i, j, p = _arena(rng, 4, 300, ties=0.3)
    c = collapse(i, j, p)
    B = 4000
    counts = core().bootstrap_counts(c, B, 5)
    assert (counts.sum(axis=1) == 300).all()
    q = c.unit_count / 300.0
    mean_se = np.sqrt(300 * q * (1 - q) / B)
    assert np.all(np.abs(counts.mean(axis=0) - c.unit_count) < 5 * mean_se)
    cov = np.cov(counts.T)
    want = 300 * (np.diag(q) - np.outer(q, q))
    assert np.allclose(cov, want, atol=0.12 * np.abs(want).max())
    # Large counts take the rejection sampler: the same mean and variance.
    big = collapse(np.zeros(50_000, int), np.ones(50_000, int), (np.arange(50_000) % 3 == 0).astype(float))
    draws = core().bootstrap_counts(big, 3000, 9)[:, 0]
    k = big.unit_count[0]
    assert abs(draws.mean() - k) < 5 * np.sqrt(k * (1 - k / 50_000) / 3000)
    assert draws.var() == pytest.approx(k * (1 - k / 50_000), rel=0.1)


def _binomial_pmf(n, q, k):
    from scipy.special import gammaln

    return np.exp(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1) + k * np.log(q) + (n - k) * np.log1p(-q))


def _chi2_pvalue(draws, n, q):
    """Goodness of fit of integer draws to Bin(n, q), cells pooled to an expected count >= 5."""
    from scipy.stats import chi2

    k = np.arange(n + 1)
    expected = _binomial_pmf(n, q, k) * len(draws)
    observed = np.bincount(draws, minlength=n + 1).astype(float)
    cells_e, cells_o, acc_e, acc_o = [], [], 0.0, 0.0
    for e, o in zip(expected, observed):
        acc_e, acc_o = acc_e + e, acc_o + o
        if acc_e >= 5:
            cells_e.append(acc_e), cells_o.append(acc_o)
            acc_e = acc_o = 0.0
    cells_e[-1] += acc_e
    cells_o[-1] += acc_o
    cells_e, cells_o = np.array(cells_e), np.array(cells_o)
    stat = np.sum((cells_o - cells_e) ** 2 / cells_e)
    return chi2.sf(stat, len(cells_e) - 1)


@pytest.mark.parametrize("n,rows,ties", [(5, 2000, 0.3), (8, 60, 0.1)])
def test_each_unit_count_is_binomial(n, rows, ties):
    # The draws are a multinomial of the rows; each unit's count is then Bin(rows, N_u / rows).
    # 5 items / 2000 rows: the sampler's Poisson path (units of 6 to 145 rows: inversion and
    # PTRS); 8 items / 60 rows over more than 30 units: plain categorical draws.
    rng = np.random.default_rng(12)
    i, j, p = _arena(rng, n, rows, ties=ties)
    c = collapse(i, j, p)
    assert (rows >= 2 * c.n_units) == (n == 5)
    counts = core().bootstrap_counts(c, 20000, 21)
    assert (counts.sum(axis=1) == rows).all()
    pvalues = [_chi2_pvalue(counts[:, u], rows, c.unit_count[u] / rows) for u in range(c.n_units)]
    assert min(pvalues) > 1e-4 / c.n_units, pvalues
    # Pairs of units: the multinomial covariance -rows q_u q_v.
    q = c.unit_count / rows
    cov = np.cov(counts.T)
    want = rows * (np.diag(q) - np.outer(q, q))
    assert np.allclose(cov, want, atol=0.05 * np.abs(want).max())


def test_same_seed_same_replicates_whatever_the_threads():
    rng = np.random.default_rng(4)
    i, j, p = _arena(rng, 12, 3000)
    one = pycomp.solve(i, j, p, bootstrap=40, seed=7, n_threads=1)
    two = pycomp.solve(i, j, p, bootstrap=40, seed=7, n_threads=2)
    other = pycomp.solve(i, j, p, bootstrap=40, seed=8, n_threads=2)
    np.testing.assert_array_equal(one.replicates, two.replicates)
    assert not np.array_equal(one.replicates, other.replicates)
    # Clusters (one copy each: categorical draws) and the counts themselves.
    users = rng.integers(0, 40, 3000)
    one = pycomp.solve(i, j, p, bootstrap=30, seed=7, n_threads=1, cluster=users)
    two = pycomp.solve(i, j, p, bootstrap=30, seed=7, n_threads=2, cluster=users)
    np.testing.assert_array_equal(one.replicates, two.replicates)
    c = collapse(i, j, p)
    np.testing.assert_array_equal(core().bootstrap_counts(c, 30, 7)[[3, 17]], core().bootstrap_counts(c, 18, 7)[[3, 17]])


# bootstrap_counts(collapse(*_arena(default_rng(17), n, rows)), 12, seed)[[0, 1, 11]], as recorded
# from the sampler before its constants were shared by the units of equal count: the same seed
# must keep drawing the same replicates. 4 / 100: Poisson means 0.8 to 16.8 (inversion and
# PTRS), 3 / 30000: means near 1000 (PTRS), 8 / 60: categorical draws.
_RECORDED_COUNTS = {
    (4, 100, 0): [[13, 2, 0, 27, 5, 4, 7, 4, 4, 18, 1, 3, 8, 4], [13, 11, 4, 22, 1, 13, 8, 5, 5, 7, 2, 1, 8, 0],
                  [19, 6, 2, 22, 3, 6, 8, 2, 6, 10, 0, 2, 11, 3]],
    (4, 100, 7): [[16, 5, 1, 19, 5, 4, 14, 5, 4, 13, 0, 1, 13, 0], [19, 7, 2, 23, 6, 7, 8, 2, 5, 12, 2, 1, 5, 1],
                  [11, 7, 3, 19, 5, 11, 10, 3, 6, 11, 2, 2, 8, 2]],
    (4, 100, 2**40 + 3): [[19, 2, 2, 23, 5, 6, 8, 1, 6, 10, 0, 2, 13, 3], [16, 5, 0, 24, 3, 6, 12, 3, 1, 12, 1, 3, 11, 3],
                          [14, 6, 2, 18, 5, 5, 17, 2, 1, 21, 0, 1, 6, 2]],
    (3, 30000, 0): [[4408, 934, 4581, 3837, 953, 5219, 3931, 1048, 5089],
                    [4448, 1026, 4584, 3711, 959, 5251, 3908, 1031, 5082],
                    [4550, 971, 4538, 3801, 972, 5261, 3964, 1072, 4871]],
    (3, 30000, 7): [[4512, 997, 4499, 3866, 1035, 5145, 3892, 1034, 5020],
                    [4459, 987, 4552, 3903, 1023, 5168, 3899, 1037, 4972],
                    [4390, 1046, 4508, 3854, 987, 5284, 3844, 1089, 4998]],
    (8, 60, 0): [[2, 4, 1, 3, 3, 1, 1, 0, 0, 2, 1, 1, 0, 0, 0, 3, 2, 3, 0, 0, 0, 3, 0, 0, 3, 3, 2, 1, 2, 1, 4, 0, 1, 0,
                  1, 0, 1, 1, 5, 1, 2, 2],
                 [3, 5, 2, 1, 3, 0, 0, 2, 1, 0, 0, 2, 4, 1, 1, 1, 3, 1, 0, 0, 1, 1, 1, 0, 4, 1, 3, 0, 2, 0, 2, 1, 0, 0,
                  3, 4, 1, 2, 2, 2, 0, 0],
                 [3, 3, 0, 1, 4, 1, 0, 1, 1, 1, 0, 1, 1, 2, 1, 1, 0, 0, 2, 1, 0, 1, 2, 4, 2, 7, 1, 1, 0, 1, 2, 1, 2, 1,
                  0, 6, 2, 1, 1, 0, 0, 1]],
}


@pytest.mark.parametrize("n,rows,seed", list(_RECORDED_COUNTS))
def test_draws_are_the_recorded_ones(n, rows, seed):
    c = collapse(*_arena(np.random.default_rng(17), n, rows))
    np.testing.assert_array_equal(core().bootstrap_counts(c, 12, seed)[[0, 1, 11]], _RECORDED_COUNTS[n, rows, seed])


def test_draws_over_many_units_are_the_recorded_ones():
    # 966 units of 1 to 13 copies; a fingerprint of the 5 replicates, as recorded.
    c = collapse(*_arena(np.random.default_rng(18), 30, 3000))
    counts = core().bootstrap_counts(c, 5, 123)
    assert (c.n_units, c.unit_count.max()) == (966, 13)
    assert int(counts.ravel() @ (np.arange(counts.size) % 9973)) == 36253334

def test_cluster_bootstrap_draws_whole_clusters():
    rng = np.random.default_rng(5)
    i, j, p = _arena(rng, 6, 600, soft=True)
    users = rng.integers(0, 25, 600)
    sol = pycomp.solve(i, j, p, alpha=1.0, bootstrap=4, seed=2, cluster=users, tol=1e-10)
    c = collapse(i, j, p, cluster=users)
    counts = core().bootstrap_counts(c, 4, 2)
    assert counts.shape == (4, 25) and (counts.sum(axis=1) == 25).all()
    for r in range(4):
        w = counts[r][users].astype(float)  # each row weighted by how often its cluster was drawn
        ref = R.bt_solve(R.Comparisons.make(i, j, p, w), 1.0, gtol=1e-10)
        np.testing.assert_allclose(sol.replicates[r], ref, atol=1e-8)


def test_summaries_match_numpy():
    rng = np.random.default_rng(6)
    i, j, p = _arena(rng, 10, 2000)
    sol = pycomp.solve(i, j, p, bootstrap=200, seed=1)
    low, high = sol.interval(0.8)
    np.testing.assert_allclose(low, np.quantile(sol.replicates, 0.1, axis=0))
    np.testing.assert_allclose(high, np.quantile(sol.replicates, 0.9, axis=0))
    ranks = np.array([[1 + np.sum(row > row[a]) for a in range(10)] for row in sol.replicates])
    np.testing.assert_array_equal(sol.replicate_ranks, ranks)
    best, worst = sol.rank_interval(0.8)
    np.testing.assert_array_equal(best, np.quantile(ranks, 0.1, axis=0, method="lower"))
    np.testing.assert_array_equal(worst, np.quantile(ranks, 0.9, axis=0, method="higher"))
    np.testing.assert_allclose(sol.p_best, np.mean(ranks == 1, axis=0))
    assert sol.p_best.sum() == pytest.approx(1.0)
    assert sol.p_top(3).sum() == pytest.approx(3.0) and np.all(sol.p_top(10) == 1.0)
    np.testing.assert_array_equal(sol.ranks, 1 + np.sum(sol.scores[None, :] > sol.scores[:, None], axis=1))
    assert np.all(best <= worst)


def test_ties_share_the_best_rank():
    from pycomp.bootstrap import ranks

    np.testing.assert_array_equal(ranks(np.array([0.5, 2.0, 0.5, -1.0])), [2, 1, 2, 4])


def test_bad_options_name_the_option():
    i, j = [0, 1, 2], [1, 2, 0]
    for bad in (0, -3):
        with pytest.raises(ValueError, match=f"bootstrap = {bad} is not allowed"):
            pycomp.solve(i, j, bootstrap=bad)
    with pytest.raises(TypeError, match="bootstrap must be an integer"):
        pycomp.solve(i, j, bootstrap=2.5)
    sol = pycomp.solve(i, j, bootstrap=20, seed=0)
    for level in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="level = .* is not allowed"):
            sol.interval(level)
        with pytest.raises(ValueError, match="level = .* is not allowed"):
            sol.rank_interval(level)
    for k in (0, 4):
        with pytest.raises(ValueError, match=f"k = {k} is not allowed: the top k must have 1 <= k <= n_items = 3"):
            sol.p_top(k)
    with pytest.raises(ValueError, match="seed = -1 is not allowed"):
        pycomp.solve(i, j, bootstrap=5, seed=-1)
    plain = pycomp.solve(i, j)
    with pytest.raises(ValueError, match="p_best needs bootstrap replicates"):
        plain.p_best
    with pytest.raises(ValueError, match="no interval without bootstrap replicates or standard errors"):
        plain.interval()
    with pytest.raises(ValueError, match="bootstrap with alpha = 0 needs a connected comparison graph"), \
            pytest.warns(pycomp.exceptions.GraphWarning):
        pycomp.solve([0, 2], [1, 3], [0.6, 0.4], alpha=0, bootstrap=5)


def test_normal_interval_from_se():
    sol = pycomp.solve([0, 1, 2, 0], [1, 2, 0, 2], [0.9, 0.8, 0.3, 0.6], return_se=True)
    low, high = sol.interval(0.9)
    np.testing.assert_allclose(high - sol.scores, 1.6448536269514722 * sol.se)
    np.testing.assert_allclose(sol.scores - low, 1.6448536269514722 * sol.se)


def test_cli_writes_the_columns_and_the_leaderboard(tmp_path):
    rng = np.random.default_rng(7)
    i, j, p = _arena(rng, 5, 800)
    names = np.array(["e", "b", "d", "a", "c"])
    pd.DataFrame({"a": names[i], "b": names[j], "p": p}).to_csv(tmp_path / "c.csv", index=False)
    res = CliRunner().invoke(app, ["solve", str(tmp_path / "c.csv"), "--out", str(tmp_path / "s.csv"),
                                   "--bootstrap", "50", "--seed", "3", "--level", "0.8", "--leaderboard"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "s.csv")
    assert list(table.columns) == ["id", "score", "se", "low", "high", "rank", "rank_best", "rank_worst", "p_best"]
    order = np.argsort(names)  # the table lists ids sorted
    sol = pycomp.solve(np.argsort(order)[i], np.argsort(order)[j], p, bootstrap=50, seed=3, dispersion="auto")
    np.testing.assert_allclose(table["low"], sol.interval(0.8)[0], atol=1e-9)
    np.testing.assert_array_equal(table["rank_best"], sol.rank_interval(0.8)[0])
    best = table["id"][table["rank"] == 1].iloc[0]
    lines = res.output.splitlines()
    header = next(k for k, line in enumerate(lines) if line.split()[:3] == ["rank", "UB", "id"])
    assert lines[header].split()[3:] == ["score", "80%", "interval", "ranks", "P(best)"]
    first = lines[header + 1].split()
    assert first[:3] == ["1", "1", best]  # the best item first, its rank and Rank (UB) both 1
    assert first[-1] == f"{table['p_best'][table['id'] == best].iloc[0]:.3f}"
    assert len(lines) == header + 1 + len(names)
    bad = CliRunner().invoke(app, ["solve", str(tmp_path / "c.csv"), "--out", str(tmp_path / "s.csv"),
                                   "--bootstrap", "0"])
    assert bad.exit_code == 2 and "--bootstrap 0 is not allowed" in bad.output
    bad = CliRunner().invoke(app, ["solve", str(tmp_path / "c.csv"), "--out", str(tmp_path / "s.csv"),
                                   "--bootstrap", "5", "--level", "1.2"])
    assert bad.exit_code == 2 and "--level 1.2" in bad.output


def test_rank_scores_table_gains_the_columns():
    from pycomp.items import Items
    from pycomp.report import scores_table

    rng = np.random.default_rng(8)
    i, j, p = _arena(rng, 4, 300)
    sol = pycomp.solve(i, j, p, bootstrap=30, seed=2, return_se=True)
    items = Items(ids=["w", "x", "y", "z"], texts=["a", "b", "c", "d"])
    table = scores_table(items, sol.scores, sol.se, sol)
    assert list(table.columns) == ["id", "group", "score", "se", "low", "high", "rank", "rank_best", "rank_worst",
                                   "p_best"]
    np.testing.assert_allclose(table["high"], np.quantile(sol.replicates, 0.95, axis=0))
    np.testing.assert_allclose(table["p_best"], np.mean(sol.replicate_ranks == 1, axis=0))
    assert list(scores_table(items, sol.scores, sol.se).columns) == ["id", "group", "score", "se"]


def test_rank_takes_bootstrap_and_checks_it_before_judging(tmp_path):
    res = CliRunner().invoke(app, ["rank", "--help"])
    assert "--bootstrap" in res.output
    bad = CliRunner().invoke(app, ["rank", "example:reviews", "--out", str(tmp_path / "run"), "--bootstrap", "0"])
    assert bad.exit_code == 2 and "--bootstrap = 0 is not allowed" in bad.output
