"""Calibration of the judge against gold scores: one temperature on the judge's log-odds.

A judge's combined probability ``p`` that item i beats item j is often over- or
under-confident. With gold scores for some items, the judged pairs whose two items
both have gold give targets ``y = 1[gold_i > gold_j]`` (0.5 for equal gold), and one
temperature ``T`` is fitted by maximum likelihood so that

    q = sig(logit(p) / T)

matches them (the Bernoulli log-likelihood of the targets, with soft targets for
ties; ``p`` is clipped to ``[1e-6, 1 - 1e-6]`` first). ``T > 1`` softens an
over-confident judge, ``T < 1`` sharpens an under-confident one. The solve then
uses ``q`` in place of ``p``, which is what makes the standard errors honest about
how often the judge is right.

The expected calibration error (ECE) is reported before and after: every gold
pair is counted in both orientations, ``(q, y)`` and ``(1 - q, 1 - y)`` (so the
figure does not depend on which item of a pair is written first), the
probabilities are put in 10 equal-width bins on [0, 1] (bin ``min(floor(10 q), 9)``),
and ``ECE = sum_b (n_b / N) |mean(y in b) - mean(q in b)|``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Calibration", "fit_temperature", "expected_calibration_error", "calibrate", "calibrate_comparisons",
           "MIN_GOLD_PAIRS", "N_BINS", "CLIP", "MIN_TEMPERATURE"]

MIN_GOLD_PAIRS = 10
"""Fewest judged pairs with gold on both items that a temperature is fitted on."""

N_BINS = 10
CLIP = 1e-6
MIN_TEMPERATURE = 0.01
"""The fit stops here: a judge that orders every gold pair right has its likelihood growing as T -> 0."""


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1.0 - CLIP)
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _nll(tau: float, x: np.ndarray, y: np.ndarray) -> float:
    z = tau * x
    # -[y log sig(z) + (1 - y) log sig(-z)] = log(1 + e^z) - y z
    return float(np.sum(np.logaddexp(0.0, z) - y * z))


def fit_temperature(p, y, *, tol: float = 1e-12, max_iter: int = 100) -> float:
    """The temperature ``T`` maximising ``sum y log q + (1 - y) log(1 - q)``, ``q = sig(logit(p) / T)``.

    Newton's method on the inverse temperature ``1 / T`` (the negative
    log-likelihood is convex in it), with step halving; ``T`` is kept at or above
    :data:`MIN_TEMPERATURE` (reached only when the judge orders every pair right).

    Parameters
    ----------
    p : array_like of float, shape (m,)
        The judge's probabilities.
    y : array_like of float, shape (m,)
        Targets in [0, 1] (1: the first item is better, 0.5: equal).

    Returns
    -------
    float
        ``T > 0``.

    Raises
    ------
    ValueError
        The judge's probabilities carry no information about the targets, or point
        the wrong way (the best inverse temperature is <= 0): no positive
        temperature calibrates them.
    """
    x = _logit(p)
    y = np.asarray(y, dtype=np.float64)
    tau = 1.0
    # The derivative at tau = 0 tells whether the optimum is at a positive inverse temperature.
    if np.sum((0.5 - y) * x) >= 0.0:
        raise ValueError("the judge's probabilities do not agree with the gold order better than chance "
                         "(the best temperature is not positive); --calibrate cannot use them")
    tau_max = 1.0 / MIN_TEMPERATURE
    if np.sum((_sigmoid(tau_max * x) - y) * x) <= 0.0:  # still descending at the bound (convex): stop there
        return MIN_TEMPERATURE
    f = _nll(tau, x, y)
    for _ in range(max_iter):
        s = _sigmoid(tau * x)
        grad = float(np.sum((s - y) * x))
        hess = float(np.sum(s * (1.0 - s) * x * x))
        if hess <= 0.0:
            break
        step = grad / hess
        new = min(tau - step, tau_max)
        while new <= 0.0:
            step *= 0.5
            new = tau - step
        f_new = _nll(new, x, y)
        halvings = 0
        while f_new > f and halvings < 60:
            step *= 0.5
            new = tau - step
            f_new = _nll(new, x, y)
            halvings += 1
        converged = abs(new - tau) <= tol * max(1.0, abs(tau))
        tau, f = new, f_new
        if converged:
            break
    return 1.0 / tau


def expected_calibration_error(q, y, n_bins: int = N_BINS) -> float:
    """ECE of probabilities ``q`` against targets ``y``, both orientations, ``n_bins`` equal-width bins.

    Returns
    -------
    float
        ``sum_b (n_b / N) |mean(y in b) - mean(q in b)|``; NaN with no pairs.
    """
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(q) == 0:
        return float("nan")
    q2, y2 = np.concatenate([q, 1.0 - q]), np.concatenate([y, 1.0 - y])
    b = np.minimum((q2 * n_bins).astype(np.int64), n_bins - 1)
    gap = np.abs(np.bincount(b, y2, minlength=n_bins) - np.bincount(b, q2, minlength=n_bins))
    return float(np.sum(gap) / len(q2))


@dataclass
class Calibration:
    """A fitted temperature and what it did on the gold pairs.

    Attributes
    ----------
    temperature : float
    n_pairs : int
        Judged pairs with gold on both items that it was fitted on.
    ece_before, ece_after : float
        :func:`expected_calibration_error` of ``p`` and of the calibrated ``q``.
    nll_before, nll_after : float
        Mean negative log-likelihood per pair before and after.
    """

    temperature: float
    n_pairs: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float

    def apply(self, p) -> np.ndarray:
        """Calibrated probabilities ``sig(logit(p) / T)``."""
        return _sigmoid(_logit(p) / self.temperature)

    def as_dict(self) -> dict:
        return {"temperature": round(self.temperature, 6), "n_gold_pairs": self.n_pairs,
                "ece_before": round(self.ece_before, 6), "ece_after": round(self.ece_after, 6),
                "nll_before": round(self.nll_before, 6), "nll_after": round(self.nll_after, 6),
                "ece_bins": f"{N_BINS} equal-width bins, both orientations of each pair"}

    def line(self) -> str:
        """One line for the console, each figure with what it means."""
        return (f"calibration: temperature {self.temperature:.3f} on the judge's log-odds (fitted on "
                f"{self.n_pairs} judged pairs with gold; > 1 = the judge was over-confident), expected calibration "
                f"error {self.ece_before:.3f} -> {self.ece_after:.3f} (mean |observed - predicted| win rate over "
                f"{N_BINS} probability bins; 0 = calibrated)")


def calibrate(i, j, p, gold, *, option: str = "--calibrate", gold_option: str = "--gold-field") -> Calibration:
    """Fit the temperature on the judged pairs ``(i, j, p)`` whose items both have a finite ``gold``.

    Parameters
    ----------
    i, j : array_like of int, shape (m,)
    p : array_like of float, shape (m,)
        Probability that ``i`` beats ``j``.
    gold : array_like of float, shape (n_items,) or None
        Gold scores, NaN where unknown.
    option, gold_option : str
        The option names the errors cite.

    Raises
    ------
    ValueError
        No gold, or fewer than :data:`MIN_GOLD_PAIRS` judged pairs with gold on both items.
    """
    if gold is None:
        raise ValueError(f"{option} needs gold scores for some items: give {gold_option}")
    gold = np.asarray(gold, dtype=np.float64)
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    both = np.isfinite(gold[i]) & np.isfinite(gold[j])
    n = int(both.sum())
    if n < MIN_GOLD_PAIRS:
        raise ValueError(f"{option} needs at least {MIN_GOLD_PAIRS} judged pairs whose two items both have gold "
                         f"({gold_option}); this run has {n}")
    gi, gj, pk = gold[i[both]], gold[j[both]], p[both]
    y = np.where(gi > gj, 1.0, np.where(gi < gj, 0.0, 0.5))
    t = fit_temperature(pk, y)
    q = _sigmoid(_logit(pk) / t)
    return Calibration(temperature=t, n_pairs=n, ece_before=expected_calibration_error(pk, y),
                       ece_after=expected_calibration_error(q, y), nll_before=_nll(1.0, _logit(pk), y) / n,
                       nll_after=_nll(1.0 / t, _logit(pk), y) / n)


def calibrate_comparisons(comparisons, gold, fit_mask=None):
    """Calibrate a run's comparisons: ``p`` becomes the calibrated probability, the judge's own kept as ``p_raw``.

    Parameters
    ----------
    comparisons : pandas.DataFrame
        Columns ``i``, ``j`` (item indices) and ``p``.
    gold : numpy.ndarray, shape (n_items,)
    fit_mask : numpy.ndarray of bool, shape (n_items,), optional
        Only these items' gold is used for the fit (the run's ``--fit-on`` items).

    Returns
    -------
    comparisons : pandas.DataFrame
    calibration : Calibration
    """
    gold = np.asarray(gold, dtype=np.float64)
    if fit_mask is not None:
        gold = np.where(fit_mask, gold, np.nan)
    cal = calibrate(comparisons["i"].to_numpy(), comparisons["j"].to_numpy(), comparisons["p"].to_numpy(), gold)
    out = comparisons.copy()
    out.insert(list(out.columns).index("p") + 1, "p_raw", out["p"])
    out["p"] = cal.apply(out["p_raw"].to_numpy())
    return out, cal
