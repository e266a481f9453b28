"""Sentence-level QE evaluation: predicted sentence scores against gold quality.

    fairseq-sigmoid-qe-evaluate --qe qe.jsonl --references test.de              # chrF gold
    fairseq-sigmoid-qe-evaluate --qe t2.jsonl rand.jsonl --names T2 rand --gold-scores da.txt
    fairseq-sigmoid-qe-evaluate --qe qe.jsonl --gold-labels ok.txt --json --plot plots/
    fairseq-sigmoid-qe-evaluate --qe qe.jsonl --references-tsv refs.tsv            # several refs
    fairseq-sigmoid-qe-evaluate --qe allrefs.jsonl --ambiguity                     # valid refs alike?

Records (JSONL from ``--qe-output``, the raw-text API or the quickstart) are matched to gold by
sample ``id``, the line index of the test set; every key of ``sentence_scores`` is a method.
Per method: Pearson, Spearman, Kendall, PRR, as a decision ECE, Brier, MCC and F1 of BAD
(also of calibrated scores, ``--calibration``, and at word level with word labels) and, for
binary gold, BCE and ROC-AUC. With several references per segment the pseudo-gold is
sacrebleu's multi-reference sentence score (chrF keeps the best-matching reference). ``--ambiguity`` reads QE of force-decoded *valid*
translations (several per source) and reports how alike each method scores them.
"""
import argparse
import json
import logging
import math
import os
import string
import sys

import numpy as np
from scipy import stats

from .calibration import (
    RAW_THRESHOLD, decision_measures, features, load_calibration, sentence_log_score)
from .errors import QEUserError, check_range, install_excepthook
from .textfiles import read_lines
from .words import detokenize

TEXT_FIELDS = ("detokenized", "detok", "text", "translation")
REFERENCE_METRICS = ("chrf", "bleu", "ter")
REFERENCE_KINDS = ("references", "references_tsv")
AMBIGUITY_VALID = 0.5
GOLD_NAMES = {"scores": "gold score", "labels": "gold label", "chrf": "chrF / 100",
              "bleu": "sentence BLEU / 100", "ter": "1 - TER / 100"}
BCE_EPSILON = 1e-7
BAD_BELOW = 0.5
WORD_TAGS = {"OK": 1, "BAD": 0}


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
    return float((ranks[positive].sum() - n_positive * (n_positive + 1) / 2)
                 / (n_positive * n_negative))


def binary_cross_entropy(probs, labels):
    """Mean binary cross-entropy of probabilities (clipped to [1e-7, 1 - 1e-7]) for 0/1 labels."""
    p = np.clip(np.asarray(probs, float), BCE_EPSILON, 1 - BCE_EPSILON)
    y = np.asarray(labels, float)
    if len(y) == 0:
        return math.nan
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _parse_record(line, path, number):
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise QEUserError(f"{path} line {number} is not JSON: {exc.msg}") from None
    if not isinstance(record, dict) or not isinstance(record.get("sentence_scores"), dict):
        raise QEUserError(f"{path} line {number} has no sentence_scores object")
    return record


def load_records(path, all_ranks=False):
    """QE records of a JSONL file sorted by (id, rank); rank 0 only unless ``all_ranks``. A file
    whose records carry no ``id`` (the raw-text command's output) is numbered by line."""
    records = [_parse_record(line, path, number)
               for number, line in enumerate(read_lines(path, "QE file"), 1) if line.strip()]
    with_id = sum("id" in r for r in records)
    if 0 < with_id < len(records):
        raise QEUserError(f"{path}: some records have an id and some do not")
    for index, record in enumerate(records):
        record.setdefault("id", index)
        record.setdefault("rank", 0)
        if not isinstance(record["id"], int) or not isinstance(record["rank"], int):
            raise QEUserError(f"{path}: record {index + 1} has a non-integer id or rank")
    records = sorted((r for r in records if all_ranks or r["rank"] == 0),
                     key=lambda r: (r["id"], r["rank"]))
    if not records:
        raise QEUserError(f"{path} has no QE records" + ("" if all_ranks else " of rank 0"))
    keys = [(r["id"], r["rank"]) for r in records]
    duplicate = next((a for a, b in zip(keys, keys[1:]) if a == b), None)
    if duplicate is not None:
        raise QEUserError(f"{path} has two records for id {duplicate[0]} rank {duplicate[1]}")
    return records


def load_gold(path, kind="scores"):
    """Gold lines (line i = sample id i): floats for ``scores``, 0/1 for ``labels``, raw text
    for ``references``, a list of references for ``references_tsv`` (tab-separated)."""
    what = {"scores": "gold scores", "labels": "gold labels", "references": "references",
            "references_tsv": "references"}[kind]
    lines = read_lines(path, what)
    if kind == "references":
        return lines
    if kind == "references_tsv":
        return [reference_list(line, path, number) for number, line in enumerate(lines, 1)]
    values = []
    for number, line in enumerate(lines, 1):
        try:
            values.append(float(line))
        except ValueError:
            raise QEUserError(f"{path} line {number}: {line!r} is not a number") from None
        if kind == "labels" and values[-1] not in (0.0, 1.0):
            raise QEUserError(f"{path} line {number}: gold label {line!r} is not 0 or 1")
    return values


def reference_list(line, path, number):
    """The non-empty tab-separated references of one TSV line (at least one)."""
    references = [part for part in line.split("\t") if part.strip()]
    if not references:
        raise QEUserError(f"{path} line {number} has no reference")
    return references


def load_references(paths):
    """References per segment from one file per reference set (aligned lines, an empty line:
    no reference from that file), as lists."""
    sets = [load_gold(path, "references") for path in paths]
    if len({len(lines) for lines in sets}) != 1:
        counts = ", ".join(f"{p}: {len(lines)}" for p, lines in zip(paths, sets))
        raise QEUserError(f"--references files differ in length ({counts})")
    segments = [[ref for ref in refs if ref.strip()] for refs in zip(*sets)]
    empty = next((i for i, refs in enumerate(segments) if not refs), None)
    if empty is not None:
        raise QEUserError(f"line {empty + 1} has no reference in any --references file")
    return segments


def hypothesis_text(record):
    """Detokenized hypothesis of a record: its first text field (``detokenized`` as in D- lines,
    ``detok``, ``text``, ``translation``), else its ``hypothesis`` or ``tokens`` detokenized."""
    for field in TEXT_FIELDS:
        if isinstance(record.get(field), str):
            return record[field]
    if isinstance(record.get("hypothesis"), str):
        return detokenize(record["hypothesis"].split())
    if isinstance(record.get("tokens"), list):
        return detokenize(record["tokens"])
    raise QEUserError(f"QE record id {record['id']} has no hypothesis text for --references")


def sentence_quality(hypothesis, references, metric="chrf"):
    """sacrebleu sentence score against one reference (a string) or several (a list), scaled
    to 0..1, higher = better: chrF / 100 (several: the best-matching reference), BLEU / 100
    (effective order; several: clipped counts over all) or 1 - TER / 100 clipped at 0 (several:
    the fewest edits)."""
    import sacrebleu

    references = [references] if isinstance(references, str) else list(references)
    if metric == "chrf":
        return sacrebleu.sentence_chrf(hypothesis, references).score / 100
    if metric == "bleu":
        bleu = sacrebleu.sentence_bleu(hypothesis, references, use_effective_order=True)
        return bleu.score / 100
    if metric == "ter":
        return max(0.0, 1 - sacrebleu.sentence_ter(hypothesis, references).score / 100)
    raise ValueError(f"unknown metric {metric!r}: {', '.join(REFERENCE_METRICS)}")


def match_gold(records, gold, source):
    """The gold line of each record by its sample id; every id needs one and every line an id."""
    ids = sorted({r["id"] for r in records})
    missing = [i for i in ids if not 0 <= i < len(gold)]
    if missing:
        raise QEUserError(f"QE record id {missing[0]} has no line in {source} "
                          f"({len(gold)} lines)")
    if len(ids) != len(gold):
        raise QEUserError(f"{source} has {len(gold)} lines but the QE file {len(ids)} "
                          "sentences: give the gold of the same test set")
    return [gold[r["id"]] for r in records]


def gold_values(records, gold, kind="scores", metric="chrf", source="gold"):
    """One gold quality per record: its sentence's gold line, or for ``references`` the
    sacrebleu ``metric`` of its own hypothesis against its sentence's reference."""
    matched = match_gold(records, gold, source)
    if kind not in REFERENCE_KINDS:
        return np.asarray(matched, float)
    return np.array([sentence_quality(hypothesis_text(r), ref, metric)
                     for r, ref in zip(records, matched)])


def reference_word_labels(hypothesis, references):
    """Proxy word labels of a hypothesis: 1 (OK) for each word that occurs in its
    best-matching reference (highest sentence chrF), else 0 (BAD); words are compared
    without the punctuation at their ends (a proxy: a valid word the reference did not use,
    or a word in the wrong place, is not judged as a human would)."""
    references = [references] if isinstance(references, str) else list(references)
    best = max(references, key=lambda ref: sentence_quality(hypothesis, ref))

    def bare(word):
        return word.strip(string.punctuation + "„“”‚‘’«»–—…") or word

    vocabulary = {bare(word) for word in best.split()}
    return [int(bare(word) in vocabulary) for word in hypothesis.split()]


def load_word_labels(path):
    """Word labels, a line per sentence (line i = sample id i) of whitespace-separated OK/BAD
    tags, one per word of its hypothesis (WMT word-level QE without gap tags), as 1/0."""
    labels = []
    for number, line in enumerate(read_lines(path, "word labels"), 1):
        tags = line.split()
        wrong = next((t for t in tags if t not in WORD_TAGS), None)
        if wrong is not None:
            raise QEUserError(f"{path} line {number}: word label {wrong!r} is not OK or BAD")
        labels.append([WORD_TAGS[t] for t in tags])
    return labels


def record_word_scores(record, method):
    words = record.get("word_scores")
    if not isinstance(words, dict) or not isinstance(words.get(method), list):
        raise QEUserError(f"QE record id {record['id']} has no {method} word_scores (they are "
                          "written with --post-process or --bpe)")
    return words[method]


def word_text(record):
    """The text whose words the word scores are: the record's pieces detokenized by the one
    detokenizer (a hypothesis of pieces none of which starts a word is taken as words, as its
    word scores are), else its hypothesis text."""
    if isinstance(record.get("tokens"), list):
        return detokenize(record["tokens"])
    return hypothesis_text(record)


def word_gold(records, labels=None, references=None, source="word labels"):
    """Per record its words' 0/1 labels: the line of ``labels`` of its sample id, or
    :func:`reference_word_labels` against its ``references``; each as long as its word
    scores."""
    if labels is not None:
        matched = match_gold(records, labels, source)
    else:
        matched = [reference_word_labels(word_text(r), refs)
                   for r, refs in zip(records, match_gold(records, references, source))]
    method = method_names(records)[0]
    for record, tags in zip(records, matched):
        words = len(record_word_scores(record, method))
        if len(tags) != words:
            raise QEUserError(f"QE record id {record['id']} has {words} words but {len(tags)} "
                              f"word labels in {source}")
    return matched


def word_rows(records, gold, label=None, calibrations=()):
    """Word-level rows: per method (raw word scores, tagged BAD below 0.5) and per word
    calibration (``METHOD+calibrated``), the number of words, ECE, Brier, MCC and F1 of BAD,
    and ROC-AUC of OK words."""
    outcomes = np.array([tag for tags in gold for tag in tags], float)
    entries = [(method, method, lambda scores: scores, RAW_THRESHOLD)
               for method in method_names(records)]
    entries += [(f"{c.method}+calibrated", c.method,
                 lambda scores, level=c.levels["word"]: level(features("word", scores)),
                 c.levels["word"].threshold) for c in calibrations if "word" in c.levels]
    rows = []
    for name, method, transform, threshold in entries:
        scores = np.array([s for r in records for s in record_word_scores(r, method)], float)
        probs = transform(scores)
        rows.append({"method": f"{label}/{name}" if label else name, "n": int(len(outcomes)),
                     **decision_measures(probs, outcomes, outcomes == 0, threshold),
                     "roc_auc": roc_auc(probs, outcomes)})
    return rows


def method_names(records):
    """Methods (``sentence_scores`` keys) in order of first appearance."""
    return list(dict.fromkeys(m for r in records for m in r["sentence_scores"]))


def method_scores(records, method):
    scores = []
    for record in records:
        value = record["sentence_scores"].get(method)
        if value is not None and not isinstance(value, (int, float)):
            raise QEUserError(f"QE record id {record['id']}: {method} score {value!r} "
                              "is not a number")
        scores.append(math.nan if value is None else value)
    return np.asarray(scores, float)


def method_pairs(records, gold, label=None, calibrations=()):
    """(method label, predicted, gold, dropped, BAD threshold) per method, and per sentence
    calibration (``METHOD+calibrated``: calibrated scores, the calibration's threshold): the
    pairs whose score and gold are both finite, and how many are not (NaN: e.g. an empty
    hypothesis); a method without one finite pair is an error."""
    gold = np.asarray(gold, float)
    entries = [(method, method_scores(records, method), RAW_THRESHOLD)
               for method in method_names(records)]
    for calibration in calibrations:
        level = calibration.levels.get("sentence")
        if level is not None:
            x = features("sentence", [sentence_log_score(r, calibration.method)
                                      for r in records])
            predicted = np.where(np.isfinite(x), level(np.nan_to_num(x)), math.nan)
            entries.append((f"{calibration.method}+calibrated", predicted, level.threshold))
    for method, predicted, threshold in entries:
        name = f"{label}/{method}" if label else method
        finite = np.isfinite(predicted) & np.isfinite(gold)
        if not finite.any():
            raise QEUserError(f"method {name}: none of its {len(gold)} sentences has a finite "
                              "score and gold value (all NaN or infinite)")
        yield name, predicted[finite], gold[finite], int((~finite).sum()), threshold


def evaluate_method(predicted, gold, binary=False, bad_below=BAD_BELOW,
                    threshold=RAW_THRESHOLD):
    """Metrics of one method's scores against gold (aligned arrays): correlations, PRR, and
    as a decision (gold below ``bad_below`` is BAD, a score below ``threshold`` is tagged BAD)
    ECE, Brier, MCC and F1 of BAD."""
    row = {"n": int(len(gold)), "pearson": pearson(predicted, gold),
           "spearman": spearman(predicted, gold), "kendall": kendall(predicted, gold),
           "prr": prediction_rejection_ratio(predicted, gold)}
    if binary:
        row["bce"] = binary_cross_entropy(predicted, gold)
        row["roc_auc"] = roc_auc(predicted, gold)
    gold = np.asarray(gold, float)
    return {**row, **decision_measures(predicted, gold, gold < bad_below, threshold)}


def rows_of_pairs(pairs, binary=False, bad_below=BAD_BELOW):
    """One row per :func:`method_pairs` entry: its measures and its dropped count."""
    return [{"method": name, **evaluate_method(predicted, quality, binary, bad_below, threshold),
             "dropped": dropped}
            for name, predicted, quality, dropped, threshold in pairs]


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
        lines.append(f"{row['method']:<{width}}" + "".join(
            cell(row[k], w) for k, w in zip(columns, widths)))
    return "\n".join(lines)


def pyplot(option="--plot"):
    """matplotlib's pyplot drawing to files (Agg), or one error line naming ``option``."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        import matplotlib
    except ImportError:
        raise QEUserError(f"{option} needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, figure, path, option="--plot"):
    """Write ``figure`` to ``path`` (its folder made), closing it; one error line if it
    cannot be written."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise QEUserError(f"cannot write {option} {path}: {exc.strerror}") from exc
    finally:
        plt.close(figure)
    return path


def plot_scatter(panels, directory, gold_name="gold"):
    """Figure-2-style scatter plots, gold on x and predicted QE on y, one panel per
    (label, predicted, gold) entry, written to ``directory/scatter.png``; returns the paths."""
    plt = pyplot()
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.6 * rows), squeeze=False)
    for axis, (label, predicted, gold) in zip(axes.flat, panels):
        axis.scatter(gold, predicted, s=8, alpha=0.5, edgecolors="none")
        axis.set_title(f"{label} (Pearson {pearson(predicted, gold):.3f})", fontsize=10)
        axis.set_xlabel(gold_name)
        axis.set_ylabel("predicted QE")
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    figure.tight_layout()
    return [save_figure(plt, figure, os.path.join(directory, "scatter.png"))]


def group_records(records, groups=None):
    """Records grouped by source: by line ``id`` of ``groups`` (one key per sample id) if
    given, else by each record's ``source`` text; groups of one record are left out."""
    grouped = {}
    for record in records:
        if groups is not None:
            if not 0 <= record["id"] < len(groups):
                raise QEUserError(f"QE record id {record['id']} has no line in --groups "
                                  f"({len(groups)} lines)")
            key = groups[record["id"]]
        elif isinstance(record.get("source"), str):
            key = record["source"]
        else:
            raise QEUserError(f"QE record id {record['id']} has no source text: give --groups")
        grouped.setdefault(key, []).append(record)
    return [members for members in grouped.values() if len(members) > 1]


def ambiguity_row(groups, method, valid_threshold=AMBIGUITY_VALID):
    """How alike one method scores the valid translations of each source: mean over sources
    of min/max sentence score (1 = all alike; a source whose scores are all 0 counts as 1),
    mean score of the translations, and the share scoring at least ``valid_threshold``."""
    ratios, scores = [], []
    for members in groups:
        values = method_scores(members, method)
        if not np.isfinite(values).all():
            continue
        scores.extend(values)
        top = values.max()
        ratios.append(values.min() / top if top > 0 else 1.0)
    scores = np.asarray(scores, float)
    return {"method": method, "sources": len(ratios), "translations": int(scores.size),
            "min_max_ratio": float(np.mean(ratios)) if ratios else math.nan,
            "mean_score": float(scores.mean()) if scores.size else math.nan,
            f"share_ge_{valid_threshold:g}": float((scores >= valid_threshold).mean())
            if scores.size else math.nan}


def ambiguity_report(records, groups=None, label=None):
    """:func:`ambiguity_row` per method of QE records of force-decoded valid translations."""
    grouped = group_records(records, groups)
    if not grouped:
        raise QEUserError("--ambiguity needs sources with two or more translations")
    return [{**ambiguity_row(grouped, method),
             "method": f"{label}/{method}" if label else method}
            for method in method_names(records)]


def _json_safe(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def add_gold_arguments(parser):
    """The gold options of the evaluator and of ``fairseq-sigmoid-qe calibrate``."""
    parser.add_argument("--gold-scores", metavar="FILE",
                        help="continuous gold (in [0, 1] for ECE and Brier), one per line")
    parser.add_argument("--gold-labels", metavar="FILE", help="binary 0/1 gold, one per line")
    parser.add_argument("--references", nargs="+", metavar="FILE",
                        help="reference translations, one per line (several files: several "
                        "references per segment): sentence-level pseudo-gold from --metric")
    parser.add_argument("--references-tsv", metavar="FILE",
                        help="several references per segment, tab-separated on its line")
    parser.add_argument("--metric", choices=REFERENCE_METRICS, default=None,
                        help="pseudo-gold with --references: chrF/100 (default), sentence BLEU/100 "
                        "(effective order) or 1 - TER/100 clipped at 0")
    parser.add_argument("--bad-below", type=float, default=BAD_BELOW,
                        help="a sentence whose gold is below this is BAD (labels: 0 is BAD)")
    parser.add_argument("--word-labels", metavar="FILE",
                        help="word-level gold: a line per sentence of OK/BAD tags, one per word "
                        "of its hypothesis")
    parser.add_argument("--reference-word-labels", action="store_true",
                        help="word-level gold from the references: a word is OK if it occurs in "
                        "the best-matching reference (a proxy)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe-evaluate",
        description="Correlation (Pearson, Spearman, Kendall), PRR, ECE, Brier, MCC and F1 of "
        "BAD and, for binary gold, BCE and ROC-AUC of sentence QE scores against gold quality; "
        "with word labels, word-level ECE, Brier, MCC, F1 of BAD and ROC-AUC.")
    parser.add_argument("--qe", nargs="+", required=True, metavar="FILE.jsonl",
                        help="QE records (fairseq-generate --qe-output, fairseq-sigmoid-qe)")
    parser.add_argument("--names", nargs="+", help="a label per --qe file: methods become "
                        "LABEL/method (default: the file names when several)")
    add_gold_arguments(parser)
    parser.add_argument("--ambiguity", action="store_true",
                        help="--qe holds force-decoded valid translations, several per source: "
                        "report per method the mean min/max score over each source's "
                        "translations, their mean score and the share scoring >= 0.5")
    parser.add_argument("--groups", metavar="FILE",
                        help="with --ambiguity: one source key per line (line i = sample id i); "
                        "default: records grouped by their source text")
    parser.add_argument("--all-ranks", action="store_true",
                        help="evaluate every hypothesis of the n-best lists (needs --references)")
    parser.add_argument("--calibration", nargs="+", default=[], metavar="FILE.json",
                        help="also rate each method calibrated by these files (fairseq-sigmoid-qe "
                        "calibrate) as METHOD+calibrated, tagged BAD below its threshold")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="DIR", help="write DIR/scatter.png (needs matplotlib)")
    return parser.parse_args(argv)


def gold_source(args):
    """(kind, path or paths) of the one gold flag given."""
    given = [(kind, path) for kind, path in (("scores", args.gold_scores),
                                             ("labels", args.gold_labels),
                                             ("references", args.references),
                                             ("references_tsv", args.references_tsv)) if path]
    if len(given) != 1:
        raise QEUserError("give exactly one of --gold-scores, --gold-labels, --references, "
                          "--references-tsv")
    kind = given[0][0]
    if args.metric and kind not in REFERENCE_KINDS:
        raise QEUserError("--metric needs --references")
    if args.all_ranks and kind not in REFERENCE_KINDS:
        raise QEUserError("--all-ranks needs --references (gold scores and labels are per "
                          "sentence, not per hypothesis)")
    return given[0]


def labelled_files(args):
    """(label or None, path) per --qe file."""
    if args.names is None:
        if len(args.qe) == 1:
            return [(None, args.qe[0])]
        names = [os.path.splitext(os.path.basename(p))[0] for p in args.qe]
        if len(set(names)) != len(names):
            raise QEUserError("--qe files share a name: label them with --names")
        return list(zip(names, args.qe))
    if len(args.names) != len(args.qe) or len(set(args.names)) != len(args.names):
        raise QEUserError(f"--names needs {len(args.qe)} distinct labels, one per --qe file")
    return list(zip(args.names, args.qe))


def word_gold_source(args, kind, gold, path):
    """The keyword arguments of :func:`word_gold` for ``--word-labels`` or
    ``--reference-word-labels`` (None without either)."""
    if args.word_labels and args.reference_word_labels:
        raise QEUserError("give one of --word-labels and --reference-word-labels")
    if args.word_labels:
        return {"labels": load_word_labels(args.word_labels), "source": args.word_labels}
    if args.reference_word_labels:
        if kind not in REFERENCE_KINDS:
            raise QEUserError("--reference-word-labels needs --references or --references-tsv")
        return {"references": gold, "source": f"words of the best-matching reference ({path})"}
    return None


def load_gold_source(kind, path):
    if kind == "references":
        return load_references(path), ", ".join(path)
    return load_gold(path, kind), path


def run_ambiguity(args):
    """The ambiguity report of every --qe file."""
    given = [flag for flag, value in (("--gold-scores", args.gold_scores),
                                      ("--gold-labels", args.gold_labels),
                                      ("--references", args.references),
                                      ("--references-tsv", args.references_tsv),
                                      ("--metric", args.metric), ("--plot", args.plot),
                                      ("--all-ranks", args.all_ranks),
                                      ("--calibration", args.calibration),
                                      ("--word-labels", args.word_labels),
                                      ("--reference-word-labels", args.reference_word_labels))
             if value]
    if given:
        raise QEUserError(f"--ambiguity takes no {given[0]}: it compares the scores of several "
                          "valid translations of one source")
    groups = read_lines(args.groups, "groups file") if args.groups else None
    rows = []
    for label, qe_path in labelled_files(args):
        rows += ambiguity_report(load_records(qe_path), groups, label)
    return {"report": "ambiguity", "groups_file": args.groups, "methods": rows}


def run(args):
    """Evaluate every --qe file; returns the result object printed by ``--json``."""
    if args.ambiguity:
        return run_ambiguity(args)
    if args.groups:
        raise QEUserError("--groups needs --ambiguity")
    kind, path = gold_source(args)
    metric = (args.metric or "chrf") if kind in REFERENCE_KINDS else None
    gold, path = load_gold_source(kind, path)
    word_source = word_gold_source(args, kind, gold, path)
    check_range("--bad-below", args.bad_below)
    rows, panels, words = [], [], []
    for label, qe_path in labelled_files(args):
        records = load_records(qe_path, args.all_ranks)
        calibrations = [load_calibration(c, method_names(records), "--calibration")
                        for c in args.calibration]
        quality = gold_values(records, gold, kind, metric, source=path)
        pairs = list(method_pairs(records, quality, label, calibrations))
        rows += rows_of_pairs(pairs, kind == "labels", args.bad_below)
        panels += [pair[:3] for pair in pairs]
        if word_source is not None:
            words += word_rows(records, word_gold(records, **word_source), label, calibrations)
    if not rows:
        raise QEUserError("the QE records have no sentence_scores methods")
    result = {"gold": kind, "gold_file": path, "metric": metric, "bad_below": args.bad_below,
              "methods": rows}
    if word_source is not None:
        result["word_gold"] = word_source["source"]
        result["word_methods"] = words
    if args.plot:
        result["plots"] = plot_scatter(panels, args.plot, GOLD_NAMES[metric or kind])
    return result


def warn_dropped(rows, stream=sys.stderr):
    """One warning line per method that lost sentences to a non-finite score or gold."""
    for row in rows:
        if row.get("dropped"):
            stream.write(f"fairseq-sigmoid-qe-evaluate: warning: {row['method']}: "
                         f"{row['dropped']} of {row['n'] + row['dropped']} sentences left out "
                         "(NaN or infinite score or gold)\n")


def main(argv=None):
    install_excepthook()
    args = parse_args(argv)
    result = run(args)
    warn_dropped(result["methods"])
    if args.json:
        tables = {key: [{k: _json_safe(v) for k, v in row.items()} for row in result[key]]
                  for key in ("methods", "word_methods") if key in result}
        print(json.dumps({**result, **tables}, indent=2))
        return 0
    if result.get("report") == "ambiguity":
        print("QE of valid translations, several per source (min/max: 1 = scored alike)")
        print(format_table(result["methods"]))
        return 0
    print(f"QE vs {GOLD_NAMES[result['metric'] or result['gold']]} ({result['gold_file']})")
    print(format_table(result["methods"]))
    if "word_methods" in result:
        print(f"\nword-level QE vs {result['word_gold']} (BAD: a score below the threshold)")
        print(format_table(result["word_methods"]))
    for path in result.get("plots", []):
        print(f"plot: {path}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
