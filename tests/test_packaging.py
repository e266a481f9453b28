"""pyproject.toml: the entry points exist, the tested torch range holds setup.sh's exact pin,
every version bound says why; a command that needs fairseq says in one line which extra
installs it."""

import importlib
import importlib.util
import os
import re
import tomllib

import pytest
from conftest import REPO

pytestmark = pytest.mark.unit


def project():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def test_entry_points_exist_and_torch_is_pinned():
    for command, target in project()["scripts"].items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), command
    assert "torch>=2.13,<2.14" in project()["dependencies"]
    assert "fairseq-fixed==0.12.3.1" in project()["optional-dependencies"]["fairseq"]


def test_setup_pins_a_torch_inside_the_stated_range():
    """setup.sh installs the exact CPU build (torch==2.13.0), which pyproject's tested range
    holds, as does the torch of this environment."""
    import torch
    from packaging.requirements import Requirement

    setup = open(os.path.join(REPO, "setup.sh"), encoding="utf-8").read()
    pin = re.search(r"^TORCH_PIN=torch==(\S+)$", setup, re.M).group(1)
    assert pin == "2.13.0"
    stated = [Requirement(r) for r in project()["dependencies"] if r.startswith("torch")][0]
    assert stated.specifier.contains(pin)
    assert stated.specifier.contains(torch.__version__.split("+")[0])


def test_every_bounded_requirement_says_why():
    """Each requirement with a version bound carries its reason on its line."""
    lines = open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8").read().splitlines()
    bounded = [line for line in lines if re.match(r'\s*"[\w-]+\s*[=<>!~]', line)]
    assert len(bounded) >= 10
    for line in bounded:
        assert "#" in line and len(line.split("#", 1)[1].strip()) > 10, line


@pytest.mark.parametrize("command", ["quickstart", "translate", "score", "token-groups"])
def test_missing_fairseq_is_one_line_naming_the_extra(command, monkeypatch, capsys):
    from fairseq_sigmoid_qe.cli import console

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "fairseq" else find_spec(name, *args),
    )
    with pytest.raises(SystemExit) as exit_info:
        console.run(command, [])
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fairseq-sigmoid-qe {command}: error:")
    assert "'fairseq' extra" in lines[0] and "setup.sh" in lines[0]
