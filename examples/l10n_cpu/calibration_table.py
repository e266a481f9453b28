"""The calibration table of RESULTS.md: per method and level, ECE, Brier, F1 of BAD and MCC on
the reported split before calibration (raw scores, BAD below 0.5) and after (calibrated on the
dev split, BAD below the threshold chosen there).

    python examples/l10n_cpu/calibration_table.py WORKDIR/calibration/HEAD-UPDATES

reads, per pair of splits (``valid-test``, ``mrdev-mrtest``), ``METHOD.json`` (the
calibrations) and ``report.json`` (``fairseq-sigmoid-qe evaluate --json`` on the reported
split with ``--calibration``), as written by run.sh.
"""

import json
import os
import sys

METHODS = (
    ("softmax probability", "softmax"),
    ("BoostedProb", "boostedprob"),
    ("sigmoid head", "sigmoid"),
)
PAIRS = (
    ("valid-test", "fitted on valid, rated on test (one reference)"),
    ("mrdev-mrtest", "fitted on mrdev, rated on mrtest (all references)"),
)
MEASURES = (("ECE", "ece"), ("Brier", "brier"), ("BAD-F1", "f1_bad"), ("MCC", "mcc"))


def table(folder, pair, title):
    report = json.load(open(os.path.join(folder, pair, "report.json"), encoding="utf-8"))
    levels = {
        "sentence": {r["method"]: r for r in report["methods"]},
        "word": {r["method"]: r for r in report.get("word_methods", [])},
    }
    header = " | ".join(f"{name} before | {name} after" for name, _ in MEASURES)
    lines = [
        f"**{title}**",
        "",
        f"| QE | level | n | {header} | threshold (dev) |",
        "|---" * (4 + 2 * len(MEASURES)) + "|",
    ]
    for label, method in METHODS:
        calibration = json.load(
            open(os.path.join(folder, pair, f"{method}.json"), encoding="utf-8")
        )
        for level, rows in levels.items():
            before, after = rows.get(method), rows.get(f"{method}+calibrated")
            if before is None or after is None:
                continue
            cells = " | ".join(f"{before[key]:.3f} | {after[key]:.3f}" for _, key in MEASURES)
            lines.append(
                f"| {label} | {level} | {before['n']} | {cells} | "
                f"{calibration[level]['threshold']:.3f} |"
            )
    return "\n".join(lines)


def main(folder):
    print(
        "\n\n".join(
            table(folder, pair, title)
            for pair, title in PAIRS
            if os.path.exists(os.path.join(folder, pair, "report.json"))
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
