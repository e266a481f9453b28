"""``fairseq-sigmoid-qe calibrate``: fit one QE method's calibration on a dev set.

    fairseq-sigmoid-qe calibrate --qe dev.jsonl --method sigmoid --references-tsv dev.refs.tsv \\
        --reference-word-labels --output head/calibration-sigmoid.json

Reads the dev set's QE records (``--qe-output``, the raw-text command) and its gold (the
evaluator's gold options), fits the sentence level (gold scores or labels) and the word level
(OK/BAD word labels) with :mod:`..calibration`, writes the calibration file (new, never
overwritten), prints ECE, Brier, MCC and F1 of BAD before and after on the dev set, and draws
their reliability diagrams (a PNG beside the file, when matplotlib is installed).
"""

import argparse
import importlib.util
import os
import sys

import numpy as np

from ..core.errors import QEUserError, check_range, install_excepthook, program, set_command
from ..core.textfiles import StreamedOutput, refuse_existing
from ..evaluation.calibration import (
    MAPS,
    RAW_THRESHOLD,
    Calibration,
    LevelCalibration,
    features,
    sentence_log_score,
)
from ..evaluation.gold import REFERENCE_KINDS, gold_values, word_gold
from ..evaluation.plots import plot_reliability, pyplot
from ..evaluation.records import load_records, method_names, record_word_scores
from ..evaluation.report import format_table
from .gold_options import add_gold_arguments, gold_source, load_gold_source, word_gold_source
from .help_format import DefaultsHelpFormatter


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe calibrate",
        formatter_class=DefaultsHelpFormatter,
        description="Fit a monotone map from one QE method's scores to gold on a dev set, and "
        "the threshold below which a sentence or word is BAD; write it as a JSON file.",
    )
    parser.add_argument(
        "--qe",
        required=True,
        metavar="FILE.jsonl",
        help="QE records of the dev set (--qe-output, fairseq-sigmoid-qe)",
    )
    parser.add_argument(
        "--method",
        required=True,
        help="the method to calibrate (a sentence_scores key: sigmoid, ...)",
    )
    parser.add_argument(
        "--map",
        choices=MAPS,
        default="isotonic",
        help="isotonic regression (default) or Platt scaling",
    )
    add_gold_arguments(parser)
    parser.add_argument(
        "--target-precision",
        type=float,
        default=None,
        help="the threshold with the highest BAD recall whose BAD precision "
        "reaches this (default: the threshold of the highest F1 of BAD)",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="FILE.json",
        help="the calibration file (new; never overwritten)",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        default=None,
        help="reliability diagram (default: beside --output, as .png, when "
        "matplotlib is installed)",
    )
    parser.set_defaults(all_ranks=False)
    return parser.parse_args(argv)


def sentence_gold_given(args):
    return any(
        (args.gold_scores, args.gold_json, args.gold_labels, args.references, args.references_tsv)
    )


def fit_levels(args, records):
    """The calibrated levels whose gold is given: {level: (LevelCalibration, x, outcomes)}."""
    method, fitted = args.method, {}
    gold, kind, path = None, None, None
    if sentence_gold_given(args) or args.reference_word_labels:
        kind, path = gold_source(args)
        gold, path = load_gold_source(kind, path)
    if sentence_gold_given(args):
        metric = (args.metric or "chrf") if kind in REFERENCE_KINDS else None
        quality = gold_values(records, gold, kind, metric, source=path)
        x = features("sentence", [sentence_log_score(r, method) for r in records])
        keep = np.isfinite(x) & np.isfinite(quality)
        bad_below = 0.5 if kind == "labels" else args.bad_below
        level = LevelCalibration.fit(
            "sentence",
            args.map,
            x[keep],
            quality[keep],
            quality[keep] < bad_below,
            args.target_precision,
            gold=metric or kind,
            bad_below=bad_below,
        )
        fitted["sentence"] = (level, x[keep], quality[keep])
    source = word_gold_source(args, kind, gold, path)
    if source is not None:
        tags = word_gold(records, **source)
        outcomes = np.array([t for line in tags for t in line], float)
        x = features("word", [s for r in records for s in record_word_scores(r, method)])
        level = LevelCalibration.fit(
            "word", args.map, x, outcomes, outcomes == 0, args.target_precision, gold="word labels"
        )
        fitted["word"] = (level, x, outcomes)
    if not fitted:
        raise QEUserError(
            "calibrate needs gold: sentence (--gold-scores, --gold-json, --gold-labels, "
            "--references, --references-tsv) and/or word (--word-labels, "
            "--reference-word-labels)"
        )
    return fitted


def report(fitted):
    rows = []
    for level, (calibration, _, _) in fitted.items():
        for name in ("before", "after"):
            threshold = RAW_THRESHOLD if name == "before" else calibration.threshold
            rows.append(
                {
                    "method": f"{level} {name}",
                    "n": calibration.info["n"],
                    **calibration.info[name],
                    "threshold": threshold,
                }
            )
    return format_table(rows)


def main(argv=None):
    set_command("calibrate")
    install_excepthook()
    args = parse_args(argv)
    if args.target_precision is not None:
        check_range("--target-precision", args.target_precision, 0, 1, low_open=True)
    check_range("--bad-below", args.bad_below)
    refuse_existing(args.output, "--output")
    plot = args.plot
    if plot is not None:
        refuse_existing(plot, "--plot")
        pyplot("--plot")
    elif importlib.util.find_spec("matplotlib") is None:
        sys.stderr.write(
            f"{program()}: warning: no reliability diagram: matplotlib is not "
            "installed (the 'plot' extra)\n"
        )
    else:
        plot = os.path.splitext(args.output)[0] + ".png"
        if os.path.lexists(plot):
            raise QEUserError(
                f"--output {args.output}: its reliability diagram {plot} exists; nothing is "
                "overwritten (move it, or give --plot another file)"
            )
    records = load_records(args.qe)
    if args.method not in method_names(records):
        raise QEUserError(
            f"--method {args.method}: {args.qe} has no such method (it has "
            f"{', '.join(method_names(records))})"
        )
    fitted = fit_levels(args, records)
    calibration = Calibration(args.method, {level: c for level, (c, _, _) in fitted.items()})
    output = StreamedOutput(args.output, "--output")
    try:
        output.write(calibration.dumps())
    except BaseException:
        output.discard()
        raise
    output.commit()
    print(f"{args.method} calibrated ({args.map}) on {args.qe}: {args.output}")
    print(report(fitted))
    if plot is not None:
        print(f"reliability diagram: {plot_reliability(fitted, plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
