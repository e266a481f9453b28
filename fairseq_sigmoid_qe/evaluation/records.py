"""QE records as the evaluator reads them (JSONL of ``--qe-output``, the raw-text command, the
quickstart): loading, their hypothesis text, their methods and scores."""

import json
import math

import numpy as np

from ..core.errors import QEUserError
from ..core.textfiles import read_lines
from ..core.words import detokenize

TEXT_FIELDS = ("detokenized", "detok", "text", "translation")
AGGREGATES = ("record", "product", "geomean")
"""Sentence scores: as the record gives them (``--qe-sentence-agg``), or recomputed from its
token scores as their product (the paper's) or their geometric mean."""


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
    records = [
        _parse_record(line, path, number)
        for number, line in enumerate(read_lines(path, "QE file"), 1)
        if line.strip()
    ]
    with_id = sum("id" in r for r in records)
    if 0 < with_id < len(records):
        raise QEUserError(f"{path}: some records have an id and some do not")
    for index, record in enumerate(records):
        record.setdefault("id", index)
        record.setdefault("rank", 0)
        if not isinstance(record["id"], int) or not isinstance(record["rank"], int):
            raise QEUserError(f"{path}: record {index + 1} has a non-integer id or rank")
    records = sorted(
        (r for r in records if all_ranks or r["rank"] == 0), key=lambda r: (r["id"], r["rank"])
    )
    if not records:
        raise QEUserError(f"{path} has no QE records" + ("" if all_ranks else " of rank 0"))
    keys = [(r["id"], r["rank"]) for r in records]
    duplicate = next((a for a, b in zip(keys, keys[1:]) if a == b), None)
    if duplicate is not None:
        raise QEUserError(f"{path} has two records for id {duplicate[0]} rank {duplicate[1]}")
    return records


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


def record_word_scores(record, method):
    words = record.get("word_scores")
    if not isinstance(words, dict) or not isinstance(words.get(method), list):
        raise QEUserError(
            f"QE record id {record['id']} has no {method} word_scores (they are "
            "written with --post-process or --bpe)"
        )
    return words[method]


def word_text(record):
    """The text whose words the word scores are: the record's pieces detokenized by the one
    detokenizer (a hypothesis of pieces none of which starts a word is taken as words, as its
    word scores are), else its hypothesis text."""
    if isinstance(record.get("tokens"), list):
        return detokenize(record["tokens"])
    return hypothesis_text(record)


def method_names(records):
    """Methods (``sentence_scores`` keys) in order of first appearance."""
    return list(dict.fromkeys(m for r in records for m in r["sentence_scores"]))


def record_token_scores(record, method):
    scores = record.get("token_scores", {}).get(method)
    if not isinstance(scores, list):
        raise QEUserError(f"QE record id {record['id']} has no {method} token_scores")
    return np.asarray(scores, float)


def hypothesis_length(record):
    """Scored tokens of a record: its first method's token scores, else its ``tokens``
    (nan when it has neither)."""
    token_scores = record.get("token_scores")
    if isinstance(token_scores, dict) and token_scores:
        return len(record_token_scores(record, next(iter(token_scores))))
    return len(record["tokens"]) if isinstance(record.get("tokens"), list) else math.nan


def hypothesis_lengths(records):
    return np.array([hypothesis_length(r) for r in records], float)


def aggregated_scores(records, method, aggregate):
    """Sentence scores of ``method`` recomputed from token scores: ``product`` = ∏ s_t,
    ``geomean`` = (∏ s_t)^(1/T); nan for a record without tokens."""
    scores = []
    for record in records:
        tokens = record_token_scores(record, method)
        with np.errstate(divide="ignore"):
            logs = np.log(np.clip(tokens, 0.0, 1.0))
        if not len(logs):
            scores.append(math.nan)
        else:
            scores.append(float(np.exp(logs.sum() if aggregate == "product" else logs.mean())))
    return np.asarray(scores, float)


def method_scores(records, method, aggregate="record"):
    """Sentence scores of ``method`` (one per record; nan where missing) by ``aggregate``."""
    if aggregate not in AGGREGATES:
        raise QEUserError(f"aggregate {aggregate!r} is unknown; use one of {', '.join(AGGREGATES)}")
    if aggregate != "record":
        return aggregated_scores(records, method, aggregate)
    scores = []
    for record in records:
        value = record["sentence_scores"].get(method)
        if value is not None and not isinstance(value, (int, float)):
            raise QEUserError(
                f"QE record id {record['id']}: {method} score {value!r} is not a number"
            )
        scores.append(math.nan if value is None else value)
    return np.asarray(scores, float)


def group_records(records, groups=None):
    """Records grouped by source: by line ``id`` of ``groups`` (one key per sample id) if
    given, else by each record's ``source`` text; groups of one record are left out."""
    grouped = {}
    for record in records:
        if groups is not None:
            if not 0 <= record["id"] < len(groups):
                raise QEUserError(
                    f"QE record id {record['id']} has no line in --groups ({len(groups)} lines)"
                )
            key = groups[record["id"]]
        elif isinstance(record.get("source"), str):
            key = record["source"]
        else:
            raise QEUserError(f"QE record id {record['id']} has no source text: give --groups")
        grouped.setdefault(key, []).append(record)
    return [members for members in grouped.values() if len(members) > 1]


def merged_lines(paths):
    """The lines of several ``--qe-output`` files (the shards of one test set, from
    ``fairseq-generate --num-shards K --shard-id I``) in the input's order: sorted by
    (``id``, ``rank``), each line as written. Every record must have an integer ``id`` and
    ``rank``, and no (id, rank) may come twice."""
    keyed, seen = [], {}
    for path in paths:
        for number, line in enumerate(read_lines(path, "QE file"), 1):
            if not line.strip():
                continue
            record = _parse_record(line, path, number)
            key = (record.get("id"), record.get("rank"))
            if not all(isinstance(value, int) for value in key):
                raise QEUserError(
                    f"{path} line {number} has no integer id and rank (records of "
                    "fairseq-generate --qe-output have both)"
                )
            if key in seen:
                raise QEUserError(
                    f"id {key[0]} rank {key[1]} is in {seen[key]} and in {path} line {number}: "
                    "give each shard once"
                )
            seen[key] = f"{path} line {number}"
            keyed.append((key, line))
    return [line for _, line in sorted(keyed, key=lambda pair: pair[0])]
