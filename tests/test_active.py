"""Adaptive pair selection (pycomp.active) against plain NumPy references; the rounds loop with a simulated judge."""
import json
from itertools import combinations

import numpy as np
import pytest
from scipy.stats import spearmanr

import pycomp
from pycomp import active as A
from pycomp.plan import random_pairs


def reference_available(n, groups, exclude):
    """Every unordered within-group pair not in ``exclude``, as a set of (i, j) with i < j (plain loops)."""
    groups = [0] * n if groups is None else list(groups)
    judged = {(min(a, b), max(a, b)) for a, b in np.asarray(exclude).reshape(-1, 2).tolist()}
    return {(a, b) for a, b in combinations(range(n), 2) if groups[a] == groups[b] and (a, b) not in judged}


def reference_spread(s, se, groups):
    """Per item, the items of its group (itself included) scoring within sqrt(2) se of it (plain loops)."""
    n = len(s)
    groups = [0] * n if groups is None else list(groups)
    return [sum(1 for j in range(n) if groups[j] == groups[i] and abs(s[j] - s[i]) <= np.sqrt(2.0) * se[i])
            for i in range(n)]


def reference_utility(s, se, a, b, spread):
    """P(order wrong) (Phi ~ logistic 1.702 x) times the share of the difference's variance one comparison
    removes, times the two items' rank spreads."""
    d = abs(s[a] - s[b])
    v = se[a] ** 2 + se[b] ** 2
    p_wrong = 1.0 / (1.0 + np.exp(1.702 * d / np.sqrt(v)))
    h = np.exp(-d) / (1.0 + np.exp(-d)) ** 2
    return p_wrong * v * h / (1.0 + v * h) * (spread[a] + spread[b])


def simulated_judge(truth, *, strength=3.0, noise=1.0, bias=0.4, seed=0):
    """Both orders of a BT judge with logit noise and a position bias, combined as pycomp combines them.

    The noise of each ordered judgement is fixed by the pair (a table drawn once), so
    the judge gives the same answer to the same question, like a deterministic model.
    """
    n = len(truth)
    table = np.random.default_rng(seed).standard_normal((n, n))
    calls = []

    def judge(pairs):
        calls.append(np.array(pairs))
        a, b = pairs[:, 0], pairs[:, 1]
        d = strength * (truth[a] - truth[b])
        p_ab = 1 / (1 + np.exp(-(d + bias + noise * table[a, b])))
        p_ba = 1 / (1 + np.exp(-(-d + bias + noise * table[b, a])))
        return (p_ab + 1 - p_ba) / 2

    judge.calls = calls
    return judge


def _case(n, seed, n_groups=None, n_judged=0):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal(n)
    se = rng.uniform(0.2, 1.5, n)
    groups = None if n_groups is None else rng.integers(0, n_groups, n)
    avail = sorted(reference_available(n, groups, np.zeros((0, 2), int)))
    pick = rng.choice(len(avail), size=min(n_judged, len(avail)), replace=False)
    exclude = np.array([avail[k][::-1] if k % 2 else avail[k] for k in pick], dtype=np.int64).reshape(-1, 2)
    return scores, se, groups, exclude


@pytest.mark.parametrize("n, n_groups, n_judged, n_pairs", [
    (2, None, 0, 1), (7, None, 5, 4), (13, 3, 10, 9), (31, None, 40, 17), (31, 4, 30, 25), (101, 7, 120, 60),
])
def test_selection_is_within_groups_new_unique_and_exact(n, n_groups, n_judged, n_pairs):
    scores, se, groups, exclude = _case(n, seed=n, n_groups=n_groups, n_judged=n_judged)
    pairs = A.select_pairs(scores, se, n_pairs, groups=groups, exclude=exclude, seed=3)
    available = reference_available(n, groups, exclude)
    got = [tuple(p) for p in pairs.tolist()]
    assert len(got) == min(n_pairs, len(available))
    assert len(set(got)) == len(got)
    assert set(got) <= available  # within a group, i < j, never judged before
    assert got == sorted(got)
    again = A.select_pairs(scores, se, n_pairs, groups=groups, exclude=exclude, seed=3)
    assert np.array_equal(pairs, again)


@pytest.mark.parametrize("n, n_groups", [(9, None), (24, 3), (40, 5)])
def test_asking_for_more_than_is_left_returns_every_unjudged_pair(n, n_groups):
    scores, se, groups, exclude = _case(n, seed=5, n_groups=n_groups, n_judged=n)
    pairs = A.select_pairs(scores, se, 10 * n * n, groups=groups, exclude=exclude, window=2)
    assert {tuple(p) for p in pairs.tolist()} == reference_available(n, groups, exclude)


@pytest.mark.parametrize("n, n_groups, seed", [(6, None, 0), (17, None, 1), (23, 3, 2), (40, 4, 3)])
def test_the_first_pair_chosen_is_the_most_uncertain_one(n, n_groups, seed):
    scores, se, groups, exclude = _case(n, seed=seed, n_groups=n_groups, n_judged=n // 2)
    available = reference_available(n, groups, exclude)
    spread = reference_spread(scores, se, groups)
    best = max(available, key=lambda ab: reference_utility(scores, se, *ab, spread))
    # a window as wide as the items: every pair is a candidate
    assert A.select_pairs(scores, se, 1, groups=groups, exclude=exclude, window=n).tolist() == [list(best)]


def test_a_crowded_uncertain_stretch_of_the_ranking_comes_first():
    # two pairs, equally close and equally uncertain; the second sits among 8 other items
    # within its interval, so its items' rank errors are larger and it is chosen
    scores = np.r_[[-10.0, -10.1], 0.0, 0.1, np.linspace(-0.3, 0.4, 8)]
    se = np.r_[[0.4] * 4, [0.01] * 8]
    pairs = A.select_pairs(scores, se, 1, exclude=[(a, b) for a in range(2, 12) for b in range(4, 12) if a < b],
                           window=12)
    spread = reference_spread(scores, se, None)
    assert spread[2] > spread[0] and reference_utility(scores, se, 2, 3, spread) > reference_utility(
        scores, se, 0, 1, spread)
    assert pairs.tolist() == [[2, 3]]


@pytest.mark.parametrize("n, n_pairs, most", [(200, 20, 1), (201, 50, 1), (1000, 250, 2), (999, 600, 3)])
def test_a_batch_is_spread_over_items_by_default(n, n_pairs, most):
    # a first sweep takes each item at most once; the fill after it at most max(2, ceil(4 n_pairs / n))
    scores, se, _, _ = _case(n, seed=n)
    pairs = A.select_pairs(scores, se, n_pairs)
    assert len(pairs) == n_pairs
    assert np.bincount(pairs.ravel(), minlength=n).max() <= most


def test_selection_spreads_a_batch_over_items():
    scores, se, _, _ = _case(200, seed=4)
    pairs = A.select_pairs(scores, se, 100, max_per_item=2)
    assert np.bincount(pairs.ravel(), minlength=200).max() <= 2


def test_items_never_compared_are_chosen_first():
    scores = np.zeros(10)
    se = np.full(10, 0.3)
    se[[2, 7]] = np.nan  # never compared (alpha = 0)
    pairs = A.select_pairs(scores, se, 2, max_per_item=1)
    assert {2, 7} <= set(pairs.ravel().tolist())


def test_selection_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"se has shape \(2,\); expected \(3,\)"):
        A.select_pairs([0, 1, 2], [1, 1], 1)
    with pytest.raises(ValueError, match="n_pairs=-1"):
        A.select_pairs([0, 1, 2], [1, 1, 1], -1)
    with pytest.raises(ValueError, match=r"scores\[1\] is not finite"):
        A.select_pairs([0, np.nan, 2], [1, 1, 1], 1)


def reference_gap(scores, se, groups, n_draws, seed):
    """The Monte Carlo expected 1 - Spearman with scipy's spearmanr per group, on the same draws."""
    n = len(scores)
    rng = np.random.default_rng([seed, n, 7])
    rng.random(n)  # the tie-break stream comes first
    labels = np.zeros(n, int) if groups is None else np.asarray(groups)
    gaps = []
    for _ in range(n_draws):
        draw = scores + se * rng.standard_normal(n)
        rhos = [spearmanr(scores[labels == g], draw[labels == g])[0] for g in np.unique(labels)
                if np.sum(labels == g) >= 2]
        gaps.append(1 - np.mean(rhos))
    return float(np.mean(gaps))


@pytest.mark.parametrize("n, n_groups", [(5, None), (30, None), (41, 4)])
def test_expected_spearman_gap_matches_scipy(n, n_groups):
    scores, se, groups, _ = _case(n, seed=n, n_groups=n_groups)
    got = A.expected_spearman_gap(scores, se, groups=groups, n_draws=6, seed=2)
    assert got == pytest.approx(reference_gap(scores, se, groups, 6, 2), abs=1e-12)
    assert A.expected_spearman_gap(scores, np.zeros(n), groups=groups) == pytest.approx(0.0, abs=1e-12)


def _spearman_random(truth, judge_seed, budget, seeds=3):
    n = len(truth)
    out = []
    for seed in range(seeds):
        pairs = random_pairs(n, int(round(2 * budget / n)), seed=seed)
        p = simulated_judge(truth, seed=judge_seed + seed)(pairs)
        out.append(spearmanr(pycomp.solve(pairs[:, 0], pairs[:, 1], p, n_items=n).scores, truth)[0])
    return float(np.mean(out)), len(pairs)


def test_active_beats_random_at_the_same_budget():
    rng = np.random.default_rng(11)
    truth = rng.standard_normal(120)
    budget = 480  # 8 comparisons per item
    result = A.active_rank(simulated_judge(truth, seed=1), 120, budget, batch_pairs=30, seed=0)
    assert len(result.pairs) == budget and result.stop_reason == "budget"
    rho_active = spearmanr(result.scores, truth)[0]
    rho_random, n_random = _spearman_random(truth, 100, budget)
    assert n_random == budget
    assert rho_active > rho_random + 0.005
    rounds = [r["n_pairs"] for r in result.rounds]
    assert rounds == [120] + [30] * 12
    assert np.array_equal(np.bincount(result.round), rounds)


def test_active_rank_within_groups_and_exhaustion():
    groups = np.repeat(np.arange(4), 6)  # 4 groups of 6: 60 within-group pairs in all
    truth = np.random.default_rng(2).standard_normal(24)
    result = A.active_rank(simulated_judge(truth), 24, 100, batch_pairs=10, groups=groups, seed=1)
    assert result.stop_reason == "exhausted"
    assert {tuple(p) for p in np.sort(result.pairs, axis=1).tolist()} == reference_available(24, groups, [])
    assert np.all(groups[result.pairs[:, 0]] == groups[result.pairs[:, 1]])


def test_stop_threshold_stops_early():
    truth = np.linspace(-3, 3, 30)
    judge = simulated_judge(truth, strength=4.0, noise=0.1)
    result = A.active_rank(judge, 30, 400, batch_pairs=15, seed=0, stop_threshold=0.2, alpha=0.1)
    assert result.stop_reason == "threshold"
    assert result.rounds[-1]["expected_spearman_gap"] < 0.2
    assert all(r["expected_spearman_gap"] >= 0.2 for r in result.rounds[:-1])
    assert len(result.pairs) < 400


class Interrupted(Exception):
    pass


def test_a_killed_run_resumes_from_its_log_and_makes_the_same_choices(tmp_path):
    truth = np.random.default_rng(3).standard_normal(40)
    settings = dict(batch_pairs=10, seed=5)
    full = A.active_rank(simulated_judge(truth, seed=9), 40, 120, log=tmp_path / "full.jsonl", **settings)

    # killed in round 3: the judge dies before answering
    judge = simulated_judge(truth, seed=9)
    def dying(pairs):
        if len(judge.calls) == 3:
            raise Interrupted
        return judge(pairs)
    log = tmp_path / "killed.jsonl"
    with pytest.raises(Interrupted):
        A.active_rank(dying, 40, 120, log=log, **settings)
    lines = log.read_text().splitlines()
    assert len(lines) == 1 + 40 + 10 + 10  # header, rounds 0-2
    # the same judge answers the rest; its answers for rounds 0-2 come from the log
    judge_rest = simulated_judge(truth, seed=9)
    resumed = A.active_rank(judge_rest, 40, 120, log=log, **settings)
    assert len(judge_rest.calls) == len(full.rounds) - 3
    assert np.array_equal(resumed.pairs, full.pairs)
    assert np.array_equal(resumed.round, full.round)
    assert np.array_equal(resumed.scores, full.scores)


def test_a_truncated_log_is_cut_at_the_last_whole_line_and_only_the_rest_is_judged(tmp_path):
    truth = np.random.default_rng(4).standard_normal(30)
    log = tmp_path / "answers.jsonl"
    full = A.active_rank(simulated_judge(truth, seed=2), 30, 90, batch_pairs=15, seed=0, log=log)
    data = log.read_bytes()
    lines = data.splitlines(keepends=True)
    keep = b"".join(lines[: 1 + 30 + 4]) + lines[35][:7]  # round 0, 4 pairs of round 1, half a line
    log.write_bytes(keep)
    answers = {tuple(map(int, (r["i"], r["j"]))): r["p"] for r in map(json.loads, data.decode().splitlines()[1:])}

    def replay(pairs):
        replay.asked += len(pairs)
        return np.array([answers[tuple(p)] for p in pairs.tolist()])
    replay.asked = 0
    resumed = A.active_rank(replay, 30, 90, batch_pairs=15, seed=0, log=log)
    assert replay.asked == 90 - 34
    assert np.array_equal(resumed.pairs, full.pairs)
    assert log.read_bytes() == data


def test_a_log_of_other_settings_is_refused(tmp_path):
    truth = np.arange(12.0)
    log = tmp_path / "answers.jsonl"
    A.active_rank(simulated_judge(truth), 12, 12, batch_pairs=6, seed=0, log=log)
    with pytest.raises(ValueError, match="written by an active run with other settings"):
        A.active_rank(simulated_judge(truth), 12, 12, batch_pairs=6, seed=1, log=log)


def test_the_dispersion_reaches_every_solve_and_the_log(tmp_path):
    truth = np.random.default_rng(4).standard_normal(30)
    log = tmp_path / "answers.jsonl"
    seen = []
    result = A.active_rank(simulated_judge(truth, seed=2), 30, 75, batch_pairs=15, seed=0, log=log,
                           dispersion="auto", on_round=lambda rec, sol: seen.append(sol.dispersion))
    # round 0 (2 pairs per item, a near-tree) may leave no residual degree of freedom: then "auto" is the plain fit
    assert len(seen) == 4 and all(phi is not None and 0 < phi < 1 for phi in seen[1:])  # soft: below a coin flip
    want = pycomp.solve(result.pairs[:, 0], result.pairs[:, 1], result.p, n_items=30, return_se=True,
                        dispersion="auto")
    np.testing.assert_array_equal(result.scores, want.scores)
    np.testing.assert_array_equal(result.se, want.se)
    assert json.loads(log.read_text().splitlines()[0])["dispersion"] == "auto"
    with pytest.raises(ValueError, match="written by an active run with other settings"):
        A.active_rank(simulated_judge(truth, seed=2), 30, 75, batch_pairs=15, seed=0, log=log)


@pytest.mark.parametrize("budget, batch, threshold, message", [
    (0, 5, None, "--budget 0 must be a whole number of pairs > 0"),
    (-3, 5, None, "--budget -3 must be a whole number of pairs > 0"),
    (30, 0, None, "--batch-pairs 0 must be a whole number of pairs > 0"),
    (30, 40, None, r"--budget 30 is smaller than one batch \(--batch-pairs 40\)"),
    (15, 5, None, r"--budget 15 is smaller than the first round \(20 pairs"),
    (60, 5, 1.5, r"--stop-threshold 1.5 must be in \(0, 1\)"),
    (60, 5, 0.0, r"--stop-threshold 0.0 must be in \(0, 1\)"),
])
def test_bad_settings_are_refused_naming_the_option(budget, batch, threshold, message):
    with pytest.raises(ValueError, match=message):
        A.active_rank(simulated_judge(np.arange(20.0)), 20, budget, batch_pairs=batch, stop_threshold=threshold)


def test_a_judge_returning_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"the judge returned \(3,\) probabilities for 10 pairs"):
        A.active_rank(lambda pairs: np.full(3, 0.5), 10, 20, batch_pairs=5)
