"""Subword -> word grouping for word-level QE (sentencepiece ``▁`` or subword-nmt ``@@``)."""
import math

SENTENCEPIECE_SPACE = "\u2581"


def word_ids(pieces):
    """Word index of each subword piece, matching the whitespace-separated words of the
    detokenized text (a bare ``▁`` piece joins the word that follows it, or the previous one
    at the end)."""
    sentencepiece = any(SENTENCEPIECE_SPACE in p for p in pieces)
    ids, word, continues = [], -1, False
    for index, piece in enumerate(pieces):
        if sentencepiece:
            bare = piece == SENTENCEPIECE_SPACE
            starts = word < 0 or (piece.startswith(SENTENCEPIECE_SPACE) and not continues
                                  and not (bare and index == len(pieces) - 1))
            continues = bare
        else:
            starts = word < 0 or not continues
            continues = piece.endswith("@@")
        word += int(starts)
        ids.append(word)
    return ids


def aggregate_words(scores, ids, aggregation="min"):
    """One score per word from its subwords' scores: min, product or mean."""
    groups = {}
    for score, word in zip(scores, ids):
        groups.setdefault(word, []).append(score)
    combine = {"min": min, "prod": math.prod, "mean": lambda v: sum(v) / len(v)}
    if aggregation not in combine:
        raise ValueError(f"unknown word aggregation {aggregation!r}: min, prod or mean")
    return [combine[aggregation](groups[w]) for w in sorted(groups)]
