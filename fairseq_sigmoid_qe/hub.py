"""Raw-text API and console command: translations with QE, or QE of given translations.

    qe = QEModel.from_checkpoint("head/checkpoint_last.pt", "data-bin", "spm.model")
    qe.translate(["Open the file."])            # beam search + QE
    qe.score(["Open the file."], ["Öffne die Datei."])   # QE of given translations
"""
import argparse
import glob
import json
import os
import sys
from argparse import Namespace

from fairseq.data import LanguagePairDataset

from .calibration import load_calibration
from .errors import QEUserError, check_range, install_excepthook, warn_once
from .inference import generate_with_qe, load_head_model, max_positions
from .run_report import Progress, ScoreSummary
from .scoring import DEFAULT_METHODS, METHODS
from .textfiles import StreamedOutput, read_lines, refuse_existing
from .words import detokenize


CHUNK_SENTENCES = 1000


class QEModel:
    """A sigmoid-head checkpoint (as a ``translation_qe`` task) with its dictionaries and
    (optionally) sentencepiece model. Sentences go through the model in chunks of
    ``chunk_sentences`` (each sorted by length into batches of at most ``max_tokens`` tokens
    and ``batch_size`` sentences), so that records come out in input order as chunks finish."""

    def __init__(self, model, task, spm=None, beam=5, max_tokens=4000, batch_size=None,
                 chunk_sentences=CHUNK_SENTENCES):
        self.model, self.task, self.spm = model, task, spm
        self.beam, self.max_tokens, self.batch_size = beam, max_tokens, batch_size
        self.chunk_sentences = chunk_sentences
        self.src_dict, self.tgt_dict = task.source_dictionary, task.target_dictionary

    @classmethod
    def from_checkpoint(cls, checkpoint, data_dir, spm_model=None, beam=5, max_tokens=4000,
                        include_eos=False, sentence_agg="prod", word_agg="min", batch_size=None,
                        device="cpu", methods=DEFAULT_METHODS, mc_samples=None, seed=1,
                        calibration=None):
        """``methods``: QE methods (names of ``scoring.METHODS``, a tuple or comma list);
        ``mc_samples``, ``seed``: of the Monte-Carlo methods; ``calibration``: a calibration
        file (``fairseq-sigmoid-qe calibrate``) whose calibrated scores, tags and error spans
        every record also gets."""
        if not isinstance(methods, str):
            methods = ",".join(methods)
        model, task = load_head_model(checkpoint, data_dir, qe_include_eos=include_eos,
                                      qe_sentence_agg=sentence_agg, qe_word_agg=word_agg,
                                      qe_methods=methods, qe_mc_samples=mc_samples, seed=seed,
                                      qe_calibration=calibration)
        model.to(device)
        spm = None
        if spm_model:
            import sentencepiece

            try:
                spm = sentencepiece.SentencePieceProcessor(model_file=spm_model)
            except (OSError, RuntimeError) as exc:
                raise QEUserError(f"cannot load sentencepiece model {spm_model}: {exc}") from exc
        return cls(model, task, spm, beam, max_tokens, batch_size)

    def _pieces(self, text):
        return " ".join(self.spm.encode(text, out_type=str)) if self.spm else text

    def _encode(self, lines, dictionary, kind, limit, first_number=1):
        encoded = []
        for number, line in enumerate(lines, first_number):
            if not line.strip():
                raise QEUserError(f"{kind} line {number} is empty")
            tokens = dictionary.encode_line(self._pieces(line.strip()), add_if_not_exist=False,
                                            append_eos=True).long()
            if tokens.numel() > limit:
                raise QEUserError(f"{kind} line {number} has {tokens.numel()} tokens; the "
                                  f"model takes at most {limit}")
            if tokens.numel() > self.max_tokens:
                raise QEUserError(f"{kind} line {number} has {tokens.numel()} tokens, more "
                                  f"than --max-tokens {self.max_tokens} lets into a batch")
            encoded.append(tokens)
        return encoded

    def _dataset(self, sources, targets=None, first_number=1):
        src_limit, tgt_limit = max_positions(self.task, self.model)
        src = self._encode(sources, self.src_dict, "source", src_limit, first_number)
        tgt = (self._encode(targets, self.tgt_dict, "translation", tgt_limit, first_number)
               if targets is not None else None)
        return LanguagePairDataset(
            src, [t.numel() for t in src], self.src_dict,
            tgt, [t.numel() for t in tgt] if tgt else None, self.tgt_dict)

    def _check_lines(self, sources, targets):
        """Every line checked (empty, too long) before any is searched, a chunk at a time."""
        src_limit, tgt_limit = max_positions(self.task, self.model)
        for start in range(0, len(sources), self.chunk_sentences):
            stop = start + self.chunk_sentences
            self._encode(sources[start:stop], self.src_dict, "source", src_limit, start + 1)
            if targets is not None:
                self._encode(targets[start:stop], self.tgt_dict, "translation", tgt_limit,
                             start + 1)

    def records(self, sources, translations=None, nbest=None, on_batch=None):
        """(sentence index, record) of each sentence in input order, chunk by chunk: with
        ``translations`` the QE of each (read off fairseq's force-decoding scorer), else of
        the beam search's best hypothesis, or of its ``nbest`` best, each with its ``rank``;
        ``on_batch(n)`` is called as each batch of ``n`` sentences is done."""
        if translations is not None and len(sources) != len(translations):
            raise QEUserError(f"{len(sources)} sources but {len(translations)} translations")
        self._check_lines(sources, translations)
        generation = (Namespace(score_reference=True) if translations is not None
                      else Namespace(beam=self.beam, nbest=nbest or 1))
        for start in range(0, len(sources), self.chunk_sentences):
            stop = start + self.chunk_sentences
            dataset = self._dataset(sources[start:stop],
                                    None if translations is None else translations[start:stop],
                                    start + 1)
            chunk = [None] * len(dataset)
            for sample, hypos in generate_with_qe(self.task, self.model, dataset, generation,
                                                  self.max_tokens, self.batch_size):
                for row, beams in enumerate(hypos):
                    chunk[int(sample["id"][row])] = [
                        self._record(hypo["qe"], None if nbest is None else rank)
                        for rank, hypo in enumerate(beams[: nbest or 1])]
                if on_batch is not None:
                    on_batch(len(hypos))
            for index, sentence in enumerate(chunk, start):
                for record in sentence:
                    yield index, record

    @staticmethod
    def _record(qe, rank):
        ranked = {} if rank is None else {"rank": rank}
        return {**ranked, "translation": detokenize(qe["tokens"]), **qe}

    def translate(self, sources, nbest=None):
        """Beam-search translations of raw source sentences, each with its QE (read off the
        search); with ``nbest``, that many per sentence, each with its ``rank``."""
        return [record for _, record in self.records(sources, nbest=nbest)]

    def score(self, sources, translations):
        """QE of given translations (read off fairseq's force-decoding scorer)."""
        return [record for _, record in self.records(sources, translations)]


def check_output(path):
    """Before any work: ``--output`` (and the ``.part`` file it is written to) must be new, in
    a folder that exists and is writable."""
    if path == "-":
        return
    refuse_existing(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise QEUserError(f"--output {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise QEUserError(f"--output {path}: folder {folder} is not writable")


def find_spm_model(data_dir):
    """The one ``*.model`` file in ``data_dir``, its parent, or a folder beside it (as in
    ``text/spm.model`` beside ``data-bin``); None if there is none."""
    parent = os.path.dirname(os.path.abspath(data_dir))
    found = sorted({os.path.abspath(p) for pattern in (os.path.join(data_dir, "*.model"),
                                                       os.path.join(parent, "*.model"),
                                                       os.path.join(parent, "*", "*.model"))
                    for p in glob.glob(pattern) if os.path.isfile(p)})
    if len(found) > 1:
        raise QEUserError(f"--spm-model not given and {len(found)} sentencepiece models found "
                          f"near --data-dir ({', '.join(found)}): choose one with --spm-model")
    return found[0] if found else None


def device_of(args):
    """The torch device of ``--cpu``/``--device`` (default: the GPU when there is one)."""
    import torch

    if args.cpu and args.device not in (None, "cpu"):
        raise QEUserError(f"--cpu and --device {args.device} contradict each other")
    name = "cpu" if args.cpu else args.device
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise QEUserError(f"--device {name} is not a device (cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise QEUserError(f"--device {name}: no CUDA GPU is available")
    if device.type not in ("cpu", "cuda"):
        raise QEUserError(f"--device {name} is not a device (cpu, cuda, cuda:N)")
    return device


def main(argv=None):
    install_excepthook()
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe",
        description="Translate raw text with QE, or score given translations (JSONL out). "
        "'fairseq-sigmoid-qe calibrate --help': fit a calibration on a dev set.")
    parser.add_argument("command", choices=["translate", "score"])
    parser.add_argument("--checkpoint", required=True, help="sigmoid-head checkpoint")
    parser.add_argument("--data-dir", required=True, help="binarized data dir (dict.*.txt)")
    parser.add_argument("--spm-model", default=None,
                        help="sentencepiece model of the data (default: the one *.model file "
                             "in --data-dir, its parent, or a folder beside it)")
    parser.add_argument("--sources", default="-", help="source sentences, one per line (UTF-8)")
    parser.add_argument("--translations", help="translations to score (score command; UTF-8)")
    parser.add_argument("--output", default="-",
                        help="JSONL output (default stdout; a new file, never overwritten)")
    parser.add_argument("--beam", type=int, default=5, help="beam size (>= 1)")
    parser.add_argument("--nbest", type=int, default=None,
                        help="translate: records of the N best hypotheses, each with its rank "
                             "(1 <= N <= --beam)")
    parser.add_argument("--max-tokens", type=int, default=4000,
                        help="tokens per batch (>= 1, and at least the longest sentence)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="sentences per batch at most (>= 1; default: --max-tokens decides)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (--device cpu)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: the GPU when there is one)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of torch (>= 1; default: torch's)")
    parser.add_argument("--include-eos", action="store_true")
    parser.add_argument("--qe-methods", default=",".join(DEFAULT_METHODS),
                        help="comma list of QE methods, in output order: " + ", ".join(METHODS))
    parser.add_argument("--qe-mc-samples", type=int, default=None,
                        help="samples of the Monte-Carlo methods (default 10)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the Monte-Carlo methods (default 1)")
    parser.add_argument("--calibration", default=None, metavar="FILE.json",
                        help="a calibration file (fairseq-sigmoid-qe calibrate): calibrated "
                        "scores, OK/BAD tags and error spans in each record")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--summary", action="store_true",
                        help="at the end, each method's mean and 10/50/90%% quantiles of the "
                             "best hypotheses' sentence scores on stderr")
    args = parser.parse_args(argv)
    check_range("--beam", args.beam, low=1)
    check_range("--max-tokens", args.max_tokens, low=1)
    if args.batch_size is not None:
        check_range("--batch-size", args.batch_size, low=1)
    if args.threads is not None:
        check_range("--threads", args.threads, low=1)
    if args.nbest is not None:
        if args.command == "score":
            raise QEUserError("--nbest is for translate (score has one translation per source)")
        check_range("--nbest", args.nbest, low=1, high=args.beam, meaning="at most --beam")
    if args.command == "score" and not args.translations:
        raise QEUserError("score needs --translations")
    if args.sources == "-" and args.translations == "-":
        raise QEUserError("--sources and --translations cannot both be stdin")
    check_output(args.output)
    if args.calibration:  # checked before the model is loaded
        load_calibration(args.calibration, METHODS, "--calibration")
    device = device_of(args)
    spm_model = args.spm_model or find_spm_model(args.data_dir)
    if spm_model is None:
        warn_once("no --spm-model given or found beside --data-dir: the text is taken as "
                  "subword pieces")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    sources = read_lines(args.sources, "--sources")
    translations = read_lines(args.translations, "--translations") if args.translations else None
    qe = QEModel.from_checkpoint(args.checkpoint, args.data_dir, spm_model, beam=args.beam,
                                 max_tokens=args.max_tokens, include_eos=args.include_eos,
                                 batch_size=args.batch_size, device=device,
                                 methods=args.qe_methods, mc_samples=args.qe_mc_samples,
                                 seed=args.seed, calibration=args.calibration)
    progress = None if args.quiet else Progress(len(sources), sys.stderr)
    summary = ScoreSummary() if args.summary else None
    records = qe.records(sources, translations, nbest=args.nbest,
                         on_batch=progress.update if progress else None)
    output = StreamedOutput(args.output)
    try:
        for index, record in records:
            output.write(json.dumps({"source": sources[index], **record}, ensure_ascii=False)
                         + "\n")
            if summary is not None and record.get("rank", 0) == 0:
                summary.add(record["sentence_scores"])
    except BaseException:
        output.discard()
        raise
    output.commit()
    if progress is not None:
        progress.finish()
    if summary is not None:
        sys.stderr.write("".join(line + "\n" for line in summary.lines()))


if __name__ == "__main__":
    main()
