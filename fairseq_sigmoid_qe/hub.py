"""Raw-text API and console command: translations with QE, or QE of given translations.

    qe = QEModel.from_checkpoint("head/checkpoint_last.pt", "data-bin", "spm.model")
    qe.translate(["Open the file."])            # beam search + QE
    qe.score(["Open the file."], ["Öffne die Datei."])   # QE of given translations
"""
import argparse
import json
import sys
from argparse import Namespace

from fairseq.data import LanguagePairDataset

from .errors import QEUserError, install_excepthook
from .inference import load_head_model
from .search_capture import SearchCapture, hypothesis_records
from .textfiles import read_lines


class QEModel:
    """A sigmoid-head checkpoint with its dictionaries and (optionally) sentencepiece model."""

    def __init__(self, model, task, spm=None, beam=5, max_tokens=4000, include_eos=False,
                 sentence_agg="prod", word_agg="min"):
        self.model, self.task, self.spm = model, task, spm
        self.beam, self.max_tokens = beam, max_tokens
        self.include_eos, self.sentence_agg, self.word_agg = include_eos, sentence_agg, word_agg
        self.src_dict, self.tgt_dict = task.source_dictionary, task.target_dictionary

    @classmethod
    def from_checkpoint(cls, checkpoint, data_dir, spm_model=None, **options):
        model, task = load_head_model(checkpoint, data_dir)
        spm = None
        if spm_model:
            import sentencepiece

            try:
                spm = sentencepiece.SentencePieceProcessor(model_file=spm_model)
            except (OSError, RuntimeError) as exc:
                raise QEUserError(f"cannot load sentencepiece model {spm_model}: {exc}") from exc
        return cls(model, task, spm, **options)

    def _pieces(self, text):
        return " ".join(self.spm.encode(text, out_type=str)) if self.spm else text

    def _detokenize(self, pieces):
        return self.spm.decode(pieces) if self.spm else " ".join(pieces)

    def _encode(self, lines, dictionary, kind):
        encoded = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                raise QEUserError(f"{kind} line {number} is empty")
            encoded.append(dictionary.encode_line(self._pieces(line.strip()), add_if_not_exist=False,
                                                  append_eos=True).long())
        return encoded

    def _batches(self, sources, targets=None):
        src = self._encode(sources, self.src_dict, "source")
        tgt = self._encode(targets, self.tgt_dict, "translation") if targets is not None else None
        dataset = LanguagePairDataset(
            src, [t.numel() for t in src], self.src_dict,
            tgt, [t.numel() for t in tgt] if tgt else None, self.tgt_dict)
        return self.task.get_batch_iterator(
            dataset=dataset, max_tokens=self.max_tokens, ignore_invalid_inputs=False,
        ).next_epoch_itr(shuffle=False)

    def _records(self, sample, hypotheses, capture=None):
        tokens = [h["tokens"] for h in hypotheses]
        positional = [h["positional_scores"] for h in hypotheses] if capture else None
        records = hypothesis_records(
            self.model, sample, list(range(len(tokens))), tokens, self.tgt_dict, capture,
            positional, include_eos=self.include_eos, sentence_agg=self.sentence_agg,
            word_agg=self.word_agg)
        for row, qe in enumerate(records):
            text = [p for p in qe["tokens"] if p != self.tgt_dict.eos_word]
            yield int(sample["id"][row]), {"translation": self._detokenize(text), **qe}

    def _collect(self, batches, hypotheses_of, count):
        """Records in input order; ``hypotheses_of(sample)`` -> (hypotheses, capture)."""
        results = [None] * count
        for sample in batches:
            for index, record in self._records(sample, *hypotheses_of(sample)):
                results[index] = record
        return results

    def translate(self, sources):
        """Beam-search translations of raw source sentences, each with its QE (read off the
        search)."""
        generator = self.task.build_generator([self.model], Namespace(beam=self.beam))

        def best(sample):
            with SearchCapture(self.model) as capture:
                hypos = self.task.inference_step(generator, [self.model], sample)
            return [h[0] for h in hypos], capture

        return self._collect(self._batches(sources), best, len(sources))

    def score(self, sources, translations):
        """QE of given translations (force-decoded through the frozen model)."""
        if len(sources) != len(translations):
            raise QEUserError(f"{len(sources)} sources but {len(translations)} translations")

        def given(sample):
            pad = self.tgt_dict.pad()
            return [{"tokens": row[row.ne(pad)]} for row in sample["target"]], None

        return self._collect(self._batches(sources, translations), given, len(sources))


def main(argv=None):
    install_excepthook()
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe",
        description="Translate raw text with QE, or score given translations (JSONL out).")
    parser.add_argument("command", choices=["translate", "score"])
    parser.add_argument("--checkpoint", required=True, help="sigmoid-head checkpoint")
    parser.add_argument("--data-dir", required=True, help="binarized data dir (dict.*.txt)")
    parser.add_argument("--spm-model", default=None, help="sentencepiece model of the data")
    parser.add_argument("--sources", default="-", help="source sentences, one per line")
    parser.add_argument("--translations", help="translations to score (score command)")
    parser.add_argument("--output", default="-", help="JSONL output (default stdout)")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=4000)
    parser.add_argument("--include-eos", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "score" and not args.translations:
        raise QEUserError("score needs --translations")
    qe = QEModel.from_checkpoint(args.checkpoint, args.data_dir, args.spm_model, beam=args.beam,
                                 max_tokens=args.max_tokens, include_eos=args.include_eos)
    sources = read_lines(args.sources, "sources")
    if args.command == "translate":
        results = qe.translate(sources)
    else:
        results = qe.score(sources, read_lines(args.translations, "translations"))
    text = "".join(json.dumps({"source": source, **record}, ensure_ascii=False) + "\n"
                   for source, record in zip(sources, results))
    if args.output == "-":
        sys.stdout.write(text)
        return
    try:
        with open(args.output, "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise QEUserError(f"--output {args.output} exists; nothing is overwritten") from None

if __name__ == "__main__":
    main()
