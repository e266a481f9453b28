"""Calibrated QE: a monotone map from one method's scores to gold quality, fitted on a dev set
(isotonic regression, or Platt scaling), with the threshold below which a sentence or word is
tagged BAD; the measures of a calibration (ECE, Brier, MCC, F1 of BAD); the calibration file;
and the calibrated part of a QE record (scores, OK/BAD tags, XCOMET-style error spans).

Features a map reads: a sentence's log product of token scores (``sentence_log_scores``,
whatever ``--qe-sentence-agg``; floored at ``LOG_FLOOR``), a word's logit of its word score.
Their "raw probabilities" (before calibration) are the product itself and the word score.
Pure numpy: no fairseq.
"""

import json
import math

import numpy as np

from ..core.errors import QEUserError
from ..core.words import detokenize, word_spans

FORMAT = "fairseq-sigmoid-qe-calibration"
VERSION = 1
MAPS = ("isotonic", "platt")
LEVELS = ("sentence", "word")
ECE_BINS = 10
LOG_FLOOR = -1000.0
LOGIT_CLIP = 1e-7
RAW_THRESHOLD = 0.5


# --- the maps ---------------------------------------------------------------------------------


def isotonic_fit(x, y, weights=None):
    """Nondecreasing least-squares fit of ``y`` on ``x`` (pool adjacent violators): the knots
    ``(xs, ys)`` of the piecewise-linear map :func:`isotonic_predict` reads (tied ``x`` pooled
    first, by weighted mean; only the ends of each constant block kept)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    xs, inverse = np.unique(x, return_inverse=True)
    block_w = np.bincount(inverse, w)
    block_y = np.bincount(inverse, w * y) / block_w
    values, masses, sizes = [], [], []
    for value, mass in zip(block_y, block_w):
        values.append(value)
        masses.append(mass)
        sizes.append(1)
        while len(values) > 1 and values[-2] >= values[-1]:
            value, mass, size = values.pop(), masses.pop(), sizes.pop()
            total = masses[-1] + mass
            values[-1] = (values[-1] * masses[-1] + value * mass) / total
            masses[-1], sizes[-1] = total, sizes[-1] + size
    ys = np.repeat(values, sizes)
    keep = np.ones(len(ys), bool)
    keep[1:-1] = (ys[1:-1] != ys[:-2]) | (ys[1:-1] != ys[2:])
    return xs[keep], ys[keep]


def isotonic_predict(x, xs, ys):
    """The isotonic map at ``x``: linear between knots, the end values beyond them."""
    return np.interp(np.asarray(x, float), xs, ys)


def platt_fit(x, y, iterations=100):
    """``(a, b)`` of ``σ(a·x + b)`` minimising the mean cross-entropy against targets ``y``
    in [0, 1] (Platt scaling; Newton's method on standardised ``x``)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    mean, scale = x.mean(), x.std() or 1.0
    z = np.stack([(x - mean) / scale, np.ones_like(x)], axis=1)
    prior = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    theta = np.array([0.0, math.log(prior / (1 - prior))])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(z @ theta)))
        gradient = z.T @ (p - y) / len(y)
        hessian = (z * (p * (1 - p))[:, None]).T @ z / len(y) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-12:
            break
    return float(theta[0] / scale), float(theta[1] - theta[0] * mean / scale)


def platt_predict(x, a, b):
    return 1 / (1 + np.exp(-(a * np.asarray(x, float) + b)))


# --- measures ---------------------------------------------------------------------------------


def reliability_bins(probs, outcomes, bins=ECE_BINS):
    """Over ``bins`` equal-width bins of the predicted probability (of OK), the non-empty
    bins' mean prediction, mean outcome (0/1 labels, or gold in [0, 1]) and size."""
    p, o = np.asarray(probs, float), np.asarray(outcomes, float)
    index = np.minimum((np.clip(p, 0, 1) * bins).astype(int), bins - 1)
    count = np.bincount(index, minlength=bins)
    full = count > 0
    return (
        np.bincount(index, p, bins)[full] / count[full],
        np.bincount(index, o, bins)[full] / count[full],
        count[full],
    )


def expected_calibration_error(probs, outcomes, bins=ECE_BINS):
    """ECE: the size-weighted mean |mean prediction - mean outcome| over
    :func:`reliability_bins`."""
    if len(probs) == 0:
        return math.nan
    mean_prob, mean_outcome, count = reliability_bins(probs, outcomes, bins)
    return float(np.sum(count * np.abs(mean_prob - mean_outcome)) / count.sum())


def brier(probs, outcomes):
    """Mean squared difference of predicted probabilities and outcomes."""
    p, o = np.asarray(probs, float), np.asarray(outcomes, float)
    return float(np.mean((p - o) ** 2)) if len(p) else math.nan


def confusion(predicted_bad, gold_bad):
    predicted, gold = np.asarray(predicted_bad, bool), np.asarray(gold_bad, bool)
    tp, fp = int((predicted & gold).sum()), int((predicted & ~gold).sum())
    fn, tn = int((~predicted & gold).sum()), int((~predicted & ~gold).sum())
    return tp, fp, fn, tn


def f1_bad(predicted_bad, gold_bad):
    """F1 of the BAD class (0 when there is nothing BAD predicted or gold)."""
    tp, fp, fn, _ = confusion(predicted_bad, gold_bad)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def matthews(predicted_bad, gold_bad):
    """Matthews correlation coefficient of the BAD tags (0 when a margin is empty)."""
    tp, fp, fn, tn = confusion(predicted_bad, gold_bad)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def decision_measures(probs, outcomes, gold_bad, threshold):
    """ECE and Brier of probabilities of OK against outcomes, and MCC and F1 of BAD of the
    tags ``probs < threshold`` against ``gold_bad``."""
    predicted_bad = np.asarray(probs, float) < threshold
    return {
        "ece": expected_calibration_error(probs, outcomes),
        "brier": brier(probs, outcomes),
        "mcc": matthews(predicted_bad, gold_bad),
        "f1_bad": f1_bad(predicted_bad, gold_bad),
    }


def bad_threshold(scores, gold_bad, target_precision=None):
    """The threshold ``t`` (items with score < t are BAD) that maximises F1 of BAD on
    ``scores``, or with ``target_precision`` the one of highest BAD recall whose precision
    reaches it (None if none does). Cuts fall between distinct scores, at their midpoint."""
    scores, gold = np.asarray(scores, float), np.asarray(gold_bad, bool)
    order = np.argsort(scores, kind="stable")
    ranked, bad = scores[order], gold[order]
    ends = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]) + 1, len(ranked)]
    tp = np.cumsum(bad)[ends - 1]
    flagged, total_bad = ends, int(gold.sum())
    above = np.r_[ranked[ends[:-1]], math.inf]
    cuts = np.where(
        np.isfinite(above), (ranked[ends - 1] + above) / 2, np.nextafter(ranked[ends - 1], math.inf)
    )
    if target_precision is None:
        f1 = 2 * tp / (flagged + total_bad)
        return float(cuts[int(np.argmax(f1))]) if len(cuts) else RAW_THRESHOLD
    reaching = np.flatnonzero(tp / flagged >= target_precision)
    return float(cuts[reaching[-1]]) if len(reaching) else None


# --- one level's map ----------------------------------------------------------------------------


def features(level, scores):
    """What the maps read: log product floored at LOG_FLOOR (sentence: ``scores`` are log
    products), logit of the clipped score (word)."""
    s = np.asarray(scores, float)
    if level == "sentence":
        return np.maximum(s, LOG_FLOOR)
    s = np.clip(s, LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(s) - np.log1p(-s)


def raw_probabilities(level, x):
    """The uncalibrated probability of OK of each feature value."""
    x = np.asarray(x, float)
    return np.exp(x) if level == "sentence" else 1 / (1 + np.exp(-x))


def check_both_classes(level, gold_bad):
    """A dev set whose gold is all OK (or all BAD, or empty) cannot place a BAD threshold:
    every map of it is constant, and its threshold would tag everything BAD."""
    gold_bad = np.asarray(gold_bad, bool)
    if not len(gold_bad):
        raise QEUserError(f"{level} level: no {level} of this dev set has a finite score and gold")
    if gold_bad.all() or not gold_bad.any():
        tag = "BAD" if gold_bad.all() else "OK"
        raise QEUserError(
            f"{level} level: all {len(gold_bad)} {level}s of this dev set are {tag} by their "
            f"gold, so no OK/BAD threshold can be fitted; calibrate on a dev set with both OK "
            f"and BAD {level}s"
        )


class LevelCalibration:
    """One level's fitted map (``isotonic`` knots or ``platt`` a, b) and BAD threshold."""

    def __init__(self, kind, params, threshold, **info):
        self.kind, self.params, self.threshold, self.info = kind, params, threshold, info

    @classmethod
    def fit(cls, level, kind, x, outcomes, gold_bad, target_precision=None, **info):
        check_both_classes(level, gold_bad)
        if kind == "isotonic":
            xs, ys = isotonic_fit(x, outcomes)
            params = {"x": xs.tolist(), "y": ys.tolist()}
        else:
            a, b = platt_fit(x, outcomes)
            params = {"a": a, "b": b}
        fitted = cls(kind, params, RAW_THRESHOLD, **info)
        threshold = bad_threshold(fitted(x), gold_bad, target_precision)
        if threshold is None:
            raise QEUserError(
                f"{level} level: no threshold reaches BAD precision "
                f"{target_precision:g} on this dev set"
            )
        fitted.threshold = threshold
        fitted.info.update(
            n=int(len(x)),
            target_precision=target_precision,
            before=decision_measures(
                raw_probabilities(level, x), outcomes, gold_bad, RAW_THRESHOLD
            ),
            after=decision_measures(fitted(x), outcomes, gold_bad, threshold),
        )
        return fitted

    def __call__(self, x):
        if self.kind == "isotonic":
            return isotonic_predict(x, self.params["x"], self.params["y"])
        return platt_predict(x, self.params["a"], self.params["b"])

    def to_json(self):
        return {"map": self.kind, **self.params, "threshold": self.threshold, **self.info}


class Calibration:
    """The calibration of one QE method: a :class:`LevelCalibration` per level fitted."""

    def __init__(self, method, levels):
        self.method, self.levels = method, levels

    def to_json(self):
        return {
            "format": FORMAT,
            "version": VERSION,
            "method": self.method,
            **{level: self.levels[level].to_json() for level in LEVELS if level in self.levels},
        }

    def dumps(self):
        return json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n"


def _numbers(value, name, count=None):
    ok = isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )
    if not ok or not value or (count is not None and len(value) != count):
        raise ValueError(
            f"'{name}' is not a list of finite numbers"
            + (" as long as 'x'" if count is not None else "")
        )
    return value


def _number(value, name):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"'{name}' is not a finite number")
    return value


def calibration_from_json(data, methods):
    """A :class:`Calibration` from its JSON object; ValueError naming what is wrong."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f'no "format": "{FORMAT}" in it')
    if data.get("version") != VERSION:
        raise ValueError(f"format version {data.get('version')!r}; this version reads {VERSION}")
    method = data.get("method")
    if method not in methods:
        raise LookupError(
            f"it calibrates the method {method!r}, which this run does not "
            f"score (it scores {', '.join(methods)})"
        )
    levels = {}
    for level in LEVELS:
        entry = data.get(level)
        if entry is None:
            continue
        if not isinstance(entry, dict) or entry.get("map") not in MAPS:
            raise ValueError(f"its {level} level has no map ({' or '.join(MAPS)})")
        info = {k: v for k, v in entry.items() if k not in ("map", "x", "y", "a", "b", "threshold")}
        if entry["map"] == "isotonic":
            xs = _numbers(entry.get("x"), "x")
            params = {"x": xs, "y": _numbers(entry.get("y"), "y", len(xs))}
            if any(b < a for a, b in zip(xs, xs[1:])):
                raise ValueError(f"its {level} knots 'x' are not sorted")
            if any(not 0 <= y <= 1 for y in params["y"]):
                raise ValueError(
                    f"its {level} map values 'y' lie outside [0, 1] (they are probabilities)"
                )
        else:
            params = {"a": _number(entry.get("a"), "a"), "b": _number(entry.get("b"), "b")}
        levels[level] = LevelCalibration(
            entry["map"], params, _number(entry.get("threshold"), "threshold"), **info
        )
    if not levels:
        raise ValueError("it has neither a sentence nor a word level")
    return Calibration(method, levels)


def load_calibration(path, methods, option="--qe-calibration"):
    """The calibration file at ``path`` for one of ``methods``; anything else (unreadable,
    not JSON, another format or version, a method this run does not score) is one
    :class:`QEUserError` line."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except OSError as exc:
        raise QEUserError(f"cannot read {option} {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QEUserError(
            f"{option} {path} is not a calibration file: not JSON ({exc.__class__.__name__})"
        ) from None
    try:
        return calibration_from_json(data, methods)
    except LookupError as exc:
        raise QEUserError(f"{option} {path}: {exc}") from None
    except ValueError as exc:
        raise QEUserError(f"{option} {path} is not a calibration file: {exc}") from None


# --- records ---------------------------------------------------------------------------------


def sentence_log_score(record, method):
    """A record's log product of token scores (from ``sentence_scores`` in files written
    before ``sentence_log_scores`` existed, which held the product)."""
    logs = record.get("sentence_log_scores")
    if isinstance(logs, dict) and method in logs:
        return float(logs[method])
    score = float(record["sentence_scores"][method])
    return math.log(score) if score > 0 else (-math.inf if score == 0 else math.nan)


def error_spans(text, word_bad_probs, tags):
    """XCOMET-style error spans of ``text``: each run of consecutive BAD words as
    ``{start, end, text, confidence}`` (character offsets in ``text``; confidence: the run's
    mean probability of BAD)."""
    spans = word_spans(text)
    if len(spans) != len(tags):
        raise ValueError(f"{len(tags)} word tags for the {len(spans)} words of {text!r}")
    errors, run = [], []
    for index, tag in enumerate(list(tags) + ["OK"]):
        if tag == "BAD":
            run.append(index)
        elif run:
            start, end = spans[run[0]][0], spans[run[-1]][1]
            errors.append(
                {
                    "start": start,
                    "end": end,
                    "text": text[start:end],
                    "confidence": float(np.mean([word_bad_probs[i] for i in run])),
                }
            )
            run = []
    return errors


def tag(prob, threshold):
    return "OK" if math.isfinite(prob) and prob >= threshold else "BAD"


def calibrate_record(record, calibration, text=None):
    """``record`` (a QE record) with its calibrated part added, nothing else changed:
    ``calibrated`` (the method, the sentence's calibrated score and OK/BAD tag, each word's
    calibrated score and tag) and, at word level, ``errors`` (spans of BAD words in ``text``,
    the detokenized hypothesis, by default its pieces' :func:`detokenize`;
    :func:`error_spans`)."""
    method, levels, calibrated = calibration.method, calibration.levels, {}
    calibrated["method"] = method
    if "sentence" in levels:
        x = features("sentence", [sentence_log_score(record, method)])
        prob = float(levels["sentence"](x)[0]) if np.isfinite(x[0]) else math.nan
        calibrated["sentence_score"] = prob
        calibrated["sentence_tag"] = tag(prob, levels["sentence"].threshold)
    errors = None
    if "word" in levels and record.get("word_scores"):
        word = levels["word"]
        probs = word(features("word", record["word_scores"][method])).tolist()
        tags = [tag(p, word.threshold) for p in probs]
        calibrated["word_scores"], calibrated["word_tags"] = probs, tags
        text = detokenize(record["tokens"]) if text is None else text
        errors = error_spans(text, [1 - p for p in probs], tags)
    record["calibrated"] = calibrated
    if errors is not None:
        record["errors"] = errors
    return record


def drop_word_level(record):
    """Leave out the calibrated word level of a record written without word scores."""
    calibrated = record.get("calibrated")
    if calibrated is not None:
        calibrated.pop("word_scores", None)
        calibrated.pop("word_tags", None)
        record.pop("errors", None)
