"""``fairseq-sigmoid-qe prepare-data``: real text for the l10n pipeline.

    fairseq-sigmoid-qe prepare-data --corpus DIR --out TEXT_DIR [--train-pairs N] ...

reads ``DIR/{train,valid,test}.{en,de}`` (the l10n-en-de layout; any en-de corpus laid out so),
trains a joint sentencepiece model on the training pairs and writes encoded and raw splits.

    fairseq-sigmoid-qe prepare-data --multiref dev.tsv --spm-model spm.model --out DIR

splits a multi-reference TSV (``en<TAB>de1<TAB>de2...``, as l10n-en-de-multiref) by line parity
into ``mrdev`` (even lines: for tuning) and ``mrtest`` (odd lines: reported once) and encodes it
with an existing sentencepiece model (see :func:`prepare_multiref`).
"""

import argparse
import sys

from ..demo.l10n_data import prepare_l10n, prepare_multiref


def main(argv=None):
    from ..core.errors import install_excepthook, set_command
    from .help_format import DefaultsHelpFormatter

    set_command("prepare-data")
    install_excepthook()
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe prepare-data",
        formatter_class=DefaultsHelpFormatter,
        description="Sentencepiece-encode DIR/{train,valid,test}.{en,de} for fairseq-preprocess.",
    )
    parser.add_argument("--corpus", help="directory of {split}.en / {split}.de")
    parser.add_argument(
        "--multiref",
        metavar="TSV",
        help="instead of --corpus: a multi-reference file (en<TAB>de1<TAB>de2...) "
        "to split and encode with --spm-model",
    )
    parser.add_argument("--spm-model", help="with --multiref: the sentencepiece model to use")
    parser.add_argument(
        "--min-source-words",
        type=int,
        default=4,
        help="with --multiref: shortest source kept for the Pearson sets",
    )
    parser.add_argument("--out", required=True, help="output directory (encoded + raw splits)")
    parser.add_argument("--train-pairs", type=int, default=None, help="default: all")
    parser.add_argument("--valid-pairs", type=int, default=None, help="default: all")
    parser.add_argument("--test-pairs", type=int, default=None, help="default: all")
    parser.add_argument("--spm-vocab", type=int, default=8000, help="sentencepiece vocabulary")
    parser.add_argument(
        "--spm-sample",
        type=int,
        default=0,
        help="train sentencepiece on this many random sentences (0: all)",
    )
    parser.add_argument(
        "--heldout-pairs",
        type=int,
        default=0,
        help="hold this many random training pairs out of train (split "
        "'heldout') and write a same-sized random slice of train ('ownslice')",
    )
    args = parser.parse_args(argv)
    if args.multiref:
        if args.corpus or not args.spm_model:
            parser.error("--multiref needs --spm-model and takes no --corpus")
        counts = prepare_multiref(args.multiref, args.out, args.spm_model, args.min_source_words)
        for split, (long, sources, pairs) in counts.items():
            print(
                f"{split}: {sources} sources ({long} of >= {args.min_source_words} words), "
                f"{pairs} source-reference pairs"
            )
        return 0
    if not args.corpus:
        parser.error("give --corpus (or --multiref)")
    model = prepare_l10n(
        args.corpus,
        args.out,
        args.train_pairs,
        args.test_pairs,
        args.spm_vocab,
        args.valid_pairs,
        args.spm_sample,
        args.heldout_pairs,
    )
    print(f"wrote {args.out} (sentencepiece model {model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
