"""The statistics behind every verdict aebench prints: intervals, tests, the smallest detectable difference.

All of it is scipy.stats; this module only chooses the test and packs its answer:

- `mean_interval`: a Student-t confidence interval of a mean over seeds (n − 1 degrees of freedom).
- `bootstrap_interval`: a seeded percentile bootstrap of a mean over test items (one run's own sampling noise).
- `difference`: new − baseline over seeds by Welch's t-test (`ttest_ind(equal_var=False)`), the paired t-test
  (`ttest_rel`, same seeds on the same data) or an exact/Monte-Carlo `permutation_test`, with the 95 % interval of
  the difference (from the matching t-test) and the smallest difference that test would detect.
- `against_value`: a mean over seeds against a fixed number (`ttest_1samp`), e.g. a reference row or a paper value.
- `holm`: Holm's step-down adjustment of a family of p-values (scipy has none; it is four lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
CONFIDENCE = 0.95
POWER = 0.8  # the detectable difference is the one found with this probability
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
MIN_ITEMS = 10  # fewer test items than this get no bootstrap interval: it would say nothing
TESTS = ("auto", "welch", "paired", "permutation")
PERMUTATION_RESAMPLES = 9999  # fewer possible permutations (3 + 3 seeds: 20) make the test exact
PERMUTATION_SEED = 0


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Student-t interval of the mean of `values` (n − 1 degrees of freedom); None below two values."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return None
    mean, sem = float(x.mean()), float(stats.sem(x))
    if sem == 0:
        return mean, mean
    low, high = stats.t.interval(confidence, len(x) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def bootstrap_interval(
    items: Sequence[float],
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float] | None:
    """A percentile bootstrap interval of the mean of per-item values, the same on every run (seeded).

    None for fewer than `MIN_ITEMS` items or any non-finite item (an exact PSNR of +inf has no spread)."""
    x = np.asarray(items, dtype=np.float64).ravel()
    if len(x) < MIN_ITEMS or not np.isfinite(x).all():
        return None
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    result = stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        vectorized=True,
        batch=100,  # 100 resamples at a time: bounded memory for 10,000 items
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass(frozen=True)
class Difference:
    """new − baseline: the test that ran, its two-sided p-value, the difference of the means with its interval,
    and the smallest difference (in absolute value) the test finds with probability `POWER` at `alpha`."""

    test: str
    p_value: float
    difference: float
    interval: tuple[float, float]
    detectable: float


def _detectable(interval: tuple[float, float], df: float, alpha: float, confidence: float) -> float:
    """(t_{1−α/2} + t_{power}) · standard error, with the standard error read back from the t interval."""
    se = (interval[1] - interval[0]) / 2 / stats.t.ppf(0.5 + confidence / 2, df)
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(POWER, df)) * se)


def _no_spread(new: np.ndarray, base: np.ndarray, test: str) -> Difference:
    """Every seed gave the same value on both sides: a difference, if any, is exact."""
    diff = float(new.mean() - base.mean())
    return Difference(test, 1.0 if diff == 0 else 0.0, diff, (diff, diff), 0.0)


def difference(
    new: Sequence[float],
    base: Sequence[float],
    test: str = "welch",
    alpha: float = ALPHA,
    confidence: float = CONFIDENCE,
) -> Difference:
    """new − base over seeds (two or more a side) by `test`: "welch", "paired" (the same seeds, in the same
    order), "permutation" or "paired-permutation". A permutation test's interval is the matching t-test's."""
    x, y = np.asarray(new, dtype=np.float64), np.asarray(base, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("a significance test needs at least two seeds per side")
    paired = test in ("paired", "paired-permutation")
    if paired and len(x) != len(y):
        raise ValueError("a paired test needs the same seeds on both sides")
    t_result = stats.ttest_rel(x, y) if paired else stats.ttest_ind(x, y, equal_var=False)
    name = {
        "welch": "Welch t-test",
        "paired": "paired t-test",
        "permutation": "permutation test",
        "paired-permutation": "paired permutation test",
    }[test]
    if not np.isfinite(t_result.statistic) and (np.ptp(x - y) == 0 if paired else np.ptp(x) == np.ptp(y) == 0):
        return _no_spread(x, y, name)
    ci = t_result.confidence_interval(confidence)
    interval = (float(ci.low), float(ci.high))
    p = float(t_result.pvalue)
    if test in ("permutation", "paired-permutation"):
        p = float(
            stats.permutation_test(
                (x, y),
                lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
                permutation_type="samples" if paired else "independent",
                vectorized=True,
                n_resamples=PERMUTATION_RESAMPLES,
                rng=np.random.default_rng(PERMUTATION_SEED),
            ).pvalue
        )
    diff = float(x.mean() - y.mean())
    return Difference(name, p, diff, interval, _detectable(interval, float(t_result.df), alpha, confidence))


def against_value(
    values: Sequence[float], value: float, alpha: float = ALPHA, confidence: float = CONFIDENCE
) -> Difference:
    """mean(values) − value by a one-sample t-test: seeds against a fixed number (a reference row, a paper's)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        raise ValueError("a significance test needs at least two seeds")
    if np.ptp(x) == 0:
        return _no_spread(x, np.array([value]), "one-sample t-test")
    result = stats.ttest_1samp(x, value)
    ci = result.confidence_interval(confidence)
    interval = (float(ci.low - value), float(ci.high - value))
    detectable = _detectable(interval, float(result.df), alpha, confidence)
    return Difference("one-sample t-test", float(result.pvalue), float(x.mean() - value), interval, detectable)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the k-th smallest of m is multiplied by m − k + 1, kept monotone and at
    most 1. Rejecting where the adjusted value is below α keeps the family-wise error rate at α."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, p[order] * (len(p) - np.arange(len(p))))
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


def significantly_different(values: Sequence[float], best: Sequence[float], alpha: float = ALPHA) -> bool | None:
    """Welch's test of two rows of seeds at `alpha`; None when a side has fewer than two seeds."""
    if len(values) < 2 or len(best) < 2:
        return None
    return difference(values, best, "welch", alpha).p_value < alpha
