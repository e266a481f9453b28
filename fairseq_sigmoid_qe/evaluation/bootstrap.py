"""How sure a correlation is: seeded bootstrap confidence intervals, a paired bootstrap test
between two score columns on the same sentences, and correlations that control for length
(pure numpy / scipy; no fairseq)."""

import math

import numpy as np
from scipy import stats

LEVEL = 0.95


def _pearson_along(x, y, axis=-1):
    """Pearson's r along ``axis`` (vectorised over resamples); nan where a column is constant."""
    x = x - x.mean(axis=axis, keepdims=True)
    y = y - y.mean(axis=axis, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=axis) * (y * y).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (x * y).sum(axis=axis) / denominator, np.nan)


def _spearman_along(x, y, axis=-1):
    return _pearson_along(stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis), axis)


CORRELATIONS = {"pearson": _pearson_along, "spearman": _spearman_along}


def _statistic(name):
    try:
        return CORRELATIONS[name]
    except KeyError:
        known = ", ".join(CORRELATIONS)
        raise ValueError(f"no bootstrap for {name!r}; use one of {known}") from None


def _bootstrap(statistic, columns, resamples, seed):
    return stats.bootstrap(
        columns,
        statistic,
        n_resamples=resamples,
        paired=True,
        vectorized=True,
        confidence_level=LEVEL,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )


def _usable(*columns):
    return len(columns[0]) >= 3 and all(np.ptp(c) > 0 for c in columns)


def confidence_interval(predicted, gold, correlation="pearson", resamples=1000, seed=0):
    """(low, high): the percentile bootstrap 95% interval of the correlation of ``predicted``
    with ``gold`` over sentences resampled with replacement; (nan, nan) when undefined."""
    x, y = np.asarray(predicted, float), np.asarray(gold, float)
    if not _usable(x, y):
        return math.nan, math.nan
    result = _bootstrap(_statistic(correlation), (x, y), resamples, seed)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_test(predicted_a, predicted_b, gold, correlation="pearson", resamples=1000, seed=0):
    """A against B on the same sentences: the correlation difference ``r(A) - r(B)``, its
    bootstrap 95% interval, and the share of resamples in which A correlates better (both
    read on the same resampled sentences)."""
    a, b, y = (np.asarray(c, float) for c in (predicted_a, predicted_b, gold))
    if not (len(a) == len(b) == len(y)):
        raise ValueError("paired_test needs the same sentences for A, B and gold")
    if not _usable(a, b, y):
        return {"delta": math.nan, "delta_low": math.nan, "delta_high": math.nan, "share": math.nan}
    measure = _statistic(correlation)

    def difference(a, b, y, axis=-1):
        return measure(a, y, axis) - measure(b, y, axis)

    result = _bootstrap(difference, (a, b, y), resamples, seed)
    resampled = result.bootstrap_distribution
    return {
        "delta": float(difference(a, b, y)),
        "delta_low": float(result.confidence_interval.low),
        "delta_high": float(result.confidence_interval.high),
        "share": float(np.mean(resampled > 0)),
    }


def partial_pearson(predicted, gold, control):
    """Pearson's r of ``predicted`` and ``gold`` given ``control`` (e.g. hypothesis length):
    the correlation of their residuals after a least-squares line on ``control``."""
    x, y, z = (np.asarray(c, float) for c in (predicted, gold, control))
    if not _usable(x, y) or np.ptp(z) == 0:
        return float(_pearson_along(x, y)) if _usable(x, y) else math.nan

    def residual(v):
        slope, intercept = np.polyfit(z, v, 1)
        return v - (slope * z + intercept)

    return float(_pearson_along(residual(x), residual(y)))


def length_bins(lengths, bins=4):
    """A bin index per sentence: ``bins`` groups of about equal size by length (ties kept in
    one bin, so there may be fewer)."""
    lengths = np.asarray(lengths, float)
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, lengths, side="right")


def pearson_within_bins(predicted, gold, lengths, bins=4):
    """Pearson's r inside each length bin, averaged with the bins' sizes as weights (bins
    where it is undefined are left out); nan when no bin has one."""
    x, y = np.asarray(predicted, float), np.asarray(gold, float)
    index = length_bins(lengths, bins)
    values, weights = [], []
    for b in np.unique(index):
        members = index == b
        if members.sum() >= 3 and _usable(x[members], y[members]):
            values.append(float(_pearson_along(x[members], y[members])))
            weights.append(int(members.sum()))
    return float(np.average(values, weights=weights)) if values else math.nan
