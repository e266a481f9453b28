"""Helpers for run.sh: the check of the pretrained release, and the tiny stand-in release of
``--smoke``.

python recipe_tools.py check DELTALM_DIR [--tiny]  # the release loads as deltalm_base
python recipe_tools.py smoke-release OUT_DIR       # stand-ins: spm.model, dict.txt, the .pt
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

SPLITS = ("train", "valid", "test")
SMOKE_PAIRS = {"train": 300, "valid": 40, "test": 12}
SMOKE_SPM_VOCAB = 300
RELEASE_FILES = ("spm.model", "dict.txt", "deltalm-base.pt")
# The release's embedding tables have 103 rows more than DeltaLM's dictionary (250,104 vs
# 250,001); the stand-in keeps that, so the row cutting is exercised too.
EXTRA_EMBEDDING_ROWS = 103
L10N_DIR = os.path.join(REPO, "..", "shared", "data", "l10n-en-de")


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


def check(deltalm_dir, tiny=False):
    """Build ``deltalm_base`` on the release's ``dict.txt`` and load ``deltalm-base.pt`` into it
    with the plugin's loader (every weight must fit); ``tiny``: the smoke's dimensions."""
    from fairseq.data import Dictionary

    from fairseq_sigmoid_qe.core.errors import QEUserError
    from fairseq_sigmoid_qe.models.deltalm import build_deltalm
    from fairseq_sigmoid_qe.models.deltalm_checkpoint import load_official_checkpoint
    from fairseq_sigmoid_qe.testing.deltalm_fixtures import TINY_OPTIONS

    paths = {name: os.path.join(deltalm_dir, name) for name in RELEASE_FILES}
    missing = [path for path in paths.values() if not os.path.isfile(path)]
    if missing:
        raise QEUserError(f"DeltaLM release file not found: {missing[0]}")
    dictionary = Dictionary.load(paths["dict.txt"])
    model = build_deltalm(dictionary, "deltalm_base", **(TINY_OPTIONS if tiny else {}))
    load_official_checkpoint(model, paths["deltalm-base.pt"])
    print(f"checked {deltalm_dir}: deltalm_base, {len(dictionary)} dictionary symbols")


def smoke_release(out_dir):
    """``spm.model``, ``dict.txt`` and ``deltalm-base.pt`` (tiny, random weights in the
    official layout), served to run.sh --smoke in place of the release."""
    from fairseq.data import Dictionary

    from fairseq_sigmoid_qe.demo.l10n_data import train_sentencepiece
    from fairseq_sigmoid_qe.testing.deltalm_fixtures import (
        TINY_OPTIONS,
        write_random_official_checkpoint,
    )

    model_dir = out_dir
    os.makedirs(model_dir, exist_ok=True)
    pairs = _smoke_pairs(os.path.join(out_dir, "synthetic"))
    texts = [side for pair in pairs["train"] for side in pair]
    train_sentencepiece(texts, os.path.join(model_dir, "spm"), SMOKE_SPM_VOCAB)
    dict_path = os.path.join(model_dir, "dict.txt")
    write_dict(os.path.join(model_dir, "spm.model"), dict_path)
    rows = len(Dictionary.load(dict_path)) + EXTRA_EMBEDDING_ROWS
    write_random_official_checkpoint(
        os.path.join(model_dir, "deltalm-base.pt"), rows, seed=1, **TINY_OPTIONS
    )


def main(argv=None):
    from fairseq_sigmoid_qe.core.errors import install_excepthook

    install_excepthook()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check")
    checking.add_argument("deltalm_dir")
    checking.add_argument("--tiny", action="store_true", help="the smoke run's dimensions")
    smoke = commands.add_parser("smoke-release")
    smoke.add_argument("out_dir")
    args = parser.parse_args(argv)
    if args.command == "check":
        check(args.deltalm_dir, args.tiny)
    else:
        smoke_release(args.out_dir)


if __name__ == "__main__":
    main()
