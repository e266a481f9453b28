"""``fairseq-sigmoid-qe translate|score``: raw text in, one QE record (JSONL) per sentence out
(each command its own parser; :mod:`.console` runs them)."""

import argparse
import os
import sys

from ..api import QEModel, device_of, find_spm_model
from ..core.errors import QEUserError, check_range, install_excepthook, set_command, warn_once
from ..core.progress import Progress, ScoreSummary
from ..core.qe_methods import DEFAULT_METHODS, METHODS
from ..core.qe_methods.records import dumps
from ..core.textfiles import StreamedOutput, check_new_output, read_lines
from ..evaluation.calibration import load_calibration
from .help_format import DefaultsHelpFormatter

COMMANDS = {
    "translate": "Translate raw text (beam search, or sampling) with QE of every translation: "
    "one JSON record per translation (docs/record.md).",
    "score": "QE of given translations of raw text: one JSON record per sentence (docs/record.md).",
}


def chosen(argv, option):
    """The value given to ``option`` in ``argv`` (``--bpe X`` or ``--bpe=X``), or None."""
    for index, word in enumerate(argv):
        if word == option and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    return None


def add_text_options(parser, tokenizer=None, bpe=None):
    """``--tokenizer`` and ``--bpe`` (fairseq's registered ones), and the options of the
    chosen ones, as fairseq names them (fairseq's own parser code adds them)."""
    from fairseq.dataclass.utils import gen_parser_from_dataclass

    from ..decoding.text_codec import encoder_configs

    group = parser.add_argument_group(
        "tokenizer and BPE (fairseq's encoder registry; each choice adds its own options)"
    )
    tokenizers, bpes = encoder_configs("tokenizer"), encoder_configs("bpe")
    group.add_argument(
        "--tokenizer",
        choices=list(tokenizers),
        default=None,
        help="fairseq's tokenizer of the model's text (e.g. moses; default: none)",
    )
    group.add_argument(
        "--bpe",
        choices=list(bpes),
        default=None,
        help="fairseq's BPE of the model's text (e.g. subword_nmt, fastbpe, gpt2; default: the "
        "sentencepiece model of --spm-model, or the one found beside --data-dir)",
    )
    names = []
    for config in (tokenizers.get(tokenizer), bpes.get(bpe)):
        if config is not None:
            before = {a.dest for a in parser._actions}
            gen_parser_from_dataclass(group, config())
            names += [a.dest for a in parser._actions if a.dest not in before]
    parser.set_defaults(text_option_names=names, source_lang=None, target_lang=None)


def released_file(option, data_dir):
    """The file a model folder as Fairseq releases them holds for a required BPE option
    (``bpecodes`` for ``--bpe-codes``; the sentencepiece model for ``--sentencepiece-model``),
    or None."""
    if option == "sentencepiece_model":
        return find_spm_model(data_dir)
    codes = os.path.join(data_dir, "bpecodes")
    if option == "bpe_codes" and os.path.isfile(codes):
        return codes
    return None


def text_choice(args):
    """The API's tokenizer/BPE keywords of ``--tokenizer``/``--bpe`` and their options (None:
    the sentencepiece default), checked: a required option left out is one error line."""
    if args.tokenizer is None and args.bpe is None:
        return None
    if args.spm_model:
        raise QEUserError("give --spm-model or --tokenizer/--bpe, not both")
    options = {}
    for name in args.text_option_names:
        value = getattr(args, name)
        if value == "???":
            value = released_file(name, args.data_dir)
            if value is None:
                raise QEUserError(f"--bpe {args.bpe} needs --{name.replace('_', '-')}")
        if value is not None:  # left out: fairseq's default, or the data's (its languages)
            options[name] = value
    return {"tokenizer": args.tokenizer, "bpe": args.bpe, "text_options": options}


def build_parser(command, tokenizer=None, bpe=None):
    """The parser of ``fairseq-sigmoid-qe translate`` or ``score`` (with the options of the
    ``tokenizer`` and ``bpe`` given on the command line)."""
    translate = command == "translate"
    parser = argparse.ArgumentParser(
        prog=f"fairseq-sigmoid-qe {command}",
        description=COMMANDS[command],
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="sigmoid-head checkpoint")
    parser.add_argument("--data-dir", required=True, help="binarized data dir (dict.*.txt)")
    parser.add_argument(
        "--spm-model",
        default=None,
        help="sentencepiece model of the data (default: the one *.model file "
        "in --data-dir, its parent, or a folder beside it)",
    )
    parser.add_argument(
        "--sources", default="-", help="source sentences, one per line (UTF-8; - is stdin)"
    )
    if translate:
        parser.add_argument("--beam", type=int, default=5, help="beam size (>= 1)")
        parser.add_argument(
            "--nbest",
            type=int,
            default=None,
            help="records of the N best hypotheses (1 <= N <= --beam), or with --sampling "
            "of N samples, each with its rank (default: the best one only, rank 0)",
        )
    else:
        parser.add_argument(
            "--translations",
            required=True,
            help="translations to score, one per source line (UTF-8; - is stdin)",
        )
    parser.add_argument(
        "--output", default="-", help="JSONL output (- is stdout; a new file, never overwritten)"
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
    parser.add_argument(
        "--include-eos",
        action="store_true",
        help="count the end-of-sentence token in token and sentence QE (as --qe-include-eos)",
    )
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
        "--seed",
        type=int,
        default=1,
        help="seed of the Monte-Carlo methods"
        + (" and of --sampling" if translate else "")
        + " (default 1)",
    )
    if translate:
        parser.add_argument(
            "--sampling",
            action="store_true",
            help="sample translations (fairseq's sampling) in place of the beam search: one per "
            "source, or --nbest N (then --beam is not used)",
        )
        parser.add_argument(
            "--top-p",
            type=float,
            default=None,
            help="with --sampling: nucleus sampling from the smallest set of tokens whose "
            "probabilities reach P (0 < P <= 1; default: the whole distribution)",
        )
        parser.add_argument(
            "--temperature",
            type=float,
            default=None,
            help="with --sampling: the sampling temperature (> 0; default 1)",
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
        + ("best hypotheses' " if translate else "")
        + "sentence scores on stderr",
    )
    add_text_options(parser, tokenizer, bpe)
    if not translate:
        parser.set_defaults(beam=5, nbest=None, sampling=False, top_p=None, temperature=None)
    else:
        parser.set_defaults(translations=None)
    return parser


def main(argv=None):
    """``fairseq-sigmoid-qe translate|score``: ``argv`` is the command, then its options."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    if command is None:
        sys.stderr.write("fairseq-sigmoid-qe: error: give the command: translate or score\n")
        return 2
    set_command(command)
    install_excepthook()
    parser = build_parser(command, chosen(argv, "--tokenizer"), chosen(argv, "--bpe"))
    args = parser.parse_args(argv[1:])
    args.command = command
    check_range("--beam", args.beam, low=1)
    check_range("--max-tokens", args.max_tokens, low=1)
    if args.batch_size is not None:
        check_range("--batch-size", args.batch_size, low=1)
    if args.threads is not None:
        check_range("--threads", args.threads, low=1)
    if not args.sampling and (args.top_p is not None or args.temperature is not None):
        raise QEUserError("--top-p and --temperature need --sampling")
    if args.top_p is not None:
        check_range("--top-p", args.top_p, low=0, high=1, low_open=True)
    if args.temperature is not None:
        check_range("--temperature", args.temperature, low=0, low_open=True)
    if args.nbest is not None:
        if args.sampling:
            check_range("--nbest", args.nbest, low=1)
        else:
            check_range("--nbest", args.nbest, low=1, high=args.beam, meaning="at most --beam")
    if args.sources == "-" and args.translations == "-":
        raise QEUserError("--sources and --translations cannot both be stdin")
    check_new_output(args.output)
    if args.calibration:  # checked before the model is loaded
        load_calibration(args.calibration, METHODS, "--calibration")
    device = device_of(args)
    text = text_choice(args)
    spm_model = None
    if text is None:
        spm_model = args.spm_model or find_spm_model(args.data_dir)
        if spm_model is None:
            warn_once(
                "no --spm-model given or found beside --data-dir: the text is taken as "
                "subword pieces (or give --tokenizer/--bpe)"
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
        **(text or {}),
    )
    progress = None if args.quiet else Progress(len(sources), sys.stderr)
    summary = ScoreSummary() if args.summary else None
    records = qe.records(
        sources,
        translations,
        nbest=args.nbest,
        on_batch=progress.update if progress else None,
        sampling=args.sampling,
        top_p=args.top_p,
        temperature=args.temperature,
        seed=args.seed,
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
