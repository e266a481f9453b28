"""Gold quality of QE records: gold files (scores, labels, references, COMET JSON), sacrebleu
pseudo-gold against one or several references, and word labels."""

import json
import string

import numpy as np

from ..core.errors import QEUserError
from ..core.textfiles import read_lines
from .records import hypothesis_text, method_names, record_word_scores, word_text

REFERENCE_METRICS = ("chrf", "bleu", "ter")


REFERENCE_KINDS = ("references", "references_tsv")


GOLD_NAMES = {
    "scores": "gold score",
    "json": "COMET score",
    "labels": "gold label",
    "chrf": "chrF / 100",
    "bleu": "sentence BLEU / 100",
    "ter": "1 - TER / 100",
}


WORD_TAGS = {"OK": 1, "BAD": 0}


def load_gold(path, kind="scores"):
    """Gold lines (line i = sample id i): floats for ``scores``, 0/1 for ``labels``, raw text
    for ``references``, a list of references for ``references_tsv`` (tab-separated); the
    segment scores of a ``json`` file (:func:`load_comet_json`)."""
    if kind == "json":
        return load_comet_json(path)
    what = {
        "scores": "gold scores",
        "labels": "gold labels",
        "references": "references",
        "references_tsv": "references",
    }[kind]
    lines = read_lines(path, what)
    if kind == "references":
        return lines
    if kind == "references_tsv":
        return [reference_list(line, path, number) for number, line in enumerate(lines, 1)]
    values = []
    for number, line in enumerate(lines, 1):
        try:
            values.append(float(line))
        except ValueError:
            raise QEUserError(f"{path} line {number}: {line!r} is not a number") from None
        if kind == "labels" and values[-1] not in (0.0, 1.0):
            raise QEUserError(f"{path} line {number}: gold label {line!r} is not 0 or 1")
    return values


COMET_SCORE_KEY = "COMET"


def load_comet_json(path):
    """The segment scores of one system in ``comet-score --to_json`` output: an object whose
    one key is the translations file as given to ``-t``, holding a list (segment i = sample id
    i) of ``{"src", "mt", ["ref"], "COMET": float, ["errors"]}`` (the paper's gold: XCOMET-XL
    with references)."""
    text = "\n".join(read_lines(path, "COMET JSON"))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QEUserError(
            f"{path} is not JSON ({exc.msg}, line {exc.lineno}); --gold-json reads "
            "comet-score --to_json output"
        ) from None
    if not isinstance(data, dict) or not data:
        raise QEUserError(
            f"{path}: expected comet-score --to_json output, an object of translations "
            "files, each a list of segments"
        )
    if len(data) != 1:
        raise QEUserError(
            f"{path} holds {len(data)} translations files ({', '.join(sorted(data)[:3])}): "
            "give comet-score one -t file per gold file"
        )
    ((system, segments),) = data.items()
    if not isinstance(segments, list) or not segments:
        raise QEUserError(f"{path}: {system!r} is not a non-empty list of segments")
    scores = []
    for number, segment in enumerate(segments, 1):
        value = segment.get(COMET_SCORE_KEY) if isinstance(segment, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise QEUserError(
                f"{path}: segment {number} of {system!r} has no numeric {COMET_SCORE_KEY!r} score"
            )
        scores.append(float(value))
    return scores


def reference_list(line, path, number):
    """The non-empty tab-separated references of one TSV line (at least one)."""
    references = [part for part in line.split("\t") if part.strip()]
    if not references:
        raise QEUserError(f"{path} line {number} has no reference")
    return references


def load_references(paths):
    """References per segment from one file per reference set (aligned lines, an empty line:
    no reference from that file), as lists."""
    sets = [load_gold(path, "references") for path in paths]
    if len({len(lines) for lines in sets}) != 1:
        counts = ", ".join(f"{p}: {len(lines)}" for p, lines in zip(paths, sets))
        raise QEUserError(f"--references files differ in length ({counts})")
    segments = [[ref for ref in refs if ref.strip()] for refs in zip(*sets)]
    empty = next((i for i, refs in enumerate(segments) if not refs), None)
    if empty is not None:
        raise QEUserError(f"line {empty + 1} has no reference in any --references file")
    return segments


def sentence_quality(hypothesis, references, metric="chrf"):
    """sacrebleu sentence score against one reference (a string) or several (a list), scaled
    to 0..1, higher = better: chrF / 100 (several: the best-matching reference), BLEU / 100
    (effective order; several: clipped counts over all) or 1 - TER / 100 clipped at 0 (several:
    the fewest edits)."""
    import sacrebleu

    references = [references] if isinstance(references, str) else list(references)
    if metric == "chrf":
        return sacrebleu.sentence_chrf(hypothesis, references).score / 100
    if metric == "bleu":
        bleu = sacrebleu.sentence_bleu(hypothesis, references, use_effective_order=True)
        return bleu.score / 100
    if metric == "ter":
        return max(0.0, 1 - sacrebleu.sentence_ter(hypothesis, references).score / 100)
    raise ValueError(f"unknown metric {metric!r}: {', '.join(REFERENCE_METRICS)}")


def match_gold(records, gold, source):
    """The gold line of each record by its sample id; every id needs one and every line an id."""
    ids = sorted({r["id"] for r in records})
    missing = [i for i in ids if not 0 <= i < len(gold)]
    if missing:
        raise QEUserError(f"QE record id {missing[0]} has no line in {source} ({len(gold)} lines)")
    if len(ids) != len(gold):
        raise QEUserError(
            f"{source} has {len(gold)} lines but the QE file {len(ids)} "
            "sentences: give the gold of the same test set"
        )
    return [gold[r["id"]] for r in records]


def gold_values(records, gold, kind="scores", metric="chrf", source="gold"):
    """One gold quality per record: its sentence's gold line, or for ``references`` the
    sacrebleu ``metric`` of its own hypothesis against its sentence's reference."""
    matched = match_gold(records, gold, source)
    if kind not in REFERENCE_KINDS:
        return np.asarray(matched, float)
    return np.array(
        [sentence_quality(hypothesis_text(r), ref, metric) for r, ref in zip(records, matched)]
    )


def reference_word_labels(hypothesis, references):
    """Proxy word labels of a hypothesis: 1 (OK) for each word that occurs in its
    best-matching reference (highest sentence chrF), else 0 (BAD); words are compared
    without the punctuation at their ends (a proxy: a valid word the reference did not use,
    or a word in the wrong place, is not judged as a human would)."""
    references = [references] if isinstance(references, str) else list(references)
    best = max(references, key=lambda ref: sentence_quality(hypothesis, ref))

    def bare(word):
        return word.strip(string.punctuation + "„“”‚‘’«»–—…") or word

    vocabulary = {bare(word) for word in best.split()}
    return [int(bare(word) in vocabulary) for word in hypothesis.split()]


def load_word_labels(path):
    """Word labels, a line per sentence (line i = sample id i) of whitespace-separated OK/BAD
    tags, one per word of its hypothesis (WMT word-level QE without gap tags), as 1/0."""
    labels = []
    for number, line in enumerate(read_lines(path, "word labels"), 1):
        tags = line.split()
        wrong = next((t for t in tags if t not in WORD_TAGS), None)
        if wrong is not None:
            raise QEUserError(f"{path} line {number}: word label {wrong!r} is not OK or BAD")
        labels.append([WORD_TAGS[t] for t in tags])
    return labels


def word_gold(records, labels=None, references=None, source="word labels"):
    """Per record its words' 0/1 labels: the line of ``labels`` of its sample id, or
    :func:`reference_word_labels` against its ``references``; each as long as its word
    scores."""
    if labels is not None:
        matched = match_gold(records, labels, source)
    else:
        matched = [
            reference_word_labels(word_text(r), refs)
            for r, refs in zip(records, match_gold(records, references, source))
        ]
    method = method_names(records)[0]
    for record, tags in zip(records, matched):
        words = len(record_word_scores(record, method))
        if len(tags) != words:
            raise QEUserError(
                f"QE record id {record['id']} has {words} words but {len(tags)} "
                f"word labels in {source}"
            )
    return matched
