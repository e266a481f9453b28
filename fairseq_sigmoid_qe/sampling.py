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


def parse_sampler_spec(spec, num_negatives):
    """``"token_freq+softmax"`` with k=10 -> ``[("token_freq", 5), ("softmax", 5)]``; an
    uneven k gives the remainder to the earlier samplers."""
    names = [name.strip() for name in str(spec).split("+")]
    if not spec or any(not name for name in names):
        raise ValueError(f"empty sampler in {spec!r}; use {', '.join(SAMPLERS)} joined by '+'")
    unknown = [name for name in names if name not in SAMPLERS]
    if unknown:
        raise ValueError(f"unknown sampler {unknown[0]!r}; choose from {', '.join(SAMPLERS)} "
                         "or a '+'-joined combination such as token_freq+softmax")
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
    probs = torch.as_tensor(list(counts) if not torch.is_tensor(counts) else counts,
                            dtype=torch.float).clone()
    probs[list(special_ids)] = 0.0
    if probs.sum() <= 0:
        raise ValueError("token frequencies are all zero: the dictionary carries no counts")
    return probs / probs.sum()


def softmax_distribution(logits, temperature=1.0, excluded=()):
    """The frozen model's distribution at temperature T, excluded ids zeroed: [N, V]."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if excluded:
        probs[:, list(excluded)] = 0.0
    return probs


def _first_occurrences(draws):
    """Mask of draws [P, m] that are the first occurrence of their token in the row."""
    ordered, order = torch.sort(draws, dim=1, stable=True)
    repeat = torch.zeros_like(draws, dtype=torch.bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    first = torch.empty_like(repeat)
    first.scatter_(1, order, ~repeat)
    return first


def _draw(probs, rows, count, generator):
    if probs.dim() == 1:
        flat = torch.multinomial(probs, rows.numel() * count, replacement=True,
                                 generator=generator)
        return flat.view(rows.numel(), count)
    return torch.multinomial(probs[rows], count, replacement=True, generator=generator)


def _allowed(draws, reference, dominant, rows):
    allowed = draws.ne(reference[rows].unsqueeze(1)) & _first_occurrences(draws)
    if dominant is not None:
        indices, mask = dominant
        allowed &= ~is_dominant(draws, indices[rows], mask[rows])
    return allowed


def _fill_exactly(probs, reference, dominant, rows, chosen, chosen_valid, num_samples, generator):
    """Dense successive sampling for the few rows the cheap draws could not fill."""
    dense = (probs.expand(reference.numel(), -1) if probs.dim() == 1 else probs)[rows].clone()
    dense.scatter_(1, reference[rows].unsqueeze(1), 0.0)
    if dominant is not None:
        indices, mask = dominant
        dense.scatter_(1, indices[rows], dense.gather(1, indices[rows]) * ~mask[rows])
    dense.scatter_(1, chosen, dense.gather(1, chosen) * ~chosen_valid)
    have = chosen_valid.sum(1)
    for i in range(rows.numel()):
        need = min(num_samples - int(have[i]), int(dense[i].gt(0).sum()))
        if need > 0:
            extra = torch.multinomial(dense[i], need, replacement=False, generator=generator)
            slots = (~chosen_valid[i]).nonzero().squeeze(1)[:need]
            chosen[i, slots] = extra
            chosen_valid[i, slots] = True
    return chosen, chosen_valid


def sample_negatives(num_samples, reference, probs, dominant=None, generator=None,
                     oversample=4, rounds=3):
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
    if probs.dim() == 2:
        live = probs.sum(dim=1) > 0
        rows = rows[live]
    history = reference.new_zeros(rows.numel(), 0)
    count = num_samples * oversample
    for _ in range(rounds):
        if rows.numel() == 0:
            break
        history = torch.cat([history, _draw(probs, rows, count, generator)], dim=1)
        allowed = _allowed(history, reference, dominant, rows)
        take = allowed & (allowed.cumsum(dim=1) <= num_samples)
        full = take.sum(dim=1) == num_samples
        tokens[rows[full]] = history[full][take[full]].view(-1, num_samples)
        valid[rows[full]] = True
        rows, history = rows[~full], history[~full]
        count *= oversample
    if rows.numel():
        partial = reference.new_zeros(rows.numel(), num_samples)
        partial_valid = torch.zeros_like(partial, dtype=torch.bool)
        allowed = _allowed(history, reference, dominant, rows)
        take = allowed & (allowed.cumsum(dim=1) <= num_samples)
        for i in range(rows.numel()):
            found = history[i][take[i]]
            partial[i, : found.numel()] = found
            partial_valid[i, : found.numel()] = True
        partial, partial_valid = _fill_exactly(probs, reference, dominant, rows, partial,
                                               partial_valid, num_samples, generator)
        tokens[rows] = torch.where(partial_valid, partial, reference[rows].unsqueeze(1))
        valid[rows] = partial_valid
    return tokens, valid
