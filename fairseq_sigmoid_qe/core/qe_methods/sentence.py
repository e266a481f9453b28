"""Sentence scores from token scores: the product (the paper), mean log, or min."""

import math

SENTENCE_AGGREGATIONS = ("prod", "mean_log", "min")


def log_product(token_scores):
    """``log Π s_t = Σ log s_t`` of a hypothesis' token scores (-inf if one is 0, nan if
    there is none): the paper's sentence score on a scale that never underflows."""
    if not token_scores:
        return float("nan")
    return math.fsum(math.log(s) if s > 0 else -math.inf for s in token_scores)


def mean_log(token_scores):
    """Mean ``log s_t`` (nan without tokens; -inf if a score is 0)."""
    if not token_scores:
        return float("nan")
    return log_product(token_scores) / len(token_scores)


def sentence_score(token_scores, aggregation="prod", log_prod=None):
    """Sentence QE from a hypothesis' token scores (floats): product (the paper; from
    :func:`log_product`, 0.0 only below e^-745, or from ``log_prod`` when the caller has it),
    mean log, or min."""
    if aggregation not in SENTENCE_AGGREGATIONS:
        raise ValueError(f"unknown sentence aggregation {aggregation!r}: prod, mean_log or min")
    if not token_scores:
        return float("nan")
    if aggregation == "prod":
        return math.exp(log_product(token_scores) if log_prod is None else log_prod)
    if aggregation == "mean_log":
        return sum(math.log(max(s, 1e-300)) for s in token_scores) / len(token_scores)
    return min(token_scores)
