"""Evaluation rows: per QE method (and per calibration) its measures against sentence gold
and word gold, and the plain-text table they print as."""

import math
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from ..core.errors import QEUserError
from .bootstrap import confidence_interval, paired_test, partial_pearson, pearson_within_bins
from .calibration import RAW_THRESHOLD, decision_measures, features, sentence_log_score
from .metrics import (
    binary_cross_entropy,
    kendall,
    pearson,
    prediction_rejection_ratio,
    roc_auc,
    spearman,
)
from .records import hypothesis_lengths, method_names, method_scores, record_word_scores

BAD_BELOW = 0.5


def word_rows(records, gold, label=None, calibrations=()):
    """Word-level rows: per method (raw word scores, tagged BAD below 0.5) and per word
    calibration (``METHOD+calibrated``), the number of words, ECE, Brier, MCC and F1 of BAD,
    and ROC-AUC of OK words."""
    outcomes = np.array([tag for tags in gold for tag in tags], float)
    entries = [
        (method, method, lambda scores: scores, RAW_THRESHOLD) for method in method_names(records)
    ]
    entries += [
        (
            f"{c.method}+calibrated",
            c.method,
            lambda scores, level=c.levels["word"]: level(features("word", scores)),
            c.levels["word"].threshold,
        )
        for c in calibrations
        if "word" in c.levels
    ]
    rows = []
    for name, method, transform, threshold in entries:
        scores = np.array([s for r in records for s in record_word_scores(r, method)], float)
        probs = transform(scores)
        rows.append(
            {
                "method": f"{label}/{name}" if label else name,
                "n": int(len(outcomes)),
                **decision_measures(probs, outcomes, outcomes == 0, threshold),
                "roc_auc": roc_auc(probs, outcomes),
            }
        )
    return rows


class MethodScores(NamedTuple):
    """One method's finite (score, gold) pairs: ``index`` the records they come from,
    ``lengths`` their hypotheses' scored tokens, ``dropped`` how many records had none."""

    name: str
    predicted: np.ndarray
    gold: np.ndarray
    dropped: int
    threshold: float
    index: np.ndarray
    lengths: np.ndarray


@dataclass
class Uncertainty:
    """How sure the correlations are: ``resamples`` bootstrap resamples (0: none), their seed,
    the length bins of the length-controlled view, and the method every other is compared to
    (a paired test) if any."""

    resamples: int = 1000
    seed: int = 1
    length_bins: int = 4
    compare: Optional[str] = None


def method_pairs(records, gold, label=None, calibrations=(), aggregate="record"):
    """A :class:`MethodScores` per method (sentence scores by ``aggregate``), and per sentence
    calibration (``METHOD+calibrated``: calibrated scores, the calibration's threshold): the
    pairs whose score and gold are both finite, and how many are not (NaN: e.g. an empty
    hypothesis); a method without one finite pair is an error."""
    gold = np.asarray(gold, float)
    lengths = hypothesis_lengths(records)
    entries = [
        (method, method_scores(records, method, aggregate), RAW_THRESHOLD)
        for method in method_names(records)
    ]
    for calibration in calibrations:
        level = calibration.levels.get("sentence")
        if level is not None:
            x = features("sentence", [sentence_log_score(r, calibration.method) for r in records])
            predicted = np.where(np.isfinite(x), level(np.nan_to_num(x)), math.nan)
            entries.append((f"{calibration.method}+calibrated", predicted, level.threshold))
    for method, predicted, threshold in entries:
        name = f"{label}/{method}" if label else method
        finite = np.isfinite(predicted) & np.isfinite(gold)
        if not finite.any():
            raise QEUserError(
                f"method {name}: none of its {len(gold)} sentences has a finite "
                "score and gold value (all NaN or infinite)"
            )
        yield MethodScores(
            name,
            predicted[finite],
            gold[finite],
            int((~finite).sum()),
            threshold,
            np.flatnonzero(finite),
            lengths[finite],
        )


def evaluate_method(predicted, gold, binary=False, bad_below=BAD_BELOW, threshold=RAW_THRESHOLD):
    """Metrics of one method's scores against gold (aligned arrays): correlations, PRR, and
    as a decision (gold below ``bad_below`` is BAD, a score below ``threshold`` is tagged BAD)
    ECE, Brier, MCC and F1 of BAD."""
    row = {
        "n": int(len(gold)),
        "pearson": pearson(predicted, gold),
        "spearman": spearman(predicted, gold),
        "kendall": kendall(predicted, gold),
        "prr": prediction_rejection_ratio(predicted, gold),
    }
    if binary:
        row["bce"] = binary_cross_entropy(predicted, gold)
        row["roc_auc"] = roc_auc(predicted, gold)
    gold = np.asarray(gold, float)
    return {**row, **decision_measures(predicted, gold, gold < bad_below, threshold)}


def how_sure(entry, uncertainty):
    """The 95% bootstrap intervals of Pearson's r and Spearman's rho, and the
    length-controlled correlations (nan where a record's length is unknown)."""
    row = {}
    for correlation in ("pearson", "spearman"):
        row[f"{correlation}_low"], row[f"{correlation}_high"] = confidence_interval(
            entry.predicted, entry.gold, correlation, uncertainty.resamples, uncertainty.seed
        )
    known = np.isfinite(entry.lengths).all()
    row["pearson_given_length"] = (
        partial_pearson(entry.predicted, entry.gold, entry.lengths) if known else math.nan
    )
    row["pearson_in_length_bins"] = (
        pearson_within_bins(entry.predicted, entry.gold, entry.lengths, uncertainty.length_bins)
        if known
        else math.nan
    )
    return row


def compared(entry, reference, uncertainty):
    """The paired bootstrap test of ``entry`` against ``reference`` on their common sentences:
    Δ Pearson, its interval and the share of resamples in which ``entry`` is better."""
    common = np.intersect1d(entry.index, reference.index)
    a = entry.predicted[np.searchsorted(entry.index, common)]
    b = reference.predicted[np.searchsorted(reference.index, common)]
    gold = entry.gold[np.searchsorted(entry.index, common)]
    if not np.array_equal(gold, reference.gold[np.searchsorted(reference.index, common)]):
        raise QEUserError(
            f"--compare {reference.name}: {entry.name} is rated against other gold values "
            "(other hypotheses); compare methods of the same hypotheses"
        )
    result = paired_test(a, b, gold, resamples=uncertainty.resamples, seed=uncertainty.seed)
    return {
        "delta_pearson": result["delta"],
        "delta_low": result["delta_low"],
        "delta_high": result["delta_high"],
        "share_better": result["share"],
    }


def rows_of_pairs(pairs, binary=False, bad_below=BAD_BELOW, uncertainty=None):
    """One row per :func:`method_pairs` entry: its measures, with ``uncertainty`` its
    intervals, length-controlled correlations and paired test, and its dropped count."""
    pairs = list(pairs)
    reference = None
    if uncertainty is not None and uncertainty.compare is not None:
        reference = next((p for p in pairs if p.name == uncertainty.compare), None)
        if reference is None:
            names = ", ".join(p.name for p in pairs)
            raise QEUserError(f"--compare {uncertainty.compare}: no such method (have {names})")
    rows = []
    for entry in pairs:
        row = {
            "method": entry.name,
            **evaluate_method(entry.predicted, entry.gold, binary, bad_below, entry.threshold),
        }
        if uncertainty is not None and uncertainty.resamples > 0:
            row.update(how_sure(entry, uncertainty))
        if reference is not None:
            versus = (
                {k: math.nan for k in ("delta_pearson", "delta_low", "delta_high", "share_better")}
                if entry is reference
                else compared(entry, reference, uncertainty)
            )
            row.update(versus)
        rows.append({**row, "dropped": entry.dropped})
    return rows


def evaluate_methods(records, gold, binary=False, label=None, bad_below=BAD_BELOW):
    """One row per method of ``records`` against ``gold`` (one value per record)."""
    return rows_of_pairs(method_pairs(records, gold, label), binary, bad_below)


def format_table(rows):
    """Rows as a fixed-width table: the method, then every column (integers as they are,
    other numbers with 3 decimals); the JSON-only count of dropped sentences left out."""
    columns = [k for k in rows[0] if k not in ("method", "dropped")]
    widths = [max(6 if isinstance(rows[0][k], int) else 8, len(k)) for k in columns]
    width = max(len("method"), *(len(r["method"]) for r in rows))

    def cell(value, size):
        return f" {value:>{size}}" if isinstance(value, int) else f" {value:>{size}.3f}"

    lines = [f"{'method':<{width}}" + "".join(f" {k:>{w}}" for k, w in zip(columns, widths))]
    for row in rows:
        lines.append(
            f"{row['method']:<{width}}" + "".join(cell(row[k], w) for k, w in zip(columns, widths))
        )
    return "\n".join(lines)


def json_safe(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value
