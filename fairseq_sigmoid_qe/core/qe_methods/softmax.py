"""``softmax``: the frozen model's probability ``p(y_t)`` of each token."""

from .base import TOKEN_LOG_PROB, QEMethod, register_method


@register_method
class SoftmaxProbability(QEMethod):
    name = "softmax"
    needs = (TOKEN_LOG_PROB,)

    def token_scores(self, stats):
        return stats[TOKEN_LOG_PROB].float().exp()
