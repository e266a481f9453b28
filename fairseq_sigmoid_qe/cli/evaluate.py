"""``fairseq-sigmoid-qe evaluate``: predicted sentence scores against gold quality.

    fairseq-sigmoid-qe evaluate --qe qe.jsonl --references test.de              # chrF gold
    fairseq-sigmoid-qe evaluate --qe t2.jsonl rand.jsonl --names T2 rand --gold-scores da.txt
    fairseq-sigmoid-qe evaluate --qe qe.jsonl --gold-labels ok.txt --json --plot plots/
    fairseq-sigmoid-qe evaluate --qe qe.jsonl --gold-json xcomet.json     # comet-score --to_json
    fairseq-sigmoid-qe evaluate --qe qe.jsonl --references-tsv refs.tsv            # several refs
    fairseq-sigmoid-qe evaluate --qe allrefs.jsonl --ambiguity                 # valid refs alike?

Records (JSONL from ``--qe-output``, the raw-text API or the quickstart) are matched to gold by
sample ``id``, the line index of the test set; every key of ``sentence_scores`` is a method.
Per method: Pearson, Spearman, Kendall, PRR, as a decision ECE, Brier, MCC and F1 of BAD
(also of calibrated scores, ``--calibration``, and at word level with word labels) and, for
binary gold, BCE and ROC-AUC. With several references per segment the pseudo-gold is
sacrebleu's multi-reference sentence score (chrF keeps the best-matching reference).
``--ambiguity`` reads QE of force-decoded *valid* translations (several per source) and
reports how alike each method scores them.
"""

import argparse
import json
import os
import sys

from ..core.errors import QEUserError, check_range, install_excepthook, program, set_command
from ..core.textfiles import read_lines
from ..evaluation.ambiguity import ambiguity_report
from ..evaluation.calibration import load_calibration
from ..evaluation.gold import GOLD_NAMES, REFERENCE_KINDS, gold_values, word_gold
from ..evaluation.plots import plot_scatter
from ..evaluation.records import AGGREGATES, load_records, method_names
from ..evaluation.report import (
    Uncertainty,
    format_table,
    json_safe,
    method_pairs,
    rows_of_pairs,
    word_rows,
)
from .gold_options import add_gold_arguments, gold_source, load_gold_source, word_gold_source
from .help_format import DefaultsHelpFormatter


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe evaluate",
        formatter_class=DefaultsHelpFormatter,
        description="Correlation (Pearson, Spearman, Kendall), PRR, ECE, Brier, MCC and F1 of "
        "BAD and, for binary gold, BCE and ROC-AUC of sentence QE scores against gold quality; "
        "with word labels, word-level ECE, Brier, MCC, F1 of BAD and ROC-AUC.",
    )
    parser.add_argument(
        "--qe",
        nargs="+",
        required=True,
        metavar="FILE.jsonl",
        help="QE records (fairseq-generate --qe-output, fairseq-sigmoid-qe)",
    )
    parser.add_argument(
        "--names",
        nargs="+",
        help="a label per --qe file: methods become "
        "LABEL/method (default: the file names when several)",
    )
    add_gold_arguments(parser)
    parser.add_argument(
        "--ambiguity",
        action="store_true",
        help="--qe holds force-decoded valid translations, several per source: "
        "report per method the mean min/max score over each source's "
        "translations, their mean score and the share scoring >= 0.5",
    )
    parser.add_argument(
        "--groups",
        metavar="FILE",
        help="with --ambiguity: one source key per line (line i = sample id i); "
        "default: records grouped by their source text",
    )
    parser.add_argument(
        "--all-ranks",
        action="store_true",
        help="evaluate every hypothesis of the n-best lists (needs --references)",
    )
    parser.add_argument(
        "--calibration",
        nargs="+",
        default=[],
        metavar="FILE.json",
        help="also rate each method calibrated by these files (fairseq-sigmoid-qe "
        "calibrate) as METHOD+calibrated, tagged BAD below its threshold",
    )
    parser.add_argument(
        "--aggregate",
        choices=AGGREGATES,
        default="record",
        help="sentence scores: as the records give them, or recomputed from their token "
        "scores as the product (the paper's) or the geometric mean (default: %(default)s)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="resamples of the 95%% bootstrap intervals and the paired test (0: none; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the bootstrap (default: %(default)s)"
    )
    parser.add_argument(
        "--length-bins",
        type=int,
        default=4,
        metavar="B",
        help="length bins of the within-bin correlation (default: %(default)s)",
    )
    parser.add_argument(
        "--compare",
        metavar="METHOD",
        help="paired bootstrap test of every method against METHOD (a name of the table, "
        "e.g. boostedprob or LABEL/boostedprob): Δ Pearson, its interval, share_better",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="DIR", help="write DIR/scatter.png (needs matplotlib)")
    return parser.parse_args(argv)


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


def run_ambiguity(args):
    """The ambiguity report of every --qe file."""
    given = [
        flag
        for flag, value in (
            ("--gold-scores", args.gold_scores),
            ("--gold-json", args.gold_json),
            ("--gold-labels", args.gold_labels),
            ("--references", args.references),
            ("--references-tsv", args.references_tsv),
            ("--metric", args.metric),
            ("--plot", args.plot),
            ("--all-ranks", args.all_ranks),
            ("--calibration", args.calibration),
            ("--word-labels", args.word_labels),
            ("--reference-word-labels", args.reference_word_labels),
        )
        if value
    ]
    if given:
        raise QEUserError(
            f"--ambiguity takes no {given[0]}: it compares the scores of several "
            "valid translations of one source"
        )
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
    check_range("--bootstrap", args.bootstrap, low=0)
    check_range("--length-bins", args.length_bins, low=1)
    if args.compare and args.bootstrap == 0:
        raise QEUserError("--compare needs --bootstrap N with N >= 1")
    uncertainty = Uncertainty(args.bootstrap, args.seed, args.length_bins, args.compare)
    rows, panels, words, pairs = [], [], [], []
    for label, qe_path in labelled_files(args):
        records = load_records(qe_path, args.all_ranks)
        calibrations = [
            load_calibration(c, method_names(records), "--calibration") for c in args.calibration
        ]
        quality = gold_values(records, gold, kind, metric, source=path)
        pairs += method_pairs(records, quality, label, calibrations, args.aggregate)
        if word_source is not None:
            words += word_rows(records, word_gold(records, **word_source), label, calibrations)
    rows = rows_of_pairs(pairs, kind == "labels", args.bad_below, uncertainty)
    panels = [pair[:3] for pair in pairs]
    if not rows:
        raise QEUserError("the QE records have no sentence_scores methods")
    result = {
        "gold": kind,
        "gold_file": path,
        "metric": metric,
        "bad_below": args.bad_below,
        "aggregate": args.aggregate,
        "bootstrap": {"resamples": args.bootstrap, "seed": args.seed, "level": 0.95},
        "methods": rows,
    }
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
            stream.write(
                f"{program()}: warning: {row['method']}: "
                f"{row['dropped']} of {row['n'] + row['dropped']} sentences left out "
                "(NaN or infinite score or gold)\n"
            )


def main(argv=None):
    set_command("evaluate")
    install_excepthook()
    args = parse_args(argv)
    result = run(args)
    warn_dropped(result["methods"])
    if args.json:
        tables = {
            key: [{k: json_safe(v) for k, v in row.items()} for row in result[key]]
            for key in ("methods", "word_methods")
            if key in result
        }
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
