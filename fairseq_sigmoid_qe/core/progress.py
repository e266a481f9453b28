"""What long runs tell the user on stderr: progress lines while the raw-text command or a
quickstart training step runs, and the summary of the sentence scores at the end (no fairseq)."""

import math
import re
import subprocess
import time
from array import array

import numpy

from .errors import program

SUMMARY_QUANTILES = (0.1, 0.5, 0.9)


def duration(seconds):
    """``1h02m03s``, ``2m03s`` or ``3s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Progress:
    """``PREFIX N/TOTAL UNIT (P%), R UNIT/s, ETA T`` lines on ``stream``, at most one every
    ``interval`` seconds, and a last line when :meth:`finish` is called."""

    def __init__(
        self,
        total,
        stream,
        interval=10.0,
        clock=time.monotonic,
        unit="sentences",
        prefix=None,
    ):
        prefix = f"{program()}:" if prefix is None else prefix
        self.total, self.stream, self.interval, self.clock = total, stream, interval, clock
        self.unit, self.prefix = unit, prefix
        self.done, self.start = 0, clock()
        self.last = self.start

    def update(self, count):
        """``count`` more are done; a line if ``interval`` seconds passed since the last."""
        self.update_to(self.done + count)

    def update_to(self, done):
        """``done`` are done in all; a line if ``interval`` seconds passed since the last."""
        self.done = done
        now = self.clock()
        if now - self.last >= self.interval and 0 < self.done < self.total:
            self.last = now
            self._line(now, f"ETA {duration((self.total - self.done) / self._rate(now))}")

    def finish(self):
        self._line(self.clock(), "done")

    def _rate(self, now):
        return self.done / max(now - self.start, 1e-9)

    def _line(self, now, tail):
        self.stream.write(
            f"{self.prefix} {self.done}/{self.total} {self.unit} "
            f"({100 * self.done / self.total:.0f}%), {self._rate(now):.1f} "
            f"{self.unit}/s, {duration(now - self.start)} elapsed, {tail}\n"
        )
        self.stream.flush()


UPDATES_LOGGED = re.compile(r"num_updates[= ](\d+)")


def last_logged_update(text):
    """The last ``num_updates`` a fairseq training log reports (0 if none yet)."""
    found = UPDATES_LOGGED.findall(text)
    return int(found[-1]) if found else 0


def follow_training(process, log_path, progress, poll_seconds=5.0):
    """Wait for a fairseq-train ``process``, feeding ``progress`` the updates its log at
    ``log_path`` reports; its exit code."""
    offset = 0
    while True:
        try:
            code = process.wait(timeout=poll_seconds)
        except subprocess.TimeoutExpired:
            code = None
        with open(log_path, encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            text = log.read()
            offset = log.tell()
        done = last_logged_update(text)
        if done:
            progress.update_to(done)
        if code is not None:
            return code


class ScoreSummary:
    """Per-method mean and 10/50/90% quantiles of the sentence scores (``sentence_scores`` of
    each best hypothesis), kept as one float per sentence and method."""

    def __init__(self):
        self.scores = {}

    def add(self, sentence_scores):
        for method, score in sentence_scores.items():
            value = float("nan") if score is None else score  # an empty hypothesis: null
            self.scores.setdefault(method, array("d")).append(value)

    def statistics(self, method):
        """(mean, quantiles, sentences used, sentences left out) of ``method``'s finite
        scores (an empty hypothesis' NaN is left out)."""
        values = numpy.frombuffer(self.scores[method], dtype=numpy.float64)
        finite = values[numpy.isfinite(values)]
        if finite.size == 0:
            return math.nan, [math.nan] * len(SUMMARY_QUANTILES), 0, values.size
        return (
            float(finite.mean()),
            [float(q) for q in numpy.quantile(finite, SUMMARY_QUANTILES)],
            int(finite.size),
            int(values.size - finite.size),
        )

    def lines(self):
        """A header and one line per method: ``METHOD mean p10 p50 p90 (N sentences)``."""
        names = " ".join(f"{f'p{round(100 * q)}':>10}" for q in SUMMARY_QUANTILES)
        lines = [f"{program()}: sentence scores  {'method':<12}{'mean':>10} {names}"]
        for method in self.scores:
            mean, quantiles, used, left_out = self.statistics(method)
            values = " ".join(f"{v:10.6g}" for v in [mean, *quantiles])
            note = f", {left_out} left out (not finite)" if left_out else ""
            lines.append(
                f"{program()}: sentence scores  {method:<12}{values}  ({used} sentences{note})"
            )
        return lines
