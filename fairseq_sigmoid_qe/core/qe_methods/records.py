"""The QE record, defined here once: a hypothesis' QE (tokens; token, word and sentence
scores by method, :func:`hypothesis_qe`, from token scores) and the one record every QE writer
emits around it (:func:`build_record`) — fairseq-generate and fairseq-interactive
``--qe-output``, the raw-text command, the Python API and the quickstart — and that the
evaluator and ``calibrate`` read back. docs/record.md documents each field.

:func:`dumps` is the record's one JSON writer: strict JSON (no ``NaN``/``Infinity``; a
non-finite value is a :class:`RecordError`, never written), every sentence score in [0, 1]
(higher = better; the variance ``mc_dropout_var`` is >= 0); :func:`loads` its strict reader.
"""

import json
import math

from ..errors import QEUserError
from ..words import aggregate_words, word_ids
from .base import METHODS


def hypothesis_qe(
    token_scores,
    tokens,
    dictionary,
    include_eos=False,
    sentence_agg="prod",
    word_agg="min",
    word_level=True,
    methods=None,
    own=None,
):
    """One hypothesis' QE from its token scores by method (lists of floats aligned with
    ``tokens``, a list of ids): subword pieces, per-token, per-word (or None) and sentence
    scores of ``methods`` (default: those with token scores), and the log of each sentence
    score (each method's :meth:`~.base.QEMethod.sentence`). The final EOS is left out unless
    ``include_eos``. ``own``: the methods' :meth:`~.base.QEMethod.sentence_values`."""
    methods = tuple(token_scores) if methods is None else methods
    own = own or {}
    length = len(tokens)
    if not include_eos and tokens and tokens[-1] == dictionary.eos():
        length -= 1
    pieces = [dictionary[t] for t in tokens[:length]]
    per_token = {m: token_scores[m][:length] for m in methods if m in token_scores}
    per_word = None
    if word_level:
        ids = word_ids(pieces)
        per_word = {m: aggregate_words(v, ids, word_agg) for m, v in per_token.items()}
    sentence, log_scores = {}, {}
    for name in methods:
        method = METHODS[name]
        log_scores[name], sentence[name] = method.sentence(per_token.get(name), sentence_agg, own)
        for key in method.extra_keys:
            sentence[key] = own[key]
    return {
        "tokens": pieces,
        "token_scores": per_token,
        "word_scores": per_word,
        "sentence_scores": sentence,
        "sentence_log_scores": log_scores,
    }


def records_from_scores(scores, hypotheses, dictionary, methods=None, own=None, **options):
    """QE records of hypotheses from their token scores {method: [N, T]} (row ``i`` for
    hypothesis ``i``) and ``own[i]`` (the methods' sentence values, see
    :func:`hypothesis_qe`); ``methods``: those to report, in order (default: the keys of
    ``scores``); ``options`` go to :func:`hypothesis_qe`."""
    lists = {m: v.cpu().tolist() for m, v in scores.items()}
    records = []
    for row, tokens in enumerate(hypotheses):
        ids = tokens.tolist()
        records.append(
            hypothesis_qe(
                {m: v[row][: len(ids)] for m, v in lists.items()},
                ids,
                dictionary,
                methods=methods,
                own=own[row] if own else None,
                **options,
            )
        )
    return records


RECORD_VERSION = 1

# The fields in the order they are written; the first six say what was scored.
FIELDS = (
    "version",
    "id",
    "rank",
    "source",
    "translation",
    "decoding",
    "tokens",
    "token_scores",
    "word_scores",
    "sentence_scores",
    "sentence_log_scores",
    "calibrated",
    "errors",
    "reference",
    "gold",
)
REQUIRED = FIELDS[:11]
# Sentence-score keys that are not a score in [0, 1] but a non-negative spread.
SPREAD_KEYS = ("mc_dropout_var",)


class RecordError(QEUserError, ValueError):
    """A QE record that would not be strict JSON or breaks the schema (a bug or a model whose
    scores are not finite): never written."""


def build_record(
    qe,
    *,
    id,
    translation,
    decoding,
    source=None,
    rank=0,
    reference=None,
    gold=None,
):
    """The QE record of one hypothesis: ``qe`` its QE (``tokens``, ``token_scores``,
    ``word_scores`` (or None), ``sentence_scores``, ``sentence_log_scores``, and with a
    calibration ``calibrated``/``errors``), ``id`` its sentence (0-based line of the input /
    fairseq's sample id), ``rank`` among the sentence's hypotheses, ``translation`` its
    detokenized text, ``decoding`` how it was found (:func:`decoding_info`), ``source`` the
    source text; ``reference``/``gold`` where the caller has them (the quickstart)."""
    record = {
        "version": RECORD_VERSION,
        "id": int(id),
        "rank": int(rank),
        "source": source,
        "translation": translation,
        "decoding": decoding,
        "tokens": list(qe["tokens"]),
        "token_scores": qe["token_scores"],
        "word_scores": qe.get("word_scores"),
        "sentence_scores": dict(qe["sentence_scores"]),
        "sentence_log_scores": dict(qe["sentence_log_scores"]),
    }
    for key in ("calibrated", "errors"):
        if qe.get(key) is not None:
            record[key] = qe[key]
    if reference is not None:
        record["reference"] = reference
    if gold is not None:
        record["gold"] = gold
    if not record["tokens"]:  # an empty hypothesis has no sentence score: null, not NaN
        for part in ("sentence_scores", "sentence_log_scores"):
            record[part] = {m: _nan_to_none(v) for m, v in record[part].items()}
        if "calibrated" in record and "sentence_score" in record["calibrated"]:
            calibrated = record["calibrated"] = dict(record["calibrated"])
            calibrated["sentence_score"] = _nan_to_none(calibrated["sentence_score"])
    return record


def _nan_to_none(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def decoding_info(search, **settings):
    """The ``decoding`` field: ``search`` (``beam``, ``sampling`` or ``forced`` (given
    translations scored)) and its settings (``beam``, ``top_p``, ``temperature``, ``seed``...;
    None values left out)."""
    return {"search": search, **{k: v for k, v in settings.items() if v is not None}}


def _check_finite(value, where):
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError(f"{where} is {value} (not finite): the record is not written")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_finite(item, f"{where}[{index}]")


def check_record(record):
    """Refuse (:class:`RecordError`) a record that breaks the schema: a required field
    missing, another version, a non-finite number anywhere, a sentence score outside [0, 1]."""
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise RecordError(f"QE record has no {', '.join(missing)}")
    if record["version"] != RECORD_VERSION:
        raise RecordError(f"QE record version {record['version']!r} is not {RECORD_VERSION}")
    _check_finite(record, "record")
    for method, score in record["sentence_scores"].items():
        if score is None:
            continue
        if method in SPREAD_KEYS:
            if score < 0:
                raise RecordError(f"sentence_scores.{method} is {score}, below 0")
        elif not 0.0 <= score <= 1.0:
            raise RecordError(f"sentence_scores.{method} is {score}, outside [0, 1]")


def dumps(record):
    """One JSON line (no newline) of a record, checked (:func:`check_record`): strict JSON."""
    check_record(record)
    return json.dumps(record, ensure_ascii=False, allow_nan=False)


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def loads(line):
    """A record parsed as a strict JSON parser would (``NaN``/``Infinity`` refused)."""
    return json.loads(line, parse_constant=_refuse_constant)
