"""pyproject.toml: the entry points exist, torch is pinned; a command that needs fairseq says
in one line which extra installs it."""

import importlib
import importlib.util
import os
import tomllib

import pytest
from conftest import REPO


def project():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def test_entry_points_exist_and_torch_is_pinned():
    for command, target in project()["scripts"].items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), command
    assert "torch==2.13.0" in project()["dependencies"]
    assert "fairseq-fixed==0.12.3.1" in project()["optional-dependencies"]["fairseq"]


@pytest.mark.parametrize("command", ["quickstart", "raw_text"])
def test_missing_fairseq_is_one_line_naming_the_extra(command, monkeypatch, capsys):
    from fairseq_sigmoid_qe.cli import console

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "fairseq" else find_spec(name, *args),
    )
    with pytest.raises(SystemExit) as exit_info:
        getattr(console, command)()
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fairseq-sigmoid-qe: error:")
    assert "'fairseq' extra" in lines[0] and "setup.sh" in lines[0]
