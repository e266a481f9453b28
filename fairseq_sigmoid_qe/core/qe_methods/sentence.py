"""Sentence scores from token scores, each in [0, 1] (higher = better): the product (the
paper), the geometric mean (``mean_log``: exp of the mean log), or min."""

import math

SENTENCE_AGGREGATIONS = ("prod", "mean_log", "min")

# Token scores come from float32 tensors: one of 0.0 is below float32's smallest positive value,
# and its log is taken at that bound, so that a sentence's log score is always finite.
SMALLEST_SCORE = 2.0**-149


def log_product(token_scores):
    """``log Π s_t = Σ log s_t`` of a hypothesis' token scores (a score of 0 counted as
    ``SMALLEST_SCORE``; nan if there is none): the paper's sentence score on a scale that
    never underflows."""
    if not token_scores:
        return float("nan")
    return math.fsum(math.log(max(s, SMALLEST_SCORE)) for s in token_scores)


def mean_log(token_scores):
    """Mean ``log s_t`` (nan without tokens; a score of 0 counted as ``SMALLEST_SCORE``)."""
    if not token_scores:
        return float("nan")
    return log_product(token_scores) / len(token_scores)


def sentence_score(token_scores, aggregation="prod", log_prod=None):
    """Sentence QE in [0, 1] from a hypothesis' token scores (floats): product (the paper;
    from :func:`log_product`, 0.0 only below e^-745, or from ``log_prod`` when the caller has
    it), geometric mean (``mean_log``: exp of the mean log), or min."""
    if aggregation not in SENTENCE_AGGREGATIONS:
        raise ValueError(f"unknown sentence aggregation {aggregation!r}: prod, mean_log or min")
    if not token_scores:
        return float("nan")
    if aggregation == "prod":
        return math.exp(log_product(token_scores) if log_prod is None else log_prod)
    if aggregation == "mean_log":
        return math.exp(mean_log(token_scores))
    return min(token_scores)
