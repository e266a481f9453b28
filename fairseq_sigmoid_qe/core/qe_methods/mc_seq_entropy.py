"""``mc_seq_entropy`` (Malinin & Gales 2021): from N translations sampled from the frozen
model (:mod:`..decoding.monte_carlo` draws them), the Monte-Carlo estimate of the
length-normalised sequence entropy ``Ĥ = -1/N Σ_n 1/L_n log P(y_n | x)`` (``L_n`` tokens with
EOS); sentence score ``exp(-Ĥ)`` (its log ``-Ĥ`` in ``sentence_log_scores``), the same for
every hypothesis of a source; no token scores."""

from .base import MC_TRANSLATION_SAMPLES, OwnSentenceScore, register_method


def sequence_entropy(sample_log_probs):
    """Ĥ (length-normalised Monte-Carlo estimate) from the token log-probabilities of each
    sampled translation of one source (a list of 1-D tensors)."""
    return -sum(float(lp.double().mean()) for lp in sample_log_probs) / len(sample_log_probs)


@register_method
class MonteCarloSequenceEntropy(OwnSentenceScore):
    name = "mc_seq_entropy"
    needs = (MC_TRANSLATION_SAMPLES,)
    token_level = False

    def sentence_values(self, stats):
        return [
            {"mc_seq_entropy": -sequence_entropy(samples)}
            for samples in stats[MC_TRANSLATION_SAMPLES]
        ]
