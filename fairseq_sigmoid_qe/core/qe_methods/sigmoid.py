"""``sigmoid``: the sigmoid head's confidence ``σ(h · W_qe[y])`` (Dinh & Niehues 2026)."""

import torch

from .base import HEAD_LOGIT, QEMethod, register_method


@register_method
class SigmoidHead(QEMethod):
    name = "sigmoid"
    needs = (HEAD_LOGIT,)

    def token_scores(self, stats):
        return torch.sigmoid(stats[HEAD_LOGIT].float())
