"""Bootstrap intervals, the paired test and the length-controlled correlations."""

import math

import numpy as np
import pytest
from scipy import stats

from fairseq_sigmoid_qe.evaluation.bootstrap import (
    confidence_interval,
    length_bins,
    paired_test,
    partial_pearson,
    pearson_within_bins,
)

pytestmark = pytest.mark.unit


def data(n=400, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    gold = rng.normal(size=n)
    return gold, gold + noise * rng.normal(size=n)


def test_interval_holds_the_estimate_is_seeded_and_narrows_with_more_sentences():
    gold, predicted = data()
    r = stats.pearsonr(predicted, gold)[0]
    low, high = confidence_interval(predicted, gold, seed=3)
    assert low < r < high
    assert (low, high) == confidence_interval(predicted, gold, seed=3)
    assert (low, high) != confidence_interval(predicted, gold, seed=4)
    big_gold, big_predicted = data(n=4000)
    big_low, big_high = confidence_interval(big_predicted, big_gold, seed=3)
    assert big_high - big_low < 0.6 * (high - low)


def test_interval_covers_the_true_correlation_about_95_percent_of_the_time():
    true_r = 1 / math.sqrt(2)  # gold + unit noise
    covered = 0
    for seed in range(60):
        gold, predicted = data(n=200, seed=seed)
        low, high = confidence_interval(predicted, gold, resamples=300, seed=seed)
        covered += low <= true_r <= high
    assert 50 <= covered <= 60


def test_spearman_interval_and_undefined_cases():
    gold, predicted = data()
    rho = stats.spearmanr(predicted, gold)[0]
    low, high = confidence_interval(predicted, gold, "spearman", seed=1)
    assert low < rho < high
    assert all(math.isnan(v) for v in confidence_interval(np.ones(50), gold[:50]))
    with pytest.raises(ValueError, match="no bootstrap for 'kendall'"):
        confidence_interval(predicted, gold, "kendall")


def test_paired_test_sees_a_better_method_and_not_a_copy():
    rng = np.random.default_rng(5)
    gold = rng.normal(size=500)
    good = gold + 0.5 * rng.normal(size=500)
    bad = gold + 2.0 * rng.normal(size=500)
    result = paired_test(good, bad, gold, seed=2)
    expected = stats.pearsonr(good, gold)[0] - stats.pearsonr(bad, gold)[0]
    assert result["delta"] == pytest.approx(expected)
    assert result["delta_low"] > 0 and result["share"] > 0.99
    assert paired_test(bad, good, gold, seed=2)["share"] < 0.01
    same = paired_test(good, good, gold, seed=2)
    assert same["delta"] == 0 and same["share"] == 0
    with pytest.raises(ValueError, match="same sentences"):
        paired_test(good, bad[:-1], gold)


def test_partial_correlation_removes_a_shared_length_effect():
    rng = np.random.default_rng(7)
    length = rng.integers(1, 40, size=2000).astype(float)
    gold = length / 40 + 0.1 * rng.normal(size=2000)  # quality only through length
    predicted = -np.log(length) + 0.1 * rng.normal(size=2000)  # a product falls with length
    assert abs(stats.pearsonr(predicted, gold)[0]) > 0.5
    assert abs(partial_pearson(predicted, gold, length)) < 0.1
    assert abs(pearson_within_bins(predicted, gold, length, bins=8)) < 0.25
    independent = rng.normal(size=2000)
    signal = independent + 0.5 * rng.normal(size=2000)
    assert partial_pearson(signal, independent, length) == pytest.approx(
        stats.pearsonr(signal, independent)[0], abs=0.02
    )


def test_length_bins_are_about_equal_and_keep_ties_together():
    lengths = np.repeat(np.arange(1, 9), 10)
    index = length_bins(lengths, 4)
    assert np.bincount(index).tolist() == [20, 20, 20, 20]
    for value in np.unique(lengths):
        assert len(set(index[lengths == value])) == 1
    assert len(set(length_bins(np.full(10, 3.0), 4))) == 1
