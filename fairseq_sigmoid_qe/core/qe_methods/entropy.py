"""``entropy``: ``exp(-H_t)`` of the frozen distribution at each position; the sentence score
is ``exp`` of the mean log token score, ``exp(-mean H_t)``, whatever ``--qe-sentence-agg``."""

import math

import torch

from .base import ENTROPY, QEMethod, register_method
from .sentence import mean_log


@register_method
class Entropy(QEMethod):
    name = "entropy"
    needs = (ENTROPY,)

    def token_scores(self, stats):
        return torch.exp(-stats[ENTROPY].float())

    def sentence(self, token_scores, aggregation, own):
        log_score = mean_log(token_scores)
        return log_score, math.exp(log_score)
