"""--gold-json: the evaluator reads comet-score --to_json output (the paper's XCOMET-XL gold)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from fairseq_sigmoid_qe.cli import evaluate as cli_evaluate
from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.evaluation.gold import load_comet_json, load_gold

pytestmark = pytest.mark.unit

ERROR_PREFIX = "fairseq-sigmoid-qe evaluate: error:"


def comet_json(path, scores, system="hyp.de", references=True, errors=False):
    """A file laid out as comet-score --to_json writes it (unbabel-comet 2.2.7, score.py)."""
    segments = []
    for i, score in enumerate(scores):
        segment = {"src": f"source {i}", "mt": f"Übersetzung {i}"}
        if references:
            segment["ref"] = f"Referenz {i}"
        segment["COMET"] = score
        if errors and i % 2:
            segment["errors"] = [
                {"text": "Über", "confidence": 0.7, "severity": "minor", "start": 0, "end": 4}
            ]
        segments.append(segment)
    path.write_text(json.dumps({system: segments}, ensure_ascii=False, indent=4), "utf-8")
    return str(path)


def records_file(path, scores):
    lines = [
        json.dumps({"id": i, "rank": 0, "tokens": ["\u2581w"], "sentence_scores": {"sigmoid": s}})
        for i, s in enumerate(scores)
    ]
    path.write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    return str(path)


def run_cli(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "fairseq_sigmoid_qe.cli.evaluate", *arguments],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def one_error(result):
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


@pytest.mark.parametrize("references, errors", [(True, True), (False, False)])
def test_scores_in_segment_order(tmp_path, references, errors):
    scores = [0.91, 0.12, 0.5, 1.0]
    path = comet_json(tmp_path / "x.json", scores, references=references, errors=errors)
    assert load_comet_json(path) == scores
    assert load_gold(path, "json") == scores


def test_same_table_as_the_same_scores_one_per_line(tmp_path, capsys):
    rng = np.random.default_rng(4)
    gold = rng.uniform(size=30)
    predicted = np.clip(0.6 * gold + rng.normal(0, 0.2, 30), 0, 1)
    qe = records_file(tmp_path / "qe.jsonl", predicted.tolist())
    lines = tmp_path / "gold.txt"
    lines.write_text("".join(f"{v!r}\n" for v in gold.tolist()), encoding="utf-8")
    results = []
    for option, path in (
        ("--gold-json", comet_json(tmp_path / "gold.json", gold.tolist())),
        ("--gold-scores", str(lines)),
    ):
        assert cli_evaluate.main(["--qe", qe, option, path, "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["gold"] == "json" and results[1]["gold"] == "scores"
    assert results[0]["methods"] == results[1]["methods"]
    assert results[0]["methods"][0]["pearson"] > 0.5


def test_malformed_json_is_one_error_line(tmp_path):
    qe = records_file(tmp_path / "qe.jsonl", [0.1, 0.2])
    bad = tmp_path / "bad.json"
    bad.write_text('{"hyp.de": [{"COMET": 0.5},', encoding="utf-8")
    line = one_error(run_cli("--qe", qe, "--gold-json", str(bad)))
    assert f"{bad} is not JSON" in line


def test_wrong_length_is_one_error_line(tmp_path):
    qe = records_file(tmp_path / "qe.jsonl", [0.1, 0.2, 0.3])
    short = comet_json(tmp_path / "short.json", [0.4, 0.6])
    line = one_error(run_cli("--qe", qe, "--gold-json", short))
    assert "has no line in" in line and short in line


def test_missing_score_key_is_one_error_line(tmp_path):
    qe = records_file(tmp_path / "qe.jsonl", [0.1, 0.2])
    path = tmp_path / "nokey.json"
    path.write_text(json.dumps({"hyp.de": [{"mt": "a", "COMET": 0.3}, {"mt": "b"}]}), "utf-8")
    line = one_error(run_cli("--qe", qe, "--gold-json", str(path)))
    assert "segment 2 of 'hyp.de' has no numeric 'COMET' score" in line


@pytest.mark.parametrize(
    "content, message",
    [
        ([0.1, 0.2], "expected comet-score --to_json output"),
        ({}, "expected comet-score --to_json output"),
        ({"a.de": [{"COMET": 0.1}], "b.de": [{"COMET": 0.2}]}, "holds 2 translations files"),
        ({"a.de": []}, "is not a non-empty list"),
        ({"a.de": [{"COMET": "0.5"}]}, "segment 1 of 'a.de' has no numeric"),
        ({"a.de": [{"COMET": True}]}, "segment 1 of 'a.de' has no numeric"),
        ({"a.de": [0.5]}, "segment 1 of 'a.de' has no numeric"),
    ],
)
def test_other_layouts_are_refused(tmp_path, content, message):
    path = tmp_path / "gold.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(QEUserError, match=message):
        load_comet_json(str(path))


def test_one_gold_only(tmp_path):
    qe = records_file(tmp_path / "qe.jsonl", [0.1, 0.2])
    gold = comet_json(tmp_path / "gold.json", [0.4, 0.6])
    with pytest.raises(QEUserError, match="give exactly one of --gold-scores, --gold-json"):
        cli_evaluate.run(
            cli_evaluate.parse_args(["--qe", qe, "--gold-json", gold, "--gold-scores", gold])
        )
