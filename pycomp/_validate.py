"""Type, shape and option checks of the Python API.

Value checks (index ranges, self-comparisons, NaN or out-of-range probabilities,
negative weights) are done once, in parallel, by the compiled core, which raises
``ValueError`` naming the field and the first offending row in the same style.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

_INDEX_KINDS = "iu"
_VALUE_KINDS = "fiub"


def index_array(values: Any, field: str) -> np.ndarray:
    """Return ``values`` as a 1-D integer array, or raise naming ``field``.

    Raises
    ------
    TypeError
        If the values are not integers (floats, strings, objects, booleans).
    ValueError
        If the array is not 1-D or is empty.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{field} must be 1-D, got an array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"comparisons are empty: {field} has length 0; give at least one comparison")
    if arr.dtype.kind not in _INDEX_KINDS:
        raise TypeError(
            f"{field} must be an integer array of item indices, got dtype {arr.dtype}"
            + ("; map string ids with pycomp.encode_ids first" if arr.dtype.kind in "OUS" else "")
        )
    if arr.dtype not in (np.int32, np.int64):
        if arr.dtype == np.uint64 and arr.max() > np.iinfo(np.int64).max:
            row = int(np.argmax(arr > np.iinfo(np.int64).max))
            raise ValueError(f"{field}[{row}] is above 2^63 (comparison {row}, 0-based)")
        arr = arr.astype(np.int64)
    return np.ascontiguousarray(arr)


def value_array(values: Any, field: str, length: int) -> Optional[np.ndarray]:
    """Return ``values`` as a 1-D float64 array of ``length`` (or None), naming ``field`` on error."""
    if values is None:
        return None
    arr = np.asarray(values)
    if arr.dtype.kind not in _VALUE_KINDS:
        raise TypeError(f"{field} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{field} must be 1-D, got an array of shape {arr.shape}")
    if arr.shape[0] != length:
        raise ValueError(f"{field} has length {arr.shape[0]} but i has length {length}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def split_pairs(i: Any, j: Any) -> tuple:
    """Accept either (i, j) or a single (m, 2) array of (winner, loser) rows."""
    if j is not None:
        return i, j
    arr = np.asarray(i)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"j is None, so i must be an (m, 2) array of (winner, loser) rows; got shape {arr.shape}"
        )
    return arr[:, 0], arr[:, 1]


def comparison_arrays(i: Any, j: Any, p: Any, weights: Any) -> tuple:
    """The comparison arrays of the Python API, type- and shape-checked.

    Returns
    -------
    i, j : ndarray of int32 or int64, shape (m,)
    p, weights : ndarray of float64, shape (m,), or None
    """
    i, j = split_pairs(i, j)
    i = index_array(i, "i")
    j = index_array(j, "j")
    if j.shape[0] != i.shape[0]:
        raise ValueError(f"j has length {j.shape[0]} but i has length {i.shape[0]}")
    return i, j, value_array(p, "p", i.shape[0]), value_array(weights, "weights", i.shape[0])


def choice(value: Any, name: str, allowed: Sequence[str]) -> str:
    """Check that ``value`` is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} = {value!r} is not allowed: use one of {', '.join(map(repr, allowed))}")
    return value


def real(value: Any, name: str, *, minimum: float = None, strict: bool = False) -> float:
    """Check a finite real parameter, optionally bounded below."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    bad = not np.isfinite(out)
    if minimum is not None and not bad:
        bad = out <= minimum if strict else out < minimum
    if bad:
        bound = "" if minimum is None else f" and {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{name} = {value!r} is not allowed: it must be finite{bound}")
    return out


def integer(value: Any, name: str, *, minimum: int) -> int:
    """Check an integer parameter bounded below."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} = {value} is not allowed: it must be >= {minimum}")
    return int(value)
