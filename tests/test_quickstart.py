"""The main job end to end (the README's step 2), at a reduced size: the same steps and code
as its defaults, outputs written and consistent, QE informative, nothing overwritten."""

import json
import math

import pytest
import torch

from fairseq_sigmoid_qe.cli.quickstart import parse_args
from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.core.qe_methods.records import loads
from fairseq_sigmoid_qe.demo import quickstart

pytestmark = pytest.mark.e2e

METHODS = {"sigmoid", "softmax", "boostedprob"}
TEST_PAIRS = 150
REDUCED = [
    "--train-pairs",
    "2000",
    "--base-updates",
    "200",
    "--head-updates",
    "60",
    "--test-pairs",
    str(TEST_PAIRS),
    "--max-tokens",
    "1024",
]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The quickstart with fewer pairs and updates (about 2 minutes on 2 cores)."""
    workdir = tmp_path_factory.mktemp("quickstart") / "run"
    threads = torch.get_num_threads()
    try:
        rows = quickstart.run(parse_args(["--workdir", str(workdir), "--seed", "1", *REDUCED]))
    finally:
        torch.set_num_threads(threads)  # its --threads would outlast it in this process
    return workdir, {row["method"]: row for row in rows}


def test_every_method_is_informative(small_run):
    """What holds whatever the seed: every method's sentence scores correlate positively
    with the true quality, and its token scores rank valid tokens above wrong ones. (Which
    method wins is one run's margin: the README reports the default run's table.)"""
    _, rows = small_run
    assert set(rows) == METHODS
    for row in rows.values():
        assert 0.0 < row["pearson"] <= 1.0, rows
        assert -1.0 <= row["spearman"] <= 1.0, rows
        assert 0.5 < row["token_auc"] <= 1.0, rows


def test_outputs_written(small_run):
    workdir, rows = small_run
    results = json.loads((workdir / "results.json").read_text())
    assert results["sentences"] == TEST_PAIRS
    assert {row["method"]: row for row in results["correlations"]} == rows
    # the second table: sampled translations of the same test set, their records strict JSON
    sampled = {row["method"]: row for row in results["correlations_sampling"]}
    assert set(sampled) == METHODS and results["sampling"] == {"top_p": 0.9, "seed": 1}
    for row in sampled.values():
        assert -1.0 <= row["pearson"] <= 1.0 and 0.0 <= row["token_auc"] <= 1.0
    lines = (workdir / "qe-sampling.jsonl").read_text().splitlines()
    sampled_records = [loads(line) for line in lines]
    assert sorted(r["id"] for r in sampled_records) == list(range(TEST_PAIRS))
    assert all(
        r["decoding"]
        == {"search": "sampling", "samples": 1, "top_p": 0.9, "temperature": 1.0, "seed": 1}
        for r in sampled_records
    )
    beam = {
        r["id"]: r["tokens"] for r in map(loads, (workdir / "qe.jsonl").read_text().splitlines())
    }
    assert sum(beam[r["id"]] != r["tokens"] for r in sampled_records) > TEST_PAIRS // 10
    records = [json.loads(line) for line in (workdir / "qe.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == list(range(TEST_PAIRS))
    for record in records:
        assert 0.0 <= record["gold"] <= 1.0
        scores = record["token_scores"]
        assert len(record["tokens"]) == len(scores["sigmoid"]) == len(record["translation"].split())
        # BoostedProb is a token's dominant set's mass when it is dominant, else its
        # probability (the search's positional scores are differences of running sums: 1e-4)
        assert all(b >= s * (1 - 1e-4) for b, s in zip(scores["boostedprob"], scores["softmax"]))
        for method in METHODS:
            expected = math.prod(scores[method]) if record["tokens"] else math.nan
            assert record["sentence_scores"][method] == pytest.approx(
                expected, nan_ok=True, rel=1e-6, abs=1e-300
            )


def test_token_groups_match_the_exact_labels(small_run):
    from fairseq_sigmoid_qe.demo.synthetic import load_language

    workdir, _ = small_run
    groups = json.loads((workdir / "results.json").read_text())["token_groups"]
    records = [json.loads(line) for line in (workdir / "qe.jsonl").read_text().splitlines()]
    language = load_language(workdir / "text" / "lexicon.json")
    labels = [
        label
        for r in records
        for word, label in zip(
            r["tokens"],
            language.token_labels(r["source"].split(), r["tokens"]),
        )
        if word != "<unk>"
    ]
    hypothesis = {row["group"]: row for row in groups["hypothesis"]}
    assert hypothesis["valid_argmax"]["count"] + hypothesis["valid_other"]["count"] == sum(labels)
    wrong = hypothesis["wrong_dominant"]["count"] + hypothesis["wrong_other"]["count"]
    assert wrong == len(labels) - sum(labels) > 0
    references = {row["group"]: row["count"] for row in groups["reference"]}
    assert references["wrong_dominant"] == references["wrong_other"] == 0
    assert references["valid_argmax"] + references["valid_other"] == sum(
        1 for r in records for word in r["reference"].split() if word != "<unk>"
    )
    # force-decoded group means agree with the scores read off the beam search
    for method in ("sigmoid", "softmax", "boostedprob"):
        scores = [s for r in records for s in r["token_scores"][method]]
        pooled = sum(row["count"] * row[method] for row in hypothesis.values() if row["count"])
        assert pooled / len(scores) == pytest.approx(sum(scores) / len(scores), abs=1e-3)


def test_existing_workdir_is_never_overwritten(small_run):
    workdir, _ = small_run
    before = (workdir / "results.json").read_text()
    with pytest.raises(QEUserError, match="already exists"):
        quickstart.run(parse_args(["--workdir", str(workdir)]))
    assert (workdir / "results.json").read_text() == before


def test_console_refuses_existing_workdir_with_one_line(small_run):
    import subprocess
    import sys

    workdir, _ = small_run
    result = subprocess.run(
        [sys.executable, "-m", "fairseq_sigmoid_qe.cli.quickstart", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    errors = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("fairseq-sigmoid-qe quickstart: error:")
    ]
    assert len(errors) == 1 and "already exists" in errors[0]
    assert "Traceback" not in result.stderr


def test_zero_threads_is_refused_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        quickstart.run(parse_args(["--workdir", str(tmp_path / "run"), "--threads", "0"]))
    assert exit_info.value.code == 2
    assert [line for line in capsys.readouterr().err.splitlines() if "error:" in line] == [
        "fairseq-sigmoid-qe quickstart: error: --threads must be at least 1"
    ]
    assert not (tmp_path / "run").exists()
