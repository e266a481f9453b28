"""The one command: real subcommands with their own --help (defaults shown), --version, the
older script names as aliases, messages naming the subcommand, fairseq's start-up notices
silenced, and a closed output pipe ending the command quietly."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_error_line

import fairseq_sigmoid_qe
from fairseq_sigmoid_qe.cli import console

pytestmark = pytest.mark.integration

RUN = "import sys; from fairseq_sigmoid_qe.cli.console import {0}; sys.exit({0}())"


def script(function, *arguments, **kwargs):
    """The console script ``function`` of pyproject.toml in a subprocess, as installed."""
    return subprocess.run(
        [sys.executable, "-c", RUN.format(function), *map(str, arguments)],
        capture_output=True,
        text=True,
        **kwargs,
    )


def test_version_and_the_command_list(capsys):
    with pytest.raises(SystemExit) as exit_info:
        console.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"fairseq-sigmoid-qe {fairseq_sigmoid_qe.__version__}\n"
    with pytest.raises(SystemExit):
        console.main(["--help"])
    listed = capsys.readouterr().out
    assert all(f"    {name}" in listed for name in console.COMMANDS)
    with pytest.raises(SystemExit) as exit_info:
        console.main(["translat"])
    assert exit_info.value.code == 2
    assert "fairseq-sigmoid-qe: error: argument COMMAND: invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("command", list(console.COMMANDS))
def test_each_subcommand_has_its_own_help_with_defaults(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        console.main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: fairseq-sigmoid-qe {command} ")
    assert command == "merge" or "(default" in text  # merge's two options are required


def test_translate_and_score_help_differ(capsys):
    texts = {}
    for command in ("translate", "score"):
        with pytest.raises(SystemExit):
            console.main([command, "--help"])
        texts[command] = capsys.readouterr().out
    assert "--sampling" in texts["translate"] and "--sampling" not in texts["score"]
    assert "--translations" in texts["score"] and "--translations" not in texts["translate"]
    assert "(default: 5)" in texts["translate"]  # --beam
    assert "--include-eos         count the end-of-sentence token" in texts["score"]


def test_a_chosen_tokenizer_and_bpe_add_their_options_to_the_help(capsys):
    with pytest.raises(SystemExit):
        console.main(["translate", "--tokenizer", "moses", "--bpe", "subword_nmt", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--bpe-codes BPE_CODES path to subword NMT BPE (required)" in text
    assert "--moses-no-escape" in text and "(default: @@)" in text  # --bpe-separator
    with pytest.raises(SystemExit):
        console.main(["translate", "--help"])
    assert "--bpe-codes" not in capsys.readouterr().out


def test_aliases_and_messages_name_the_command(tmp_path):
    """fairseq-sigmoid-qe-evaluate is fairseq-sigmoid-qe evaluate; its errors say so, and
    no fairseq notice (tensorboardX) is printed by a command that imports fairseq."""
    missing = tmp_path / "missing.jsonl"
    for result in (
        script("evaluate", "--qe", missing, "--gold-scores", missing),
        script("main", "evaluate", "--qe", missing, "--gold-scores", missing),
    ):
        line = one_error_line(result)
        assert line.startswith("fairseq-sigmoid-qe evaluate: error: cannot read")
    (tmp_path / "src.txt").write_text("Open the file.\n", encoding="utf-8")
    translate = script(
        "main",
        "translate",
        "--checkpoint",
        tmp_path / "head.pt",
        "--data-dir",
        tmp_path,
        "--sources",
        tmp_path / "src.txt",
        "--cpu",
    )
    line = one_error_line(translate)
    assert line.startswith("fairseq-sigmoid-qe translate: error:")
    # every line is the command's own (here also a warning: no sentencepiece model found)
    assert all(
        x.startswith("fairseq-sigmoid-qe translate: ") for x in translate.stderr.splitlines()
    )
    assert "tensorboardX" not in translate.stderr and "INFO" not in translate.stderr
    quickstart = script("quickstart", "--threads", "0")
    assert "fairseq-sigmoid-qe quickstart: error: --threads must be at least 1" in quickstart.stderr


@pytest.fixture(scope="module")
def head_checkpoint(trained_head):
    return str(trained_head[0] / "checkpoint_last.pt")


def test_a_closed_pipe_ends_the_command_quietly(real_data_bin, head_checkpoint, tmp_path):
    """stdout's reader is gone before the first record: no traceback, no error line, the exit
    status of a command ended by a closed pipe."""
    text = Path(real_data_bin).parent / "text"
    sources = (text / "test.raw.en").read_text(encoding="utf-8").splitlines()[:3]
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUN.format("main"),
            "translate",
            "--checkpoint",
            head_checkpoint,
            "--data-dir",
            real_data_bin,
            "--sources",
            str(tmp_path / "src.txt"),
            "--cpu",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # as `| head -0` would
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == console.BROKEN_PIPE_EXIT, stderr
    assert "Traceback" not in stderr and "error" not in stderr and "Broken" not in stderr
