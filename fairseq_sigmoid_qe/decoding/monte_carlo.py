"""The Monte-Carlo QE methods: N stochastic passes of the frozen model, seeded.

- ``mc_dropout`` (Fomicheva et al. 2020, "Unsupervised QE for NMT"): the unchanged hypotheses
  force-decoded N times with only the dropout modules in train mode, one batched pass per
  sample. ``TP_n = 1/T Σ_t log p_n(y_t)`` (the length-normalised log-probability of sample
  ``n``); the sentence score is ``exp(D-TP)`` with ``D-TP = 1/N Σ_n TP_n`` (its log, D-TP
  itself, in ``sentence_log_scores``), ``mc_dropout_var`` is D-Var ``= 1/N Σ_n (TP_n - D-TP)²``
  (lower = more certain); token score ``1/N Σ_n p_n(y_t)``.
- ``mc_seq_entropy`` (Malinin & Gales 2021): N translations sampled from the frozen model
  (fairseq's sampling, no dropout); the Monte-Carlo estimate of the length-normalised sequence
  entropy ``Ĥ = -1/N Σ_n 1/L_n log P(y_n | x)`` (``L_n`` tokens with EOS); sentence score
  ``exp(-Ĥ)`` (its log ``-Ĥ`` in ``sentence_log_scores``), the same for every hypothesis of a
  source; no token scores.

Every batch draws from its own generator state, seeded from ``--seed`` and the batch's sample
ids (:func:`batch_seed`); the process's random state is left as it was, so that QE changes no
translation, not even a sampled one.
"""

from contextlib import contextmanager

import torch

from ..core.qe_methods import shift_right

MC_SEQ_ENTROPY_STREAM = 1  # seed offset: each method draws from its own stream


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


def counted_mask(tokens, pad, eos, include_eos=False):
    """The positions of right-padded hypotheses [N, T] that sentence QE counts: every real
    token, the final EOS only with ``include_eos``."""
    mask = tokens.ne(pad)
    if not include_eos:
        last = mask.sum(dim=1, keepdim=True) - 1
        final = torch.zeros_like(mask).scatter_(1, last.clamp(min=0), True)
        mask &= ~(final & tokens.eq(eos))
    return mask


def dropout_statistics(log_probs, mask):
    """From each sample's token log-probabilities [S, N, T] and the counted positions [N, T]:
    token scores ``mean_n p_n`` [N, T], D-TP [N] and D-Var [N] (Fomicheva et al. 2020; NaN
    for a hypothesis without counted tokens)."""
    counts = mask.sum(dim=1).double()
    tp = log_probs.double().masked_fill(~mask, 0.0).sum(dim=2) / counts  # [S, N]
    shift = tp - tp[0]  # about the first sample: equal samples give exactly 0
    d_tp = tp[0] + shift.mean(dim=0)
    d_var = (shift**2).mean(dim=0) - shift.mean(dim=0) ** 2
    dtype = log_probs.dtype
    return log_probs.exp().mean(dim=0), d_tp.to(dtype), d_var.clamp(min=0).to(dtype)


@torch.no_grad()
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
    """``mc_dropout`` of right-padded hypotheses [N, T] (row ``i`` translates source row
    ``i``): ``samples`` batched force-decoding passes with dropout on, drawn after
    ``torch.manual_seed(seed)``; see :func:`dropout_statistics`."""
    prev = shift_right(hyp_tokens, eos, pad)
    passes = []
    with seeded(seed, hyp_tokens.device), dropout_on(model):
        for _ in range(samples):
            _, logits = model.frozen_forward(src_tokens, src_lengths, prev)
            log_probs = torch.log_softmax(logits.float() / temperature, dim=-1)
            passes.append(log_probs.gather(-1, hyp_tokens.unsqueeze(-1)).squeeze(-1))
    mask = counted_mask(hyp_tokens, pad, eos, include_eos)
    return dropout_statistics(torch.stack(passes), mask)


def sequence_entropy(sample_log_probs):
    """Ĥ (Malinin & Gales 2021, length-normalised Monte-Carlo estimate) from the token
    log-probabilities of each sampled translation of one source (a list of 1-D tensors)."""
    return -sum(float(lp.double().mean()) for lp in sample_log_probs) / len(sample_log_probs)


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
def mc_seq_entropy(model, sample, sampler, seed):
    """Ĥ of every source row of ``sample`` from the translations ``sampler``
    (:func:`translation_sampler`) draws after ``torch.manual_seed(seed)``."""
    device = sample["net_input"]["src_tokens"].device
    with seeded(seed, device):
        hypos = sampler.generate([model], sample)
    return [sequence_entropy([h["positional_scores"] for h in beams]) for beams in hypos]


def monte_carlo_scores(
    model,
    sample,
    rows,
    padded,
    dictionary,
    methods,
    samples,
    seed,
    include_eos=False,
    temperature=1.0,
    sampler=None,
):
    """The MC methods of ``methods`` for right-padded hypotheses ``padded`` [N, T] of
    ``sample``'s rows ``rows`` (``sampler``: :func:`translation_sampler`'s, for
    ``mc_seq_entropy``): (token scores {method: [N, T]}, per hypothesis the {key: value} that
    :func:`scoring.hypothesis_qe` takes as ``own``)."""
    net_input = sample["net_input"]
    index = torch.as_tensor(rows, device=net_input["src_tokens"].device)
    ids = sample["id"].tolist()
    tokens, own = {}, [{} for _ in rows]
    if "mc_dropout" in methods:
        mean_p, d_tp, d_var = mc_dropout(
            model,
            net_input["src_tokens"][index],
            net_input["src_lengths"][index],
            padded,
            dictionary.pad(),
            dictionary.eos(),
            samples,
            batch_seed(seed, ids),
            include_eos,
            temperature,
        )
        tokens["mc_dropout"] = mean_p.masked_fill(padded.eq(dictionary.pad()), 0.0)
        for values, tp, var in zip(own, d_tp.tolist(), d_var.tolist()):
            values["mc_dropout"], values["mc_dropout_var"] = tp, var
    if "mc_seq_entropy" in methods:
        entropies = mc_seq_entropy(
            model, sample, sampler, batch_seed(seed, ids, MC_SEQ_ENTROPY_STREAM)
        )
        for values, row in zip(own, rows):
            values["mc_seq_entropy"] = -entropies[row]
    return tokens, own


def check_dropout(model, methods):
    """``mc_dropout`` needs a model with dropout: the reason it cannot run, or None."""
    if "mc_dropout" in methods and not dropout_modules(model):
        return (
            "--qe-methods mc_dropout needs a model trained with dropout, but every "
            "dropout of this model is 0"
        )
    return None
