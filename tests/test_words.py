"""The one detokenizer, and the subword -> word grouping used by QW- lines."""

import pytest

from fairseq_sigmoid_qe.core.words import aggregate_words, detokenize, word_ids

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "pieces,expected",
    [
        (["\u2581Öff", "ne", "\u2581die", "\u2581Datei", "."], [0, 0, 1, 2, 2]),
        (["\u2581", "a", "\u2581b", "\u2581"], [0, 0, 1, 1]),
        (["Öff@@", "ne", "die", "Dat@@", "ei"], [0, 0, 1, 2, 2]),
        (["a", "b"], [0, 1]),
    ],
)
def test_word_ids_follow_detokenized_words(pieces, expected):
    ids = word_ids(pieces)
    assert ids == expected
    assert len(detokenize(pieces).split()) == ids[-1] + 1


@pytest.mark.parametrize(
    "pieces,text",
    [
        (["\u2581Öff", "ne", "\u2581die", "\u2581Datei", ".", "</s>"], "Öffne die Datei."),
        (["\u2581", "a", "\u2581\u2581b", "\u2581"], "a b"),
        (["Das", "Ha@@", "us", "ist", "kle@@"], "Das Haus ist kle"),
        (["a", "b", "</s>"], "a b"),
        ([], ""),
    ],
)
def test_detokenize(pieces, text):
    assert detokenize(pieces) == text


def test_aggregations():
    scores, ids = [0.5, 0.8, 0.9], [0, 0, 1]
    assert aggregate_words(scores, ids, "min") == [0.5, 0.9]
    assert aggregate_words(scores, ids, "prod") == pytest.approx([0.4, 0.9])
    assert aggregate_words(scores, ids, "mean") == pytest.approx([0.65, 0.9])
    with pytest.raises(ValueError):
        aggregate_words(scores, ids, "max")


def test_align_words_maps_tokenized_words_to_the_detokenized_text():
    from fairseq_sigmoid_qe.core.words import align_words

    assert align_words(["Open", "the", "file", "."], "Open the file.") == [0, 1, 2, 2]
    # Moses escapes stand for their characters
    assert align_words(["A", "&amp;", "B", "&apos;s"], "A & B's") == [0, 1, 2, 2]
    assert align_words(["machine", "@-@", "id", "."], "machine-id.") == [0, 0, 0, 0]
    assert align_words(["x", "y"], "xz") is None  # characters differ: no mapping
    assert align_words(["x"], "x y") is None  # text left over
