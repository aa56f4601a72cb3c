"""Temperature calibration of the judge (pycomp.calibration) against SciPy and plain NumPy references."""
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit

from pycomp import calibration as C


def reference_nll(temperature, p, y):
    """Bernoulli negative log-likelihood of soft targets y under q = sig(logit(p) / T), written plainly."""
    q = expit(logit(np.clip(p, 1e-6, 1 - 1e-6)) / temperature)
    return -np.sum(y * np.log(q) + (1 - y) * np.log(1 - q))


def reference_ece(q, y, bins=10):
    """ECE over both orientations of each pair, equal-width bins, one plain loop per bin."""
    q = np.concatenate([q, 1 - q])
    y = np.concatenate([y, 1 - y])
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (q >= lo) & ((q < hi) if b < bins - 1 else (q <= hi))
        if inside.any():
            total += inside.sum() / len(q) * abs(y[inside].mean() - q[inside].mean())
    return total


def _judge(m, true_temperature, seed, ties=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 2.5, m)  # the judge's log-odds
    y = (rng.random(m) < expit(x / true_temperature)).astype(float)
    y[rng.random(m) < ties] = 0.5
    return expit(x), y


@pytest.mark.parametrize("m, true_temperature, seed, ties", [
    (11, 1.0, 0, 0.0), (200, 2.5, 1, 0.0), (501, 0.6, 2, 0.1), (3000, 1.7, 3, 0.3),
])
def test_temperature_is_the_maximum_likelihood_one(m, true_temperature, seed, ties):
    p, y = _judge(m, true_temperature, seed, ties)
    got = C.fit_temperature(p, y)
    ref = minimize_scalar(lambda t: reference_nll(t, p, y), bounds=(0.02, 50.0), method="bounded",
                          options={"xatol": 1e-10}).x
    assert got == pytest.approx(ref, rel=1e-6)


def test_a_judge_that_orders_every_pair_right_stops_at_the_smallest_temperature():
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.7, 0.4, 0.6, 0.1, 0.95, 0.35])
    y = (p > 0.5).astype(float)
    assert C.fit_temperature(p, y) == pytest.approx(C.MIN_TEMPERATURE)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_a_plain_loop(seed):
    p, y = _judge(777, 2.0, seed, ties=0.1)
    assert C.expected_calibration_error(p, y) == pytest.approx(reference_ece(p, y), abs=1e-12)
    q = expit(logit(p) / 2.0)
    assert C.expected_calibration_error(q, y) == pytest.approx(reference_ece(q, y), abs=1e-12)
    assert np.isnan(C.expected_calibration_error([], []))


def test_calibration_lowers_the_ece_of_an_overconfident_judge():
    n = 80
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, n, (2, 4000))
    keep = i != j
    i, j = i[keep], j[keep]
    gold = np.arange(n, dtype=float)
    y_gold = (gold[i] > gold[j]).astype(float)
    x = rng.normal(0, 2.5, len(i)) + (gold[i] - gold[j]) / 10
    p = expit(3.0 * x)  # three times too sure of itself
    cal = C.calibrate(i, j, p, gold)
    assert cal.n_pairs == len(i)
    assert cal.temperature == pytest.approx(minimize_scalar(
        lambda t: reference_nll(t, p, y_gold), bounds=(0.02, 50.0), method="bounded", options={"xatol": 1e-10}).x,
        rel=1e-6)
    assert cal.temperature > 1.0
    assert cal.ece_after < cal.ece_before
    q = expit(logit(np.clip(p, 1e-6, 1 - 1e-6)) / cal.temperature)
    assert cal.ece_before == pytest.approx(reference_ece(p, y_gold), abs=1e-12)
    assert cal.ece_after == pytest.approx(reference_ece(q, y_gold), abs=1e-12)
    assert cal.nll_after <= cal.nll_before


def test_only_pairs_with_gold_on_both_items_count_and_equal_gold_is_a_tie():
    gold = np.array([3.0, 1.0, np.nan, 2.0, 2.0])
    i = np.array([0, 0, 1, 2, 3] * 4)
    j = np.array([1, 2, 3, 4, 4] * 4)
    p = np.array([0.8, 0.9, 0.3, 0.5, 0.6, 0.7, 0.2, 0.6, 0.45, 0.55] * 2)
    cal = C.calibrate(i, j, p, gold)
    both = ~np.isnan(gold[i]) & ~np.isnan(gold[j])
    assert cal.n_pairs == both.sum() == 12
    y = np.where(gold[i[both]] > gold[j[both]], 1.0, np.where(gold[i[both]] < gold[j[both]], 0.0, 0.5))
    ref = minimize_scalar(lambda t: reference_nll(t, p[both], y), bounds=(0.02, 50.0), method="bounded",
                          options={"xatol": 1e-10}).x
    assert cal.temperature == pytest.approx(ref, rel=1e-6)


def test_calibrated_comparisons_keep_the_judges_own_probability():
    gold = np.arange(12, dtype=float)
    rng = np.random.default_rng(1)
    i, j = np.triu_indices(12, 1)
    p = expit(0.8 * (gold[i] - gold[j]) + rng.normal(0, 1.5, len(i)))
    frame = pd.DataFrame({"a": i.astype(str), "b": j.astype(str), "p": p, "i": i, "j": j})
    out, cal = C.calibrate_comparisons(frame, gold, fit_mask=gold < 8)
    assert list(out.columns) == ["a", "b", "p", "p_raw", "i", "j"]
    assert np.array_equal(out["p_raw"].to_numpy(), p)
    assert np.allclose(out["p"], expit(logit(p) / cal.temperature))
    assert cal.n_pairs == 28  # pairs among the 8 items of the fit mask


def test_errors_name_the_option():
    with pytest.raises(ValueError, match="--calibrate needs gold scores for some items: give --gold-field"):
        C.calibrate([0], [1], [0.7], None)
    gold = np.array([1.0, 2.0, 3.0, np.nan])
    with pytest.raises(ValueError, match=r"--calibrate needs at least 10 judged pairs whose two items both have "
                                         r"gold \(--gold-field\); this run has 3"):
        C.calibrate([0, 0, 1, 2], [1, 2, 2, 3], [0.4, 0.3, 0.2, 0.6], gold)
    gold = np.arange(6.0)
    i, j = np.triu_indices(6, 1)
    with pytest.raises(ValueError, match="do not agree with the gold order better than chance"):
        C.calibrate(i, j, expit(gold[j] - gold[i]), gold)  # says the lower gold wins
