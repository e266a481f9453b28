"""``fairseq-sigmoid-qe translate|score``: raw text in, one QE record (JSONL) per sentence out."""

import argparse
import os
import sys

from ..api import QEModel, device_of, find_spm_model
from ..core.errors import QEUserError, check_range, install_excepthook, warn_once
from ..core.progress import Progress, ScoreSummary
from ..core.qe_methods import DEFAULT_METHODS, METHODS
from ..core.qe_methods.records import dumps
from ..core.textfiles import StreamedOutput, read_lines, refuse_existing
from ..evaluation.calibration import load_calibration


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


def main(argv=None):
    install_excepthook()
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe",
        description="Translate raw text with QE, or score given translations (JSONL out). "
        "'fairseq-sigmoid-qe calibrate --help': fit a calibration on a dev set; "
        "'fairseq-sigmoid-qe merge --help': merge sharded QE files.",
    )
    parser.add_argument("command", choices=["translate", "score"])
    parser.add_argument("--checkpoint", required=True, help="sigmoid-head checkpoint")
    parser.add_argument("--data-dir", required=True, help="binarized data dir (dict.*.txt)")
    parser.add_argument(
        "--spm-model",
        default=None,
        help="sentencepiece model of the data (default: the one *.model file "
        "in --data-dir, its parent, or a folder beside it)",
    )
    parser.add_argument("--sources", default="-", help="source sentences, one per line (UTF-8)")
    parser.add_argument("--translations", help="translations to score (score command; UTF-8)")
    parser.add_argument(
        "--output", default="-", help="JSONL output (default stdout; a new file, never overwritten)"
    )
    parser.add_argument("--beam", type=int, default=5, help="beam size (>= 1)")
    parser.add_argument(
        "--nbest",
        type=int,
        default=None,
        help="translate: records of the N best hypotheses, each with its rank (1 <= N <= --beam)",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=4000,
        help="tokens per batch (>= 1, and at least the longest sentence)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="sentences per batch at most (>= 1; default: --max-tokens decides)",
    )
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (--device cpu)")
    parser.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: the GPU when there is one)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads of torch (>= 1; default: torch's)"
    )
    parser.add_argument("--include-eos", action="store_true")
    parser.add_argument(
        "--qe-methods",
        default=",".join(DEFAULT_METHODS),
        help="comma list of QE methods, in output order: " + ", ".join(METHODS),
    )
    parser.add_argument(
        "--qe-mc-samples",
        type=int,
        default=None,
        help="samples of the Monte-Carlo methods (default 10)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the Monte-Carlo methods (default 1)"
    )
    parser.add_argument(
        "--calibration",
        default=None,
        metavar="FILE.json",
        help="a calibration file (fairseq-sigmoid-qe calibrate): calibrated "
        "scores, OK/BAD tags and error spans in each record",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "--summary",
        action="store_true",
        help="at the end, each method's mean and 10/50/90%% quantiles of the "
        "best hypotheses' sentence scores on stderr",
    )
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
        warn_once(
            "no --spm-model given or found beside --data-dir: the text is taken as subword pieces"
        )
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    sources = read_lines(args.sources, "--sources")
    translations = read_lines(args.translations, "--translations") if args.translations else None
    qe = QEModel.from_checkpoint(
        args.checkpoint,
        args.data_dir,
        spm_model,
        beam=args.beam,
        max_tokens=args.max_tokens,
        include_eos=args.include_eos,
        batch_size=args.batch_size,
        device=device,
        methods=args.qe_methods,
        mc_samples=args.qe_mc_samples,
        seed=args.seed,
        calibration=args.calibration,
    )
    progress = None if args.quiet else Progress(len(sources), sys.stderr)
    summary = ScoreSummary() if args.summary else None
    records = qe.records(
        sources, translations, nbest=args.nbest, on_batch=progress.update if progress else None
    )
    output = StreamedOutput(args.output)
    try:
        for _, record in records:
            output.write(dumps(record) + "\n")
            if summary is not None and record["rank"] == 0:
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
    sys.exit(main())
