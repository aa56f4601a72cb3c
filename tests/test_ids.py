"""Id tables: encode_ids and solve_table check the user's table and speak its language."""
import numpy as np
import pandas as pd
import pytest

import pycomp
import pycomp.exceptions
import reference as R

TOL = 1e-10


def _table(**changes_to_row_2):
    rows = [{"left": "x", "right": "y", "prob": 0.3, "wt": 1.0},
            {"left": "y", "right": "z", "prob": 0.6, "wt": 2.0},
            {"left": "z", "right": "x", "prob": 0.5, "wt": 1.0}]
    rows[1].update(changes_to_row_2)
    return pd.DataFrame(rows)


def _solve(frame, **kw):
    return pycomp.solve_table(frame, a="left", b="right", p="prob", weight="wt", **kw)


# --------------------------------------------------------------------------- #
# encode_ids
# --------------------------------------------------------------------------- #
def test_encode_ids_api_message_says_zero_based():
    with pytest.raises(ValueError, match=r"^b\[1\] \(0-based position\) has no id"):
        pycomp.encode_ids(["x", "y"], ["y", None])
    with pytest.raises(ValueError, match=r"^a\[0\] \(0-based position\) = 'q' is not among the given items"):
        pycomp.encode_ids(["q", "y"], ["y", "x"], items=["x", "y"])


def test_encode_ids_names_columns_and_one_based_rows():
    with pytest.raises(ValueError, match=r"^row 2: column 'item_b' has no id"):
        pycomp.encode_ids(["x", "y"], ["y", np.nan], names=("item_a", "item_b"), one_based_rows=True)
    with pytest.raises(ValueError, match=r"^row 1: column 'item_a' = 'q' is not among the given items"):
        pycomp.encode_ids(["q"], ["y"], items=["x", "y"], names=("item_a", "item_b"), one_based_rows=True)
    with pytest.raises(ValueError, match="the id columns 'item_a' and 'item_b' have lengths 2 and 1"):
        pycomp.encode_ids(["x", "y"], ["y"], names=("item_a", "item_b"))


# --------------------------------------------------------------------------- #
# solve_table: choosing p
# --------------------------------------------------------------------------- #
def test_default_p_must_exist():
    """Before the fix, a table without 'p' was solved as if a won every comparison."""
    df = pd.DataFrame({"a": ["x", "y", "z"], "b": ["y", "z", "x"], "prob": [0.2, 0.7, 0.4]})
    with pytest.raises(ValueError) as err:
        pycomp.solve_table(df)
    msg = str(err.value)
    assert "column 'p' (for p, the probability that a beats b) is not in the table" in msg
    assert "columns are ['a', 'b', 'prob']" in msg
    assert "p=None if a won every comparison" in msg


def test_p_none_is_hard_outcomes_even_beside_a_p_column():
    df = pd.DataFrame({"a": ["x", "y", "z", "x"], "b": ["y", "z", "x", "z"], "p": [0.1, 0.2, 0.3, 0.4]})
    out = pycomp.solve_table(df, p=None, alpha=1.0, tol=TOL)
    c = R.Comparisons.make([0, 1, 2, 0], [1, 2, 0, 2])
    R.assert_close(out["score"].to_numpy(), R.bt_solve(c, 1.0), atol=1e-6)


def test_same_column_for_both_items():
    with pytest.raises(ValueError, match="a and b both name the column 'left'"):
        pycomp.solve_table(_table(), a="left", b="left", p="prob")


# --------------------------------------------------------------------------- #
# solve_table: bad rows, named by the user's column, id and 1-based row
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("change, message", [
    (dict(right=None), "row 2: column 'right' has no id: every comparison needs two item ids"),
    (dict(left=""), "row 2: column 'left' has no id"),
    (dict(left="z"), "row 2: left = right = 'z' compares an item with itself"),
    (dict(prob="0.6x"), "row 2: column 'prob' = '0.6x' is not a number"),
    (dict(prob=np.nan), "row 2: column 'prob' is empty (NaN)"),
    (dict(prob=1.2), "row 2: column 'prob' = 1.2 is not a probability in [0, 1]"),
    (dict(prob=np.inf), "row 2: column 'prob' = inf is not a probability in [0, 1]"),
    (dict(wt=-2.0), "row 2: column 'wt' = -2.0 is not a weight: it must be finite and >= 0"),
    (dict(wt=np.inf), "row 2: column 'wt' = inf is not a weight"),
    (dict(wt=np.nan), "row 2: column 'wt' is empty (NaN); give a weight >= 0"),
])
def test_bad_row(change, message):
    with pytest.raises(ValueError) as err:
        _solve(_table(**change))
    assert message in str(err.value)


def test_integer_ids_in_self_comparison_message():
    df = pd.DataFrame({"a": [10, 20, 30], "b": [20, 30, 30]})
    with pytest.raises(ValueError, match=r"^row 3: a = b = 30 compares an item with itself$"):
        pycomp.solve_table(df, p=None)


def test_rows_are_positions_not_index_labels():
    df = _table(prob=7.0).set_axis([100, 200, 300])
    with pytest.raises(ValueError, match=r"^row 2: column 'prob' = 7.0 "):
        _solve(df)


def test_valid_table_matches_reference():
    df = _table()
    out = _solve(df, alpha=0.5, tol=TOL)
    c = R.Comparisons.make([0, 1, 2], [1, 2, 0], [0.3, 0.6, 0.5], [1.0, 2.0, 1.0])
    R.assert_close(out["score"].to_numpy(), R.bt_solve(c, 0.5), atol=1e-6)


# --------------------------------------------------------------------------- #
# alpha = 0 without a maximum-likelihood solution
# --------------------------------------------------------------------------- #
def test_no_optimum_names_user_ids():
    # 'best' beat every other item, which only drew with each other: 'best' never lost.
    others = [f"item{k:02d}" for k in range(7)]
    df = pd.DataFrame({"a": ["best"] * 7 + others[:-1], "b": others + others[1:], "p": [1.0] * 7 + [0.5] * 6})
    with pytest.raises(pycomp.exceptions.NoOptimumError) as err:
        pycomp.solve_table(df, alpha=0.0)
    msg = str(err.value)
    assert "the item 'best' never lost to any other item it was compared with, so its score diverges to +inf" in msg
    assert "alpha > 0" in msg
    assert err.value.direction == "never lost to"
    assert list(err.value.items) == [0]  # 'best' sorts before 'item00'..'item06'


def test_no_optimum_lists_five_ids_and_how_many_more():
    # 'zz' lost to all of a1..a7, which drew with each other: they never lost to anything outside them.
    group = [f"a{k}" for k in range(1, 8)]
    df = pd.DataFrame({"a": group + group[:-1], "b": ["zz"] * 7 + group[1:], "p": [1.0] * 7 + [0.5] * 6})
    with pytest.raises(pycomp.exceptions.NoOptimumError) as err:
        pycomp.solve_table(df, alpha=0.0)
    assert ("the 7 items 'a1', 'a2', 'a3', 'a4', 'a5' and 2 more never lost to any item outside this group, "
            "so their scores diverge to +inf") in str(err.value)
    assert list(err.value.items) == list(range(7))


def test_nullable_dtypes_from_parquet_or_arrow():
    df = pd.DataFrame({"a": pd.array(["x", "y", "z"], dtype="string"), "b": pd.array(["y", "z", "x"], dtype="string"),
                       "p": pd.array([0.2, pd.NA, 0.5], dtype="Float64")})
    with pytest.raises(ValueError, match=r"^row 2: column 'p' is empty \(NaN\)"):
        pycomp.solve_table(df)
    df["p"] = pd.array([0.2, 0.4, 0.5], dtype="Float64")
    df["w"] = pd.array([1, 2, 3], dtype="Int64")
    out = pycomp.solve_table(df, weight="w", alpha=1.0, tol=TOL)
    c = R.Comparisons.make([0, 1, 2], [1, 2, 0], [0.2, 0.4, 0.5], [1.0, 2.0, 3.0])
    R.assert_close(out["score"].to_numpy(), R.bt_solve(c, 1.0), atol=1e-6)
