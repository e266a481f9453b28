"""Real text for the pipeline: slices of a parallel corpus, sentencepiece, chrF pseudo-gold.

    python -m fairseq_sigmoid_qe.realdata --corpus DIR --out TEXT_DIR [--train-pairs N] ...

reads ``DIR/{train,valid,test}.{en,de}`` (the l10n-en-de layout; any en-de corpus laid out so),
trains a joint sentencepiece model on the training pairs and writes encoded and raw splits.
"""
import argparse
import os

from .errors import QEUserError
from .textfiles import iter_lines, read_lines
from .words import detokenize

SPLITS = ("train", "valid", "test")


def read_pairs(corpus_dir, split, src="en", tgt="de", limit=None):
    """Aligned non-empty (source, target) lines of one split, at most ``limit`` of them."""
    paths = [os.path.join(corpus_dir, f"{split}.{lang}") for lang in (src, tgt)]
    for path in paths:
        if not os.path.isfile(path):
            raise QEUserError(f"corpus file not found: {path} (see --l10n-dir)")
    pairs = []
    for source, target in zip(*(iter_lines(path, "corpus file") for path in paths)):
        source, target = source.strip(), target.strip()
        if source and target:
            pairs.append((source, target))
            if limit is not None and len(pairs) >= limit:
                break
    return pairs


def train_sentencepiece(texts, model_prefix, vocab_size, sample_size=0):
    """Unigram sentencepiece model on ``texts`` (on a random ``sample_size`` of them if > 0)."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=model_prefix, vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0,
        input_sentence_size=sample_size, shuffle_input_sentence=sample_size > 0, num_threads=2,
        minloglevel=2, hard_vocab_limit=False,
    )
    return spm.SentencePieceProcessor(model_file=model_prefix + ".model")


def prepare_l10n(corpus_dir, text_dir, train_pairs, test_pairs, vocab_size, valid_pairs=500,
                 spm_sample=0):
    """Write sentencepiece-encoded ``{split}.en/.de`` and raw ``{split}.raw.{en,de}`` to
    text_dir, from ``corpus_dir/{train,valid,test}.{en,de}`` (None: every pair of a split)."""
    limits = {"train": train_pairs, "valid": valid_pairs, "test": test_pairs}
    data = {split: read_pairs(corpus_dir, split, limit=limits[split]) for split in SPLITS}
    os.makedirs(text_dir, exist_ok=True)
    prefix = os.path.join(text_dir, "spm")
    if os.path.exists(prefix + ".model"):
        import sentencepiece as spm
        processor = spm.SentencePieceProcessor(model_file=prefix + ".model")
    else:
        texts = [side for pair in data["train"] for side in pair]
        processor = train_sentencepiece(texts, prefix, vocab_size, spm_sample)
    for split, pairs in data.items():
        for index, lang in enumerate(("en", "de")):
            lines = [pair[index] for pair in pairs]
            with open(os.path.join(text_dir, f"{split}.{lang}"), "w", encoding="utf-8") as out:
                for pieces in processor.encode(lines, out_type=str):
                    out.write(" ".join(pieces) + "\n")
            with open(os.path.join(text_dir, f"{split}.raw.{lang}"), "w", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
    return prefix + ".model"


def chrf_gold(text_dir):
    """Sentence chrF (0..1) of the detokenized hypothesis against the raw reference."""
    from sacrebleu.metrics import CHRF

    references = read_lines(os.path.join(text_dir, "test.raw.de"), "references")
    chrf = CHRF()

    def gold(record):
        hypothesis = detokenize(record["hypothesis"].split())
        return chrf.sentence_score(hypothesis, [references[record["id"]]]).score / 100.0

    return gold


def main(argv=None):
    from .errors import install_excepthook

    install_excepthook()
    parser = argparse.ArgumentParser(
        prog="python -m fairseq_sigmoid_qe.realdata",
        description="Sentencepiece-encode DIR/{train,valid,test}.{en,de} for fairseq-preprocess.")
    parser.add_argument("--corpus", required=True, help="directory of {split}.en / {split}.de")
    parser.add_argument("--out", required=True, help="output directory (encoded + raw splits)")
    parser.add_argument("--train-pairs", type=int, default=None, help="default: all")
    parser.add_argument("--valid-pairs", type=int, default=None, help="default: all")
    parser.add_argument("--test-pairs", type=int, default=None, help="default: all")
    parser.add_argument("--spm-vocab", type=int, default=8000, help="sentencepiece vocabulary")
    parser.add_argument("--spm-sample", type=int, default=0,
                        help="train sentencepiece on this many random sentences (0: all)")
    args = parser.parse_args(argv)
    model = prepare_l10n(args.corpus, args.out, args.train_pairs, args.test_pairs,
                         args.spm_vocab, args.valid_pairs, args.spm_sample)
    print(f"wrote {args.out} (sentencepiece model {model})")
    return 0


if __name__ == "__main__":
    main()
