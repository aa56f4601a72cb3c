"""Scikit-learn style estimators over :func:`pycomp.solve`."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd

from pycomp.exceptions import NotFittedError
from pycomp.ids import encode_ids
from pycomp.solve import Solution, solve


class _PoEEstimator:
    """Shared fit/transform logic; subclasses fix the model and its parameters."""

    _model = "bt"

    def _solve_kwargs(self) -> dict:
        raise NotImplementedError

    def get_params(self, deep: bool = True) -> dict:
        """The constructor arguments, as scikit-learn expects."""
        return dict(self._params)

    def set_params(self, **params: Any) -> "_PoEEstimator":
        """Change constructor arguments; unknown names raise ValueError."""
        for key, value in params.items():
            if key not in self._params:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}; it has {sorted(self._params)}")
            self._params[key] = value
            setattr(self, key, value)
        return self

    def fit(self, a: Any, b: Any = None, p: Any = None, weights: Any = None, n_items: Optional[int] = None):
        """Fit scores to comparisons.

        Parameters
        ----------
        a, b : array_like, shape (m,)
            The two items of each comparison: integer indices, or ids of any other
            type (strings...), which are mapped to indices in sorted order.
        p : array_like of float, shape (m,), optional
            Probability that ``a`` beats ``b`` (default: ``a`` won).
        weights : array_like of float, shape (m,), optional
        n_items : int, optional
            Only for integer items: the number of items.

        Returns
        -------
        self
        """
        a_arr, b_arr = (np.asarray(a), np.asarray(b)) if b is not None else (np.asarray(a)[:, 0], np.asarray(a)[:, 1])
        if a_arr.dtype.kind in "iu" and b_arr.dtype.kind in "iu":
            i, j = a_arr, b_arr
            sol = solve(i, j, p, weights=weights, n_items=n_items, **self._solve_kwargs())
            self.items_ = np.arange(sol.n_items)
        else:
            if n_items is not None:
                raise ValueError("n_items applies to integer items only; the ids define the items here")
            i, j, ids = encode_ids(a_arr, b_arr)
            sol = solve(i, j, p, weights=weights, n_items=len(ids), **self._solve_kwargs())
            self.items_ = ids
        self.solution_: Solution = sol
        self.scores_ = sol.scores
        self.se_ = sol.se
        self.n_iter_ = sol.n_iter
        self.converged_ = sol.converged
        self.n_components_ = sol.n_components
        self._index = pd.Index(self.items_)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "scores_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(a, b, p) first")

    def score_of(self, ids: Any) -> np.ndarray:
        """Scores of the given items (ids as passed to ``fit``).

        Raises
        ------
        KeyError
            If an id was not among the fitted items.
        """
        self._check_fitted()
        ids = np.atleast_1d(np.asarray(ids, dtype=object if self.items_.dtype.kind not in "iu" else None))
        pos = self._index.get_indexer(ids)
        if (pos < 0).any():
            raise KeyError(f"{ids[int(np.argmax(pos < 0))]!r} is not a fitted item")
        return self.scores_[pos]

    def to_frame(self) -> pd.DataFrame:
        """One row per item: ``id``, ``score``, ``se`` (NaN without standard errors)."""
        self._check_fitted()
        se = self.se_ if self.se_ is not None else np.full(self.scores_.shape[0], np.nan)
        return pd.DataFrame({"id": self.items_, "score": self.scores_, "se": se})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"


class BradleyTerry(_PoEEstimator):
    """PoE-BT scores: Bradley-Terry with soft outcomes and a virtual-games prior.

    Parameters
    ----------
    alpha : float
        Prior strength (virtual wins and losses of each item against score 0).
    method : {"auto", "newton", "mm", "newman"}
    tol : float
        Gradient tolerance (infinity norm).
    max_iter : int, optional
    return_se : bool
        Also compute standard errors (``se_``).
    n_threads : int, optional

    Attributes
    ----------
    scores_, se_, n_iter_, converged_, n_components_, solution_, items_

    Examples
    --------
    >>> import pycomp
    >>> bt = pycomp.BradleyTerry(alpha=1.0).fit(["x", "y", "z"], ["y", "z", "x"], [0.9, 0.7, 0.4])
    >>> bt.score_of("x") > bt.score_of("z")
    array([ True])
    """

    _model = "bt"

    def __init__(self, alpha: float = 1.0, method: str = "auto", tol: float = 1e-8,
                 max_iter: Optional[int] = None, return_se: bool = False, n_threads: Optional[int] = None):
        self.alpha = alpha
        self.method = method
        self.tol = tol
        self.max_iter = max_iter
        self.return_se = return_se
        self.n_threads = n_threads
        self._params = dict(alpha=alpha, method=method, tol=tol, max_iter=max_iter, return_se=return_se,
                            n_threads=n_threads)

    def _solve_kwargs(self) -> dict:
        return dict(model="bt", **self._params)


class PoEGaussian(_PoEEstimator):
    """PoE-Gaussian scores: s_i - s_j ~ N(p - beta, sigma^2), least squares by CG.

    Parameters
    ----------
    alpha : float
        L2 prior strength.
    beta : float
        The expected difference is ``p - beta``.
    tol, max_iter, return_se, n_threads
        As in :class:`BradleyTerry`.
    """

    _model = "gaussian"

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, tol: float = 1e-8, max_iter: Optional[int] = None,
                 return_se: bool = False, n_threads: Optional[int] = None):
        self.alpha = alpha
        self.beta = beta
        self.tol = tol
        self.max_iter = max_iter
        self.return_se = return_se
        self.n_threads = n_threads
        self._params = dict(alpha=alpha, beta=beta, tol=tol, max_iter=max_iter, return_se=return_se,
                            n_threads=n_threads)

    def _solve_kwargs(self) -> dict:
        return dict(model="gaussian", **self._params)
