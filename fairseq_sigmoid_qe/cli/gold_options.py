"""The gold options shared by ``fairseq-sigmoid-qe evaluate`` and
``fairseq-sigmoid-qe calibrate``."""

from ..core.errors import QEUserError
from ..evaluation.gold import (
    REFERENCE_KINDS,
    REFERENCE_METRICS,
    load_gold,
    load_references,
    load_word_labels,
)
from ..evaluation.report import BAD_BELOW


def add_gold_arguments(parser):
    """The gold options of the evaluator and of ``fairseq-sigmoid-qe calibrate``."""
    parser.add_argument(
        "--gold-scores",
        metavar="FILE",
        help="continuous gold (in [0, 1] for ECE and Brier), one per line",
    )
    parser.add_argument(
        "--gold-json",
        metavar="FILE.json",
        help="continuous gold from comet-score --to_json (one -t file): each segment's "
        "'COMET' score, e.g. XCOMET-XL with references",
    )
    parser.add_argument("--gold-labels", metavar="FILE", help="binary 0/1 gold, one per line")
    parser.add_argument(
        "--references",
        nargs="+",
        metavar="FILE",
        help="reference translations, one per line (several files: several "
        "references per segment): sentence-level pseudo-gold from --metric",
    )
    parser.add_argument(
        "--references-tsv",
        metavar="FILE",
        help="several references per segment, tab-separated on its line",
    )
    parser.add_argument(
        "--metric",
        choices=REFERENCE_METRICS,
        default=None,
        help="pseudo-gold with --references: chrF/100 (default), sentence BLEU/100 "
        "(effective order) or 1 - TER/100 clipped at 0",
    )
    parser.add_argument(
        "--bad-below",
        type=float,
        default=BAD_BELOW,
        help="a sentence whose gold is below this is BAD (labels: 0 is BAD)",
    )
    parser.add_argument(
        "--word-labels",
        metavar="FILE",
        help="word-level gold: a line per sentence of OK/BAD tags, one per word of its hypothesis",
    )
    parser.add_argument(
        "--reference-word-labels",
        action="store_true",
        help="word-level gold from the references: a word is OK if it occurs in "
        "the best-matching reference (a proxy)",
    )


def gold_source(args):
    """(kind, path or paths) of the one gold flag given."""
    given = [
        (kind, path)
        for kind, path in (
            ("scores", args.gold_scores),
            ("json", args.gold_json),
            ("labels", args.gold_labels),
            ("references", args.references),
            ("references_tsv", args.references_tsv),
        )
        if path
    ]
    if len(given) != 1:
        raise QEUserError(
            "give exactly one of --gold-scores, --gold-json, --gold-labels, --references, "
            "--references-tsv"
        )
    kind = given[0][0]
    if args.metric and kind not in REFERENCE_KINDS:
        raise QEUserError("--metric needs --references")
    if args.all_ranks and kind not in REFERENCE_KINDS:
        raise QEUserError(
            "--all-ranks needs --references (gold scores and labels are per "
            "sentence, not per hypothesis)"
        )
    return given[0]


def word_gold_source(args, kind, gold, path):
    """The keyword arguments of :func:`word_gold` for ``--word-labels`` or
    ``--reference-word-labels`` (None without either)."""
    if args.word_labels and args.reference_word_labels:
        raise QEUserError("give one of --word-labels and --reference-word-labels")
    if args.word_labels:
        return {"labels": load_word_labels(args.word_labels), "source": args.word_labels}
    if args.reference_word_labels:
        if kind not in REFERENCE_KINDS:
            raise QEUserError("--reference-word-labels needs --references or --references-tsv")
        return {"references": gold, "source": f"words of the best-matching reference ({path})"}
    return None


def load_gold_source(kind, path):
    if kind == "references":
        return load_references(path), ", ".join(path)
    return load_gold(path, kind), path
