"""benchmarks/gpu_check.py: without a CUDA GPU it says so in one line and exits 0, checking
nothing; its checks themselves run (CPU against CPU, ``--device cpu``) on a tiny model, and all
pass, so on a GPU machine a FAILED line is about the GPU, not the script."""

import os
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.integration

SCRIPT = os.path.join(REPO, "benchmarks", "gpu_check.py")


def run(*arguments, **env):
    return subprocess.run(
        [sys.executable, SCRIPT, *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        timeout=600,
    )


def test_without_a_gpu_it_says_so_and_checks_nothing():
    done = run(CUDA_VISIBLE_DEVICES="")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "gpu_check: no CUDA GPU here (torch.cuda.is_available() is False): nothing was checked"
    ]
    assert "Traceback" not in done.stderr


def test_every_check_runs_and_passes_cpu_against_cpu():
    done = run("--device", "cpu", "--shape", "tiny", "--updates", "2", "--repeats", "1")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "FAILED" not in done.stdout
    assert sum(line.startswith("ok ") for line in lines) == 15
    assert lines[-1] == "gpu_check: every check passed"
    # the same negatives replayed, so CPU against CPU is exact
    assert "adam: fp32 losses of 2 updates, CPU vs CPU (max relative difference): 0 " in done.stdout
    assert sum("throughput" in line for line in lines) == 2
