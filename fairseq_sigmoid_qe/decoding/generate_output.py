"""fairseq-generate's and fairseq-interactive's output with QE: after each hypothesis' ``P-``
line its ``Q-``, ``QT-`` and ``QW-`` lines, and the ``--qe-output`` JSONL file.

The ``translation_qe`` task hands every scored batch to the active :class:`QEPrinter` (the
one :mod:`..tasks.generate_hook` makes a fairseq-generate run's output stream and a
fairseq-interactive run's ``sys.stdout``), which holds at most that batch's lines until
fairseq prints the ``P-`` lines they follow.
"""

from collections import deque
from contextlib import contextmanager

from fairseq.utils import strip_pad

from ..core.errors import QEUserError
from ..core.qe_methods.records import build_record, dumps
from ..core.textfiles import StreamedOutput, check_new_output
from ..evaluation.calibration import drop_word_level
from .search_loop import decoding_of

_ACTIVE = []


def qe_lines(sample_id, qe, word_level):
    """The Q- (sentence QE of each of the record's methods, in its order), QT- (the first
    token-level method's score per subword) and, at word level, QW- (its score per word)
    lines of one hypothesis' QE record."""
    methods = qe["sentence_log_scores"]  # the record's methods, in --qe-methods order
    sentence = "\t".join(f"{qe['sentence_scores'][m]:.6g}" for m in methods)
    lines = [f"Q-{sample_id}\t{sentence}"]
    shown = next(iter(qe["token_scores"]), None)
    if shown is not None:
        lines.append(f"QT-{sample_id}\t" + " ".join(f"{s:.4f}" for s in qe["token_scores"][shown]))
        if word_level:
            lines.append(
                f"QW-{sample_id}\t" + " ".join(f"{s:.4f}" for s in qe["word_scores"][shown])
            )
    return lines


@contextmanager
def printing(printer):
    """Make ``printer`` the one the task hands scored batches to, while the run lasts."""
    _ACTIVE.append(printer)
    try:
        yield printer
    finally:
        _ACTIVE.remove(printer)


def active_printer():
    return _ACTIVE[-1] if _ACTIVE else None


class QEPrinter:
    """A fairseq-generate or fairseq-interactive output stream (``cfg``: the run's config):
    every line passes through unchanged, and after a ``P-<id>`` line come that hypothesis' QE
    lines (then, with ``flush_after_qe``, the stream is flushed: fairseq-interactive's
    answer to a line is out as soon as it is scored). With ``--quiet`` fairseq-generate prints
    no ``P-`` lines, so each batch's QE lines are written as soon as it is scored."""

    def __init__(self, stream, cfg, flush_after_qe=False):
        self.stream, self.buffer = stream, ""
        self.quiet, self.nbest = cfg.common_eval.quiet, cfg.generation.nbest
        self.post_process = cfg.common_eval.post_process
        self.word_level = bool(self.post_process or getattr(cfg.bpe, "_name", None))
        self.tokenizer_cfg, self.bpe_cfg = cfg.tokenizer, cfg.bpe
        self.decoding = decoding_of(
            cfg.generation, getattr(getattr(cfg, "common", None), "seed", None)
        )
        self.flush_after_qe = flush_after_qe
        # fairseq-interactive's samples carry no ids: its batches set the rows' input lines
        self.batch_ids, self.lines_before = None, 0
        self.output, self.jsonl, self.decode = cfg.task.qe_output, None, None
        if self.output:
            check_new_output(self.output, "--qe-output")
        self.pending = {}

    def add(self, task, sample, hypos):
        """QE lines (and JSONL records) of a scored batch's ``--nbest`` hypotheses."""
        self._write_pending()  # lines whose P- line never came are written, never held on
        ids = sample["id"].tolist() if "id" in sample else self.batch_ids
        if ids is None or len(ids) != len(hypos):
            raise QEUserError("--print-qe: a scored batch has no sample ids to print QE lines for")
        for i, beams in enumerate(hypos):
            for rank, hypo in enumerate(beams[: self.nbest]):
                qe = hypo.get("qe")
                if qe is None:
                    continue
                if self.output:
                    self._write_record(
                        task,
                        sample["net_input"]["src_tokens"][i],
                        hypo,
                        dict(qe),
                        ids[i],
                        rank,
                    )
                lines = qe_lines(ids[i], qe, self.word_level)
                if self.quiet:
                    self._write_lines(lines)
                    if self.flush_after_qe:
                        self.stream.flush()
                else:
                    self.pending.setdefault(ids[i], deque()).append(lines)

    def _write_record(self, task, src_tokens, hypo, qe, sample_id, rank):
        if self.jsonl is None:  # QEPRINTER.part, renamed by close() when the run succeeds
            self.jsonl = StreamedOutput(self.output, "--qe-output")
            tokenizer, bpe = task.build_tokenizer(self.tokenizer_cfg), task.build_bpe(self.bpe_cfg)

            def decode(text):
                text = bpe.decode(text) if bpe is not None else text
                return tokenizer.decode(text) if tokenizer is not None else text

            self.decode = decode
        if not self.word_level:
            qe["word_scores"] = None
            drop_word_level(qe)
        source = task.source_dictionary
        hypothesis = task.target_dictionary.string(hypo["tokens"], self.post_process)
        record = build_record(
            qe,
            id=sample_id,
            rank=rank,
            source=source.string(strip_pad(src_tokens, source.pad()), self.post_process),
            translation=self.decode(hypothesis),  # the D- line's text
            decoding=self.decoding,
        )
        self.jsonl.write(dumps(record) + "\n")

    def _write_lines(self, lines):
        for line in lines:
            self.stream.write(line + "\n")

    def _write_pending(self):
        for queue in self.pending.values():
            for lines in queue:
                self._write_lines(lines)
        self.pending.clear()

    def write(self, text):
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            self.stream.write(line + "\n")
            if line.startswith("P-"):
                sample_id = int(line[2:].split("\t", 1)[0])
                queue = self.pending.get(sample_id)
                if queue:
                    self._write_lines(queue.popleft())
                    if not queue:
                        del self.pending[sample_id]
                    if self.flush_after_qe:
                        self.stream.flush()
        return len(text)

    def flush(self):
        if self.buffer:
            self.stream.write(self.buffer)
            self.buffer = ""
        self.stream.flush()

    def close(self, succeeded=True):
        """Write what is left and flush; the JSONL file becomes ``--qe-output`` if the run
        ``succeeded``, else it is removed (never left half-written)."""
        if self.jsonl is not None and not succeeded:
            self.jsonl.discard()
        self._write_pending()
        self.flush()
        if self.jsonl is not None and succeeded:
            self.jsonl.commit()

    def __getattr__(self, name):
        return getattr(self.stream, name)
