"""Scikit-learn style estimators over :func:`pycomp.solve`.

They need numpy only on integer items; string ids, ``score_of`` and ``to_frame``
use pandas (the ``cli`` extra), imported when first needed.
"""
from __future__ import annotations

import inspect
from typing import Any, Optional

import numpy as np

from pycomp.exceptions import NoOptimumError, NotFittedError
from pycomp.solve import Solution, solve


class _PoEEstimator:
    """Shared fit/transform logic; subclasses fix the model and its parameters.

    Follows scikit-learn's estimator contract: ``__init__`` only stores its
    arguments as attributes of the same names, ``fit`` reads those attributes as
    they are when it is called, and ``get_params``/``set_params`` read and write them.
    """

    _model = "bt"

    def __init__(self, alpha: float, tol: float, max_iter: Optional[int], return_se: bool,
                 n_threads: Optional[int]):
        """Store the parameters both estimators take (scikit-learn's contract: stored as given)."""
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter
        self.return_se = return_se
        self.n_threads = n_threads

    @classmethod
    def _param_names(cls) -> list:
        """The parameters of ``__init__``, in signature order."""
        signature = inspect.signature(cls.__init__)
        return [name for name, par in signature.parameters.items()
                if name != "self" and par.kind == par.POSITIONAL_OR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict:
        """The estimator's parameters, as scikit-learn expects.

        Parameters
        ----------
        deep : bool
            Ignored: these estimators hold no sub-estimators.

        Returns
        -------
        dict
            Each ``__init__`` parameter mapped to its current value.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "_PoEEstimator":
        """Set parameters; the next ``fit`` uses them.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If a name is not a parameter of the estimator (nothing is changed then).
        """
        valid = self._param_names()
        for key in params:
            if key not in valid:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {key!r}; valid parameters: {', '.join(valid)}"
                )
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def _solve_kwargs(self) -> dict:
        return dict(model=self._model, **self.get_params())

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
            from pycomp import ids as id_helpers

            i, j, ids = id_helpers.encode_ids(a_arr, b_arr)
            id_helpers._require_distinct(i, j, ids, "a", "b", row_base=0)
            try:
                sol = solve(i, j, p, weights=weights, n_items=len(ids), **self._solve_kwargs())
            except NoOptimumError as exc:
                raise id_helpers._restated(exc, id_helpers._no_optimum_message(exc, ids)) from exc
            self.items_ = ids
        self.solution_: Solution = sol
        self.scores_ = sol.scores
        self.se_ = sol.se
        self.n_iter_ = sol.n_iter
        self.converged_ = sol.converged
        self.n_components_ = sol.n_components
        self._index = None  # the id -> position lookup of score_of, built on first use
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
        if self._index is None:
            import pandas as pd

            self._index = pd.Index(self.items_)
        pos = self._index.get_indexer(ids)
        if (pos < 0).any():
            raise KeyError(f"{ids[int(np.argmax(pos < 0))]!r} is not a fitted item")
        return self.scores_[pos]

    def to_frame(self) -> "pd.DataFrame":
        """One row per item: ``id``, ``score``, ``se`` (NaN without standard errors)."""
        self._check_fitted()
        se = self.se_ if self.se_ is not None else np.full(self.scores_.shape[0], np.nan)
        import pandas as pd

        return pd.DataFrame({"id": self.items_, "score": self.scores_, "se": se})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
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
    dispersion : {None, "pearson", "auto"} or float
        As in :func:`pycomp.solve`: count each judgement as ``1 / phi`` games
        (``solution_.dispersion``; :mod:`pycomp.dispersion`).

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
                 max_iter: Optional[int] = None, return_se: bool = False, n_threads: Optional[int] = None,
                 dispersion: Any = None):
        super().__init__(alpha, tol, max_iter, return_se, n_threads)
        self.method = method
        self.dispersion = dispersion


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
        super().__init__(alpha, tol, max_iter, return_se, n_threads)
        self.beta = beta
