"""``mc_dropout`` (Fomicheva et al. 2020, "Unsupervised QE for NMT") from S force-decoding
passes with dropout on (:mod:`..decoding.monte_carlo` draws them).

``TP_s = 1/T Σ_t log p_s(y_t)`` (length-normalised log-probability of pass ``s``); the
sentence score is ``exp(D-TP)``, ``D-TP = 1/S Σ_s TP_s`` (its log, D-TP itself, in
``sentence_log_scores``); ``mc_dropout_var`` is D-Var ``= 1/S Σ_s (TP_s - D-TP)²`` (lower =
more certain); token score ``1/S Σ_s p_s(y_t)``.
"""

from .base import MC_DROPOUT_PASSES, OwnSentenceScore, register_method


def dropout_statistics(log_probs, mask):
    """From each sample's token log-probabilities [S, N, T] and the counted positions [N, T]:
    token scores ``mean_s p_s`` [N, T], D-TP [N] and D-Var [N] (NaN for a hypothesis without
    counted tokens)."""
    counts = mask.sum(dim=1).double()
    tp = log_probs.double().masked_fill(~mask, 0.0).sum(dim=2) / counts  # [S, N]
    shift = tp - tp[0]  # about the first sample: equal samples give exactly 0
    d_tp = tp[0] + shift.mean(dim=0)
    d_var = (shift**2).mean(dim=0) - shift.mean(dim=0) ** 2
    dtype = log_probs.dtype
    return log_probs.exp().mean(dim=0), d_tp.to(dtype), d_var.clamp(min=0).to(dtype)


@register_method
class MonteCarloDropout(OwnSentenceScore):
    name = "mc_dropout"
    needs = (MC_DROPOUT_PASSES,)
    extra_keys = ("mc_dropout_var",)

    def token_scores(self, stats):
        return stats[MC_DROPOUT_PASSES].float().exp().mean(dim=0)

    def sentence_values(self, stats):
        _, d_tp, d_var = dropout_statistics(stats[MC_DROPOUT_PASSES], stats["counted"])
        return [
            {"mc_dropout": tp, "mc_dropout_var": var}
            for tp, var in zip(d_tp.tolist(), d_var.tolist())
        ]
