"""The dominant-token rule (BoostedProb's "difference jump") and the BoostedProb score.

Sort a softmax distribution descending, ``p_0 >= p_1 >= ...``. The drop
``d_i = p_i - p_{i+1}`` is significant when ``d_i > p_jump * p_i`` and ``d_i > epsilon``
(both strict). The tokens at sorted positions ``0..cut`` are dominant, ``cut`` being the
last (or first) significant drop; no significant drop, no dominant token.

A significant drop needs ``p_i > epsilon``, so only the tokens above ``epsilon`` and the
one after them matter: we never sort the vocabulary. One pass takes the maxima of strided
token groups; the exact top tokens lie in the groups with the largest maxima. (`boostedprob`
looks at the top 1024 tokens only, the same sets whenever ``epsilon > 1/1023``.)
"""
import math

import torch

CUT_MODES = ("last", "first")
GROUP_MEMBERS = 16


def dominant_topk_size(vocab_size, epsilon):
    """Top-K size that decides the rule exactly: at most ``1/epsilon`` tokens exceed
    ``epsilon``, plus the token after them (and one spare for rounding)."""
    if epsilon <= 0:
        return vocab_size
    return min(vocab_size, math.floor(1.0 / epsilon) + 2)


def _split_groups(rows, groups):
    """Rows [N, V] as a view [N, V // groups, groups] (token ``m * groups + g`` is member
    ``m`` of group ``g``) and the tail [N, V % groups] (tail token ``j`` is in group ``j``)."""
    members = rows.size(1) // groups
    return rows[:, : members * groups].unflatten(1, (members, groups)), rows[:, members * groups:]


def _group_maxima(main, tail):
    maxima = main.amax(dim=1)
    if tail.size(1):
        maxima[:, : tail.size(1)] = torch.maximum(maxima[:, : tail.size(1)], tail)
    return maxima


def _group_values(main, tail, group_ids):
    """Values of all members of the chosen groups, [N, members * width] (+ width for the
    tail, with ``-inf`` where a group has no tail token)."""
    values = main.gather(2, group_ids.unsqueeze(1).expand(-1, main.size(1), -1))
    if tail.size(1):
        extra = tail.gather(1, group_ids.clamp(max=tail.size(1) - 1))
        extra.masked_fill_(group_ids >= tail.size(1), float("-inf"))
        values = torch.cat([values, extra.unsqueeze(1)], dim=1)
    return values.flatten(1)


def _count_above(values, log_threshold):
    """The most entries any row of ``values`` has above its ``log_threshold``."""
    return int((values > log_threshold).sum(dim=1, dtype=torch.int32).max())


def _members_top_k(rows, main, tail, group_ids, values, k):
    """Top-k (values, ids) of ``rows`` among ``values``, the members of the groups
    ``group_ids``; rows where a missing tail member would be picked fall back to topk."""
    top, where = values.topk(k, dim=1)
    width = group_ids.size(1)
    ids = (where // width) * main.size(2) + group_ids.gather(1, where % width)
    short = (ids >= rows.size(1)).any(dim=1)
    if short.any():
        top[short], ids[short] = rows[short].topk(k, dim=1)
    return top, ids


def _top_k(rows, k):
    """Exact top-k (values, ids) of rows [N, X]: the k largest entries lie in the k groups
    with the largest maxima, themselves found the same way."""
    groups = -(-rows.size(1) // GROUP_MEMBERS)
    if rows.size(1) <= 2 * GROUP_MEMBERS * k:
        return rows.topk(k, dim=1)
    main, tail = _split_groups(rows, groups)
    group_ids = _top_k(_group_maxima(main, tail), k)[1]
    return _members_top_k(rows, main, tail, group_ids, _group_values(main, tail, group_ids), k)


def _top_tokens(rows, log_threshold, limit):
    """Exact top-k (values, ids) of rows [N, V], k = one more than the most tokens any row
    has above ``log_threshold`` [N, 1], at most ``limit``.

    The groups holding a token above the threshold, plus a few for tokens sharing a group
    (about ``c^2 / groups``), usually suffice; if some row has more tokens above it than
    that, the count over those groups' members decides."""
    groups = -(-rows.size(1) // GROUP_MEMBERS)
    main, tail = _split_groups(rows, groups)
    maxima = _group_maxima(main, tail)
    above = _count_above(maxima, log_threshold)
    width = min(groups, above + 2 + above * above // groups)
    group_ids = _top_k(maxima, width)[1]
    values = _group_values(main, tail, group_ids)
    top, ids = _members_top_k(rows, main, tail, group_ids, values, width)
    k = min(limit, _count_above(top, log_threshold) + 1)
    if k > width:
        k = min(limit, _count_above(values, log_threshold) + 1)
        group_ids = _top_k(maxima, min(groups, k))[1]
        values = _group_values(main, tail, group_ids)
        top, ids = _members_top_k(rows, main, tail, group_ids, values, k)
    return top[:, :k], ids[:, :k]


def _cut_mask(probs, p_jump, epsilon, cut):
    """Dominant mask over sorted probs [N, K]: positions up to the last/first significant drop."""
    drops = probs[:, :-1] - probs[:, 1:]
    significant = (drops > p_jump * probs[:, :-1]) & (drops > epsilon)
    significant = torch.cat([significant, significant.new_zeros(probs.size(0), 1)], dim=1)
    positions = torch.arange(probs.size(1), device=probs.device)
    if cut == "last":
        cut_at = torch.where(significant, positions, -1).amax(dim=1, keepdim=True)
    else:
        cut_at = torch.where(significant, positions, probs.size(1)).amin(dim=1, keepdim=True)
        cut_at.masked_fill_(cut_at == probs.size(1), -1)
    return positions <= cut_at


def dominant_sets(log_probs, p_jump=0.3, epsilon=0.005, cut="last", log_partition=None):
    """Top-K token ids [..., K] in descending probability and a mask [..., K] of the dominant
    ones (a prefix of each row). ``K <= dominant_topk_size(V, epsilon)``: one more than the
    most tokens any row has above ``epsilon``. ``log_probs`` [..., V] must be normalised,
    or unnormalised logits with ``log_partition`` [...] (their logsumexp). Input untouched.
    """
    if cut not in CUT_MODES:
        raise ValueError(f"dominant cut must be one of {CUT_MODES}, got {cut!r}")
    vocab = log_probs.size(-1)
    rows = log_probs.reshape(-1, vocab)
    if rows.size(0) == 0:
        empty = torch.zeros(log_probs.shape[:-1] + (0,), dtype=torch.long, device=rows.device)
        return empty, empty.bool()
    if log_partition is None:
        log_partition = torch.zeros(rows.size(0), device=rows.device)
    log_partition = log_partition.reshape(-1, 1).float()
    if epsilon > 0:
        slack = 1e-3 * (1.0 + log_partition.abs())
        log_threshold = log_partition + math.log(epsilon) - slack
        top, indices = _top_tokens(rows, log_threshold, dominant_topk_size(vocab, epsilon))
    else:
        top, indices = rows.sort(dim=1, descending=True)
    probs = (top.float() - log_partition).exp()
    mask = _cut_mask(probs, p_jump, epsilon, cut)
    shape = log_probs.shape[:-1] + (indices.size(1),)
    return indices.view(shape), mask.view(shape)


def dominant_size(mask):
    """Number of dominant tokens per position."""
    return mask.sum(dim=-1)


def is_dominant(tokens, indices, mask):
    """Whether each token is in its position's dominant set: ``tokens`` [...] or [..., m]
    against ``(indices, mask)`` [..., K] from :func:`dominant_sets`; bool of tokens' shape.
    Compares only the first ``max |dominant set|`` columns (the masks are prefixes)."""
    width = int(mask.sum(dim=-1).max()) if mask.numel() else 0
    if width == 0:
        return torch.zeros(tokens.shape, dtype=torch.bool, device=tokens.device)
    indices, mask = indices[..., :width], mask[..., :width]
    single = tokens.dim() == indices.dim() - 1
    candidates = tokens.unsqueeze(-1) if single else tokens
    hits = (candidates.unsqueeze(-1) == indices.unsqueeze(-2)) & mask.unsqueeze(-2)
    found = hits.any(dim=-1)
    return found.squeeze(-1) if single else found


def boosted_prob(log_probs, tokens, p_jump=0.3, epsilon=0.005, cut="last", log_partition=None):
    """BoostedProb of each token: the dominant set's summed probability if the token is
    dominant, else its own probability. ``log_probs`` [..., V] (or logits with their
    ``log_partition`` [...], sparing a normalised copy), ``tokens`` [...]."""
    indices, mask = dominant_sets(log_probs, p_jump, epsilon, cut, log_partition=log_partition)
    shift = 0.0 if log_partition is None else log_partition.unsqueeze(-1)
    dominant_mass = ((log_probs.gather(-1, indices) - shift).exp() * mask).sum(dim=-1)
    own = (log_probs.gather(-1, tokens.unsqueeze(-1)) - shift).squeeze(-1).exp()
    return torch.where(is_dominant(tokens, indices, mask), dominant_mass, own)
