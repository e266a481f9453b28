"""``fairseq-sigmoid-qe quickstart``: the main job on an embedded default
(:mod:`..demo.quickstart`)."""

import argparse
import os
import sys

from ..core.errors import install_excepthook, set_command
from ..core.qe_methods import DEFAULT_METHODS, METHODS, parse_methods
from ..demo.quickstart import DEFAULT_L10N, run
from .help_format import DefaultsHelpFormatter


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe quickstart",
        formatter_class=DefaultsHelpFormatter,
        description="Train a base Transformer and a sigmoid QE head, then report the Pearson "
        "correlation of softmax probability, BoostedProb and the sigmoid head with quality.",
    )
    parser.add_argument(
        "--workdir",
        default="runs/quickstart",
        help="where data, checkpoints, logs and results go (must not exist, unless --resume)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse a workdir from an earlier run: finished steps are skipped, "
        "training continues from checkpoint_last.pt",
    )
    parser.add_argument(
        "--data",
        choices=["synthetic", "l10n"],
        default="synthetic",
        help="synthetic ambiguous language (default) or real en-de text",
    )
    parser.add_argument(
        "--l10n-dir",
        default=os.environ.get("L10N_EN_DE_DIR", DEFAULT_L10N),
        help="directory of the l10n-en-de corpus (train/valid/test .en/.de)",
    )
    parser.add_argument(
        "--train-pairs",
        type=int,
        default=None,
        help="training pairs (default: 12000 synthetic, 60000 l10n); the synthetic "
        "head trains on another half as many",
    )
    parser.add_argument("--test-pairs", type=int, default=500, help="test pairs to score")
    parser.add_argument(
        "--synonym-decay",
        type=float,
        default=None,
        help="synthetic only: synonym j of a word is used with probability "
        "∝ decay**j (default: SyntheticConfig's)",
    )
    parser.add_argument(
        "--spm-vocab", type=int, default=4000, help="sentencepiece vocabulary size (l10n only)"
    )
    parser.add_argument(
        "--base-updates",
        type=int,
        default=None,
        help="base Transformer updates (default: 500 synthetic, 4000 l10n)",
    )
    parser.add_argument(
        "--head-updates",
        type=int,
        default=None,
        help="sigmoid-head updates (default: 300 synthetic, 1000 l10n)",
    )
    parser.add_argument(
        "--negative-sampler",
        default="token_freq+softmax",
        help="nce_dominant sampler for the head (default: the paper's best)",
    )
    parser.add_argument("--max-tokens", type=int, default=4096, help="tokens per batch")
    parser.add_argument("--beam", type=int, default=5, help="beam size for the test set")
    parser.add_argument(
        "--sample-top-p",
        type=float,
        default=0.9,
        help="the second table's sampled translations: nucleus sampling's P (0 < P <= 1)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for data and training")
    parser.add_argument(
        "--qe-methods",
        default=",".join(DEFAULT_METHODS),
        help="comma list of QE methods to report: " + ", ".join(METHODS),
    )
    parser.add_argument(
        "--qe-mc-samples",
        type=int,
        default=None,
        help="samples of the Monte-Carlo methods (default 10)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for every step (default 1: the same numbers on any "
        "machine; float sums differ with the thread count)",
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if not 0 < args.sample_top_p <= 1:
        parser.error("--sample-top-p must be in (0, 1]")
    try:
        parse_methods(args.qe_methods)
    except ValueError as exc:
        parser.error(f"--qe-methods: {exc}")
    defaults = {"synthetic": (12000, 500, 300), "l10n": (60000, 4000, 1000)}[args.data]
    for name, value in zip(("train_pairs", "base_updates", "head_updates"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv=None):
    set_command("quickstart")
    install_excepthook()
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
