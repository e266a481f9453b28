"""Negative samplers for the NCE loss ``-log σ(z_y) - Σ_{n∈N} log(1 - σ(z_n))``.

Negatives are drawn without replacement from a distribution renormalised over the allowed
tokens: never the reference, never a dominant token, never a zero-probability token
(padding). Exact and cheap: draw with replacement, drop repeats and excluded tokens, keep the
first k survivors (successive sampling). Position-independent distributions are never
expanded to [positions × V].
"""

import torch

from .dominant import is_dominant

SAMPLERS = ("random", "token_freq", "softmax")
CDF_CHUNK = 1 << 20  # floats of per-row weights turned into a CDF at a time


def parse_sampler_spec(spec, num_negatives):
    """``"token_freq+softmax"`` with k=10 -> ``[("token_freq", 5), ("softmax", 5)]``; an
    uneven k gives the remainder to the earlier samplers."""
    names = [name.strip() for name in str(spec).split("+")]
    if not spec or any(not name for name in names):
        raise ValueError(f"empty sampler in {spec!r}; use {', '.join(SAMPLERS)} joined by '+'")
    unknown = [name for name in names if name not in SAMPLERS]
    if unknown:
        raise ValueError(
            f"unknown sampler {unknown[0]!r}; choose from {', '.join(SAMPLERS)} "
            "or a '+'-joined combination such as token_freq+softmax"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"sampler named twice in {spec!r}")
    if len(names) > num_negatives:
        raise ValueError(f"{len(names)} samplers but only {num_negatives} negatives to split")
    share, remainder = divmod(num_negatives, len(names))
    return [(name, share + (i < remainder)) for i, name in enumerate(names)]


def uniform_distribution(vocab_size, excluded=()):
    probs = torch.ones(vocab_size)
    probs[list(excluded)] = 0.0
    return probs / probs.sum()


def token_frequency_distribution(counts, special_ids=()):
    """Target-side training counts with the special symbols zeroed."""
    probs = torch.as_tensor(
        list(counts) if not torch.is_tensor(counts) else counts, dtype=torch.float
    ).clone()
    probs[list(special_ids)] = 0.0
    if probs.sum() <= 0:
        raise ValueError("token frequencies are all zero: the dictionary carries no counts")
    return probs / probs.sum()


def softmax_weights(logits, temperature=1.0, excluded=(), out=None, stats=None):
    """The frozen softmax at temperature T, unnormalised: ``exp((z - max z) / T)`` [N, V]
    with excluded ids zeroed, and the rows' log-partition ``logsumexp(z)`` at T=1 (for the
    dominant rule). One [N, V] float buffer: ``out`` if given, which may be the float
    ``logits`` themselves (overwritten in place). ``stats``: their (row maximum, log-partition)
    from :func:`dominant.row_log_partition`, which spares those passes."""
    if stats is None:
        row_max, log_partition = logits.amax(dim=-1, keepdim=True).float(), None
    else:
        row_max, log_partition = stats
    weights = torch.sub(logits.float(), row_max, out=out).exp_()
    if log_partition is None:
        log_partition = row_max.squeeze(-1) + weights.sum(dim=-1).log()
    if temperature != 1:
        weights.pow_(1.0 / temperature)
    for index in excluded:
        weights[:, index] = 0.0
    return weights, log_partition


def _first_occurrences(draws):
    """Mask of draws [P, m] that are the first occurrence of their token in the row."""
    ordered, order = torch.sort(draws, dim=1, stable=True)
    repeat = torch.zeros_like(draws, dtype=torch.bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    first = torch.empty_like(repeat)
    first.scatter_(1, order, ~repeat)
    return first


def _select_rows(tensor, rows):
    """``tensor[rows]`` without a copy when all rows are selected."""
    return tensor if rows.numel() == tensor.size(0) else tensor[rows]


def _inverse_cdf(weights, uniform):
    """Index of the category that ``uniform`` in [0, 1) falls into, per row of ``weights``."""
    cdf = weights.cumsum(dim=-1)
    index = torch.searchsorted(cdf, uniform * cdf[..., -1:], right=True)
    return index.clamp_(max=weights.size(-1) - 1)


def _block_size(vocab):
    """Tokens per block of the two-level draw (None: a plain inverse CDF over the row)."""
    return next((b for b in (64, 32, 16, 8) if vocab % b == 0 and vocab >= 8 * b), None)


def _draw_two_level(probs, rows, block_sums, count, generator):
    """Draws from rows ``rows`` of [N, V] weights without a [P, V] cumsum or copy: pick a block
    of consecutive tokens by its mass (``block_sums`` [N, V / block]), then a token inside it
    (both exact)."""
    block = probs.size(1) // block_sums.size(1)
    blocks = probs.view(probs.size(0), -1, block)
    uniform = torch.rand(2, rows.numel(), count, generator=generator, device=probs.device)
    chosen = _inverse_cdf(_select_rows(block_sums, rows), uniform[0])
    weights = blocks[rows.unsqueeze(1), chosen]
    within = _inverse_cdf(weights, uniform[1].unsqueeze(-1)).squeeze(-1)
    return chosen * block + within


def _draw(probs, rows, count, generator, block_sums=None):
    """``count`` draws with replacement per row: one shared [V] or per-row [N, V] weights
    (``block_sums``: their block masses, see :func:`_draw_two_level`)."""
    if probs.dim() == 1:
        flat = torch.multinomial(probs, rows.numel() * count, replacement=True, generator=generator)
        return flat.view(rows.numel(), count)
    if block_sums is None:  # a few rows at a time: no [P, V] cumsum
        uniform = torch.rand(rows.numel(), count, generator=generator, device=probs.device)
        step = max(1, CDF_CHUNK // probs.size(1))
        return torch.cat(
            [
                _inverse_cdf(probs[rows[i : i + step]], uniform[i : i + step])
                for i in range(0, rows.numel(), step)
            ]
        )
    return _draw_two_level(probs, rows, block_sums, count, generator)


def _allowed(draws, reference, probs, dominant, rows):
    allowed = draws.ne(reference[rows].unsqueeze(1)) & _first_occurrences(draws)
    if probs.dim() == 2:
        allowed &= probs[rows.unsqueeze(1), draws] > 0
    if dominant is not None:
        indices, mask = dominant
        allowed &= ~is_dominant(draws, indices[rows], mask[rows])
    return allowed


def _gumbel_top(weights, count, generator):
    """``count`` draws without replacement from each row of [R, V] weights, in successive
    sampling order (Gumbel top-k, exact); a draw past a row's non-zero weights is invalid."""
    gumbel = torch.rand(weights.shape, generator=generator, device=weights.device)
    gumbel.clamp_(min=torch.finfo(gumbel.dtype).tiny).log_().neg_().log_().neg_()
    keys, tokens = torch.log(weights).add_(gumbel).topk(count, dim=1)
    return tokens, keys > float("-inf")


def _fill_exactly(probs, reference, dominant, rows, chosen, chosen_valid, num_samples, generator):
    """Dense successive sampling for the rows the cheap draws could not fill (all at once):
    their free slots (after the valid prefix) get draws from the tokens left."""
    dense = (probs.expand(reference.numel(), -1) if probs.dim() == 1 else probs)[rows]  # a copy
    dense.scatter_(1, reference[rows].unsqueeze(1), 0.0)
    excluded = [(chosen, chosen_valid)] + (
        [] if dominant is None else [(dominant[0][rows], dominant[1][rows])]
    )
    for ids, mask in excluded:  # only masked slots: padding ids may repeat an excluded id
        which, slot = mask.nonzero(as_tuple=True)
        dense[which, ids[which, slot]] = 0.0
    free = ~chosen_valid
    count = min(int(free.sum(1).max()), dense.size(1))
    if count == 0:
        return chosen, chosen_valid
    extra, extra_valid = _gumbel_top(dense, count, generator)
    order = (free.cumsum(1) - 1).clamp_(min=0, max=count - 1)  # j-th free slot <- j-th draw
    chosen = torch.where(free, extra.gather(1, order), chosen)
    return chosen, chosen_valid | (free & extra_valid.gather(1, order))


def negatives_capacity(probs):
    """Most negatives a position can get from a fixed distribution [V]: its non-zero tokens
    less the reference."""
    return int((probs > 0).sum()) - 1


def largest_split(capacities):
    """Largest k whose split over samplers (even, the remainder to the earlier ones, as
    :func:`parse_sampler_spec`) fits each sampler's capacity."""
    share = min(capacities)
    extra = next(i for i, capacity in enumerate(capacities) if capacity <= share)
    return len(capacities) * share + extra


def sample_negatives(
    num_samples, reference, probs, dominant=None, generator=None, oversample=4, rounds=3
):
    """k negatives per position, without replacement, from ``probs`` ([V] shared or [N, V]).

    ``dominant`` is ``(indices, mask)`` from :func:`dominant_sets` or None. Returns tokens
    [N, k] and a validity mask [N, k]; a slot is invalid only when fewer than k allowed
    tokens have non-zero probability (its token is then the reference: never a negative).
    """
    n = reference.numel()
    tokens = reference.unsqueeze(1).repeat(1, num_samples)
    valid = torch.zeros(n, num_samples, dtype=torch.bool, device=reference.device)
    if n == 0 or num_samples == 0:
        return tokens, valid
    rows = torch.arange(n, device=reference.device)
    block_sums = None
    if probs.dim() == 2:
        probs = probs.contiguous()
        block = _block_size(probs.size(1))
        if block is not None:  # one pass: the blocks' masses, and from them the live rows
            block_sums = probs.view(n, -1, block).sum(dim=-1)
        live = (probs if block_sums is None else block_sums).sum(dim=1) > 0
        rows = rows[live]
    history = reference.new_zeros(rows.numel(), 0)
    count = num_samples * oversample
    if count >= probs.size(-1):  # k near the vocabulary: cheap draws would mostly repeat
        rounds = 0
    for _ in range(rounds):
        if rows.numel() == 0:
            break
        history = torch.cat([history, _draw(probs, rows, count, generator, block_sums)], dim=1)
        allowed = _allowed(history, reference, probs, dominant, rows)
        take = allowed & (allowed.cumsum(dim=1) <= num_samples)
        full = take.sum(dim=1) == num_samples
        tokens[rows[full]] = history[full][take[full]].view(-1, num_samples)
        valid[rows[full]] = True
        rows, history = rows[~full], history[~full]
        count *= oversample
    if rows.numel():
        partial = reference.new_zeros(rows.numel(), num_samples)
        partial_valid = torch.zeros_like(partial, dtype=torch.bool)
        allowed = _allowed(history, reference, probs, dominant, rows)
        take = allowed & (allowed.cumsum(dim=1) <= num_samples)
        which, column = take.nonzero(as_tuple=True)  # the found draws, moved to the front
        slot = take.cumsum(dim=1)[which, column] - 1
        partial[which, slot] = history[which, column]
        partial_valid[which, slot] = True
        partial, partial_valid = _fill_exactly(
            probs, reference, dominant, rows, partial, partial_valid, num_samples, generator
        )
        tokens[rows] = torch.where(partial_valid, partial, reference[rows].unsqueeze(1))
        valid[rows] = partial_valid
    return tokens, valid


def deduplicate_negatives(negatives, valid):
    """``valid`` with every repeat of a token within a position's negatives switched off, so
    that a token drawn by two samplers counts once in ``Σ_n log(1 - σ(z_n))`` (as the authors'
    ``torch.unique`` over position x token). ``negatives`` [P, k] and ``valid`` [P, k] (bool)."""
    if negatives.size(1) < 2:
        return valid
    columns = torch.arange(negatives.size(1), device=negatives.device).expand_as(negatives)
    keyed = torch.where(valid, negatives, -1 - columns)  # an invalid draw never matches
    order = keyed.argsort(dim=1, stable=True)
    ordered = keyed.gather(1, order)
    repeat = torch.zeros_like(valid)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    kept = valid.clone()
    kept.scatter_(1, order, ~repeat & valid.gather(1, order))
    return kept
