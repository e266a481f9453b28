"""The main job end to end (small synthetic run): outputs, table, no overwriting."""
import json

import pytest

from fairseq_sigmoid_qe import quickstart
from fairseq_sigmoid_qe.errors import QEUserError


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quickstart") / "run"
    rows = quickstart.run([
        "--workdir", str(workdir), "--train-pairs", "3000", "--base-updates", "150",
        "--head-updates", "60", "--test-pairs", "300", "--seed", "1"])
    return workdir, {row["method"]: row["pearson"] for row in rows}


def test_table_has_every_method(small_run):
    _, pearson = small_run
    assert set(pearson) == {"sigmoid", "softmax", "boostedprob"}
    assert all(-1.0 <= value <= 1.0 for value in pearson.values()), pearson


def test_outputs_written(small_run):
    workdir, pearson = small_run
    results = json.loads((workdir / "results.json").read_text())
    assert {row["method"]: row["pearson"] for row in results["correlations"]} == pearson
    records = [json.loads(line) for line in (workdir / "qe.jsonl").read_text().splitlines()]
    assert len(records) == 300
    assert all(0.0 <= r["gold"] <= 1.0 for r in records)


def test_existing_workdir_is_never_overwritten(small_run):
    workdir, _ = small_run
    before = (workdir / "results.json").read_text()
    with pytest.raises(QEUserError, match="already exists"):
        quickstart.run(["--workdir", str(workdir)])
    assert (workdir / "results.json").read_text() == before


def test_console_refuses_existing_workdir_with_one_line(small_run):
    import subprocess
    import sys

    workdir, _ = small_run
    result = subprocess.run([sys.executable, "-m", "fairseq_sigmoid_qe.quickstart",
                             "--workdir", str(workdir)], capture_output=True, text=True)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("fairseq-sigmoid-qe: error:")]
    assert len(errors) == 1 and "already exists" in errors[0]
    assert "Traceback" not in result.stderr
