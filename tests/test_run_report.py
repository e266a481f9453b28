"""The raw-text command's stderr report: progress lines and the sentence-score summary."""
import io
import math

import numpy
import pytest

from fairseq_sigmoid_qe.run_report import Progress, ScoreSummary, duration


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
    assert stream.getvalue() == ("fairseq-sigmoid-qe: 100/1000 sentences (10%), 10.0 "
                                 "sentences/s, 10s elapsed, ETA 1m30s\n")
    clock.now += 5
    progress.update(100)  # 5 s after the last line: none
    assert stream.getvalue().count("\n") == 1
    clock.now += 85
    progress.update(800)
    progress.finish()
    last = stream.getvalue().splitlines()[-1]
    assert last == ("fairseq-sigmoid-qe: 1000/1000 sentences (100%), 10.0 sentences/s, "
                    "1m40s elapsed, done")
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
