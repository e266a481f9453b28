"""The RESULTS.md tables of an ``examples/l10n_cpu/run.sh`` work directory (Markdown on stdout).

Rule, written before test was looked at: a candidate's score is its Eval Self Pearson (sentence
score = product of token scores, as in the paper) against multi-reference chrF on mrdev, averaged
over the two decodings (beam, sampled). ``--choose-variant`` picks the dominant-cut /
de-duplication variant of the dense head (``dense_VARIANT``) with the highest score;
``--choose-head`` picks among the untrained head (``init``), the chosen variant's dense head,
``authors`` and ``logit_affine``. Ties go to the earlier candidate (the code's defaults first).

Tables: 1. choosing (valid, mrdev); 2. per decoding, system and test split (test: one reference,
mrtest: all references), every QE method with its 95% bootstrap interval (1000 resamples, seed 1),
the paired test against BoostedProb (share of resamples in which it correlates better), the
geometric mean of token scores, the partial correlation given hypothesis length and the
correlation within 4 length bins; 3. the chosen head's seeds; 4. held-out against own data.

Usage: python examples/l10n_cpu/results_table.py WORKDIR [--choose-variant | --choose-head |
       --chosen-head NAME (an earlier run's choice: no choosing)]
"""

import os
import sys

import numpy as np

from fairseq_sigmoid_qe.evaluation.bootstrap import (
    confidence_interval,
    paired_test,
    partial_pearson,
    pearson_within_bins,
)
from fairseq_sigmoid_qe.evaluation.gold import gold_values, load_gold
from fairseq_sigmoid_qe.evaluation.metrics import pearson, spearman
from fairseq_sigmoid_qe.evaluation.records import load_records

DECODINGS = ("beam", "sampled")
VARIANTS = ("cut_last", "cut_first_dedup", "cut_first", "cut_last_dedup")
RESAMPLES, SEED, BINS = 1000, 1, 4
BASELINES = (("softmax probability", "softmax", "init"), ("BoostedProb", "boostedprob", "init"))
UNSUPERVISED = (("token entropy", "entropy"), ("MC dropout, N = 10", "mc_dropout"))
REFERENCE = "boostedprob"
SETTINGS = (
    ("self", "test", "1 ref"),
    ("other", "test", "1 ref"),
    ("self", "mrtest", "multi-ref"),
    ("other", "mrtest", "multi-ref"),
)


def sentence_log(record, method, how):
    """log of a record's sentence score of ``method``: the sum (``product``) or the mean
    (``geomean``) of its log token scores; a method without token scores (MC dropout: the
    mean log probability of the hypothesis over the passes) from its own log score, divided
    by the length for ``geomean``."""
    tokens = record["token_scores"].get(method)
    if tokens is None:
        total, length = record["sentence_log_scores"][method], len(record["tokens"])
    else:
        logs = np.log(np.clip(np.asarray(tokens, float), 1e-300, 1.0))
        total, length = logs.sum(), len(logs)
    if how == "product":
        return total
    return total / length if length else np.nan


def aggregate(records, method, how):
    """Sentence scores of ``method``: the product or the geometric mean of its token scores."""
    return np.exp(np.array([sentence_log(r, method, how) for r in records], float))


class Workdir:
    def __init__(self, path):
        self.path = path
        text = os.path.join(path, "text")
        self.references = {}
        for split in ("valid", "test"):
            self.references[split] = (
                load_gold(os.path.join(text, f"{split}.raw.de"), "references"),
                "references",
            )
        for split in ("mrdev", "mrtest"):
            tsv = os.path.join(text, f"{split}.refs.tsv")
            if os.path.exists(tsv):
                self.references[split] = (load_gold(tsv, "references_tsv"), "references_tsv")
        self._records, self._gold = {}, {}

    def heads(self):
        folder = os.path.join(self.path, "heads")
        names = sorted(
            n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n, "done"))
        )
        return ["init"] + names

    def records(self, decoding, system, split, name):
        key = (decoding, system, split, name)
        if key not in self._records:
            path = os.path.join(self.path, decoding, system, split, f"qe-{name}.jsonl")
            self._records[key] = load_records(path) if os.path.exists(path) else None
        return self._records[key]

    def gold(self, decoding, system, split, records):
        """chrF of a decoding's hypotheses (the same for every head's records of it)."""
        key = (decoding, system, split)
        if key not in self._gold:
            gold, kind = self.references[split]
            self._gold[key] = np.asarray(gold_values(records, gold, kind), float)
        return self._gold[key]

    def column(self, decoding, system, split, name, method, how="product"):
        """(scores, gold, lengths) of a method on a setting, or None when not scored."""
        records = self.records(decoding, system, split, name)
        if records is None or split not in self.references:
            return None
        lengths = np.array([len(r["tokens"]) for r in records], float)
        gold = self.gold(decoding, system, split, records)
        return aggregate(records, method, how), gold, lengths


def mrdev_score(work, name):
    values = []
    for decoding in DECODINGS:
        column = work.column(decoding, "self", "mrdev", name, "sigmoid")
        if column is None:
            return None
        values.append(pearson(column[0], column[1]))
    return float(np.mean(values))


def choose(work, candidates):
    scored = [(mrdev_score(work, name), -i, name) for i, name in enumerate(candidates)]
    scored = [entry for entry in scored if entry[0] is not None]
    if not scored:
        raise SystemExit(f"no candidate among {', '.join(candidates)} is scored on mrdev yet")
    return max(scored)[2]


def chosen_variant(work):
    heads = [f"dense_{v}" for v in VARIANTS if f"dense_{v}" in work.heads()]
    return choose(work, heads)[len("dense_") :]


def chosen_head(work):
    return choose(work, ["init", f"dense_{chosen_variant(work)}", "authors", "logit_affine"])


def fmt(value, digits=3):
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def choosing_table(work):
    lines = [
        "| head | "
        + " | ".join(
            f"{d} {s} Pearson" for d in DECODINGS for s in ("valid (1 ref)", "mrdev (multi-ref)")
        )
        + " | mrdev mean (the rule) |",
        "|---" * 6 + "|",
    ]
    rows = [(label, method, "init") for label, method, _ in BASELINES]
    rows += [(name, "sigmoid", name) for name in work.heads()]
    for label, method, name in rows:
        cells = []
        for decoding in DECODINGS:
            for split in ("valid", "mrdev"):
                column = work.column(decoding, "self", split, name, method)
                cells.append(fmt(column and pearson(column[0], column[1])))
        rule = mrdev_score(work, name) if method == "sigmoid" else None
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {fmt(rule)} |")
    return "\n".join(lines)


def method_rows(work):
    rows = [(label, method, source) for label, method, source in BASELINES]
    rows += [(label, method, "baselines") for label, method in UNSUPERVISED]
    rows += [(f"sigmoid head: {name}", "sigmoid", name) for name in work.heads()]
    return rows


def setting_table(work, decoding, system, split):
    reference = work.column(decoding, system, split, "init", REFERENCE)
    reference_geo = work.column(decoding, system, split, "init", REFERENCE, "geomean")
    lines = [
        "| QE | n | Pearson (product) [95% CI] | Δ vs BoostedProb [95% CI] | P(> BoostedProb) | "
        "Spearman | Pearson (geometric mean) [95% CI] | Δ vs BoostedProb (geo) | "
        "partial r given length | r within length bins |",
        "|---" * 10 + "|",
    ]
    for label, method, source in method_rows(work):
        column = work.column(decoding, system, split, source, method)
        if column is None:
            continue
        scores, gold, lengths = column
        geo = work.column(decoding, system, split, source, method, "geomean")[0]
        low, high = confidence_interval(scores, gold, resamples=RESAMPLES, seed=SEED)
        geo_low, geo_high = confidence_interval(geo, gold, resamples=RESAMPLES, seed=SEED)
        if method == REFERENCE and source == "init":
            versus = versus_geo = None
        else:
            versus = paired_test(scores, reference[0], gold, resamples=RESAMPLES, seed=SEED)
            versus_geo = paired_test(geo, reference_geo[0], gold, resamples=RESAMPLES, seed=SEED)
        delta = (
            "–"
            if versus is None
            else f"{versus['delta']:+.3f} [{versus['delta_low']:+.3f}, {versus['delta_high']:+.3f}]"
        )
        share = "–" if versus is None else fmt(versus["share"], 2)
        delta_geo = (
            "–"
            if versus_geo is None
            else f"{versus_geo['delta']:+.3f} (P {versus_geo['share']:.2f})"
        )
        lines.append(
            f"| {label} | {len(gold)} | {fmt(pearson(scores, gold))} [{fmt(low)}, {fmt(high)}] | "
            f"{delta} | {share} | {fmt(spearman(scores, gold))} | "
            f"{fmt(pearson(geo, gold))} [{fmt(geo_low)}, {fmt(geo_high)}] | {delta_geo} | "
            f"{fmt(partial_pearson(scores, gold, lengths))} | "
            f"{fmt(pearson_within_bins(scores, gold, lengths, BINS))} |"
        )
    return "\n".join(lines)


def seeds_table(work, chosen):
    """Each seed's Pearson (product), their mean ± sd, BoostedProb of the same frozen base (read
    from the first seed's records), and the first seed against it: the paired test under the
    product and under the geometric mean."""
    names = [chosen] + [f"{chosen}_seed{s}" for s in (2, 3)]
    names = [n for n in names if n in work.heads()]
    if len(names) < 2:
        return None
    lines = [
        "| setting | " + " | ".join(names) + " | mean ± sd | BoostedProb | mean − BoostedProb | "
        f"Δ {names[0]} vs BoostedProb [95% CI] | geometric mean: {names[0]} vs BoostedProb (P) |",
        "|---" * (len(names) + 6) + "|",
    ]
    for decoding in DECODINGS:
        for system, split, refs in SETTINGS:
            values = []
            for name in names:
                column = work.column(decoding, system, split, name, "sigmoid")
                values.append(pearson(column[0], column[1]) if column else np.nan)
            finite = [v for v in values if np.isfinite(v)]
            spread = (
                f"{np.mean(finite):.3f} ± {np.std(finite, ddof=1):.3f}" if len(finite) > 1 else "–"
            )
            first = work.column(decoding, system, split, names[0], "sigmoid")
            boosted = work.column(decoding, system, split, names[0], REFERENCE)
            cells = ["–"] * 4
            if first and boosted:
                gold, r = first[1], pearson(boosted[0], boosted[1])
                test = paired_test(first[0], boosted[0], gold, resamples=RESAMPLES, seed=SEED)
                geo = [
                    work.column(decoding, system, split, names[0], m, "geomean")[0]
                    for m in ("sigmoid", REFERENCE)
                ]
                geo_test = paired_test(geo[0], geo[1], gold, resamples=RESAMPLES, seed=SEED)
                cells = [
                    fmt(r),
                    f"{np.mean(finite) - r:+.3f}",
                    f"{test['delta']:+.3f} [{test['delta_low']:+.3f}, {test['delta_high']:+.3f}] "
                    f"(P {test['share']:.2f})",
                    f"{fmt(pearson(geo[0], gold))} vs {fmt(pearson(geo[1], gold))} "
                    f"(P {geo_test['share']:.2f})",
                ]
            lines.append(
                f"| {decoding}, {system}, {split} ({refs}) | "
                + " | ".join(fmt(v) for v in values)
                + f" | {spread} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


def data_table(work):
    if not {"data_heldout", "data_ownslice"} <= set(work.heads()):
        return None
    lines = [
        "| setting | heldout Pearson | ownslice Pearson | Δ heldout − ownslice [95% CI] | "
        "P(heldout better) |",
        "|---" * 5 + "|",
    ]
    for decoding in DECODINGS:
        for system, split, refs in SETTINGS:
            a = work.column(decoding, system, split, "data_heldout", "sigmoid")
            b = work.column(decoding, system, split, "data_ownslice", "sigmoid")
            if a is None or b is None:
                continue
            test = paired_test(a[0], b[0], a[1], resamples=RESAMPLES, seed=SEED)
            lines.append(
                f"| {decoding}, {system}, {split} ({refs}) | {fmt(pearson(a[0], a[1]))} | "
                f"{fmt(pearson(b[0], b[1]))} | {test['delta']:+.3f} [{test['delta_low']:+.3f}, "
                f"{test['delta_high']:+.3f}] | {fmt(test['share'], 2)} |"
            )
    return "\n".join(lines)


def main(path, option=None, chosen=None):
    if option not in (None, "--choose-variant", "--choose-head", "--chosen-head"):
        raise SystemExit(f"results_table.py: error: unknown option {option}")
    work = Workdir(path)
    if option == "--chosen-head" and chosen not in work.heads():
        raise SystemExit(
            f"results_table.py: error: --chosen-head {chosen}: no trained head of that name in "
            f"{os.path.join(path, 'heads')}"
        )
    if option == "--choose-variant":
        print(chosen_variant(work))
        return
    if option == "--choose-head":
        print(chosen_head(work))
        return
    print("## Choosing (valid, mrdev; Eval Self, product of token scores)\n")
    print(choosing_table(work))
    if option == "--chosen-head":
        print(f"\nChosen head (an earlier run's choice): {chosen}\n")
    else:
        chosen = chosen_head(work)
        print(f"\nChosen variant: {chosen_variant(work)}; chosen head: {chosen}\n")
    for decoding in DECODINGS:
        for system, split, refs in SETTINGS:
            if work.column(decoding, system, split, "init", REFERENCE) is None:
                continue
            print(f"## {decoding}, Eval {system.capitalize()}, {split} ({refs} chrF)\n")
            print(setting_table(work, decoding, system, split) + "\n")
    seeds = seeds_table(work, chosen)
    if seeds:
        print("## The chosen head's seeds (Pearson, product)\n\n" + seeds + "\n")
    data = data_table(work)
    if data:
        print("## Head trained on pairs the base never saw vs on its own pairs\n\n" + data + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
