"""ruff (lint and format check, configured in pyproject.toml) passes on the whole repository:
part of the suite, so CI runs it. Skipped, with the reason, only where ruff is not installed
(it is in the ``test`` extra that setup.sh installs)."""

import importlib.util
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.unit


def ruff_command():
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (pip install ruff, or the test extra: bash setup.sh)")
    return [found]


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(check):
    result = subprocess.run(
        [*ruff_command(), *check, "."], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
