"""Training data: targets, gold checks, the held-out split, pair plans (numpy only, fast)."""
import math

import numpy as np
import pytest

from pycomp.train.data import (
    TrainingDataError,
    check_gold,
    pair_examples,
    pair_targets,
    point_examples,
    rank_examples,
    split_groups,
)


def test_soft_targets_are_the_papers_formula():
    a, b = np.array([4.0, 2.0, 3.0]), np.array([2.0, 4.0, 3.0])
    t = pair_targets(a, b, objective="soft", gamma=5.0, scale=1.3)
    expect = 1.0 / (1.0 + np.exp(-5.0 * (a - b) / 1.3))
    np.testing.assert_allclose(t, expect, rtol=1e-12)
    np.testing.assert_allclose(t + pair_targets(b, a, objective="soft", gamma=5.0, scale=1.3), 1.0)
    assert t[2] == 0.5


def test_soft_targets_do_not_overflow():
    t = pair_targets([1e6, -1e6], [0.0, 0.0], objective="soft", gamma=5.0, scale=1e-3)
    assert t.tolist() == [1.0, 0.0]


def test_hard_targets_with_ties():
    assert pair_targets([3, 1, 2], [1, 3, 2], objective="hard").tolist() == [1.0, 0.0, 0.5]


@pytest.mark.parametrize("gamma", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_gamma_is_a_clear_error(gamma):
    with pytest.raises(TrainingDataError, match="gamma"):
        pair_targets([1.0], [2.0], objective="soft", gamma=gamma, scale=1.0)
    with pytest.raises(TrainingDataError, match="gamma"):
        pair_examples([1.0, 2.0], objective="soft", gamma=gamma, all_pairs=True)


@pytest.mark.parametrize("bad", [None, float("nan"), "x", float("inf")])
def test_missing_gold_names_the_row(bad):
    with pytest.raises(TrainingDataError, match=r"row 2 \(id 'b'\): gold field 'stars'"):
        check_gold([1.0, bad, 3.0], ids=["a", "b", "c"], gold_field="stars")


def test_constant_gold_is_a_clear_error():
    with pytest.raises(TrainingDataError, match="constant"):
        check_gold([2.0, 2.0, 2.0], gold_field="stars")


def test_group_with_one_item_names_the_group():
    gold, groups = [1.0, 2.0, 3.0, 4.0], ["x", "x", "lonely", "x"]
    with pytest.raises(TrainingDataError, match=r"group 'lonely' \('article'\) has a single item \(row 3\)"):
        check_gold(gold, groups, group_field="article")
    # a pointwise objective (rail) does not pair items: no error
    np.testing.assert_array_equal(check_gold(gold, groups, pairwise=False), gold)


def test_split_is_by_group():
    groups = np.repeat([f"g{k}" for k in range(10)], 3)
    held, names = split_groups(groups, holdout=0.2, seed=1)
    assert len(names) == 2 and held.sum() == 6
    for g in np.unique(groups):  # a group is entirely on one side
        assert len(set(held[groups == g])) == 1
    held2, names2 = split_groups(groups, holdout_groups=["g3"])
    assert names2 == ["g3"] and held2.sum() == 3
    with pytest.raises(TrainingDataError, match="not among"):
        split_groups(groups, holdout_groups=["nope"])
    with pytest.raises(TrainingDataError, match=r"\[0, 1\)"):
        split_groups(groups, holdout=1.0)


def test_pair_examples_within_groups_both_orders():
    gold = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    groups = np.repeat(["a", "b"], 5)
    ex = pair_examples(gold, groups, objective="soft", gamma=5.0, per_item=2, seed=0)
    assert len(ex.pairs) == 10 and len(ex) == 20  # k n / 2 pairs, both orders
    assert (groups[ex.first] == groups[ex.second]).all()
    np.testing.assert_array_equal(ex.first[0::2], ex.second[1::2])
    np.testing.assert_allclose(ex.target[0::2] + ex.target[1::2], 1.0)
    assert math.isclose(ex.scale, float(np.std(gold)))
    full = pair_examples(gold, groups, objective="hard", all_pairs=True)
    assert len(full.pairs) == 20 and set(np.unique(full.target)) <= {0.0, 1.0}


def test_point_examples_keep_or_map_the_scale():
    t, m = point_examples([1.0, 3.5, 5.0])
    assert t.tolist() == [1.0, 3.5, 5.0] and m == {"a": 1.0, "b": 0.0}
    t, m = point_examples([0.0, 50.0, 100.0])
    np.testing.assert_allclose(t, [1.0, 3.0, 5.0])


def test_rank_sets_are_ordered_and_within_groups():
    gold = np.array([1, 2, 3, 4, 5, 3, 3, 3, 3, 3], dtype=float)
    groups = np.repeat(["a", "b"], 5)
    sets = rank_examples(gold, groups, candidates=3, seed=0)
    assert sets and all(len(set(groups[s])) == 1 and np.ptp(gold[s]) > 0 for s in sets)
    assert all(groups[s[0]] == "a" for s in sets)  # group b has no order: dropped
    with pytest.raises(TrainingDataError, match="nothing to rank"):
        rank_examples(np.full(4, 2.0), candidates=2)


def test_config_errors_name_the_field(tmp_path):
    pytest.importorskip("transformers")
    from pycomp.train import JudgeTrainingConfig

    with pytest.raises(TrainingDataError, match=r"gamma=0"):
        JudgeTrainingConfig(output_dir=str(tmp_path), gamma=0)
    with pytest.raises(TrainingDataError, match=r"objective='dpo'"):
        JudgeTrainingConfig(output_dir=str(tmp_path), objective="dpo")
    with pytest.raises(TrainingDataError, match=r"labels='A'"):
        JudgeTrainingConfig(output_dir=str(tmp_path), labels="A")
    cfg = JudgeTrainingConfig(output_dir=str(tmp_path), activation_checkpointing=True)
    assert cfg.activation_checkpointing_kwargs == {"use_reentrant": False}
    assert cfg.remove_unused_columns is False and cfg.learning_rate == 2e-4
