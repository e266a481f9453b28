"""Tests in tiers: every test file declares exactly one tier (``pytestmark``: unit,
integration or e2e, registered in pyproject.toml, selected with ``pytest -m``), and no test
asserts a wall-clock bound (speed targets live in benchmarks/)."""

import ast
import glob
import os
import tomllib

import pytest
from conftest import REPO

pytestmark = pytest.mark.unit

TIERS = ("unit", "integration", "e2e")
TEST_FILES = sorted(glob.glob(os.path.join(REPO, "tests", "test_*.py")))
CLOCKS = {"time", "perf_counter", "monotonic", "process_time", "perf_counter_ns", "time_ns"}


def module_tiers(path):
    """The tier names of a module's top-level ``pytestmark = pytest.mark.X``."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            values = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            for value in values:
                if isinstance(value, ast.Attribute) and value.attr in TIERS:
                    found.append(value.attr)
    return found


def test_the_tiers_are_registered_markers():
    config = tomllib.load(open(os.path.join(REPO, "pyproject.toml"), "rb"))
    markers = config["tool"]["pytest"]["ini_options"]["markers"]
    assert sorted(m.split(":")[0] for m in markers) == sorted(TIERS)


@pytest.mark.parametrize("path", TEST_FILES, ids=os.path.basename)
def test_every_test_file_has_one_tier(path):
    assert len(module_tiers(path)) == 1, f"{path}: set pytestmark = pytest.mark.<{'|'.join(TIERS)}>"


def clock_reads(node):
    return [
        call
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in CLOCKS
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "time"
    ]


@pytest.mark.parametrize("path", TEST_FILES, ids=os.path.basename)
def test_no_wall_clock_assertion(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    timed = [
        node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert) and clock_reads(node)
    ]
    assert not timed, f"{path}:{timed}: a wall-clock bound belongs in benchmarks/"


def test_the_checks_find_what_they_look_for():
    """The clock check on a source that breaks it (so its passing means something)."""
    bad = ast.parse(
        "import time\nstart = time.perf_counter()\nassert time.perf_counter() - start < 2\n"
    )
    assert [n for n in ast.walk(bad) if isinstance(n, ast.Assert) and clock_reads(n)]
    assert not clock_reads(ast.parse("assert len(x) == 3"))
