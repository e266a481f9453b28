"""One-pass statistics by force-decoding given hypotheses through the frozen model (the
producer the search record falls back to, and QE of given translations without fairseq's
search), and the token scores of the methods from them."""

from dataclasses import dataclass

import torch

from ..dominant import DEFAULT_RULE, dominant_summary, is_dominant
from .base import (
    DOMINANT,
    ENTROPY,
    HEAD_LOGIT,
    TOKEN_LOG_PROB,
    method_token_scores,
    needs_of,
    one_pass_methods,
)


def shift_right(tokens, eos, pad):
    """Decoder input for teacher forcing: ``<eos> y_1 ... y_{T-1}`` (fairseq's convention)."""
    prev = tokens.new_full(tokens.shape, pad)
    prev[:, 0] = eos
    prev[:, 1:] = tokens[:, :-1]
    prev[:, 1:].masked_fill_(tokens[:, :-1].eq(pad), pad)
    return prev


def token_entropy(log_probs):
    """``H = -Σ_v p_v log p_v`` (nats) of each row of log-probabilities [..., V] (finite, as
    from finite logits: no ``0 · log 0`` term)."""
    log_probs = log_probs.float()
    return -(log_probs.exp() * log_probs).sum(dim=-1)


def counted_mask(tokens, pad, eos, include_eos=False):
    """The positions of right-padded hypotheses [N, T] that sentence QE counts: every real
    token, the final EOS only with ``include_eos``."""
    mask = tokens.ne(pad)
    if not include_eos:
        last = mask.sum(dim=1, keepdim=True) - 1
        final = torch.zeros_like(mask).scatter_(1, last.clamp(min=0), True)
        mask &= ~(final & tokens.eq(eos))
    return mask


@dataclass
class TokenScores:
    """Per-token scores [B, T] by method (keys of ``METHODS``), the mask of real
    (non-pad) tokens, and whether each token is the frozen softmax's argmax and in its
    dominant set (where the scores come from force-decoding)."""

    scores: dict
    mask: torch.Tensor
    argmax: torch.Tensor = None
    dominant: torch.Tensor = None

    def method(self, name):
        return self.scores[name]


def statistics_from_log_probs(log_probs, tokens, needs, rule=DEFAULT_RULE):
    """The one-pass statistics ``needs`` of tokens [N, T] from the frozen model's normalised
    log-probabilities [N, T, V] at their positions (``rule``: a
    :class:`..dominant.DominantRule`), and the dominant summary if it was taken."""
    stats, summary = {}, None
    if TOKEN_LOG_PROB in needs:
        stats[TOKEN_LOG_PROB] = log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    if DOMINANT in needs:
        summary = dominant_summary(log_probs, *rule)
        stats[DOMINANT] = (is_dominant(tokens, *summary[:2]), summary[2])
    if ENTROPY in needs:
        stats[ENTROPY] = token_entropy(log_probs)
    return stats, summary


@torch.no_grad()
def pass_statistics(
    model,
    src_tokens,
    src_lengths,
    hyp_tokens,
    pad,
    eos,
    needs,
    rule=DEFAULT_RULE,
    encoder_out=None,
):
    """The one-pass statistics ``needs`` of right-padded hypotheses [N, T] (ending in EOS),
    force-decoded in one pass, with ``tokens``, ``mask``, and the pass's ``log_probs``."""
    prev = shift_right(hyp_tokens, eos, pad)
    features, logits = model.frozen_forward(src_tokens, src_lengths, prev, encoder_out=encoder_out)
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    stats, summary = statistics_from_log_probs(log_probs, hyp_tokens, needs, rule)
    if HEAD_LOGIT in needs:
        stats[HEAD_LOGIT] = model.qe_logits(features, hyp_tokens.unsqueeze(-1)).squeeze(-1)
    stats.update(tokens=hyp_tokens, mask=hyp_tokens.ne(pad))
    return stats, log_probs, summary


@torch.no_grad()
def score_tokens(
    model,
    src_tokens,
    src_lengths,
    hyp_tokens,
    pad,
    eos,
    rule=DEFAULT_RULE,
    encoder_out=None,
    methods=None,
):
    """Scores of each hypothesis token (right-padded ``hyp_tokens`` ending in EOS) by the
    one-pass ``methods`` (default: the default methods), force-decoded, with whether each
    token is the argmax and dominant."""
    from . import DEFAULT_METHODS

    methods = one_pass_methods(DEFAULT_METHODS if methods is None else methods)
    needs = needs_of(methods) + (DOMINANT,)
    stats, log_probs, _ = pass_statistics(
        model, src_tokens, src_lengths, hyp_tokens, pad, eos, needs, rule, encoder_out
    )
    mask = stats["mask"]
    return TokenScores(
        method_token_scores(methods, stats),
        mask,
        argmax=log_probs.argmax(dim=-1).eq(hyp_tokens) & mask,
        dominant=stats[DOMINANT][0] & mask,
    )
