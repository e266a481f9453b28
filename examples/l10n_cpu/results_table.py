"""The RESULTS.md table of an ``examples/l10n_cpu/run.sh`` work directory (Markdown on stdout).

Rows: softmax probability, BoostedProb (both from the frozen base, the same in every head's
file), then the sigmoid head of each Table-6 sampler setting that has been scored; columns:
Pearson, Spearman and PRR against sentence chrF, for Eval Self and Eval Other.

Usage: python examples/l10n_cpu/results_table.py WORKDIR
"""
import os
import sys

from fairseq_sigmoid_qe.evaluate import (
    evaluate_method, gold_values, load_gold, load_records, method_scores,
)

SAMPLERS = ["random", "token_freq", "token_freq+avoid", "softmax", "softmax+avoid",
            "softmax_T2+avoid", "softmax_T2+token_freq+avoid"]
SYSTEMS = ("self", "other")


def scored(workdir):
    """(sampler, {system: records}) for every sampler scored on both systems."""
    for name in SAMPLERS:
        paths = {s: os.path.join(workdir, s, f"qe-{name}.jsonl") for s in SYSTEMS}
        if all(os.path.exists(p) for p in paths.values()):
            yield name, {s: load_records(p) for s, p in paths.items()}


def table(workdir):
    references = load_gold(os.path.join(workdir, "text", "test.raw.de"), "references")
    heads = list(scored(workdir))
    if not heads:
        raise SystemExit(f"no head has scored both systems in {workdir} yet")
    gold = {s: gold_values(heads[0][1][s], references, "references", "chrf")
            for s in SYSTEMS}
    rows = [("softmax probability", heads[0][1], "softmax"),
            ("BoostedProb", heads[0][1], "boostedprob")]
    rows += [(f"sigmoid head: {name}", records, "sigmoid") for name, records in heads]
    lines = ["| QE | Self Pearson | Self Spearman | Self PRR | Other Pearson | Other Spearman "
             "| Other PRR |", "|---|---|---|---|---|---|---|"]
    for label, records, method in rows:
        cells = []
        for system in SYSTEMS:
            metrics = evaluate_method(method_scores(records[system], method), gold[system])
            cells += [f"{metrics[m]:.3f}" for m in ("pearson", "spearman", "prr")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1]))
