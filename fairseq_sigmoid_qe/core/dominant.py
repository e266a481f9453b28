"""The dominant-token rule (BoostedProb's "difference jump") and the BoostedProb score.

Sort a softmax distribution descending, ``p_0 >= p_1 >= ...``. The drop
``d_i = p_i - p_{i+1}`` is significant when ``d_i > p_jump * p_i`` and ``d_i > epsilon``
(both strict). The tokens at sorted positions ``0..cut`` are dominant, ``cut`` being the
last (or first) significant drop; no significant drop, no dominant token.

A significant drop needs ``p_i > epsilon``, so only the tokens above ``epsilon`` (at most
``1/epsilon``) and the largest one below matter: we never sort the vocabulary. One pass takes
the maxima of strided token groups; only the groups whose maximum is above ``epsilon`` are
opened, and only their tokens above it are sorted. (`boostedprob` looks at the top 1024
tokens only, the same sets whenever ``epsilon > 1/1023``.)
"""

import math
from dataclasses import dataclass

import torch

from .errors import check_range

CUT_MODES = ("last", "first")
# The paper's rule, the one definition of its defaults (training's --dominant-* and inference's
# --qe-dominant-* options default to these).
DEFAULT_P_JUMP = 0.3  # relative: a drop must exceed this share of the probability above it
DEFAULT_EPSILON = 0.005  # absolute: ... and this much probability
DEFAULT_CUT = "last"  # the set ends at the last significant drop


@dataclass(frozen=True)
class DominantRule:
    """The dominant rule's settings; ``*rule`` gives ``(p_jump, epsilon, cut)``."""

    p_jump: float = DEFAULT_P_JUMP
    epsilon: float = DEFAULT_EPSILON
    cut: str = DEFAULT_CUT

    def __iter__(self):
        return iter((self.p_jump, self.epsilon, self.cut))


DEFAULT_RULE = DominantRule()


def check_rule(p_jump, epsilon, prefix="--dominant-"):
    """Refuse a rule whose bounds leave no drop, or every drop, significant: one error line
    naming the option (``prefix`` + ``p-jump``/``epsilon``)."""
    check_range(
        prefix + "p-jump",
        p_jump,
        0,
        1,
        low_open=True,
        high_open=True,
        meaning="outside it no drop, or every drop, is significant",
    )
    check_range(
        prefix + "epsilon",
        epsilon,
        0,
        1,
        low_open=True,
        high_open=True,
        meaning="from 1 on no drop is significant",
    )


GROUP_MEMBERS = 16
LOG_PARTITION_CHUNK = 1 << 18  # floats in row_log_partition's buffer (1 MiB)


def _split_groups(rows, groups):
    """Rows [N, V] as a view [N, V // groups, groups] (token ``m * groups + g`` is member
    ``m`` of group ``g``) and the tail [N, V % groups] (tail token ``j`` is in group ``j``)."""
    members = rows.size(1) // groups
    return rows[:, : members * groups].unflatten(1, (members, groups)), rows[:, members * groups :]


def _group_maxima(main, tail):
    maxima = main.amax(dim=1)
    if tail.size(1):
        maxima[:, : tail.size(1)] = torch.maximum(maxima[:, : tail.size(1)], tail)
    return maxima


def _open_groups(main, tail, rows_of, groups_of):
    """Values [P, members (+1)] and token ids of the groups ``groups_of`` of rows ``rows_of``
    (a group without a tail token gets ``-inf`` there)."""
    groups = main.size(2)
    values = main[rows_of, :, groups_of]
    ids = torch.arange(main.size(1), device=main.device) * groups + groups_of.unsqueeze(1)
    if tail.size(1):
        extra = tail[rows_of, groups_of.clamp(max=tail.size(1) - 1)]
        extra = extra.masked_fill(groups_of >= tail.size(1), float("-inf"))
        values = torch.cat([values, extra.unsqueeze(1)], dim=1)
        ids = torch.cat([ids, (main.size(1) * groups + groups_of).unsqueeze(1)], dim=1)
    return values, ids


def _head_above(rows, log_threshold):
    """Each row's entries above its ``log_threshold`` [N, 1] in descending order, then the
    row's largest other entry (a copy of its last entry if it has none): values [N, K]
    (``-inf`` after that) and ids [N, K] (0 from that entry on: never dominant), K = 1 + the
    most entries a row has above its threshold."""
    n = rows.size(0)
    main, tail = _split_groups(rows, -(-rows.size(1) // GROUP_MEMBERS))
    maxima = _group_maxima(main, tail)
    opened = maxima > log_threshold
    rows_of, groups_of = opened.nonzero(as_tuple=True)
    values, ids = _open_groups(main, tail, rows_of, groups_of)
    above = values > log_threshold[rows_of]
    following = maxima.masked_fill(opened, float("-inf")).amax(dim=1)
    following = following.scatter_reduce(
        0, rows_of, values.masked_fill(above, float("-inf")).amax(dim=1), "amax"
    )
    entry_rows = rows_of.unsqueeze(1).expand_as(above)[above]
    entry_values, entry_ids = values[above], ids[above]
    order = torch.argsort(entry_values, descending=True, stable=True)
    order = order[torch.argsort(entry_rows[order], stable=True)]
    entry_rows, entry_values, entry_ids = entry_rows[order], entry_values[order], entry_ids[order]
    counts = torch.bincount(entry_rows, minlength=n)
    width = int(counts.max()) + 1 if n else 1
    position = (
        torch.arange(entry_rows.numel(), device=rows.device)
        - (counts.cumsum(0) - counts)[entry_rows]
    )
    top = rows.new_full((n, width), float("-inf"))
    top[entry_rows, position] = entry_values
    every = torch.arange(n, device=rows.device)
    no_other = counts == rows.size(1)  # no drop after the last token of the vocabulary
    top[every, counts] = torch.where(no_other, top[every, (counts - 1).clamp(min=0)], following)
    top_ids = torch.zeros((n, width), dtype=torch.long, device=rows.device)
    top_ids[entry_rows, position] = entry_ids
    return top, top_ids


def row_log_partition(logits, chunk_elements=LOG_PARTITION_CHUNK):
    """Each row's maximum [N, 1] and ``logsumexp(z)`` [N] of logits [N, V]: the numbers
    :func:`torch.logsumexp` gives for finite logits (and ``sampling.softmax_weights``), through a
    buffer of a few rows: no [N, V] temporary, and the logits stay intact for the dominant rule
    (and may then be overwritten, e.g. by the sampler's weights)."""
    row_max = logits.amax(dim=-1, keepdim=True).float()
    rows = max(1, chunk_elements // max(logits.size(-1), 1))
    buffer = torch.empty(
        (min(rows, logits.size(0)), logits.size(-1)), dtype=torch.float, device=logits.device
    )
    sums = torch.empty(logits.size(0), dtype=torch.float, device=logits.device)
    for start in range(0, logits.size(0), rows):
        part = slice(start, start + rows)
        chunk = buffer[: sums[part].numel()]
        torch.sub(logits[part].float(), row_max[part], out=chunk).exp_()
        torch.sum(chunk, dim=-1, out=sums[part])
    return row_max, row_max.squeeze(-1) + sums.log()


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


def dominant_summary(
    log_probs, p_jump=DEFAULT_P_JUMP, epsilon=DEFAULT_EPSILON, cut=DEFAULT_CUT, log_partition=None
):
    """Dominant token ids [..., W] in descending probability, their mask [..., W] (a prefix
    of each row; W = the largest set or 1, ids past a row's set are padding) and the set's summed
    probability [...]. ``log_probs`` [..., V] must be normalised, or unnormalised logits with
    ``log_partition`` [...] (their logsumexp). Input untouched."""
    if cut not in CUT_MODES:
        raise ValueError(f"dominant cut must be one of {CUT_MODES}, got {cut!r}")
    vocab = log_probs.size(-1)
    rows = log_probs.reshape(-1, vocab)
    if log_partition is None:
        log_partition = torch.zeros(rows.size(0), device=rows.device)
    log_partition = log_partition.reshape(-1, 1).float()
    if epsilon > 0:
        slack = 1e-3 * (1.0 + log_partition.abs())
        top, ids = _head_above(rows, log_partition + math.log(epsilon) - slack)
    else:
        top, ids = rows.sort(dim=1, descending=True)
    probs = (top.float() - log_partition).exp()
    mask = _cut_mask(probs, p_jump, epsilon, cut)
    width = max(1, int(mask.sum(dim=1).max())) if mask.numel() else 1
    mass = (probs * mask).sum(dim=1)
    shape = log_probs.shape[:-1]
    return (
        ids[:, :width].reshape(shape + (width,)),
        mask[:, :width].reshape(shape + (width,)),
        mass.reshape(shape),
    )


def dominant_sets(
    log_probs, p_jump=DEFAULT_P_JUMP, epsilon=DEFAULT_EPSILON, cut=DEFAULT_CUT, log_partition=None
):
    """Dominant token ids [..., W] and their mask [..., W]: :func:`dominant_summary` without
    the mass."""
    return dominant_summary(log_probs, p_jump, epsilon, cut, log_partition)[:2]


def dominant_size(mask):
    """Number of dominant tokens per position."""
    return mask.sum(dim=-1)


def is_dominant(tokens, indices, mask):
    """Whether each token is in its position's dominant set: ``tokens`` [...] or [..., m]
    against ``(indices, mask)`` [..., W] from :func:`dominant_sets`; bool of tokens' shape."""
    if indices.size(-1) == 0:
        return torch.zeros(tokens.shape, dtype=torch.bool, device=tokens.device)
    single = tokens.dim() == indices.dim() - 1
    candidates = tokens.unsqueeze(-1) if single else tokens
    hits = (candidates.unsqueeze(-1) == indices.unsqueeze(-2)) & mask.unsqueeze(-2)
    found = hits.any(dim=-1)
    return found.squeeze(-1) if single else found


def boost(own_probs, tokens, indices, mask, mass):
    """BoostedProb from a :func:`dominant_summary`: the dominant set's mass where the token
    is dominant, else its own probability."""
    return torch.where(is_dominant(tokens, indices, mask), mass.to(own_probs.dtype), own_probs)


def boosted_prob(
    log_probs,
    tokens,
    p_jump=DEFAULT_P_JUMP,
    epsilon=DEFAULT_EPSILON,
    cut=DEFAULT_CUT,
    log_partition=None,
):
    """BoostedProb of each token: the dominant set's summed probability if the token is
    dominant, else its own probability. ``log_probs`` [..., V] (or logits with their
    ``log_partition`` [...], sparing a normalised copy), ``tokens`` [...]."""
    indices, mask, mass = dominant_summary(log_probs, p_jump, epsilon, cut, log_partition)
    shift = 0.0 if log_partition is None else log_partition
    own = (log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).float() - shift).exp()
    return boost(own, tokens, indices, mask, mass)
