"""The Monte-Carlo statistics of the QE methods that need them: N stochastic passes of the
frozen model, seeded (the methods themselves: :mod:`..core.qe_methods.mc_dropout` and
:mod:`..core.qe_methods.mc_seq_entropy`).

- ``mc_dropout_passes``: the unchanged hypotheses force-decoded N times with only the dropout
  modules in train mode, one batched pass per sample (Fomicheva et al. 2020);
- ``mc_translation_samples``: N translations sampled from the frozen model (fairseq's
  sampling, no dropout; Malinin & Gales 2021), their token log-probabilities.

Every batch draws from its own generator state, seeded from ``--seed`` and the batch's sample
ids (:func:`batch_seed`); the process's random state is left as it was, so that QE changes no
translation, not even a sampled one.
"""

from contextlib import contextmanager

import torch

from ..core.qe_methods import METHODS, counted_mask, shift_right
from ..core.qe_methods.base import MC_DROPOUT_PASSES, MC_TRANSLATION_SAMPLES
from ..core.qe_methods.mc_dropout import dropout_statistics

MC_SEQ_ENTROPY_STREAM = 1  # seed offset: each statistic draws from its own stream


def batch_seed(seed, sample_ids, stream=0):
    """One seed per (``--seed``, batch, method stream): the same batch gets the same draws."""
    ids = [int(i) for i in sample_ids]
    mixed = (int(seed) * 1_000_003 + min(ids, default=0)) * 1_000_033 + len(ids)
    return (mixed * 8 + stream) % (1 << 63)


@contextmanager
def seeded(seed, device):
    """Draw from ``torch.manual_seed(seed)`` inside; the random state before is restored."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def dropout_modules(model, active_only=True):
    """The dropout modules of ``model`` (fairseq's and torch's), only those with ``p > 0``
    unless not ``active_only``."""
    from fairseq.modules import FairseqDropout

    return [
        m
        for m in model.modules()
        if isinstance(m, (FairseqDropout, torch.nn.Dropout)) and (m.p > 0 or not active_only)
    ]


@contextmanager
def dropout_on(model):
    """Only the dropout modules in train mode; each module's own mode restored in a
    ``finally`` (``model.train()`` is off limits: fairseq-generate replaces it)."""
    modules = dropout_modules(model, active_only=False)
    saved = [m.training for m in modules]
    try:
        for module in modules:
            module.train(True)
        yield
    finally:
        for module, mode in zip(modules, saved):
            module.train(mode)


@torch.no_grad()
def dropout_passes(
    model, src_tokens, src_lengths, hyp_tokens, pad, eos, samples, seed, temperature=1.0
):
    """Token log-probabilities [S, N, T] of right-padded hypotheses [N, T] (row ``i``
    translates source row ``i``) in ``samples`` batched force-decoding passes with dropout
    on, drawn after ``torch.manual_seed(seed)``."""
    prev = shift_right(hyp_tokens, eos, pad)
    passes = []
    with seeded(seed, hyp_tokens.device), dropout_on(model):
        for _ in range(samples):
            _, logits = model.frozen_forward(src_tokens, src_lengths, prev)
            log_probs = torch.log_softmax(logits.float() / temperature, dim=-1)
            passes.append(log_probs.gather(-1, hyp_tokens.unsqueeze(-1)).squeeze(-1))
    return torch.stack(passes)


def mc_dropout(
    model,
    src_tokens,
    src_lengths,
    hyp_tokens,
    pad,
    eos,
    samples,
    seed,
    include_eos=False,
    temperature=1.0,
):
    """Token scores, D-TP and D-Var of :func:`dropout_passes` (see
    :func:`..core.qe_methods.mc_dropout.dropout_statistics`)."""
    passes = dropout_passes(
        model, src_tokens, src_lengths, hyp_tokens, pad, eos, samples, seed, temperature
    )
    return dropout_statistics(passes, counted_mask(hyp_tokens, pad, eos, include_eos))


def translation_sampler(model, target_dictionary, samples, generation=None):
    """fairseq's generator drawing ``samples`` translations per source (``generation``:
    max_len_a, max_len_b, temperature of the run's search). Built once, before the run:
    fairseq-generate adds symbols to the target dictionary as it goes."""
    from fairseq import search
    from fairseq.sequence_generator import SequenceGenerator

    return SequenceGenerator(
        [model],
        target_dictionary,
        beam_size=samples,
        search_strategy=search.Sampling(target_dictionary),
        **(generation or {}),
    )


@torch.no_grad()
def sampled_translations(model, sample, sampler, seed):
    """Per source row of ``sample``, the token log-probabilities of the translations
    ``sampler`` (:func:`translation_sampler`) draws after ``torch.manual_seed(seed)``."""
    device = sample["net_input"]["src_tokens"].device
    with seeded(seed, device):
        hypos = sampler.generate([model], sample)
    return [[h["positional_scores"] for h in beams] for beams in hypos]


def monte_carlo_statistics(
    model, sample, rows, padded, dictionary, needs, samples, seed, temperature=1.0, sampler=None
):
    """The Monte-Carlo statistics of ``needs`` for right-padded hypotheses ``padded`` [N, T]
    of ``sample``'s rows ``rows`` (``sampler``: :func:`translation_sampler`'s, for
    ``mc_translation_samples``), each method drawing from its own seeded stream."""
    net_input = sample["net_input"]
    index = torch.as_tensor(rows, device=net_input["src_tokens"].device)
    ids = sample["id"].tolist()
    stats = {}
    if MC_DROPOUT_PASSES in needs:
        stats[MC_DROPOUT_PASSES] = dropout_passes(
            model,
            net_input["src_tokens"][index],
            net_input["src_lengths"][index],
            padded,
            dictionary.pad(),
            dictionary.eos(),
            samples,
            batch_seed(seed, ids),
            temperature,
        )
    if MC_TRANSLATION_SAMPLES in needs:
        drawn = sampled_translations(
            model, sample, sampler, batch_seed(seed, ids, MC_SEQ_ENTROPY_STREAM)
        )
        stats[MC_TRANSLATION_SAMPLES] = [drawn[row] for row in rows]
    return stats


def check_dropout(model, methods):
    """Methods with dropout passes need a model with dropout: the reason they cannot run, or
    None."""
    needing = [m for m in methods if MC_DROPOUT_PASSES in METHODS[m].needs]
    if needing and not dropout_modules(model):
        return (
            f"--qe-methods {','.join(needing)} needs a model trained with dropout, but every "
            "dropout of this model is 0"
        )
    return None
