"""``boostedprob``: the dominant set's summed probability where the token is dominant, else
``p(y_t)`` (the dominant rule: :mod:`..dominant`)."""

import torch

from .base import DOMINANT, TOKEN_LOG_PROB, QEMethod, register_method


@register_method
class BoostedProb(QEMethod):
    name = "boostedprob"
    needs = (TOKEN_LOG_PROB, DOMINANT)

    def token_scores(self, stats):
        member, mass = stats[DOMINANT]
        return torch.where(member, mass.float(), stats[TOKEN_LOG_PROB].float().exp())
