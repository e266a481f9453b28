"""Sentence-level QE evaluation: predicted sentence scores against gold quality.

    fairseq-sigmoid-qe-evaluate --qe qe.jsonl --references test.de              # chrF gold
    fairseq-sigmoid-qe-evaluate --qe t2.jsonl rand.jsonl --names T2 rand --gold-scores da.txt
    fairseq-sigmoid-qe-evaluate --qe qe.jsonl --gold-labels ok.txt --json --plot plots/

Records (JSONL from ``--qe-output``, the raw-text API or the quickstart) are matched to gold by
sample ``id``, the line index of the test set; every key of ``sentence_scores`` is a method.
Per method: Pearson, Spearman, Kendall, PRR and, for binary gold, BCE and ROC-AUC.
"""
import argparse
import json
import logging
import math
import os
import sys

import numpy as np
from scipy import stats

from .errors import QEUserError, install_excepthook
from .textfiles import read_lines
from .words import detokenize

TEXT_FIELDS = ("detokenized", "detok", "text", "translation")
REFERENCE_METRICS = ("chrf", "bleu", "ter")
GOLD_NAMES = {"scores": "gold score", "labels": "gold label", "chrf": "chrF / 100",
              "bleu": "sentence BLEU / 100", "ter": "1 - TER / 100"}
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
    for ``references``."""
    what = {"scores": "gold scores", "labels": "gold labels", "references": "references"}[kind]
    lines = read_lines(path, what)
    if kind == "references":
        return lines
    values = []
    for number, line in enumerate(lines, 1):
        try:
            values.append(float(line))
        except ValueError:
            raise QEUserError(f"{path} line {number}: {line!r} is not a number") from None
        if kind == "labels" and values[-1] not in (0.0, 1.0):
            raise QEUserError(f"{path} line {number}: gold label {line!r} is not 0 or 1")
    return values


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


def sentence_quality(hypothesis, reference, metric="chrf"):
    """sacrebleu sentence score scaled to 0..1, higher = better: chrF / 100, BLEU / 100
    (effective order) or 1 - TER / 100 clipped at 0."""
    import sacrebleu

    if metric == "chrf":
        return sacrebleu.sentence_chrf(hypothesis, [reference]).score / 100
    if metric == "bleu":
        bleu = sacrebleu.sentence_bleu(hypothesis, [reference], use_effective_order=True)
        return bleu.score / 100
    if metric == "ter":
        return max(0.0, 1 - sacrebleu.sentence_ter(hypothesis, [reference]).score / 100)
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
    if kind != "references":
        return np.asarray(matched, float)
    return np.array([sentence_quality(hypothesis_text(r), ref, metric)
                     for r, ref in zip(records, matched)])


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


def method_pairs(records, gold, label=None):
    """(method label, predicted, gold) per method, pairs with a non-finite value dropped."""
    gold = np.asarray(gold, float)
    for method in method_names(records):
        predicted = method_scores(records, method)
        finite = np.isfinite(predicted) & np.isfinite(gold)
        yield (f"{label}/{method}" if label else method), predicted[finite], gold[finite]


def evaluate_method(predicted, gold, binary=False):
    """Metrics of one method's scores against gold (aligned arrays)."""
    row = {"n": int(len(gold)), "pearson": pearson(predicted, gold),
           "spearman": spearman(predicted, gold), "kendall": kendall(predicted, gold),
           "prr": prediction_rejection_ratio(predicted, gold)}
    if binary:
        row["bce"] = binary_cross_entropy(predicted, gold)
        row["roc_auc"] = roc_auc(predicted, gold)
    return row


def evaluate_methods(records, gold, binary=False, label=None):
    """One row per method of ``records`` against ``gold`` (one value per record)."""
    return [{"method": name, **evaluate_method(predicted, quality, binary)}
            for name, predicted, quality in method_pairs(records, gold, label)]


def format_table(rows):
    """Rows as a fixed-width table, metrics with 3 decimals."""
    metrics = [k for k in rows[0] if k not in ("method", "n")]
    width = max(len("method"), *(len(r["method"]) for r in rows))
    lines = [f"{'method':<{width}} {'n':>6}" + "".join(f" {m:>8}" for m in metrics)]
    for row in rows:
        lines.append(f"{row['method']:<{width}} {row['n']:>6}"
                     + "".join(f" {row[m]:>8.3f}" for m in metrics))
    return "\n".join(lines)


def plot_scatter(panels, directory, gold_name="gold"):
    """Figure-2-style scatter plots, gold on x and predicted QE on y, one panel per
    (label, predicted, gold) entry, written to ``directory/scatter.png``; returns the paths."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        import matplotlib
    except ImportError:
        raise QEUserError("--plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    try:
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "scatter.png")
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise QEUserError(f"cannot write plots to {directory}: {exc.strerror}") from exc
    finally:
        plt.close(figure)
    return [path]


def _json_safe(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe-evaluate",
        description="Correlation (Pearson, Spearman, Kendall), PRR and, for binary gold, BCE "
        "and ROC-AUC of sentence QE scores against gold quality.")
    parser.add_argument("--qe", nargs="+", required=True, metavar="FILE.jsonl",
                        help="QE records (fairseq-generate --qe-output, fairseq-sigmoid-qe)")
    parser.add_argument("--names", nargs="+", help="a label per --qe file: methods become "
                        "LABEL/method (default: the file names when several)")
    parser.add_argument("--gold-scores", metavar="FILE", help="continuous gold, one per line")
    parser.add_argument("--gold-labels", metavar="FILE", help="binary 0/1 gold, one per line")
    parser.add_argument("--references", metavar="FILE",
                        help="reference translations: sentence-level pseudo-gold from --metric")
    parser.add_argument("--metric", choices=REFERENCE_METRICS, default=None,
                        help="pseudo-gold with --references: chrF/100 (default), sentence BLEU/100 "
                        "(effective order) or 1 - TER/100 clipped at 0")
    parser.add_argument("--all-ranks", action="store_true",
                        help="evaluate every hypothesis of the n-best lists (needs --references)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="DIR", help="write DIR/scatter.png (needs matplotlib)")
    return parser.parse_args(argv)


def gold_source(args):
    """(kind, path) of the one gold flag given."""
    given = [(kind, path) for kind, path in (("scores", args.gold_scores),
                                             ("labels", args.gold_labels),
                                             ("references", args.references)) if path]
    if len(given) != 1:
        raise QEUserError("give exactly one of --gold-scores, --gold-labels, --references")
    kind = given[0][0]
    if args.metric and kind != "references":
        raise QEUserError("--metric needs --references")
    if args.all_ranks and kind != "references":
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


def run(args):
    """Evaluate every --qe file; returns the result object printed by ``--json``."""
    kind, path = gold_source(args)
    metric = (args.metric or "chrf") if kind == "references" else None
    gold = load_gold(path, kind)
    rows, panels = [], []
    for label, qe_path in labelled_files(args):
        records = load_records(qe_path, args.all_ranks)
        quality = gold_values(records, gold, kind, metric, source=path)
        rows += evaluate_methods(records, quality, binary=kind == "labels", label=label)
        panels += list(method_pairs(records, quality, label))
    if not rows:
        raise QEUserError("the QE records have no sentence_scores methods")
    result = {"gold": kind, "gold_file": path, "metric": metric, "methods": rows}
    if args.plot:
        result["plots"] = plot_scatter(panels, args.plot, GOLD_NAMES[metric or kind])
    return result


def main(argv=None):
    install_excepthook()
    args = parse_args(argv)
    result = run(args)
    if args.json:
        rows = [{k: _json_safe(v) for k, v in row.items()} for row in result["methods"]]
        print(json.dumps({**result, "methods": rows}, indent=2))
        return 0
    print(f"QE vs {GOLD_NAMES[result['metric'] or result['gold']]} ({result['gold_file']})")
    print(format_table(result["methods"]))
    for path in result.get("plots", []):
        print(f"plot: {path}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
