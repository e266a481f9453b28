"""Measures of QE scores against gold quality: correlations, prediction rejection ratio,
ROC-AUC, binary cross-entropy (pure functions of aligned arrays; no fairseq)."""

import math

import numpy as np
from scipy import stats

BCE_EPSILON = 1e-7


def _correlation_defined(x, y):
    return len(x) >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0


def pearson(predicted, gold):
    """Pearson's r (scipy); nan when undefined (fewer than two points or a constant column)."""
    x, y = np.asarray(predicted, float), np.asarray(gold, float)
    return float(stats.pearsonr(x, y)[0]) if _correlation_defined(x, y) else math.nan


def spearman(predicted, gold):
    """Spearman's rho (scipy); nan when undefined."""
    x, y = np.asarray(predicted, float), np.asarray(gold, float)
    return float(stats.spearmanr(x, y)[0]) if _correlation_defined(x, y) else math.nan


def kendall(predicted, gold):
    """Kendall's tau-b (scipy); nan when undefined."""
    x, y = np.asarray(predicted, float), np.asarray(gold, float)
    return float(stats.kendalltau(x, y)[0]) if _correlation_defined(x, y) else math.nan


def rejection_curve(confidence, quality, max_rejection=1.0):
    """Mean quality of the samples kept after rejecting the ``k`` least confident ones, for
    ``k = 0 .. int(max_rejection * n) - 1``; tied confidences count as randomly ordered (each
    tied sample contributes its tie group's mean quality)."""
    confidence, quality = np.asarray(confidence, float), np.asarray(quality, float)
    order = np.argsort(-confidence, kind="stable")
    ranked_confidence, ranked_quality = confidence[order], quality[order]
    starts = np.r_[True, ranked_confidence[1:] != ranked_confidence[:-1]]
    group = np.cumsum(starts) - 1
    group_mean = np.bincount(group, ranked_quality) / np.bincount(group)
    kept_mean = np.cumsum(group_mean[group]) / np.arange(1, len(quality) + 1)
    return kept_mean[::-1][: int(max_rejection * len(quality))]


def prediction_rejection_ratio(confidence, quality, max_rejection=1.0):
    """PRR of a confidence (higher = better translation) against gold quality.

    As lm-polygraph's ``PredictionRejectionArea`` normalised by its oracle and random scores:
    the area under the rejection curve is the mean of :func:`rejection_curve` (kept-sample mean
    quality at rejection fractions ``0, 1/n, ..., (num_rej - 1)/n``, ``num_rej =
    int(max_rejection * n)``), and ``PRR = (area(confidence) - area(random)) / (area(oracle) -
    area(random))`` with oracle confidence = quality. The random area is its exact expectation,
    the mean quality (lm-polygraph averages 1000 shuffles). Ties in confidence are broken at
    random in expectation. 1 = oracle, 0 = random, < 0 = worse than random; nan when quality
    is constant or fewer than two rejection steps are taken.
    """
    confidence, quality = np.asarray(confidence, float), np.asarray(quality, float)
    if int(max_rejection * len(quality)) < 2 or np.ptp(quality) == 0:
        return math.nan
    random_area = quality.mean()
    oracle_area = rejection_curve(quality, quality, max_rejection).mean()
    if oracle_area <= random_area:
        return math.nan
    area = rejection_curve(confidence, quality, max_rejection).mean()
    return float((area - random_area) / (oracle_area - random_area))


def roc_auc(scores, labels):
    """Area under the ROC curve of ``scores`` for the positive (1) labels, from ranks (ties
    count half); nan without both classes."""
    scores, positive = np.asarray(scores, float), np.asarray(labels, float) == 1
    n_positive, n_negative = int(positive.sum()), int((~positive).sum())
    if n_positive == 0 or n_negative == 0:
        return math.nan
    ranks = stats.rankdata(scores)
    return float(
        (ranks[positive].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)
    )


def binary_cross_entropy(probs, labels):
    """Mean binary cross-entropy of probabilities (clipped to [1e-7, 1 - 1e-7]) for 0/1 labels."""
    p = np.clip(np.asarray(probs, float), BCE_EPSILON, 1 - BCE_EPSILON)
    y = np.asarray(labels, float)
    if len(y) == 0:
        return math.nan
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
