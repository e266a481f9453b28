"""The dominant-token rule (BoostedProb's "difference jump") and the BoostedProb score.

Sort a softmax distribution descending, ``p_0 >= p_1 >= ...``. The drop
``d_i = p_i - p_{i+1}`` is significant when ``d_i > p_jump * p_i`` and ``d_i > epsilon``.
The tokens above the last (or first) significant drop are dominant; none if no drop is.
"""
import math

import torch

CUT_MODES = ("last", "first")


def dominant_topk_size(vocab_size, epsilon):
    """How many top tokens decide the rule exactly: a significant drop needs ``p_i > epsilon``,
    so fewer than ``1/epsilon`` tokens precede it (one spare for rounding)."""
    if epsilon <= 0:
        return vocab_size
    return min(vocab_size, math.floor(1.0 / epsilon) + 2)


def dominant_sets(log_probs, p_jump=0.3, epsilon=0.005, cut="last", log_partition=None):
    """Top-K token ids [..., K] (descending probability) and a mask [..., K] of the dominant ones.

    A significant drop needs ``p_i > epsilon``, so the tokens above ``epsilon`` plus one
    decide the rule exactly; K never exceeds :func:`dominant_topk_size`. With
    ``log_partition`` (the rows' logsumexp), ``log_probs`` may be unnormalised logits: this
    spares a dense log-softmax.
    """
    if cut not in CUT_MODES:
        raise ValueError(f"dominant cut must be one of {CUT_MODES}, got {cut!r}")
    limit = dominant_topk_size(log_probs.size(-1), epsilon)
    if log_partition is None:
        log_partition = torch.zeros(log_probs.shape[:-1], device=log_probs.device)
    log_partition = log_partition.unsqueeze(-1)
    k = min(16, limit) if epsilon > 0 else limit
    while True:
        top_log_probs, indices = torch.topk(log_probs, k, dim=-1, largest=True, sorted=True)
        top_log_probs = top_log_probs.float() - log_partition
        if k >= limit or not bool((top_log_probs[..., -1].exp() > epsilon).any()):
            break
        k = min(4 * k, limit)
    k = indices.size(-1)
    probs = top_log_probs.exp()
    drops = probs[..., :-1] - probs[..., 1:]
    significant = (drops > p_jump * probs[..., :-1]) & (drops > epsilon)
    significant = torch.cat([significant, significant.new_zeros(significant.shape[:-1] + (1,))], -1)
    positions = torch.arange(k, device=log_probs.device)
    if cut == "last":
        cut_at = torch.where(significant, positions, -1).amax(dim=-1)
    else:
        cut_at = torch.where(significant, positions, k).amin(dim=-1)
        cut_at = torch.where(cut_at == k, -1, cut_at)
    mask = torch.arange(k, device=log_probs.device) <= cut_at.unsqueeze(-1)
    return indices, mask


def dominant_size(mask):
    return mask.sum(dim=-1)


def is_dominant(tokens, indices, mask):
    """Whether each token is in its position's dominant set.

    ``tokens`` [...] or [..., m] against ``indices``/``mask`` [..., K] -> bool of tokens' shape.
    """
    width = int(mask.sum(dim=-1).max()) if mask.numel() else 0
    if width == 0:
        return torch.zeros(tokens.shape, dtype=torch.bool, device=tokens.device)
    indices, mask = indices[..., :width], mask[..., :width]
    squeeze = tokens.dim() == indices.dim() - 1
    candidates = tokens.unsqueeze(-1) if squeeze else tokens
    hits = (candidates.unsqueeze(-1) == indices.unsqueeze(-2)) & mask.unsqueeze(-2)
    found = hits.any(dim=-1)
    return found.squeeze(-1) if squeeze else found


def boosted_prob(log_probs, tokens, p_jump=0.3, epsilon=0.005, cut="last"):
    """BoostedProb of each token: the dominant set's summed probability if the token is
    dominant, else its own probability. ``log_probs`` [..., V], ``tokens`` [...]."""
    indices, mask = dominant_sets(log_probs, p_jump, epsilon, cut)
    top_probs = log_probs.gather(-1, indices).exp()
    dominant_mass = (top_probs * mask).sum(dim=-1)
    own = log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).exp()
    return torch.where(is_dominant(tokens, indices, mask), dominant_mass, own)
