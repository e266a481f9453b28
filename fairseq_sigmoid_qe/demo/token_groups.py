"""Where the QE methods differ: mean token score per group of tokens whose truth is known.

The paper's argument made measurable. Every scored token is valid or wrong (the synthetic
task knows exactly), the frozen softmax's argmax or not, inside its dominant set or not:

- ``valid_argmax``: valid tokens the softmax ranks first (every method should score them high);
- ``valid_other``: valid tokens it does not rank first (valid alternatives: softmax splits its
  mass here; the sigmoid head should lift them);
- ``wrong_dominant``: wrong tokens inside the dominant set (BoostedProb lifts them; the head's
  negatives never include them);
- ``wrong_other``: wrong tokens outside it.

    fairseq-sigmoid-qe token-groups --workdir runs/quickstart --split dev

beam-translates a split of a quickstart workdir and prints the table for its translations and
for its references (force-decoded; all valid).
"""

import math

GROUPS = ("valid_argmax", "valid_other", "wrong_dominant", "wrong_other")
NEGLOG = "_neglog"
LOG_FLOOR = 1e-12


def group_of(valid, argmax, dominant):
    """The group of one token (see the module docstring)."""
    if valid:
        return "valid_argmax" if argmax else "valid_other"
    return "wrong_dominant" if dominant else "wrong_other"


def neg_log(score):
    """A token's share of its sentence's log score (the sentence score is a product)."""
    return -math.log(max(score, LOG_FLOOR))


def group_table(tokens, methods):
    """Rows ``{"group", "count", <method>: mean score, <method>_neglog: mean -log score}``
    over ``tokens``, an iterable of ``(group, {method: score})``; a group without tokens has
    count 0 and no means. Near 1, where a sigmoid head puts most tokens, the mean -log score
    shows what the mean score rounds away."""
    columns = [c for m in methods for c in (m, m + NEGLOG)]
    sums = {group: [0, {c: 0.0 for c in columns}] for group in GROUPS}
    for group, scores in tokens:
        entry = sums[group]
        entry[0] += 1
        for method in methods:
            entry[1][method] += scores[method]
            entry[1][method + NEGLOG] += neg_log(scores[method])
    return [
        {
            "group": group,
            "count": count,
            **{c: (total / count if count else None) for c, total in totals.items()},
        }
        for group, (count, totals) in sums.items()
    ]


def format_group_table(rows, methods, title):
    """Per method: the mean score, then the mean -log score."""
    header = "".join(f" {m:>12} {'-log':>7}" for m in methods)
    lines = [title, f"{'group':<15} {'count':>6}" + header]
    for row in rows:
        cells = "".join(
            f" {row[m]:>12.3f} {row[m + NEGLOG]:>7.3f}" if row["count"] else f" {'-':>12} {'-':>7}"
            for m in methods
        )
        lines.append(f"{row['group']:<15} {row['count']:>6}" + cells)
    return "\n".join(lines)


def forced_tokens(model, task, pairs, labels_of, batch_size=64):
    """``(group, {method: score})`` of every token of ``pairs`` of (source words, target words)
    force-decoded through ``model``; ``labels_of(source, target)`` gives 1 (valid) or 0 per
    target word. EOS and target words outside the dictionary (``<unk>``) are left out."""
    import torch

    from ..core.qe_methods import DEFAULT_METHODS, score_tokens

    dictionary = task.target_dictionary
    pad, eos = dictionary.pad(), dictionary.eos()

    def encode(words, vocabulary):
        return torch.tensor([vocabulary.index(w) for w in words] + [vocabulary.eos()])

    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        sources = [encode(src, task.source_dictionary) for src, _ in chunk]
        targets = [encode(tgt, dictionary) for _, tgt in chunk]
        src_tokens = torch.nn.utils.rnn.pad_sequence(
            sources, batch_first=True, padding_value=task.source_dictionary.pad()
        )
        hyp_tokens = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=pad)
        lengths = torch.tensor([len(s) for s in sources])
        scores = score_tokens(model, src_tokens, lengths, hyp_tokens, pad, eos)
        lists = {m: scores.method(m).tolist() for m in DEFAULT_METHODS}
        argmax, dominant = scores.argmax.tolist(), scores.dominant.tolist()
        for row, (src, tgt) in enumerate(chunk):
            for t, valid in enumerate(labels_of(src, tgt)):
                if targets[row][t] != dictionary.unk():
                    yield (
                        group_of(valid, argmax[row][t], dominant[row][t]),
                        {m: lists[m][row][t] for m in DEFAULT_METHODS},
                    )


def synthetic_group_tables(model, task, language, records):
    """The two tables of a synthetic run: beam translations (QE records with ``source``,
    ``tokens`` and ``reference``) and their references."""
    from ..core.qe_methods import DEFAULT_METHODS

    tables = {}
    for kind in ("hypothesis", "reference"):
        pairs = [
            (r["source"].split(), r["tokens"] if kind == "hypothesis" else r[kind].split())
            for r in records
        ]
        tokens = forced_tokens(model, task, pairs, language.token_labels)
        tables[kind] = group_table(tokens, DEFAULT_METHODS)
    return tables


def print_group_tables(tables):
    from ..core.qe_methods import DEFAULT_METHODS

    titles = {
        "hypothesis": "mean token score by group, beam translations",
        "reference": "mean token score by group, references (force-decoded)",
    }
    for kind, rows in tables.items():
        print("\n" + format_group_table(rows, DEFAULT_METHODS, titles[kind]))
