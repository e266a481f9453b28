"""Raw-text API and console command: translations with QE, or QE of given translations.

    qe = QEModel.from_checkpoint("head/checkpoint_last.pt", "data-bin", "spm.model")
    qe.translate(["Open the file."])            # beam search + QE
    qe.score(["Open the file."], ["Öffne die Datei."])   # QE of given translations
"""
import argparse
import json
import os
import sys
from argparse import Namespace

from fairseq.data import LanguagePairDataset

from .errors import QEUserError, check_range, install_excepthook
from .inference import generate_with_qe, load_head_model, max_positions
from .textfiles import read_lines
from .words import detokenize


class QEModel:
    """A sigmoid-head checkpoint (as a ``translation_qe`` task) with its dictionaries and
    (optionally) sentencepiece model."""

    def __init__(self, model, task, spm=None, beam=5, max_tokens=4000):
        self.model, self.task, self.spm = model, task, spm
        self.beam, self.max_tokens = beam, max_tokens
        self.src_dict, self.tgt_dict = task.source_dictionary, task.target_dictionary

    @classmethod
    def from_checkpoint(cls, checkpoint, data_dir, spm_model=None, beam=5, max_tokens=4000,
                        include_eos=False, sentence_agg="prod", word_agg="min"):
        model, task = load_head_model(checkpoint, data_dir, qe_include_eos=include_eos,
                                      qe_sentence_agg=sentence_agg, qe_word_agg=word_agg)
        spm = None
        if spm_model:
            import sentencepiece

            try:
                spm = sentencepiece.SentencePieceProcessor(model_file=spm_model)
            except (OSError, RuntimeError) as exc:
                raise QEUserError(f"cannot load sentencepiece model {spm_model}: {exc}") from exc
        return cls(model, task, spm, beam, max_tokens)

    def _pieces(self, text):
        return " ".join(self.spm.encode(text, out_type=str)) if self.spm else text

    def _encode(self, lines, dictionary, kind, limit):
        encoded = []
        for number, line in enumerate(lines, 1):
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

    def _dataset(self, sources, targets=None):
        src_limit, tgt_limit = max_positions(self.task, self.model)
        src = self._encode(sources, self.src_dict, "source", src_limit)
        tgt = (self._encode(targets, self.tgt_dict, "translation", tgt_limit)
               if targets is not None else None)
        return LanguagePairDataset(
            src, [t.numel() for t in src], self.src_dict,
            tgt, [t.numel() for t in tgt] if tgt else None, self.tgt_dict)

    def _records(self, dataset, generation):
        """Each sentence's best hypothesis' QE and detokenized text, in input order."""
        results = [None] * len(dataset)
        for sample, hypos in generate_with_qe(self.task, self.model, dataset, generation,
                                              self.max_tokens):
            for row, beams in enumerate(hypos):
                qe = beams[0]["qe"]
                results[int(sample["id"][row])] = {"translation": detokenize(qe["tokens"]), **qe}
        return results

    def translate(self, sources):
        """Beam-search translations of raw source sentences, each with its QE (read off the
        search)."""
        return self._records(self._dataset(sources), Namespace(beam=self.beam))

    def score(self, sources, translations):
        """QE of given translations (read off fairseq's force-decoding scorer)."""
        if len(sources) != len(translations):
            raise QEUserError(f"{len(sources)} sources but {len(translations)} translations")
        return self._records(self._dataset(sources, translations),
                             Namespace(score_reference=True))


def check_output(path):
    """Before any work: ``--output`` must be new, in a folder that exists and is writable."""
    if path == "-":
        return
    if os.path.lexists(path):
        raise QEUserError(f"--output {path} exists; nothing is overwritten")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise QEUserError(f"--output {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise QEUserError(f"--output {path}: folder {folder} is not writable")


def write_new_file(path, text):
    """``text`` into a new file, removed again if writing fails (never left half-written)."""
    try:
        out = open(path, "x", encoding="utf-8")
    except FileExistsError:
        raise QEUserError(f"--output {path} exists; nothing is overwritten") from None
    except OSError as exc:
        raise QEUserError(f"cannot write --output {path}: {exc.strerror}") from exc
    try:
        with out:
            out.write(text)
    except BaseException as exc:
        os.remove(path)
        if isinstance(exc, OSError):  # e.g. a full disk
            raise QEUserError(f"cannot write --output {path}: {exc.strerror}") from exc
        raise


def main(argv=None):
    install_excepthook()
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe",
        description="Translate raw text with QE, or score given translations (JSONL out).")
    parser.add_argument("command", choices=["translate", "score"])
    parser.add_argument("--checkpoint", required=True, help="sigmoid-head checkpoint")
    parser.add_argument("--data-dir", required=True, help="binarized data dir (dict.*.txt)")
    parser.add_argument("--spm-model", default=None, help="sentencepiece model of the data")
    parser.add_argument("--sources", default="-", help="source sentences, one per line (UTF-8)")
    parser.add_argument("--translations", help="translations to score (score command; UTF-8)")
    parser.add_argument("--output", default="-",
                        help="JSONL output (default stdout; a new file, never overwritten)")
    parser.add_argument("--beam", type=int, default=5, help="beam size (>= 1)")
    parser.add_argument("--max-tokens", type=int, default=4000,
                        help="tokens per batch (>= 1, and at least the longest sentence)")
    parser.add_argument("--include-eos", action="store_true")
    args = parser.parse_args(argv)
    check_range("--beam", args.beam, low=1)
    check_range("--max-tokens", args.max_tokens, low=1)
    if args.command == "score" and not args.translations:
        raise QEUserError("score needs --translations")
    if args.sources == "-" and args.translations == "-":
        raise QEUserError("--sources and --translations cannot both be stdin")
    check_output(args.output)
    sources = read_lines(args.sources, "--sources")
    translations = read_lines(args.translations, "--translations") if args.translations else None
    qe = QEModel.from_checkpoint(args.checkpoint, args.data_dir, args.spm_model, beam=args.beam,
                                 max_tokens=args.max_tokens, include_eos=args.include_eos)
    if args.command == "translate":
        results = qe.translate(sources)
    else:
        results = qe.score(sources, translations)
    text = "".join(json.dumps({"source": source, **record}, ensure_ascii=False) + "\n"
                   for source, record in zip(sources, results))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_new_file(args.output, text)


if __name__ == "__main__":
    main()
