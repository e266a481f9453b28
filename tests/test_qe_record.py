"""The one QE record (core/qe_methods/records.py): strict JSON, sentence scores in [0, 1],
underflowing and 1,000-token hypotheses, refusals of what would not be strict JSON."""

import json
import math

import pytest

from fairseq_sigmoid_qe.core.qe_methods import hypothesis_qe
from fairseq_sigmoid_qe.core.qe_methods.records import (
    RECORD_VERSION,
    RecordError,
    build_record,
    decoding_info,
    dumps,
    loads,
)
from fairseq_sigmoid_qe.evaluation.records import load_records

pytestmark = pytest.mark.unit


class Dictionary:
    symbols = ["<s>", "<pad>", "</s>", "<unk>", "\u2581a", "b", "\u2581c"]

    def eos(self):
        return 2

    def __getitem__(self, index):
        return self.symbols[index]


def strict(line):
    """Parse as a strict JSON parser does: NaN, Infinity and -Infinity are not JSON."""

    def refuse(name):
        raise AssertionError(f"{name} in {line[:80]}")

    return json.loads(line, parse_constant=refuse)


def record_of(scores, tokens, **options):
    qe = hypothesis_qe(scores, tokens, Dictionary(), **options)
    return build_record(qe, id=3, translation="a b c", decoding=decoding_info("beam", beam=5))


@pytest.mark.parametrize("aggregation", ["prod", "mean_log", "min"])
def test_thousand_underflowing_tokens_are_strict_json(aggregation):
    """1,000 tokens at 1e-3 (a product of e^-6908) and one exact 0 (a float32 underflow):
    every value finite, the sentence score in [0, 1], the log kept."""
    tokens = [4, 5, 6] * 333 + [4]
    scores = {"sigmoid": [1e-3] * 999 + [0.0], "softmax": [0.4] * 1000}
    record = record_of(scores, tokens + [2], sentence_agg=aggregation)
    line = dumps(record)
    parsed = strict(line)
    assert parsed == loads(line)
    assert parsed["version"] == RECORD_VERSION and parsed["id"] == 3 and parsed["rank"] == 0
    assert len(parsed["tokens"]) == len(parsed["token_scores"]["sigmoid"]) == 1000
    for method in ("sigmoid", "softmax"):
        assert 0.0 <= parsed["sentence_scores"][method] <= 1.0
        assert math.isfinite(parsed["sentence_log_scores"][method])
    assert parsed["sentence_log_scores"]["sigmoid"] < 999 * math.log(1e-3)  # the 0 counts
    assert parsed["sentence_log_scores"]["softmax"] == pytest.approx(1000 * math.log(0.4))
    if aggregation == "mean_log":  # the geometric mean, not a raw mean log
        assert parsed["sentence_scores"]["softmax"] == pytest.approx(0.4)


def test_non_finite_values_are_never_written():
    record = record_of({"sigmoid": [0.5, 0.5]}, [4, 5])
    for path in (("token_scores", "sigmoid"), ("sentence_log_scores", "sigmoid")):
        broken = json.loads(json.dumps(record))
        if path[0] == "token_scores":
            broken[path[0]][path[1]][0] = math.nan
        else:
            broken[path[0]][path[1]] = -math.inf
        with pytest.raises(RecordError, match="not finite"):
            dumps(broken)
    above = dict(record, sentence_scores={"sigmoid": 1.5})
    with pytest.raises(RecordError, match=r"outside \[0, 1\]"):
        dumps(above)
    with pytest.raises(RecordError, match="no version"):
        dumps({k: v for k, v in record.items() if k != "version"})
    with pytest.raises(ValueError, match="NaN is not JSON"):
        loads('{"a": NaN}')


def test_an_empty_hypothesis_has_null_sentence_scores():
    record = record_of({"sigmoid": [0.7]}, [2])  # only EOS, left out
    parsed = strict(dumps(record))
    assert parsed["tokens"] == [] and parsed["sentence_scores"] == {"sigmoid": None}
    assert parsed["sentence_log_scores"] == {"sigmoid": None}


def test_the_evaluator_reads_records(tmp_path):
    path = tmp_path / "qe.jsonl"
    lines = []
    for index, score in enumerate([0.25, 0.5]):
        qe = hypothesis_qe({"sigmoid": [score]}, [4, 2], Dictionary())
        lines.append(
            dumps(
                build_record(
                    qe, id=index, source="x", translation="a", decoding=decoding_info("forced")
                )
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = load_records(str(path))
    assert [r["sentence_scores"]["sigmoid"] for r in records] == [0.25, 0.5]
    assert records[0]["decoding"] == {"search": "forced"}
