"""Quasi-likelihood dispersion of PoE-BT: how much noise the judgements carry against a coin flip.

PoE-BT scores a soft judgement ``p`` as ``p`` wins out of one game, whose variance
``q (1 - q)`` (``q = sig(s_i - s_j)``) is a coin flip's. A model's probabilities scatter
far less than that when the judge is confident and consistent, and repeats of a pair
that share a bias (the same prompt, the same user) scatter more. The dispersion

    phi = X^2 / df,   X^2 = sum over unique pairs (W - T q)^2 / (Q q (1 - q))

(Pearson's statistic on the collapsed pairs, :mod:`pycomp.collapse`: ``W = sum w p``,
``T = sum w``, ``Q = sum w^2`` over the comparisons of a pair in either order;
``df`` = unique pairs - (items compared - their connected components)) is the variance
of the judgements in units of that coin flip: about ``1 / (k + 1)`` for soft
judgements ``p ~ Beta(k q, k (1 - q))``, 1 for independent hard outcomes, above 1
for correlated repeats of a pair. Each judgement is then worth ``1 / phi`` games, which
is the quasi-likelihood (quasi-binomial) view of the same objective:

* the optimum of the data term does not change, but the prior's ``alpha`` virtual games
  weigh ``phi`` times less against the data's effective games: the scores are the
  optimum at ``alpha * phi``;
* the Hessian standard errors are ``sqrt(phi)`` times those of the objective at
  ``alpha * phi`` (``sqrt(diag(phi H^-1))``, ``H`` the Hessian of that objective).

``phi`` and the scores are fitted together: ``phi`` is the fixed point of
``phi = X^2(s(alpha phi)) / df``, iterated from the fit at ``alpha`` until the statistic at
the scores of ``alpha phi`` is within ``FIXED_POINT_RTOL`` of ``phi`` (exact in one step
when ``alpha = 0``). The sandwich and the bootstrap estimate the judgements' spread
themselves, so with them the dispersion only sets the prior (``alpha * phi``).
``bench/bench_coverage.py`` measures the coverage (row "hessian+dispersion").
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np

from pycomp import collapse as _collapse

__all__ = ["check_dispersion", "parse_option", "PairSums", "residual_df", "pearson", "fit", "describe"]

FIXED_POINT_RTOL = 1e-4
"""The fixed point of ``phi`` is reached when one more step changes it by less than this, relatively."""

FIXED_POINT_MAX_STEPS = 20

SMALLEST = 1e-12
"""``phi`` is at least this: a judge that fits exactly (``X^2 = 0``) keeps a positive prior."""


def check_dispersion(dispersion: Any, model: str) -> Union[None, str, float]:
    """None (no dispersion), ``"pearson"`` or ``"auto"`` (estimated) or a given ``phi > 0``.

    ``"auto"`` is ``"pearson"`` for PoE-BT when the comparisons leave residual degrees
    of freedom, and None otherwise (PoE-Gaussian, or a spanning tree of pairs).

    Raises
    ------
    ValueError
        Another value, or a dispersion other than "auto" with ``model="gaussian"``
        (whose standard errors already use the residual variance).
    """
    if dispersion is None or dispersion is False or (isinstance(dispersion, str) and dispersion == "none"):
        return None
    if isinstance(dispersion, str) and dispersion == "auto":
        return "auto" if model == "bt" else None
    if dispersion is True or (isinstance(dispersion, str) and dispersion == "pearson"):
        value: Union[str, float] = "pearson"
    elif isinstance(dispersion, numbers.Real) and not isinstance(dispersion, bool):
        value = float(dispersion)
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"dispersion={dispersion!r} must be a finite number > 0, 'pearson' or None")
    else:
        raise ValueError(f"dispersion={dispersion!r} must be None, 'pearson' or 'auto' (estimate it) or a number > 0")
    if model != "bt":
        raise ValueError("dispersion applies to model='bt': PoE-Gaussian's standard errors already scale with the "
                         "residual variance; drop dispersion")
    return value


def parse_option(text: str, model: str = "bt", model_option: str = "--model") -> Union[str, float, None]:
    """The commands' ``--dispersion`` value: auto, pearson, none or a number > 0.

    ``model`` is the run's solver model, named by ``model_option`` in the error: with
    ``"gaussian"`` only auto (which is then none) and none are accepted.

    Raises
    ------
    ValueError
        Naming the option.
    """
    value = str(text).strip().lower()
    if value == "none":
        return None
    if value not in ("auto", "pearson"):
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not (math.isfinite(number) and number > 0.0):
            raise ValueError(f"--dispersion {text!r} must be auto, pearson, none or a number > 0")
        value = number
    if model == "gaussian" and value != "auto":
        raise ValueError(f"--dispersion {text} applies to {model_option} bt: PoE-Gaussian's standard errors already "
                         f"scale with the residual variance; drop --dispersion")
    return value


def describe(sol) -> str:
    """One line on a solution's dispersion for the commands ('' without one)."""
    phi = getattr(sol, "dispersion", None)
    if phi is None:
        return ""
    how = f"estimated on {sol.dispersion_df} residual degrees of freedom" if sol.dispersion_df is not None else "given"
    return (f"dispersion phi = {phi:.3g} ({how}): each judgement counted as {1.0 / phi:.3g} coin-flip games, "
            f"standard errors scaled by sqrt(phi) (--dispersion none: the plain PoE-BT fit)")


class PairSums:
    """The collapsed unique pairs with positive weight: ``a``, ``b``, ``wins`` (sum w p),
    ``total`` (sum w) and ``squares`` (sum w^2), read once from a collapse."""

    def __init__(self, collapsed):
        squares = collapsed.q0
        used = squares > 0.0
        self.a, self.b = collapsed.a[used], collapsed.b[used]
        self.wins, self.total, self.squares = collapsed.wins[used], collapsed.total[used], squares[used]

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def x2(self, scores: np.ndarray) -> float:
        """Pearson's statistic at ``scores``."""
        q = 0.5 * (1.0 + np.tanh(0.5 * (scores[self.a] - scores[self.b])))
        var = np.maximum(q * (1.0 - q), np.finfo(float).tiny) * self.squares
        return float(np.sum((self.wins - self.total * q) ** 2 / var))


def residual_df(n_pairs: int, n_items: int, n_components: int) -> int:
    """Unique pairs minus free scores: ``n_pairs - (n_items - n_components)``.

    ``n_components`` counts the components of the positive-weight comparisons with every
    item never compared as its own (as :attr:`pycomp.Solution.n_components` does); such an
    item adds one item and one component, so it leaves ``df`` as it is.
    """
    return int(n_pairs) - (int(n_items) - int(n_components))


def pearson(collapsed, scores: np.ndarray, n_components: int) -> Tuple[float, int]:
    """Pearson's ``X^2 / df`` of the collapsed pairs at ``scores``, and ``df``.

    Parameters
    ----------
    collapsed : pycomp._core.Collapsed
        From :func:`pycomp.collapse.collapse`.
    scores : ndarray, shape (n_items,)
    n_components : int
        Connected components of the comparisons (:attr:`pycomp.Solution.n_components`).

    Returns
    -------
    phi : float
        NaN when ``df < 1``.
    df : int
    """
    pairs = PairSums(collapsed)
    df = residual_df(len(pairs), scores.shape[0], n_components)
    return (pairs.x2(scores) / df if df >= 1 else float("nan")), df


def fit(solve_at: Callable[[float], Any], i: np.ndarray, j: np.ndarray, p: Optional[np.ndarray],
        weights: Optional[np.ndarray], n_items: Optional[int], alpha: float, n_threads: int = 0,
        required: bool = True) -> Tuple[Optional[float], int, Any, list]:
    """Estimate ``phi`` together with the scores (see the module docstring).

    Parameters
    ----------
    solve_at : callable(alpha) -> pycomp.Solution
        A plain solve of the same comparisons at prior strength ``alpha``.
    i, j, p, weights, n_items
        The comparisons, on the host, as given to :func:`pycomp.solve`.
    alpha : float
        The prior strength asked for (in coin-flip games).
    required : bool
        Without residual degrees of freedom: raise (True) or return ``(None, df, None, [])``.

    Returns
    -------
    phi : float or None
    df : int
    solution : pycomp.Solution or None
        The plain solve at ``alpha * phi`` whose Pearson statistic is within
        ``FIXED_POINT_RTOL`` of ``phi`` (None when the iteration stopped short of that).
    caught : list of warnings.WarningMessage
        The warnings that solve raised (the other solves' are dropped).

    Raises
    ------
    ValueError
        No residual degrees of freedom (as many unique pairs as a spanning tree, or
        fewer) and ``required``.
    """
    pairs = PairSums(_collapse.collapse(i, j, p, weights=weights, n_items=n_items, units=False, n_threads=n_threads))

    def solve_quietly(a: float):
        # the warnings of the solve fit returns are handed back; the others would repeat them
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return solve_at(a), list(caught)

    sol, caught = solve_quietly(alpha)
    df = residual_df(len(pairs), sol.n_items, sol.n_components)
    if df < 1 and not required:
        return None, df, None, []
    if df < 1:
        raise ValueError(
            f"dispersion='pearson' needs more unique pairs than a spanning tree of the items: "
            f"{len(pairs)} unique pairs leave df = {df} residual degrees of freedom; "
            "compare more pairs, give dispersion=<phi> from a larger run, or drop dispersion")
    phi = max(pairs.x2(sol.scores) / df, SMALLEST)
    if alpha == 0.0:
        return phi, df, sol, caught  # the prior is 0 whatever phi is
    for _ in range(FIXED_POINT_MAX_STEPS):
        sol, caught = solve_quietly(alpha * phi)
        new = max(pairs.x2(sol.scores) / df, SMALLEST)
        if abs(new - phi) <= FIXED_POINT_RTOL * phi:
            return phi, df, sol, caught
        phi = new
    return phi, df, None, []
