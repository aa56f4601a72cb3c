"""Evaluation metrics checked against scipy and brute force."""
import itertools

import numpy as np
import pytest
from scipy import stats

from pycomp import metrics as M


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    gold = rng.integers(1, 6, size=37).astype(float)  # ties, like SummEval's averaged ratings
    pred = gold + rng.normal(0, 1.5, size=37)
    pred[:4] = pred[0]  # ties in the prediction too
    groups = np.repeat(np.arange(5), [8, 8, 8, 8, 5])
    return pred, gold, groups


def test_rankdata_matches_scipy(data):
    pred, gold, _ = data
    assert np.allclose(M.rankdata(gold), stats.rankdata(gold))
    assert np.allclose(M.rankdata(pred), stats.rankdata(pred))


def test_spearman_and_pearson_match_scipy(data):
    pred, gold, _ = data
    assert M.spearman(pred, gold) == pytest.approx(stats.spearmanr(pred, gold).statistic, abs=1e-12)
    assert M.pearson(pred, gold) == pytest.approx(stats.pearsonr(pred, gold).statistic, abs=1e-12)


def test_constant_input_gives_nan():
    assert np.isnan(M.spearman([1, 1, 1], [1, 2, 3]))
    assert np.isnan(M.pearson([1.0], [2.0]))


def test_per_group_mean_matches_scipy(data):
    pred, gold, groups = data
    out = M.grouped_correlation(pred, gold, groups, "spearman")
    expected = [stats.spearmanr(pred[groups == g], gold[groups == g]).statistic for g in range(5)]
    assert out["mean"] == pytest.approx(np.mean(expected), abs=1e-12)
    assert out["n_groups"] == 5 and set(out["per_group"]) == set(range(5))
    pe = M.grouped_correlation(pred, gold, groups, "pearson")
    expected = [stats.pearsonr(pred[groups == g], gold[groups == g]).statistic for g in range(5)]
    assert pe["mean"] == pytest.approx(np.mean(expected), abs=1e-12)


def test_groups_with_constant_gold_are_left_out_of_the_mean():
    pred = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    gold = np.array([1.0, 2.0, 3.0, 5.0, 5.0, 5.0])
    out = M.grouped_correlation(pred, gold, [0, 0, 0, 1, 1, 1])
    assert out["mean"] == pytest.approx(1.0) and out["n_undefined"] == 1


def test_pairwise_accuracy_brute_force(data):
    pred, gold, groups = data
    for grp in (None, groups):
        correct = total = 0.0
        for a, b in itertools.combinations(range(len(pred)), 2):
            if grp is not None and grp[a] != grp[b]:
                continue
            if gold[a] == gold[b]:
                continue
            total += 1
            dp = np.sign(pred[a] - pred[b])
            correct += 0.5 if dp == 0 else float(dp == np.sign(gold[a] - gold[b]))
        out = M.pairwise_accuracy(pred, gold, grp)
        assert out["accuracy"] == pytest.approx(correct / total) and out["n_pairs"] == total


def test_pairwise_accuracy_relates_to_kendall_tau_without_ties():
    rng = np.random.default_rng(1)
    gold, pred = rng.normal(size=50), rng.normal(size=50)
    tau = stats.kendalltau(pred, gold).statistic
    assert M.pairwise_accuracy(pred, gold)["accuracy"] == pytest.approx((tau + 1) / 2)


def test_pairwise_accuracy_samples_large_inputs():
    rng = np.random.default_rng(2)
    gold = rng.normal(size=1500)
    pred = gold + rng.normal(size=1500)
    exact = M.pairwise_accuracy(pred, gold)
    sampled = M.pairwise_accuracy(pred, gold, max_pairs=200_000)
    assert sampled["sampled"] and not exact["sampled"]
    assert sampled["accuracy"] == pytest.approx(exact["accuracy"], abs=0.01)


def test_affine_rmse_fits_on_training_items_only():
    rng = np.random.default_rng(3)
    pred = rng.normal(size=40)
    gold = 3.0 * pred + 2.0 + rng.normal(0, 0.1, size=40)
    gold[30:] += 5.0  # the held-out items are shifted: a fit on them would absorb it
    train = np.arange(40) < 30
    out = M.affine_rmse(pred, gold, train)
    a, b = np.polyfit(pred[train], gold[train], 1)
    assert (out["a"], out["b"]) == pytest.approx((a, b))
    resid = a * pred[~train] + b - gold[~train]
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean(resid ** 2)))
    assert out["evaluated_on"] == "held-out" and out["n_eval"] == 10 and out["rmse"] > 4
    in_sample = M.affine_rmse(pred, gold)
    assert in_sample["evaluated_on"].startswith("all")


def test_comparison_accuracy():
    out = M.comparison_accuracy([0, 1, 0], [1, 2, 2], [0.2, 0.5, 0.9], gold=np.array([1.0, 2.0, 2.0]))
    # pair (0,1): gold says 1 wins, p=0.2 -> correct; (1,2): gold tie -> skipped; (0,2): wrong.
    assert out == {"accuracy": 0.5, "n_pairs": 2}


def test_evaluate_bundle(data):
    pred, gold, groups = data
    out = M.evaluate(pred, gold, groups, train_mask=np.arange(37) % 2 == 0)
    for key in ("spearman", "pearson", "pairwise_accuracy", "rmse_affine", "spearman_per_group_mean",
                "pearson_per_group_mean", "n_groups"):
        assert key in out
    with pytest.raises(ValueError, match=r"pred\[2\] = nan"):
        M.evaluate([1.0, 2.0, np.nan], [1.0, 2.0, 3.0])
