"""The raw-text command's stderr report: progress lines and the sentence-score summary."""

import io
import math

import numpy
import pytest

from fairseq_sigmoid_qe.core.progress import Progress, ScoreSummary, duration

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_lines_at_most_every_interval_with_rate_and_eta():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(1000, stream, interval=10, clock=clock)
    clock.now += 4
    progress.update(40)  # 4 s after the start: no line yet
    assert stream.getvalue() == ""
    clock.now += 6
    progress.update(60)  # 100 sentences in 10 s: 10/s, 900 left: ETA 90 s
    assert stream.getvalue() == (
        "fairseq-sigmoid-qe: 100/1000 sentences (10%), 10.0 sentences/s, 10s elapsed, ETA 1m30s\n"
    )
    clock.now += 5
    progress.update(100)  # 5 s after the last line: none
    assert stream.getvalue().count("\n") == 1
    clock.now += 85
    progress.update(800)
    progress.finish()
    last = stream.getvalue().splitlines()[-1]
    assert last == (
        "fairseq-sigmoid-qe: 1000/1000 sentences (100%), 10.0 sentences/s, 1m40s elapsed, done"
    )
    assert stream.getvalue().count("\n") == 2  # no ETA line once everything is done


def test_duration():
    assert [duration(s) for s in (0, 59.4, 61, 3725)] == ["0s", "59s", "1m01s", "1h02m05s"]


def test_summary_is_mean_and_quantiles_of_finite_scores():
    rng = numpy.random.default_rng(0)
    scores = rng.random((101, 2))
    summary = ScoreSummary()
    for sigmoid, softmax in scores:
        summary.add({"sigmoid": float(sigmoid), "softmax": float(softmax)})
    summary.add({"sigmoid": math.nan, "softmax": 0.5})  # an empty hypothesis' NaN
    mean, quantiles, used, left_out = summary.statistics("sigmoid")
    assert (used, left_out) == (101, 1)
    assert mean == pytest.approx(scores[:, 0].mean(), rel=1e-12)
    assert quantiles == pytest.approx(numpy.quantile(scores[:, 0], [0.1, 0.5, 0.9]), rel=1e-12)
    assert quantiles[1] == pytest.approx(numpy.median(scores[:, 0]), rel=1e-12)
    lines = summary.lines()
    assert lines[0].split()[-5:] == ["method", "mean", "p10", "p50", "p90"]
    assert lines[1].split()[3:8] == ["sigmoid"] + [f"{v:.6g}" for v in [mean, *quantiles]]
    assert lines[1].endswith("(101 sentences, 1 left out (not finite))")
    assert lines[2].endswith("(102 sentences)")


def test_last_logged_update_of_a_fairseq_log():
    from fairseq_sigmoid_qe.core.progress import last_logged_update

    log = (
        "epoch 001:    100 / 771 loss=1.3, num_updates=100, lr=0.001\n"
        "valid on 'valid' subset | loss 1.301 | num_updates 200 | best_loss 1.3\n"
    )
    assert last_logged_update(log) == 200
    assert last_logged_update("loading data\n") == 0


def test_training_progress_follows_the_log(tmp_path):
    """A stand-in training process writes fairseq-style lines; its progress lines report
    them as they come, and its exit code is returned."""
    import subprocess
    import sys

    from fairseq_sigmoid_qe.core.progress import follow_training

    log_path = tmp_path / "train.log"
    script = (
        "import sys, time\n"
        "for n in (50, 100, 150):\n"
        "    print(f'epoch 001: loss=1.0, num_updates={n}', flush=True)\n"
        "    time.sleep(0.3)\n"
        "sys.exit(3)\n"
    )
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=log)
    stream = io.StringIO()
    progress = Progress(200, stream, interval=0, unit="updates", prefix="[train]")
    assert follow_training(process, log_path, progress, poll_seconds=0.05) == 3
    lines = stream.getvalue().splitlines()
    assert lines and all(line.startswith("[train] ") and " updates (" in line for line in lines)
    assert lines[-1].startswith("[train] 150/200 updates (75%)")
    reported = [int(line.split()[1].split("/")[0]) for line in lines]
    assert reported == sorted(reported)
