"""The RESULTS.md tables of an ``examples/l10n_cpu/run.sh`` work directory (Markdown on stdout).

1. Learning curves (choosing settings; valid and mrdev only): per head and checkpoint, the
   head's valid-split training statistics, Eval Self Pearson against single-reference chrF
   (valid) and multi-reference chrF (mrdev), and the ambiguity figures (mrdev).
2. The chosen head, picked by the rule below on mrdev before test is looked at, against
   softmax probability and BoostedProb on test (single reference) and mrtest (multi-reference),
   Eval Self and Eval Other, and the ambiguity report on mrtest; beside it any other head that
   run.sh scored on test (the converged one, which the rule never chooses from), and the
   unsupervised baselines of ``--qe-methods`` (entropy, MC dropout, MC sequence entropy; run.sh
   step 5b) on the same hypotheses.
3. Head types (``run.sh`` with ``HEAD_TYPES=1``): the compact heads ``type_*``, trained with
   the settings of ``dense_adam`` and as many updates, beside it on test and mrtest (they are
   never candidates for the choice).
Rule: the (head, checkpoint) with the highest Eval Self Pearson against multi-reference chrF
on mrdev (``init``, the untrained head, a copy of the softmax projection, is a candidate).

Usage: python examples/l10n_cpu/results_table.py WORKDIR [--choose]
(``--choose``: print only the chosen head's name and updates.)
"""

import os
import re
import sys

from fairseq_sigmoid_qe.core.textfiles import read_lines
from fairseq_sigmoid_qe.evaluation.ambiguity import ambiguity_report
from fairseq_sigmoid_qe.evaluation.gold import gold_values, load_gold
from fairseq_sigmoid_qe.evaluation.records import load_records, method_scores
from fairseq_sigmoid_qe.evaluation.report import evaluate_method

BASELINES = (("softmax probability", "softmax"), ("BoostedProb", "boostedprob"))
# The unsupervised baselines of --qe-methods (run.sh step 5b), in qe-baselines-mc10.jsonl.
MC_BASELINES = ("baselines", "mc10")
UNSUPERVISED = (
    ("token entropy, exp(-mean H)", "entropy"),
    ("MC dropout, exp(D-TP), N = 10", "mc_dropout"),
    ("MC dropout D-Var, N = 10 (lower = more certain)", "mc_dropout_var"),
    ("MC sequence entropy, exp(-Ĥ), N = 10", "mc_seq_entropy"),
)
QE_FILE = re.compile(r"^qe-(.+)-(\d+)\.jsonl$")
HEAD_TYPE_PREFIX = "type_"  # compact head types, compared with FULL_HEAD at equal updates
FULL_HEAD = "dense_adam"
HEAD_SIZE = re.compile(
    r"sigmoid head(?: \((.+?)\))?: base (\d+) parameters \(frozen\), "
    r"head (\d+) trainable"
)


def scored_heads(workdir, split):
    """{(name, updates)} scored on ``split`` by Eval Self."""
    folder = os.path.join(workdir, "self", split)
    found = [QE_FILE.match(f) for f in sorted(os.listdir(folder))] if os.path.isdir(folder) else []
    return {(m.group(1), int(m.group(2))) for m in found if m}


def heads(workdir):
    """{(name, updates)} scored on valid by Eval Self, head types aside."""
    return sorted(
        (
            head
            for head in scored_heads(workdir, "valid")
            if not head[0].startswith(HEAD_TYPE_PREFIX)
        ),
        key=lambda head: (head[0] != "init", head[0], head[1]),
    )


class Evaluation:
    """Gold of every evaluation split, and QE records loaded once."""

    def __init__(self, workdir):
        self.workdir = workdir
        text = os.path.join(workdir, "text")
        self.references = {
            split: load_gold(os.path.join(text, f"{split}.raw.de"), "references")
            for split in ("valid", "test")
        }
        for split in ("mrdev", "mrtest"):
            path = os.path.join(text, f"{split}.refs.tsv")
            if os.path.exists(path):
                self.references[split] = load_gold(path, "references_tsv")
        self.groups = {
            split: read_lines(os.path.join(text, f"{split}-refs.group"), "groups")
            for split in ("mrdev", "mrtest")
            if os.path.exists(os.path.join(text, f"{split}-refs.group"))
        }
        self._gold, self._records = {}, {}

    def records(self, system, split, head):
        key = (system, split, head)
        if key not in self._records:
            path = os.path.join(self.workdir, system, split, f"qe-{head[0]}-{head[1]}.jsonl")
            self._records[key] = load_records(path) if os.path.exists(path) else None
        return self._records[key]

    def metrics(self, system, split, head, method):
        records = self.records(system, split, head)
        if records is None or split not in self.references:
            return None
        key = (system, split)
        if key not in self._gold:
            self._gold[key] = gold_values(records, self.references[split], "references")
        return evaluate_method(method_scores(records, method), self._gold[key])

    def ambiguity(self, split, head):
        path = os.path.join(self.workdir, "refs", split, f"qe-{head[0]}-{head[1]}.jsonl")
        if not os.path.exists(path) or split not in self.groups:
            return None
        return {
            row["method"]: row for row in ambiguity_report(load_records(path), self.groups[split])
        }


def training_statistics(workdir, name):
    """{updates: (valid loss, sigmoid_pos, sigmoid_neg)} from the head's training log."""
    path = os.path.join(workdir, f"train-head-{name}.log")
    stats = {}
    if not os.path.exists(path):
        return stats
    pattern = re.compile(
        r"valid on 'valid' subset \| loss ([\d.]+) .*?sigmoid_pos ([\d.]+) "
        r"\| sigmoid_neg ([\d.]+) .*?num_updates (\d+)"
    )
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = pattern.search(line)
            if match:
                stats[int(match.group(4))] = tuple(float(match.group(i)) for i in (1, 2, 3))
    return stats


def fmt(value, digits=3):
    return "–" if value is None else f"{value:.{digits}f}"


def learning_curves(evaluation, found):
    lines = [
        "| head | updates | valid NCE loss | σ ref (valid) | σ neg (valid) | "
        "valid Pearson (1 ref) | mrdev Pearson (multi-ref) | mrdev Spearman (multi-ref) | "
        "mrdev PRR (multi-ref) | mrdev min/max | mrdev mean score | mrdev share ≥ 0.5 |",
        "|---" * 12 + "|",
    ]
    baseline_done = False
    for name, updates in found:
        stats = training_statistics(evaluation.workdir, name).get(updates, (None,) * 3)
        if not baseline_done:
            for label, method in BASELINES:
                single = evaluation.metrics("self", "valid", (name, updates), method)
                multi = evaluation.metrics("self", "mrdev", (name, updates), method)
                amb = (evaluation.ambiguity("mrdev", (name, updates)) or {}).get(method, {})
                lines.append(
                    f"| {label} | – | – | – | – | {fmt(single and single['pearson'])} | "
                    f"{fmt(multi and multi['pearson'])} | "
                    f"{fmt(multi and multi['spearman'])} | {fmt(multi and multi['prr'])} | "
                    f"{fmt(amb.get('min_max_ratio'))} | {fmt(amb.get('mean_score'))} | "
                    f"{fmt(amb.get('share_ge_0.5'))} |"
                )
            baseline_done = True
        single = evaluation.metrics("self", "valid", (name, updates), "sigmoid")
        multi = evaluation.metrics("self", "mrdev", (name, updates), "sigmoid")
        amb = (evaluation.ambiguity("mrdev", (name, updates)) or {}).get("sigmoid", {})
        lines.append(
            f"| {name} | {updates} | {fmt(stats[0], 4)} | {fmt(stats[1])} | "
            f"{fmt(stats[2])} | {fmt(single and single['pearson'])} | "
            f"{fmt(multi and multi['pearson'])} | {fmt(multi and multi['spearman'])} | "
            f"{fmt(multi and multi['prr'])} | {fmt(amb.get('min_max_ratio'))} | "
            f"{fmt(amb.get('mean_score'))} | {fmt(amb.get('share_ge_0.5'))} |"
        )
    return "\n".join(lines)


def chosen_head(evaluation, found):
    """The rule of the module docstring (mrdev only)."""
    scored = [(evaluation.metrics("self", "mrdev", head, "sigmoid"), head) for head in found]
    scored = [(m["pearson"], head) for m, head in scored if m is not None]
    return max(scored)[1] if scored else None


def tested_heads(workdir, chosen):
    """The chosen head, then every other head that run.sh scored on test (head types aside)."""
    others = sorted(
        head
        for head in scored_heads(workdir, "test") - {chosen}
        if not head[0].startswith(HEAD_TYPE_PREFIX)
    )
    return [chosen] + others


def head_size(workdir, name):
    """(type, trainable head parameters, frozen base parameters) from the head's training log
    (logs written before head types existed name no type: ``full``), or None."""
    path = os.path.join(workdir, f"train-head-{name}.log")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        match = next((m for m in map(HEAD_SIZE.search, f) if m), None)
    return match and (match.group(1) or "full", int(match.group(3)), int(match.group(2)))


def head_type_table(evaluation):
    """The compact head types beside the full head at the same updates: size, Pearson on
    valid/mrdev (choosing) and test/mrtest (reported), ambiguity on mrtest."""
    tested = scored_heads(evaluation.workdir, "test")
    compact = sorted(
        (head for head in tested if head[0].startswith(HEAD_TYPE_PREFIX)),
        key=lambda head: ((head_size(evaluation.workdir, head[0]) or (0, 0))[1], head),
    )
    if not compact:
        return None
    rows = [head for head in tested if head[0] == FULL_HEAD and head[1] == compact[0][1]]
    lines = [
        "| head | type | trainable parameters | overhead | valid Pearson (1 ref) | "
        "mrdev Pearson (multi-ref) | test Self Pearson (1 ref) | test Other Pearson (1 ref) "
        "| mrtest Self Pearson (multi-ref) | mrtest Other Pearson (multi-ref) | "
        "mrtest min/max |",
        "|---" * 11 + "|",
    ]
    for head in rows + compact:
        size = head_size(evaluation.workdir, head[0])
        kind, params = (size[0], f"{size[1]:,}") if size else ("–", "–")
        overhead = f"+{100 * size[1] / size[2]:.2f}%" if size else "–"
        cells = [
            evaluation.metrics(system, split, head, "sigmoid")
            for system, split in (
                ("self", "valid"),
                ("self", "mrdev"),
                ("self", "test"),
                ("other", "test"),
                ("self", "mrtest"),
                ("other", "mrtest"),
            )
        ]
        amb = (evaluation.ambiguity("mrtest", head) or {}).get("sigmoid", {})
        lines.append(
            f"| {head[0]}, {head[1]} updates | {kind} | {params} | {overhead} | "
            + " | ".join(fmt(c and c["pearson"]) for c in cells)
            + f" | {fmt(amb.get('min_max_ratio'))} |"
        )
    return "\n".join(lines)


def final_table(evaluation, tested):
    rows = (
        [(label, method, tested[0]) for label, method in BASELINES]
        + [
            (label, method, MC_BASELINES)
            for label, method in UNSUPERVISED
            if any(
                evaluation.records(system, split, MC_BASELINES) is not None
                for system in ("self", "other")
                for split in ("test", "mrtest")
            )
        ]
        + [(f"sigmoid head: {head[0]}, {head[1]} updates", "sigmoid", head) for head in tested]
    )
    columns = [("self", "test"), ("other", "test"), ("self", "mrtest"), ("other", "mrtest")]
    lines = [
        "| QE | Self Pearson (1 ref) | Other Pearson (1 ref) | Self Pearson (multi-ref) | "
        "Other Pearson (multi-ref) | Self Spearman (multi-ref) | Self PRR (multi-ref) |",
        "|---" * 7 + "|",
    ]
    for label, method, head in rows:
        cells = [evaluation.metrics(system, split, head, method) for system, split in columns]
        multi = cells[2] or {}
        lines.append(
            f"| {label} | "
            + " | ".join(fmt(c and c["pearson"]) for c in cells)
            + f" | {fmt(multi.get('spearman'))} | {fmt(multi.get('prr'))} |"
        )
    lines += [
        "",
        "| QE (mrtest references, force-decoded) | sources | min/max | mean score | share ≥ 0.5 |",
        "|---" * 5 + "|",
    ]
    for label, method, head in rows:
        row = (evaluation.ambiguity("mrtest", head) or {}).get(method)
        if row:
            lines.append(
                f"| {label} | {row['sources']} | {fmt(row['min_max_ratio'])} | "
                f"{fmt(row['mean_score'])} | {fmt(row['share_ge_0.5'])} |"
            )
    return "\n".join(lines)


def main(workdir, choose=False):
    evaluation = Evaluation(workdir)
    found = heads(workdir)
    if not found:
        raise SystemExit(f"no head has scored valid in {workdir} yet")
    if choose:
        head = chosen_head(evaluation, found)
        if head is None:
            raise SystemExit(f"no head has scored mrdev in {workdir} yet")
        print(head[0], head[1])
        return
    print("## Learning curves (valid, mrdev: for choosing)\n")
    print(learning_curves(evaluation, found))
    head = chosen_head(evaluation, found)
    if head is not None:
        tested = tested_heads(workdir, head)
        also = "".join(f"; also {name} after {n} updates" for name, n in tested[1:])
        print(f"\n## Chosen on mrdev: {head[0]} after {head[1]} updates{also}; test and mrtest\n")
        print(final_table(evaluation, tested))
    types = head_type_table(evaluation)
    if types is not None:
        print(f"\n## Head types at equal updates (the settings of {FULL_HEAD}); test and mrtest\n")
        print(types)


if __name__ == "__main__":
    main(sys.argv[1], choose="--choose" in sys.argv[2:])
