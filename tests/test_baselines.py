"""Baselines: win rate and average probability, against the plain reference loops."""
import numpy as np
import pytest

import reference as R
from pycomp import baselines

RTOL = 1e-12


@pytest.mark.parametrize("kind", ["soft", "hard", "mixed", "ties"])
@pytest.mark.parametrize("weighted", [False, True])
def test_win_rate_and_average_probability_match_reference(kind, weighted):
    c = R.random_comparisons(np.random.default_rng(0), 13, 40, kind, weighted=weighted)
    c = R.Comparisons(c.i, c.j, c.p, c.w, 16)  # three items never compared -> NaN
    w = c.w if weighted else None
    wr = baselines.win_rate(c.i, c.j, c.p, weights=w, n_items=16)
    ap = baselines.average_probability(c.i, c.j, c.p, weights=w, n_items=16)
    for got, ref in ((wr, R.win_rate(c)), (ap, R.average_probability(c))):
        got = np.asarray(got, dtype=np.float64)
        assert got.shape == (16,)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        assert np.isnan(got[13:]).all()
        R.assert_close(got[:13], ref[:13], atol=1e-15, rtol=RTOL)


def test_win_rate_hand_example():
    # 0 beats 1 (p=0.9), 0 ties 2 (p=0.5), 2 beats 0 (p=0.2 with 0 as i), weight 2 on the last
    i = np.array([0, 0, 0])
    j = np.array([1, 2, 2])
    p = np.array([0.9, 0.5, 0.2])
    w = np.array([1.0, 1.0, 2.0])
    wr = baselines.win_rate(i, j, p, weights=w)
    R.assert_close(wr, [(1 + 0.5 + 0) / 4, 0.0, (0.5 + 2) / 3], atol=1e-15)
    ap = baselines.average_probability(i, j, p, weights=w)
    R.assert_close(ap, [(0.9 + 0.5 + 0.4) / 4, 0.1, (0.5 + 1.6) / 3], atol=1e-15)


def test_defaults_p_one_and_n_items_from_data():
    wr = baselines.win_rate([0, 1, 2], [1, 2, 3])
    R.assert_close(wr, [1.0, 0.5, 0.5, 0.0], atol=0)
    ap = baselines.average_probability([0, 1, 2], [1, 2, 3])
    R.assert_close(ap, [1.0, 0.5, 0.5, 0.0], atol=0)


def test_baselines_validate_rows():
    with pytest.raises(ValueError, match=r"p\[1\]"):
        baselines.win_rate([0, 1], [1, 2], [0.5, 2.0])
    with pytest.raises(ValueError, match=r"i\[1\]"):
        baselines.average_probability([0, 5], [1, 2], n_items=3)
