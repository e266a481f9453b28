"""fairseq-interactive --print-qe in real subprocesses: the Q-/QT-/QW- lines after each
hypothesis, fairseq's own lines byte-identical, streaming (a line in, its QE out), the
--qe-output records; an entry point that would compute QE and write none refuses."""

import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import PACKAGE_DIR, one_error_line

from fairseq_sigmoid_qe.core.qe_methods.records import RECORD_VERSION, loads

pytestmark = pytest.mark.integration

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| ")
QE_LINE = re.compile(r"^Q[TW]?-\d+\t")


@pytest.fixture(scope="module")
def head_checkpoint(trained_head):
    return str(trained_head[0] / "checkpoint_last.pt")


@pytest.fixture(scope="module")
def sentences(real_data_bin):
    text = Path(real_data_bin).parent / "text"
    lines = (text / "test.raw.en").read_text(encoding="utf-8").splitlines()[:6]
    return lines, str(text / "spm.model")


def interactive_command(real_data_bin, head_checkpoint, spm_model, *extra):
    return [
        sys.executable,
        "-m",
        "fairseq_cli.interactive",
        real_data_bin,
        "--user-dir",
        PACKAGE_DIR,
        "--path",
        head_checkpoint,
        "--source-lang",
        "en",
        "--target-lang",
        "de",
        "--bpe",
        "sentencepiece",
        "--sentencepiece-model",
        spm_model,
        "--beam",
        "4",
        "--nbest",
        "2",
        "--max-len-b",
        "30",
        "--cpu",
        *map(str, extra),
    ]


def run(command, lines):
    result = subprocess.run(command, input="\n".join(lines) + "\n", capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def fairseq_lines(stdout):
    return [line for line in stdout.splitlines() if not LOG_LINE.match(line)]


def test_interactive_print_qe(real_data_bin, head_checkpoint, sentences, tmp_path):
    lines, spm_model = sentences
    base = interactive_command(real_data_bin, head_checkpoint, spm_model)
    plain = run(base, lines)
    output = tmp_path / "qe.jsonl"
    with_qe = run([*base, "--print-qe", "--qe-output", output], lines)
    assert not any(QE_LINE.match(line) for line in plain.splitlines())
    # fairseq's own lines, timings aside, are those of the run without QE
    untimed = [re.sub(r"^W-(\d+)\t.*", r"W-\1", line) for line in fairseq_lines(plain)]
    kept = [line for line in fairseq_lines(with_qe) if not QE_LINE.match(line)]
    assert [re.sub(r"^W-(\d+)\t.*", r"W-\1", line) for line in kept] == untimed
    ordered = [
        line.split("\t", 1)[0].split("-")[0]
        for line in with_qe.splitlines()
        if re.match(r"^(P|Q|QT|QW)-\d+\t", line)
    ]
    assert ordered == ["P", "Q", "QT", "QW"] * (2 * len(lines))  # QE right after its P-
    records = [loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    expected = [(i, k) for i in range(len(lines)) for k in (0, 1)]
    assert [(r["id"], r["rank"]) for r in records] == expected
    fields = [line.split("\t") for line in with_qe.splitlines()]
    sources = {int(f[0][2:]): f[1] for f in fields if f[0].startswith("S-")}
    detok = [f[2] for f in fields if f[0].startswith("D-")]
    sentence = [f[1:] for f in fields if f[0].startswith("Q-")]
    words = [f[1].split() for f in fields if f[0].startswith("QW-")]
    for record, text, q, w in zip(records, detok, sentence, words):
        assert record["version"] == RECORD_VERSION
        assert record["decoding"] == {"search": "beam", "beam": 4}
        assert record["source"] == sources[record["id"]]
        assert record["translation"] == text
        assert [float(x) for x in q] == pytest.approx(
            list(record["sentence_scores"].values()), rel=1e-5, abs=1e-12
        )
        assert len(w) == len(record["word_scores"]["sigmoid"]) == len(text.split())


def test_interactive_streams_a_line_in_its_qe_out(real_data_bin, head_checkpoint, sentences):
    """The second line is written only after the first one's QE lines came back."""
    lines, spm_model = sentences
    process = subprocess.Popen(
        [*interactive_command(real_data_bin, head_checkpoint, spm_model), "--print-qe"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out = queue.Queue()
    threading.Thread(target=lambda: [out.put(line) for line in process.stdout], daemon=True).start()

    def read_until(prefix):
        seen = []
        while True:
            line = out.get(timeout=180)  # queue.Empty fails the test: nothing streamed
            seen.append(line)
            if line.startswith(prefix):
                return seen

    try:
        for index, line in enumerate(lines[:2]):
            process.stdin.write(line + "\n")
            process.stdin.flush()
            answer = read_until(f"QW-{index}\t")
            assert any(a.startswith(f"Q-{index}\t") for a in answer)
            assert not any(a.startswith(f"S-{index + 1}\t") for a in answer)
            if index == 0:  # the second hypothesis' QE too
                read_until("QW-0\t")
        process.stdin.close()
        assert process.wait(timeout=120) == 0
    finally:
        process.kill()


def test_an_entry_point_that_cannot_write_qe_refuses(real_data_bin, head_checkpoint):
    """A Python call of fairseq-generate's cli_main with --task translation_qe --print-qe:
    nothing would write the QE, so one error line, no translation."""
    code = (
        "import sys\n"
        "from fairseq_cli.generate import cli_main\n"
        f"sys.argv = ['mine', {real_data_bin!r}, '--user-dir', {PACKAGE_DIR!r}, "
        f"'--task', 'translation_qe', '--print-qe', '--path', {head_checkpoint!r}, '--cpu']\n"
        "cli_main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "would compute QE and write none of it" in one_error_line(result)
    assert not any(line.startswith("H-") for line in result.stdout.splitlines())
