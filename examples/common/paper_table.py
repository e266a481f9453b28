"""The paper's Table 2, 3 and 6 layout, filled from a recipe's evaluations, the paper's numbers
beside ours (Markdown on stdout).

    python examples/common/paper_table.py WORK --model transformer_base|deltalm [--gold-note TEXT]

Reads ``WORK/eval/{set}-{decoding}[-{head}].json`` (``fairseq-sigmoid-qe evaluate --json``):
sets ``test`` (the ParaCrawl test split) and ``wmt22`` (Eval Self: the model's own beam and
sampling translations), ``other_best`` and ``other_worst`` (Eval Other: WMT22 system outputs,
force-decoded, against human scores; ``WORK/raw/other.json`` names the systems); heads: the
sampler grid of Table 6 (no head: the recipe's main head, softmax T2 + token-freq +
avoid-dominant). Cells are Pearson r (the paper's measure); "-": not run.
"""

import argparse
import json
import os

NOT_HERE = "n/a (not available here)"
METHODS = (
    ("softmax", "softmax probability"),
    ("boostedprob", "BoostedProb"),
    ("sigmoid", "sigmoid head"),
    ("cometkiwi", "COMET-Kiwi (supervised)"),
)
# Table 2 of the paper (Pearson r; softmax, BoostedProb, sigmoid head, COMET-Kiwi).
PAPER_TABLE2 = {
    "transformer_base": {
        "test": (0.155, 0.235, 0.383, 0.536),
        "wmt22": (0.199, 0.367, 0.586, 0.722),
    },
    "deltalm": {
        "test": (0.131, 0.218, 0.403, 0.537),
        "wmt22": (0.165, 0.291, 0.515, 0.634),
    },
}
MODEL_NAMES = {"transformer_base": "Transformer Base", "deltalm": "DeltaLM"}
SELF_SETS = (("test", "ParaCrawl"), ("wmt22", "WMT22"))
DECODINGS = ("beam", "sampling")
# Table 6: (head name in the recipe, row label); "" is the recipe's main head.
GRID = (
    ("random", "random"),
    ("token_freq", "token-freq"),
    ("token_freq+avoid", "token-freq + avoid-dominant"),
    ("softmax", "softmax"),
    ("softmax+avoid", "softmax + avoid-dominant"),
    ("softmax_T2+avoid", "softmax T2 + avoid-dominant"),
    ("", "softmax T2 + token-freq + avoid-dominant (main head)"),
)


def load_evaluation(work, name):
    """{method: row} of ``WORK/eval/NAME.json`` and the file's gold description, or None."""
    path = os.path.join(work, "eval", name + ".json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as stream:
        result = json.load(stream)
    return {row["method"]: row for row in result["methods"]}, result


def pearson(evaluation, method):
    if evaluation is None or method not in evaluation[0]:
        return "-"
    value = evaluation[0][method].get("pearson")
    return "nan" if value is None else f"{value:.3f}"


def paper(value):
    return f"{value:.3f}".replace("0.", ".", 1)


def gold_of(evaluation):
    """A few words on an evaluation's gold."""
    result = evaluation[1]
    if result["gold"] == "json":
        return (
            "comet-score --to_json (WORK/gold/CELL/xcomet.json: Unbabel/XCOMET-XL with "
            "the reference)"
        )
    if result["gold"] in ("references", "references_tsv"):
        return f"sentence {result['metric']} against the reference"
    return f"{result['gold']} from {os.path.basename(result['gold_file'])}"


def table2(work, model, gold_note):
    evaluations = {
        (name, decoding): load_evaluation(work, f"{name}-{decoding}")
        for name, _ in SELF_SETS
        for decoding in DECODINGS
    }
    golds = sorted({gold_of(e) for e in evaluations.values() if e})
    lines = [
        f"### Table 2: Eval Self, {MODEL_NAMES[model]} (Pearson r)",
        "",
        "Gold: " + ("; ".join(golds) if golds else "none evaluated") + f". {gold_note}".rstrip(),
        "",
        "| QE | "
        + " | ".join(
            f"{label} {decoding}" for _, label in SELF_SETS for decoding in (*DECODINGS, "paper")
        )
        + " |",
        "|---" * (1 + 3 * len(SELF_SETS)) + "|",
    ]
    for index, (method, label) in enumerate(METHODS):
        cells = []
        for name, _ in SELF_SETS:
            cells += [pearson(evaluations[name, d], method) for d in DECODINGS]
            cells.append(paper(PAPER_TABLE2[model][name][index]))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    sizes = ", ".join(
        f"{label} {d}: n = {next(iter(e[0].values()))['n']}"
        for (name, d), e in evaluations.items()
        if e
        for label in [dict(SELF_SETS)[name]]
    )
    lines += ["", f"Sentences: {sizes or '-'}. Paper: its Table 2 (decoding as in the paper)."]
    return lines


def table3(work):
    info_path = os.path.join(work, "raw", "other.json")
    info = json.load(open(info_path, encoding="utf-8")) if os.path.exists(info_path) else {}
    evaluations = {w: load_evaluation(work, f"other_{w}-reference") for w in ("best", "worst")}
    heads = []
    for which in ("best", "worst"):
        system = info.get(which, {})
        n = next(iter(evaluations[which][0].values()))["n"] if evaluations[which] else "-"
        heads.append(f"{which} system ({system.get('system', '?')}, n = {n})")
    lines = [
        "### Table 3: Eval Other, WMT22 en-de system outputs force-decoded (Pearson r)",
        "",
        f"Gold: human {info.get('gold', 'scores')} segment scores (mt-metrics-eval "
        f"{info.get('year', 'wmt22')}).",
        "",
        f"| QE | {heads[0]} | {heads[1]} | paper |",
        "|---|---|---|---|",
    ]
    for method, label in METHODS:
        cells = [pearson(evaluations[w], method) for w in ("best", "worst")]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {NOT_HERE} |")
    return lines


def table6(work):
    lines = [
        "### Table 6: negative samplers of the sigmoid head, Eval Self, beam (Pearson r)",
        "",
        "| negative sampler | ParaCrawl | WMT22 | paper |",
        "|---|---|---|---|",
    ]
    for head, label in GRID:
        suffix = f"-{head}" if head else ""
        cells = [
            pearson(load_evaluation(work, f"{s}-beam{suffix}"), "sigmoid") for s, _ in SELF_SETS
        ]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {NOT_HERE} |")
    return lines


def render(work, model, gold_note=""):
    lines = [f"## {MODEL_NAMES[model]}: the paper's tables, ours beside its numbers", ""]
    lines += table2(work, model, gold_note) + [""] + table3(work) + [""] + table6(work)
    lines += [
        "",
        f"Paper numbers: Table 2 as printed in the paper; Tables 3 and 6: {NOT_HERE} (the "
        "paper's text was not readable from this project's sources). Every measure of every "
        "cell: WORK/eval/*.json.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work")
    parser.add_argument("--model", choices=sorted(PAPER_TABLE2), required=True)
    parser.add_argument("--gold-note", default="", help="a sentence about the gold (e.g. stand-in)")
    args = parser.parse_args(argv)
    print(render(args.work, args.model, args.gold_note), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
