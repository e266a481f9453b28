"""Negative samplers: the right distribution, never the reference/dominant/padding."""

import itertools

import pytest
import torch
from scipy.stats import chisquare

from fairseq_sigmoid_qe.core.dominant import dominant_sets, is_dominant, row_log_partition
from fairseq_sigmoid_qe.core.negative_samplers import (
    deduplicate_negatives,
    parse_sampler_spec,
    sample_negatives,
    softmax_weights,
    token_frequency_distribution,
    uniform_distribution,
)

pytestmark = pytest.mark.unit


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def inclusion_probabilities(probs, k):
    """Exact P(token in the sample) for successive sampling without replacement (tiny V)."""
    probs = [float(p) for p in probs]
    inclusion = [0.0] * len(probs)
    support = [i for i, p in enumerate(probs) if p > 0]
    for sequence in itertools.permutations(support, k):
        chance, left = 1.0, sum(probs)
        for token in sequence:
            chance *= probs[token] / left
            left -= probs[token]
        for token in sequence:
            inclusion[token] += chance
    return torch.tensor(inclusion)


@pytest.mark.parametrize("shared", [True, False])
def test_single_draw_frequencies_match_distribution(shared):
    weights = torch.tensor([0.0, 5.0, 1.0, 3.0, 0.5, 2.0, 0.0, 4.0])
    reference = torch.full((60000,), 3)
    probs = weights if shared else weights.expand(60000, -1).contiguous()
    tokens, valid = sample_negatives(1, reference, probs, generator=generator(1))
    assert valid.all()
    counts = torch.bincount(tokens.view(-1), minlength=8).double()
    allowed = weights.clone()
    allowed[3] = 0
    expected = allowed / allowed.sum() * counts.sum()
    assert counts[allowed == 0].sum() == 0
    support = allowed > 0
    assert chisquare(counts[support], expected[support]).pvalue > 1e-3


@pytest.mark.parametrize("oversample, rounds", [(4, 3), (1, 1)])
def test_without_replacement_matches_exact_inclusion_probabilities(oversample, rounds):
    """k * oversample >= V: dense draws only; (1, 1): cheap draws, rows left short finished
    by dense draws."""
    weights = torch.tensor([0.0, 6.0, 3.0, 1.0, 0.5, 2.5])
    k = 3
    reference = torch.full((40000,), 1)
    tokens, valid = sample_negatives(
        k, reference, weights, generator=generator(2), oversample=oversample, rounds=rounds
    )
    assert valid.all()
    allowed = weights.clone()
    allowed[1] = 0
    expected = inclusion_probabilities(allowed, k)
    observed = torch.bincount(tokens.view(-1), minlength=6).double() / reference.numel()
    torch.testing.assert_close(observed, expected.double(), atol=0.01, rtol=0)


def test_per_row_softmax_distribution_large_vocab():
    vocab = 4096
    logits = torch.randn(1, vocab, generator=generator(3)) * 3
    weights, log_partition = softmax_weights(logits, 2.0, [1])
    torch.testing.assert_close(log_partition, torch.logsumexp(logits, -1))
    target = torch.softmax(logits / 2, -1)[0]
    target[1] = 0
    reference = torch.zeros(20000, dtype=torch.long)
    tokens, _ = sample_negatives(
        1, reference, weights.expand(20000, -1).contiguous(), generator=generator(4)
    )
    observed = torch.bincount(tokens.view(-1), minlength=vocab).double() / 20000
    top = torch.topk(target, 20).indices
    expected = (target / (target.sum() - target[0]))[top].double()
    torch.testing.assert_close(observed[top], expected, atol=0.01, rtol=0.1)
    assert observed[1] == 0


def test_never_reference_dominant_padding_or_duplicates():
    vocab, n, k = 300, 2000, 10
    log_probs = torch.log_softmax(torch.randn(n, vocab, generator=generator(5)) * 4, -1)
    dominant = dominant_sets(log_probs)
    assert dominant[1].any()
    reference = torch.randint(4, vocab, (n,), generator=generator(6))
    counts = torch.arange(vocab).float() + 1
    distributions = [
        uniform_distribution(vocab, [1]),
        token_frequency_distribution(counts, [0, 1, 2, 3]),
        softmax_weights(log_probs, 2.0, [1])[0],
    ]
    for probs in distributions:
        tokens, valid = sample_negatives(k, reference, probs, dominant, generator(7))
        assert tokens.shape == (n, k) and valid.all()
        assert not (tokens == reference.unsqueeze(1)).any()
        assert not (tokens == 1).any()
        assert not is_dominant(tokens, *dominant).any()
        assert all(len(set(row.tolist())) == k for row in tokens)
    freq_tokens, _ = sample_negatives(k, reference, distributions[1], dominant, generator(7))
    assert not (freq_tokens < 4).any()


@pytest.mark.parametrize("shared", [True, False])
def test_k_near_the_vocabulary_takes_every_allowed_token(shared):
    vocab, n = 60, 300
    log_probs = torch.log_softmax(torch.randn(n, vocab, generator=generator(10)) * 4, -1)
    dominant = dominant_sets(log_probs)
    reference = torch.randint(4, vocab, (n,), generator=generator(11))
    probs = uniform_distribution(vocab, [1]) if shared else softmax_weights(log_probs, 2.0, [1])[0]
    allowed = (probs.expand(n, -1) > 0).clone()
    allowed[torch.arange(n), reference] = False
    allowed &= ~is_dominant(torch.arange(vocab).expand(n, -1), *dominant)
    for k in (50, vocab - 2):
        tokens, valid = sample_negatives(k, reference, probs, dominant, generator(12))
        assert torch.equal(valid.sum(1), allowed.sum(1).clamp(max=k))
        for row in range(n):
            drawn = tokens[row][valid[row]].tolist()
            assert len(set(drawn)) == len(drawn) and allowed[row, drawn].all()


def test_small_support_gives_validity_mask():
    probs = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])
    reference = torch.tensor([2, 0])
    tokens, valid = sample_negatives(4, reference, probs, generator=generator(8))
    assert valid.sum(1).tolist() == [2, 3]
    assert set(tokens[0][valid[0]].tolist()) == {3, 4}
    assert set(tokens[1][valid[1]].tolist()) == {2, 3, 4}
    assert (tokens[~valid] == reference.unsqueeze(1).expand(-1, 4)[~valid]).all()


def test_peaked_rows_still_get_k_negatives():
    logits = torch.full((50, 1000), -30.0)
    logits[:, 7] = 30.0
    weights, _ = softmax_weights(logits, 1.0)
    tokens, valid = sample_negatives(10, torch.full((50,), 7), weights, generator=generator(9))
    assert valid.all() and not (tokens == 7).any()


def test_generator_determinism():
    probs = uniform_distribution(500, [1])
    reference = torch.randint(2, 500, (100,), generator=generator(10))
    a = sample_negatives(10, reference, probs, generator=generator(11))
    b = sample_negatives(10, reference, probs, generator=generator(11))
    c = sample_negatives(10, reference, probs, generator=generator(12))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])


def test_distributions():
    uniform = uniform_distribution(5, [1])
    torch.testing.assert_close(uniform, torch.tensor([0.25, 0, 0.25, 0.25, 0.25]))
    freq = token_frequency_distribution([1, 1, 1, 1, 6, 2], [0, 1, 2, 3])
    torch.testing.assert_close(freq, torch.tensor([0, 0, 0, 0, 0.75, 0.25]))
    with pytest.raises(ValueError):
        token_frequency_distribution([1, 1, 0], [0, 1])


def test_parse_sampler_spec():
    assert parse_sampler_spec("token_freq+softmax", 10) == [("token_freq", 5), ("softmax", 5)]
    assert parse_sampler_spec("softmax+random", 11) == [("softmax", 6), ("random", 5)]
    assert parse_sampler_spec("random", 10) == [("random", 10)]
    for bad in ("", "bogus", "softmax+", "softmax+softmax"):
        with pytest.raises(ValueError):
            parse_sampler_spec(bad, 10)
    with pytest.raises(ValueError, match="negatives"):
        parse_sampler_spec("random+softmax+token_freq", 2)


@pytest.mark.parametrize("rows,vocab", [(1, 7), (3, 1000), (300, 8000), (5, 250_001)])
def test_row_log_partition_equals_logsumexp_and_the_softmax_weights_own(rows, vocab):
    """Computed a few rows at a time, yet bit for bit what torch.logsumexp and
    softmax_weights give; with it, softmax_weights may overwrite the logits in place."""
    logits = torch.randn(rows, vocab, generator=torch.Generator().manual_seed(rows)) * 4
    row_max, log_partition = row_log_partition(logits, chunk_elements=2 * vocab)
    assert torch.equal(log_partition, torch.logsumexp(logits, dim=-1))
    assert torch.equal(row_max, logits.amax(dim=-1, keepdim=True))
    weights, own = softmax_weights(logits, 2.0, [1])
    assert torch.equal(log_partition, own)
    in_place, _ = softmax_weights(logits, 2.0, [1], out=logits, stats=(row_max, log_partition))
    assert in_place.data_ptr() == logits.data_ptr() and torch.equal(in_place, weights)


def test_deduplicate_negatives_keeps_each_token_once_per_position():
    negatives = torch.tensor([[5, 7, 5, 9, 7, 5], [1, 2, 3, 4, 5, 6], [8, 8, 8, 8, 8, 8]])
    valid = torch.tensor(
        [[True, True, True, True, True, False], [True] * 6, [False, True, True, False, True, True]]
    )
    kept = deduplicate_negatives(negatives, valid)
    assert kept.tolist() == [
        [True, True, False, True, False, False],
        [True] * 6,
        [False, True, False, False, False, False],
    ]
    for row in range(3):  # the kept tokens are exactly the distinct valid tokens
        assert sorted(negatives[row][kept[row]].tolist()) == sorted(
            set(negatives[row][valid[row]].tolist())
        )


def test_deduplicate_negatives_of_random_draws_matches_a_set():
    generator = torch.Generator().manual_seed(4)
    negatives = torch.randint(0, 6, (50, 10), generator=generator)
    valid = torch.rand(50, 10, generator=generator) > 0.2
    kept = deduplicate_negatives(negatives, valid)
    assert not (kept & ~valid).any()
    for row in range(50):
        tokens = negatives[row][kept[row]].tolist()
        assert len(tokens) == len(set(tokens)) == len(set(negatives[row][valid[row]].tolist()))
