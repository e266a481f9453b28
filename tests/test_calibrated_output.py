"""A calibration applied where QE records are made: fairseq-generate --print-qe
--qe-calibration and the raw-text API/command add the calibrated part and change nothing
else (an uncalibrated run stays byte-identical); a bad calibration file is one error line."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import PACKAGE_DIR, fairseq, one_error_line

from fairseq_sigmoid_qe.evaluation import calibration as cal

pytestmark = pytest.mark.integration

OPTIONS = [
    "--beam",
    "5",
    "--nbest",
    "2",
    "--batch-size",
    "16",
    "--cpu",
    "--post-process",
    "sentencepiece",
    "--max-len-b",
    "40",
    "--print-qe",
]
ADDED = ("calibrated", "errors")


@pytest.fixture(scope="module")
def head_checkpoint(trained_head):
    return str(trained_head[0] / "checkpoint_last.pt")


def write_calibration(path, records=(), method="sigmoid"):
    """A calibration whose word map tags about half of the words of ``records`` BAD."""
    scores = [s for r in records for s in r["word_scores"]["sigmoid"]]
    cut = float(np.median(cal.features("word", scores))) if scores else 0.0
    x = np.sort(np.r_[np.linspace(-6, 6, 61), cut])
    word = cal.LevelCalibration.fit("word", "isotonic", x, (x > cut).astype(float), x <= cut)
    logs = np.linspace(-30, 0, 61)
    sentence = cal.LevelCalibration.fit(
        "sentence", "platt", logs, (logs > -8).astype(float), logs <= -8
    )
    path.write_text(cal.Calibration(method, {"word": word, "sentence": sentence}).dumps())
    return path


def without_calibration(line):
    record = json.loads(line)
    return json.dumps({k: v for k, v in record.items() if k not in ADDED}, ensure_ascii=False)


def check_calibrated(record, calibration, text):
    calibrated = record["calibrated"]
    assert calibrated["method"] == calibration.method
    words = calibration.levels["word"]
    scores = words(cal.features("word", record["word_scores"][calibration.method]))
    assert calibrated["word_scores"] == pytest.approx(scores.tolist())
    assert calibrated["word_tags"] == ["OK" if s >= words.threshold else "BAD" for s in scores]
    assert len(calibrated["word_tags"]) == len(text.split())
    bad = [w for w, t in zip(text.split(), calibrated["word_tags"]) if t == "BAD"]
    assert [w for error in record["errors"] for w in error["text"].split()] == bad
    for error in record["errors"]:
        assert text[error["start"] : error["end"]] == error["text"]


def test_generate_adds_the_calibrated_part_and_nothing_else(
    real_data_bin, head_checkpoint, tmp_path
):
    common = [real_data_bin, "--user-dir", PACKAGE_DIR, "--path", head_checkpoint, *OPTIONS]
    plain = fairseq("generate", *common, "--qe-output", tmp_path / "plain.jsonl")
    plain_lines = (tmp_path / "plain.jsonl").read_text(encoding="utf-8").splitlines()
    path = write_calibration(tmp_path / "cal.json", [json.loads(line) for line in plain_lines])
    calibration = cal.load_calibration(path, ("sigmoid",))
    calibrated = fairseq(
        "generate", *common, "--qe-output", tmp_path / "cal.jsonl", "--qe-calibration", path
    )
    assert [line for line in calibrated.stdout.splitlines() if line[:1] in "SHDPQ"] == [
        line for line in plain.stdout.splitlines() if line[:1] in "SHDPQ"
    ]
    lines = (tmp_path / "cal.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(plain_lines) > 100
    assert [without_calibration(line) for line in lines] == plain_lines
    records = [json.loads(line) for line in lines]
    assert all(ADDED[0] not in json.loads(line) for line in plain_lines)
    tags = [t for r in records for t in r["calibrated"]["word_tags"]]
    assert 0.1 < tags.count("BAD") / len(tags) < 0.9, "the test's map should tag both ways"
    for record in records:
        check_calibrated(record, calibration, record["translation"])


def test_raw_text_api_and_command(real_data_bin, head_checkpoint, tmp_path):
    from pathlib import Path

    from fairseq_sigmoid_qe.api import QEModel

    text = Path(real_data_bin).parent / "text"
    sources = (text / "test.raw.en").read_text(encoding="utf-8").splitlines()[:12]
    spm_model = str(text / "spm.model")
    plain = QEModel.from_checkpoint(head_checkpoint, real_data_bin, spm_model).translate(sources)
    path = write_calibration(tmp_path / "cal.json", plain)
    calibration = cal.load_calibration(path, ("sigmoid",))
    qe = QEModel.from_checkpoint(head_checkpoint, real_data_bin, spm_model, calibration=str(path))
    records = qe.translate(sources)
    for record, uncalibrated in zip(records, plain):
        assert {k: v for k, v in record.items() if k not in ADDED} == uncalibrated
        check_calibrated(record, calibration, record["translation"])
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "fairseq_sigmoid_qe.cli.raw_text",
        "translate",
        "--checkpoint",
        head_checkpoint,
        "--data-dir",
        real_data_bin,
        "--spm-model",
        spm_model,
        "--sources",
        str(tmp_path / "src.txt"),
        "--cpu",
        "--quiet",
    ]
    result = subprocess.run([*command, "--calibration", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [json.loads(line)["errors"] for line in result.stdout.splitlines()] == [
        r["errors"] for r in records
    ]
    assert any(r["errors"] for r in records)
    write_calibration(tmp_path / "other.json", method="comet")
    refused = subprocess.run(
        [*command, "--calibration", str(tmp_path / "other.json")], capture_output=True, text=True
    )
    assert "calibrates the method 'comet', which this run does not score" in one_error_line(refused)
    assert refused.stdout == ""


def test_generate_refuses_a_bad_calibration_file(real_data_bin, head_checkpoint, tmp_path):
    (tmp_path / "corrupt.json").write_text('{"format": "fairseq-sigmoid-qe-calibration", "ver')
    common = [real_data_bin, "--user-dir", PACKAGE_DIR, "--path", head_checkpoint]
    result = fairseq(
        "generate",
        *common,
        *OPTIONS,
        "--qe-output",
        tmp_path / "qe.jsonl",
        "--qe-calibration",
        tmp_path / "corrupt.json",
        check=False,
    )
    assert "--qe-calibration" in one_error_line(result)
    assert "is not a calibration file" in one_error_line(result)
    assert not (tmp_path / "qe.jsonl").exists() and not (tmp_path / "qe.jsonl.part").exists()
    alone = fairseq("generate", *common, "--qe-calibration", tmp_path / "corrupt.json", check=False)
    assert "--qe-calibration needs --print-qe" in one_error_line(alone)
