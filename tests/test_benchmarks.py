"""benchmarks/run_all.py runs end to end on a tiny model (what it prints, not how fast)."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_run_all_prints_every_section_on_a_tiny_model():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "benchmarks", "run_all.py"),
            "--shapes",
            "tiny",
            "--repeats",
            "1",
            "--beams",
            "1",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for expected in (
        "## tiny",
        "head / base update: Adam",
        "peak RSS",
        "largest tensors allocated by a head update",
        "ours / log_softmax",
        "beam 1 ",
        "beam 2 ",
        "score-reference",
        "## scaling",
    ):
        assert expected in out, expected
    assert "identical sets (cut last, first): True, True" in out
    header = next(line for line in out.splitlines() if line.startswith("| V |"))
    row = next(line for line in out.splitlines() if line.startswith("| 300 |"))
    assert header.count("|") == row.count("|")
