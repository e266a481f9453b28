"""A head checkpoint that cannot be loaded (cut off, empty, another kind of file, a folder)
ends in one line ``cannot load checkpoint PATH: why`` everywhere: fairseq-generate
--print-qe, the raw-text command and the Python API (the plugin's QEUserError)."""

import subprocess
import sys

import pytest
import torch
from conftest import PACKAGE_DIR, fairseq, one_error_line, raw_text_here

from fairseq_sigmoid_qe import QEUserError
from fairseq_sigmoid_qe.models.checkpoint_files import check_loadable

pytestmark = pytest.mark.integration

DAMAGES = {
    "cut-off": "the file is cut off or damaged, its archive incomplete at ",
    "empty": "the file is empty",
    "text": "not a PyTorch checkpoint",
    "tensor": "not a fairseq checkpoint (no model state)",
    "folder": "it is a folder, not a checkpoint file",
    "missing": "no such file",
}


@pytest.fixture(params=sorted(DAMAGES))
def damaged(request, tmp_path):
    """(path of a damaged checkpoint, the reason every command must give)."""
    path = tmp_path / "checkpoint_last.pt"
    whole = tmp_path / "whole.pt"
    torch.save({"model": {"w": torch.zeros(5000)}, "cfg": None}, whole)
    if request.param == "cut-off":
        path.write_bytes(whole.read_bytes()[:3000])
    elif request.param == "empty":
        path.write_bytes(b"")
    elif request.param == "text":
        path.write_text("this is not a checkpoint\n")
    elif request.param == "tensor":
        torch.save(torch.zeros(3), path)
    elif request.param == "folder":
        path.mkdir()
    return path, DAMAGES[request.param]


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data-bin"
    folder.mkdir()
    for lang in ("en", "de"):
        (folder / f"dict.{lang}.txt").write_text("a 1\nb 1\n")
    return folder


def test_api_raises_its_own_error(damaged, data_dir):
    from fairseq_sigmoid_qe import QEModel

    path, reason = damaged
    with pytest.raises(QEUserError) as caught:
        QEModel.from_checkpoint(str(path), str(data_dir))
    assert str(caught.value).startswith(f"cannot load checkpoint {path}: {reason}")
    with pytest.raises(QEUserError):
        check_loadable(str(path))


def test_raw_text_command(damaged, data_dir, tmp_path):
    """In this process (conftest.raw_text_here); one case by the real command."""
    path, reason = damaged
    for subcommand in ("translate", "score"):
        sources = tmp_path / "src.txt"
        sources.write_text("a b\n")
        arguments = [subcommand, "--checkpoint", path, "--data-dir", data_dir, "--sources", sources]
        arguments += ["--translations", sources] if subcommand == "score" else []
        if reason == DAMAGES["empty"] and subcommand == "translate":
            command = [
                sys.executable,
                "-m",
                "fairseq_sigmoid_qe.cli.raw_text",
                *map(str, arguments),
            ]
            result = subprocess.run(command, capture_output=True, text=True)
        else:
            result = raw_text_here(*arguments)
        assert f"error: cannot load checkpoint {path}: {reason}" in one_error_line(result)


def test_generate_print_qe(damaged, data_dir, tmp_path):
    path, reason = damaged
    arguments = [data_dir, "--user-dir", PACKAGE_DIR, "--path", path, "--print-qe"]
    arguments += ["--qe-output", tmp_path / "qe.jsonl", "--cpu"]
    result = fairseq("generate", *arguments, check=False)
    assert f"error: cannot load checkpoint {path}: {reason}" in one_error_line(result)
    assert not (tmp_path / "qe.jsonl").exists()


@pytest.mark.parametrize("damage", ["text", "folder", "cut-off"])
def test_base_checkpoint_problem_is_said(damage, tmp_path):
    """Not a bare ``KeyError: 101`` or "not found" for a folder: what is wrong with it."""
    from fairseq_sigmoid_qe.models.base_checkpoint import read_base_checkpoint

    path = tmp_path / "base.pt"
    if damage == "text":
        path.write_text("hello\n")
    elif damage == "folder":
        path.mkdir()
    else:
        torch.save({"model": {"w": torch.zeros(5000)}}, path)
        path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(QEUserError) as caught:
        read_base_checkpoint(str(path))
    assert str(caught.value) == f"cannot read base checkpoint {path}: " + (
        DAMAGES[damage] + "3000 bytes" if damage == "cut-off" else DAMAGES[damage]
    )


@pytest.mark.parametrize("case", ["missing", "a file"])
def test_api_refuses_a_data_folder_that_is_not_one(tmp_path, case):
    """Checked before the checkpoint (here not even a file) is read."""
    from fairseq_sigmoid_qe import QEModel

    data = tmp_path / "data-bin"
    if case == "a file":
        data.write_text("not a folder\n")
    with pytest.raises(QEUserError) as caught:
        QEModel.from_checkpoint(str(tmp_path / "head.pt"), str(data))
    what = "does not exist" if case == "missing" else "is not a folder"
    assert str(caught.value) == (
        f"data folder {data} {what}: give the folder fairseq-preprocess wrote (--destdir)"
    )
