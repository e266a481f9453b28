"""Helpers for run.sh: sentencepiece encoding, and the tiny stand-in inputs of ``--smoke``.

python recipe_tools.py encode SPM_MODEL RAW_DIR OUT_DIR      # {split}.{en,de} -> pieces
python recipe_tools.py smoke-inputs OUT_DIR                   # raw/ and deltalm/ for --smoke
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

SPLITS = ("train", "valid", "test")
LANGS = ("en", "de")
SMOKE_PAIRS = {"train": 300, "valid": 40, "test": 12}
SMOKE_SPM_VOCAB = 300
# The release's embedding tables have 103 rows more than DeltaLM's dictionary (250,104 vs
# 250,001); the stand-in keeps that, so the row cutting is exercised too.
EXTRA_EMBEDDING_ROWS = 103
L10N_DIR = os.path.join(REPO, "..", "shared", "data", "l10n-en-de")


def encode(spm_model, raw_dir, out_dir):
    """Write ``{split}.{lang}`` as space-separated sentencepiece pieces."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=spm_model)
    os.makedirs(out_dir, exist_ok=True)
    for split in SPLITS:
        for lang in LANGS:
            with open(os.path.join(raw_dir, f"{split}.{lang}"), encoding="utf-8") as f:
                lines = [line.strip() for line in f]
            pieces = processor.encode(lines, out_type=str)
            with open(os.path.join(out_dir, f"{split}.{lang}"), "w", encoding="utf-8") as out:
                out.writelines(" ".join(line) + "\n" for line in pieces)


def _smoke_pairs(scratch_dir):
    """A few hundred en-de pairs: the shared l10n corpus when present, else synthetic text."""
    from fairseq_sigmoid_qe.demo.l10n_data import read_pairs

    if os.path.isfile(os.path.join(L10N_DIR, "train.en")):
        return {split: read_pairs(L10N_DIR, split, limit=SMOKE_PAIRS[split]) for split in SPLITS}
    from fairseq_sigmoid_qe.demo.synthetic import SyntheticConfig, write_corpus

    config = SyntheticConfig(
        train_size=SMOKE_PAIRS["train"],
        valid_size=SMOKE_PAIRS["valid"],
        test_size=SMOKE_PAIRS["test"],
        head_train_size=10,
    )
    paths = write_corpus(scratch_dir, config)
    pairs = {}
    for split in SPLITS:
        with (
            open(paths[f"{split}.src"], encoding="utf-8") as fs,
            open(paths[f"{split}.tgt"], encoding="utf-8") as ft,
        ):
            pairs[split] = [(s.strip(), t.strip()) for s, t in zip(fs, ft)]
    return pairs


def write_dict(spm_model, path):
    """A DeltaLM-style fairseq dict.txt: every sentencepiece piece but <unk>, <s>, </s>."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=spm_model)
    with open(path, "w", encoding="utf-8") as out:
        for index in range(processor.get_piece_size()):
            if not (processor.is_unknown(index) or processor.is_control(index)):
                out.write(f"{processor.id_to_piece(index)} 1\n")


def smoke_inputs(out_dir):
    """``raw/{split}.{en,de}`` and ``deltalm/{spm.model,dict.txt,deltalm-base.pt}`` (tiny,
    random weights in the official layout) in the places run.sh expects the real ones."""
    from fairseq.data import Dictionary

    from fairseq_sigmoid_qe.demo.l10n_data import train_sentencepiece
    from fairseq_sigmoid_qe.testing.deltalm_fixtures import (
        TINY_OPTIONS,
        write_random_official_checkpoint,
    )

    raw, model_dir = os.path.join(out_dir, "raw"), os.path.join(out_dir, "deltalm")
    os.makedirs(raw, exist_ok=True)
    os.makedirs(model_dir, exist_ok=True)
    pairs = _smoke_pairs(os.path.join(out_dir, "synthetic"))
    for split, split_pairs in pairs.items():
        for index, lang in enumerate(LANGS):
            with open(os.path.join(raw, f"{split}.{lang}"), "w", encoding="utf-8") as out:
                out.writelines(pair[index] + "\n" for pair in split_pairs)
    texts = [side for pair in pairs["train"] for side in pair]
    train_sentencepiece(texts, os.path.join(model_dir, "spm"), SMOKE_SPM_VOCAB)
    dict_path = os.path.join(model_dir, "dict.txt")
    write_dict(os.path.join(model_dir, "spm.model"), dict_path)
    rows = len(Dictionary.load(dict_path)) + EXTRA_EMBEDDING_ROWS
    write_random_official_checkpoint(
        os.path.join(model_dir, "deltalm-base.pt"), rows, seed=1, **TINY_OPTIONS
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    enc = commands.add_parser("encode")
    enc.add_argument("spm_model")
    enc.add_argument("raw_dir")
    enc.add_argument("out_dir")
    smoke = commands.add_parser("smoke-inputs")
    smoke.add_argument("out_dir")
    args = parser.parse_args(argv)
    if args.command == "encode":
        encode(args.spm_model, args.raw_dir, args.out_dir)
    else:
        smoke_inputs(args.out_dir)


if __name__ == "__main__":
    main()
