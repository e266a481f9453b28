"""Subword pieces and words (sentencepiece ``▁`` or subword-nmt ``@@``): the one detokenizer,
and the subword -> word grouping of word-level QE, which follows it."""

import math

SENTENCEPIECE_SPACE = "\u2581"
EOS = "</s>"
WORD_AGGREGATIONS = ("min", "prod", "mean")


def detokenize(pieces):
    """Text of subword pieces (a list; sentencepiece ``▁`` or subword-nmt ``@@``, else words
    joined by spaces), end-of-sentence symbols dropped."""
    pieces = [p for p in pieces if p != EOS]
    if any(SENTENCEPIECE_SPACE in p for p in pieces):
        return " ".join("".join(pieces).replace(SENTENCEPIECE_SPACE, " ").split())
    text = " ".join(pieces).replace("@@ ", "")
    return text[:-2] if text.endswith("@@") else text


def word_ids(pieces):
    """Word index of each subword piece, matching the whitespace-separated words of the
    detokenized text (a bare ``▁`` piece joins the word that follows it, or the previous one
    at the end)."""
    sentencepiece = any(SENTENCEPIECE_SPACE in p for p in pieces)
    ids, word, continues = [], -1, False
    for index, piece in enumerate(pieces):
        if sentencepiece:
            bare = piece == SENTENCEPIECE_SPACE
            starts = word < 0 or (
                piece.startswith(SENTENCEPIECE_SPACE)
                and not continues
                and not (bare and index == len(pieces) - 1)
            )
            continues = bare
        else:
            starts = word < 0 or not continues
            continues = piece.endswith("@@")
        word += int(starts)
        ids.append(word)
    return ids


def aggregate_words(scores, ids, aggregation="min"):
    """One score per word from its subwords' scores: min, product or mean."""
    if aggregation not in WORD_AGGREGATIONS:
        raise ValueError(f"unknown word aggregation {aggregation!r}: min, prod or mean")
    groups = {}
    for score, word in zip(scores, ids):
        groups.setdefault(word, []).append(score)
    combine = {"min": min, "prod": math.prod, "mean": lambda v: sum(v) / len(v)}
    return [combine[aggregation](groups[w]) for w in sorted(groups)]


def word_spans(text):
    """(start, end) character offsets of each whitespace-separated word of ``text`` (as
    :func:`detokenize` writes it: one word per :func:`word_ids` group)."""
    spans, start = [], None
    for index, char in enumerate(text + " "):
        if char.isspace():
            if start is not None:
                spans.append((start, index))
                start = None
        elif start is None:
            start = index
    return spans


MOSES_MARKS = {"@-@": "-"}  # Moses' aggressive dash splitting: "machine @-@ id"


def align_words(tokenized, text):
    """For each word of ``tokenized`` (a tokenizer's words, e.g. Moses' ``file`` ``.``, its
    escapes such as ``&amp;`` and its split-dash mark ``@-@`` read as the characters they
    stand for), the index of the whitespace-separated word of ``text`` (the detokenized text,
    ``file.``) where it starts; None where their characters, spaces aside, differ."""
    import html

    owner = [i for i, (start, end) in enumerate(word_spans(text)) for _ in range(end - start)]
    position, aligned = 0, []
    letters = "".join(text.split())
    for word in tokenized:
        chars = "".join(html.unescape(MOSES_MARKS.get(word, word)).split())
        if not chars or letters[position : position + len(chars)] != chars:
            return None
        aligned.append(owner[position])
        position += len(chars)
    return aligned if position == len(letters) else None
