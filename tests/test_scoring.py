"""Token -> sentence QE (pure functions, no fairseq run)."""

import math

import pytest

from fairseq_sigmoid_qe.core.qe_methods import SMALLEST_SCORE, hypothesis_qe, sentence_score

pytestmark = pytest.mark.unit


class Dictionary:
    """The little of fairseq's Dictionary that QE records use."""

    symbols = ["<s>", "<pad>", "</s>", "<unk>", "\u2581Öff", "ne", "\u2581die", "\u2581Datei"]

    def eos(self):
        return 2

    def __getitem__(self, index):
        return self.symbols[index]


def test_sentence_aggregations():
    scores = [0.5, 0.8, 0.25]
    assert sentence_score(scores, "prod") == pytest.approx(0.1)
    assert sentence_score(scores, "mean_log") == pytest.approx(0.1 ** (1 / 3))  # geometric mean
    assert sentence_score(scores, "min") == 0.25
    assert sentence_score([0.0, 0.5], "mean_log") == pytest.approx(math.sqrt(SMALLEST_SCORE * 0.5))
    for aggregation in ("prod", "mean_log", "min"):  # in [0, 1], higher = better, always
        assert 0 <= sentence_score([1e-30] * 50, aggregation) <= 1
        assert sentence_score([0.9, 0.9], aggregation) > sentence_score([0.2, 0.2], aggregation)
    assert math.isnan(sentence_score([], "prod"))
    with pytest.raises(ValueError, match="aggregation"):
        sentence_score(scores, "max")


@pytest.mark.parametrize("include_eos", [False, True])
def test_hypothesis_qe_leaves_out_eos_by_default(include_eos):
    tokens = [4, 5, 6, 7, 2]
    scores = {
        "sigmoid": [0.9, 0.5, 0.8, 0.7, 0.1],
        "softmax": [0.4, 0.5, 0.6, 0.7, 0.2],
        "boostedprob": [0.9, 0.5, 0.6, 0.7, 0.2],
    }
    record = hypothesis_qe(
        scores, tokens, Dictionary(), include_eos=include_eos, word_agg="min", sentence_agg="prod"
    )
    kept = 5 if include_eos else 4
    assert len(record["tokens"]) == kept
    assert record["token_scores"]["sigmoid"] == scores["sigmoid"][:kept]
    for method, values in scores.items():
        assert record["sentence_scores"][method] == pytest.approx(math.prod(values[:kept]))
    if not include_eos:
        assert record["tokens"] == ["\u2581Öff", "ne", "\u2581die", "\u2581Datei"]
        assert record["word_scores"]["sigmoid"] == [0.5, 0.8, 0.7]


def test_hypothesis_qe_without_word_level_or_final_eos():
    record = hypothesis_qe(
        {"sigmoid": [0.9, 0.5]}, [4, 5], Dictionary(), word_level=False, sentence_agg="min"
    )
    assert record["word_scores"] is None
    assert record["tokens"] == ["\u2581Öff", "ne"]
    assert record["sentence_scores"]["sigmoid"] == 0.5


def test_long_hypotheses_keep_their_log_score():
    """1,000 tokens at 0.3: the product is below the smallest float, its log is not."""
    scores = {"sigmoid": [0.3] * 1000, "softmax": [0.31] * 1000}
    record = hypothesis_qe(scores, [4] * 1000, Dictionary())
    logs = record["sentence_log_scores"]
    assert math.prod(scores["sigmoid"]) == 0.0 and record["sentence_scores"]["sigmoid"] == 0.0
    assert logs["sigmoid"] == pytest.approx(1000 * math.log(0.3))
    assert logs["softmax"] > logs["sigmoid"]  # the ranking the underflowed products lose
    short = hypothesis_qe({"sigmoid": [0.5, 0.8]}, [4, 5], Dictionary(), sentence_agg="min")
    assert short["sentence_log_scores"]["sigmoid"] == pytest.approx(math.log(0.4))
    assert (
        hypothesis_qe({"sigmoid": [0.0, 0.5]}, [4, 5], Dictionary())["sentence_log_scores"][
            "sigmoid"
        ]
        == pytest.approx(math.log(SMALLEST_SCORE) + math.log(0.5))  # finite: float32's floor
    )
