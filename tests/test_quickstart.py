"""The main job end to end with its defaults (the README's step 2): the sigmoid head beats
softmax probability on the synthetic task, outputs, table, no overwriting."""
import json

import pytest

from fairseq_sigmoid_qe import quickstart
from fairseq_sigmoid_qe.errors import QEUserError


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default quickstart (fixed seed 1); about 5 minutes on 2 cores."""
    workdir = tmp_path_factory.mktemp("quickstart") / "run"
    rows = quickstart.run(["--workdir", str(workdir), "--seed", "1"])
    return workdir, {row["method"]: row["pearson"] for row in rows}


def test_sigmoid_head_beats_softmax_probability(default_run):
    _, pearson = default_run
    assert pearson["sigmoid"] > pearson["softmax"], pearson


def test_table_has_every_method(default_run):
    _, pearson = default_run
    assert set(pearson) == {"sigmoid", "softmax", "boostedprob"}
    assert all(-1.0 <= value <= 1.0 for value in pearson.values()), pearson


def test_outputs_written(default_run):
    workdir, pearson = default_run
    results = json.loads((workdir / "results.json").read_text())
    assert {row["method"]: row["pearson"] for row in results["correlations"]} == pearson
    assert all(0.5 < row["token_auc"] <= 1.0 for row in results["correlations"]), results
    records = [json.loads(line) for line in (workdir / "qe.jsonl").read_text().splitlines()]
    assert len(records) == 500
    assert all(0.0 <= r["gold"] <= 1.0 for r in records)


def test_token_groups_match_the_exact_labels(default_run):
    from fairseq_sigmoid_qe.synthetic import load_language

    workdir, _ = default_run
    groups = json.loads((workdir / "results.json").read_text())["token_groups"]
    records = [json.loads(line) for line in (workdir / "qe.jsonl").read_text().splitlines()]
    language = load_language(workdir / "text" / "lexicon.json")
    labels = [label for r in records for word, label in zip(
        r["hypothesis"].split(),
        language.token_labels(r["source"].split(), r["hypothesis"].split())) if word != "<unk>"]
    hypothesis = {row["group"]: row for row in groups["hypothesis"]}
    assert hypothesis["valid_argmax"]["count"] + hypothesis["valid_other"]["count"] == sum(labels)
    wrong = hypothesis["wrong_dominant"]["count"] + hypothesis["wrong_other"]["count"]
    assert wrong == len(labels) - sum(labels) > 0
    references = {row["group"]: row["count"] for row in groups["reference"]}
    assert references["wrong_dominant"] == references["wrong_other"] == 0
    assert references["valid_argmax"] + references["valid_other"] == sum(
        1 for r in records for word in r["reference"].split() if word != "<unk>")
    # force-decoded group means agree with the scores read off the beam search
    for method in ("sigmoid", "softmax", "boostedprob"):
        scores = [s for r in records for s in r["token_scores"][method]]
        pooled = sum(row["count"] * row[method] for row in hypothesis.values() if row["count"])
        assert pooled / len(scores) == pytest.approx(sum(scores) / len(scores), abs=1e-3)


def test_existing_workdir_is_never_overwritten(default_run):
    workdir, _ = default_run
    before = (workdir / "results.json").read_text()
    with pytest.raises(QEUserError, match="already exists"):
        quickstart.run(["--workdir", str(workdir)])
    assert (workdir / "results.json").read_text() == before


def test_console_refuses_existing_workdir_with_one_line(default_run):
    import subprocess
    import sys

    workdir, _ = default_run
    result = subprocess.run([sys.executable, "-m", "fairseq_sigmoid_qe.quickstart",
                             "--workdir", str(workdir)], capture_output=True, text=True)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("fairseq-sigmoid-qe: error:")]
    assert len(errors) == 1 and "already exists" in errors[0]
    assert "Traceback" not in result.stderr


def test_zero_threads_is_refused_with_one_line(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "fairseq_sigmoid_qe.quickstart", "--workdir",
                             str(tmp_path / "run"), "--threads", "0"], capture_output=True, text=True)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if "error:" in line] == [
        "fairseq-sigmoid-qe-quickstart: error: --threads must be at least 1"]
    assert not (tmp_path / "run").exists()
