"""The raw-text command (fairseq-sigmoid-qe) given bad bytes, a bad --output, long text."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import one_error_line


@pytest.fixture(scope="module")
def head_checkpoint(trained_head):
    return str(trained_head[0] / "checkpoint_last.pt")


def command(real_data_bin, head_checkpoint, *arguments, stdin=b""):
    """The command in a subprocess, stdin given as bytes; its output decoded."""
    spm_model = Path(real_data_bin).parent / "text" / "spm.model"
    result = subprocess.run(
        [sys.executable, "-m", "fairseq_sigmoid_qe.hub", *arguments, "--checkpoint",
         head_checkpoint, "--data-dir", real_data_bin, "--spm-model", str(spm_model)],
        input=stdin, capture_output=True)
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    return result


def test_non_utf8_input_is_one_error_line(real_data_bin, head_checkpoint, tmp_path):
    sources, translations = tmp_path / "src.txt", tmp_path / "hyp.txt"
    sources.write_bytes("Open the file.\nSave all.\n".encode("utf-8"))
    translations.write_bytes(b"\xd6ffne die Datei.\nSpeichern Sie alles.\n")  # Latin-1 "Ö"
    result = command(real_data_bin, head_checkpoint, "score", "--sources", sources,
                     "--translations", translations)
    assert one_error_line(result).endswith(
        f"--translations {translations} is not UTF-8 text: line 1 has the byte 0xd6")
    piped = command(real_data_bin, head_checkpoint, "translate",
                    stdin=b"Open the file.\nSave \xff all.\n")
    assert one_error_line(piped).endswith(
        "--sources stdin is not UTF-8 text: line 2 has the byte 0xff")


def test_sentence_longer_than_max_tokens(real_data_bin, head_checkpoint, tmp_path):
    sources = tmp_path / "src.txt"
    sources.write_text("Open the file.\nSave all of the files in the folder now.\n",
                       encoding="utf-8")
    result = command(real_data_bin, head_checkpoint, "translate", "--sources", sources,
                     "--max-tokens", "8")
    assert " ".join(one_error_line(result).split()[2:6]) == "source line 2 has"
    assert one_error_line(result).endswith("tokens, more than --max-tokens 8 lets into a batch")


def test_output_folder_is_checked_before_any_work(real_data_bin, tmp_path):
    sources = tmp_path / "src.txt"
    sources.write_text("Open the file.\n", encoding="utf-8")
    output = tmp_path / "missing" / "qe.jsonl"
    # the checkpoint does not exist either: the output is checked before it would be read
    result = command(real_data_bin, str(tmp_path / "no-head.pt"), "translate",
                     "--sources", sources, "--output", output)
    assert f"--output {output}: folder {output.parent} does not exist" in one_error_line(result)
    existing = tmp_path / "qe.jsonl"
    existing.write_text("keep me\n")
    result = command(real_data_bin, str(tmp_path / "no-head.pt"), "translate",
                     "--sources", sources, "--output", existing)
    assert "exists; nothing is overwritten" in one_error_line(result)
    assert existing.read_text() == "keep me\n"


def test_long_translations_keep_a_ranking(real_data_bin, head_checkpoint, tmp_path):
    """Two 1,000-token translations: the products underflow to 0, their logs still rank."""
    sources, translations = tmp_path / "src.txt", tmp_path / "hyp.txt"
    sources.write_text("Open the file.\nOpen the file.\n", encoding="utf-8")
    translations.write_text(" ".join(["Datei"] * 1000) + "\n" + " ".join(["die"] * 1000) + "\n",
                            encoding="utf-8")
    output = tmp_path / "qe.jsonl"
    result = command(real_data_bin, head_checkpoint, "score", "--sources", sources,
                     "--translations", translations, "--output", output)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert all(len(r["tokens"]) >= 1000 for r in records)
    underflowed = 0
    for method in ("sigmoid", "softmax", "boostedprob"):
        logs = [r["sentence_log_scores"][method] for r in records]
        for record, log in zip(records, logs):
            assert log == pytest.approx(math.fsum(map(math.log, record["token_scores"][method])))
            assert record["sentence_scores"][method] == pytest.approx(math.exp(log), abs=0)
            assert math.isfinite(log)
            underflowed += log < -746  # exp(log) is 0.0
        assert logs[0] != logs[1]
    assert underflowed >= 2
