"""The QE methods: one class per method, one module each, in a registry (:data:`METHODS`,
``--qe-methods`` picks some, in order).

- :mod:`.base`: the interface (what a method needs from the pass, its token and sentence
  scores, direction and range) and ``@register_method``;
- the methods: :mod:`.sigmoid`, :mod:`.softmax`, :mod:`.boostedprob`, :mod:`.entropy`,
  :mod:`.mc_dropout`, :mod:`.mc_seq_entropy`;
- :mod:`.forced`: the one-pass statistics by force-decoding; :mod:`.sentence`: sentence
  aggregations; :mod:`.records`: the QE record (its schema, strict JSON writer and reader).

A new method is one more module here, imported below (docs/architecture.md, "Add a method").
"""

# isort: off
# The built-in methods, registered in this order (that of --qe-methods' help and the docs).
from . import sigmoid, softmax, boostedprob, entropy, mc_dropout, mc_seq_entropy  # noqa: F401

# isort: on
from .base import (
    METHODS,
    QEMethod,
    method_sentence_values,
    method_token_scores,
    monte_carlo_methods,
    needs_of,
    one_pass_methods,
    register_method,
)
from .forced import (
    TokenScores,
    counted_mask,
    pass_statistics,
    score_tokens,
    shift_right,
    token_entropy,
)
from .records import (
    RECORD_VERSION,
    RecordError,
    build_record,
    hypothesis_qe,
    records_from_scores,
)
from .sentence import (
    SENTENCE_AGGREGATIONS,
    SMALLEST_SCORE,
    log_product,
    mean_log,
    sentence_score,
)

DEFAULT_METHODS = ("sigmoid", "softmax", "boostedprob")

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "QEMethod",
    "RECORD_VERSION",
    "RecordError",
    "SENTENCE_AGGREGATIONS",
    "SMALLEST_SCORE",
    "TokenScores",
    "build_record",
    "counted_mask",
    "hypothesis_qe",
    "log_product",
    "mean_log",
    "method_sentence_values",
    "method_token_scores",
    "monte_carlo_methods",
    "needs_of",
    "one_pass_methods",
    "parse_methods",
    "pass_statistics",
    "records_from_scores",
    "register_method",
    "score_tokens",
    "sentence_score",
    "shift_right",
    "token_entropy",
]


def parse_methods(text):
    """The methods of a ``--qe-methods`` comma list, in its order (``ValueError`` with the
    reason for an unknown, repeated or missing name)."""
    names = tuple(name.strip() for name in str(text).split(","))
    for name in names:
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}" if name else "an empty method name")
        if names.count(name) > 1:
            raise ValueError(f"{name} is given twice")
    return names
