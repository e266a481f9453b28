"""The dominant-token rule and BoostedProb against the authors' `boostedprob` package."""

import math

import pytest
import torch

from fairseq_sigmoid_qe.core.dominant import (
    boosted_prob,
    dominant_sets,
    dominant_summary,
    is_dominant,
)

pytestmark = pytest.mark.unit

boostedprob = pytest.importorskip("boostedprob")


def as_sets(indices, mask):
    return [
        set(i[m].tolist())
        for i, m in zip(indices.view(-1, indices.size(-1)), mask.view(-1, mask.size(-1)))
    ]


def reference_sets(log_probs, **options):
    found = boostedprob.find_dominant(log_probs.clone(), **options)
    return [set(row[row != -1].tolist()) for row in found.view(-1, found.size(-1))]


def random_distributions(generator):
    """Thousands of rows: peaked/flat softmaxes, Dirichlet, Zipf tails, ties, one-hots."""
    cases = []
    for vocab in (2, 3, 5, 17, 100, 1000, 32000):
        rows = 8 if vocab == 32000 else 64
        for scale in (0.1, 1.0, 3.0, 8.0, 20.0):
            cases.append(
                torch.log_softmax(torch.randn(rows, vocab, generator=generator) * scale, -1)
            )
        for alpha in (0.01, 0.1, 1.0):
            gamma = torch.distributions.Gamma(torch.full((rows, vocab), alpha), 1.0)
            probs = gamma.sample().clamp_min(1e-30)
            cases.append((probs / probs.sum(-1, keepdim=True)).log())
        ranks = torch.arange(1, vocab + 1, dtype=torch.float)
        for exponent in (0.5, 1.0, 2.0):
            zipf = ranks**-exponent
            order = torch.argsort(torch.rand(rows, vocab, generator=generator), dim=-1)
            cases.append((zipf / zipf.sum()).log()[order])
        flat = torch.full((2, vocab), -math.log(vocab))
        cases.append(flat)
        one_hot = torch.full((2, vocab), float("-inf"))
        one_hot[:, 0] = 0.0
        cases.append(one_hot)
    return cases


HANDMADE = [
    [0.4, 0.4, 0.1, 0.1],
    [0.25, 0.25, 0.25, 0.25],
    [0.5, 0.4, 0.05, 0.05],
    [0.45, 0.3, 0.2, 0.05],
    [0.6, 0.2, 0.19, 0.01],
    [0.3, 0.3, 0.3, 0.05, 0.05],
    [0.9, 0.0999, 0.0001, 0.0],
    [0.2] * 3 + [0.1] * 4,
    [0.004] * 250,
]


@pytest.mark.parametrize("cut", ["last", "first"])
@pytest.mark.parametrize("p_jump,epsilon", [(0.3, 0.005), (0.1, 0.001), (0.5, 0.05)])
def test_matches_boostedprob(cut, p_jump, epsilon):
    generator = torch.Generator().manual_seed(11)
    cases = random_distributions(generator) + [torch.tensor([row]).log() for row in HANDMADE]
    rows = 0
    for log_probs in cases:
        options = dict(p_jump=p_jump, epsilon=epsilon)
        ours = as_sets(*dominant_sets(log_probs, cut=cut, **options))
        theirs = reference_sets(log_probs, cut_point_mode=cut, **options)
        assert ours == theirs, log_probs.exp()
        rows += len(ours)
    assert rows > 3000


def test_first_and_last_cut_differ_where_expected():
    log_probs = torch.tensor([[0.6, 0.3, 0.05, 0.05]]).log()
    first = as_sets(*dominant_sets(log_probs, cut="first"))[0]
    last = as_sets(*dominant_sets(log_probs, cut="last"))[0]
    assert first == {0} and last == {0, 1}


def test_thresholds_are_strict():
    # the drops below equal the thresholds exactly in binary floating point
    exact_epsilon = torch.tensor([[0.5, 0.25, 0.25]]).log()
    assert as_sets(*dominant_sets(exact_epsilon, p_jump=0.1, epsilon=0.25))[0] == set()
    assert as_sets(*dominant_sets(exact_epsilon, p_jump=0.1, epsilon=0.24))[0] == {0}
    exact_jump = torch.tensor([[0.5, 0.25, 0.25]]).log()
    assert as_sets(*dominant_sets(exact_jump, p_jump=0.5, epsilon=0.01))[0] == set()
    assert as_sets(*dominant_sets(exact_jump, p_jump=0.49, epsilon=0.01))[0] == {0}


def test_no_significant_drop_means_no_dominant_tokens():
    flat = torch.full((3, 50), -math.log(50))
    indices, mask = dominant_sets(flat)
    assert not mask.any()


def test_never_sorts_the_vocabulary(monkeypatch):
    """Only the tokens above epsilon are sorted, never a whole row of V; the returned width
    is the largest dominant set."""
    sorted_sizes = []

    def spy(name, original):
        def sorting(tensor, *args, **kwargs):
            sorted_sizes.append((name, tensor.numel()))
            return original(tensor, *args, **kwargs)

        return sorting

    for owner in (torch, torch.Tensor):
        for name in ("sort", "argsort", "topk", "msort"):
            if hasattr(owner, name):
                monkeypatch.setattr(owner, name, spy(name, getattr(owner, name)))
    generator = torch.Generator().manual_seed(2)
    log_probs = torch.log_softmax(torch.randn(4, 32000, generator=generator) * 5, -1)
    above = int((log_probs > math.log(0.005)).sum())
    ids, mask, mass = dominant_summary(log_probs)
    monkeypatch.undo()
    assert sorted_sizes, "the rule sorts the tokens above epsilon"
    assert 0 < above < 1000 and max(size for _, size in sorted_sizes) <= above + 4
    sets = as_sets(ids, mask)
    assert ids.size(-1) == max(1, max(len(s) for s in sets))
    assert sets == reference_sets(log_probs)


def test_input_untouched_and_leading_dims():
    log_probs = torch.log_softmax(torch.randn(2, 3, 40) * 4, -1)
    before = log_probs.clone()
    indices, mask = dominant_sets(log_probs)
    assert torch.equal(log_probs, before)
    assert indices.shape[:2] == (2, 3) and mask.shape == indices.shape
    flat = as_sets(*dominant_sets(log_probs.view(6, 40)))
    assert as_sets(indices, mask) == flat


def test_bad_cut_mode():
    with pytest.raises(ValueError, match="cut"):
        dominant_sets(torch.zeros(1, 3), cut="middle")


def test_is_dominant_for_single_and_many_tokens():
    log_probs = torch.tensor([[0.5, 0.4, 0.05, 0.05], [0.25, 0.25, 0.25, 0.25]]).log()
    indices, mask = dominant_sets(log_probs)
    assert is_dominant(torch.tensor([1, 1]), indices, mask).tolist() == [True, False]
    many = is_dominant(torch.tensor([[0, 1, 2], [0, 1, 2]]), indices, mask)
    assert many.tolist() == [[True, True, False], [False, False, False]]


def test_boosted_prob_matches_boostedprob():
    generator = torch.Generator().manual_seed(5)
    for scale in (0.5, 2.0, 6.0):
        logits = torch.randn(40, 60, generator=generator) * scale + 7.0
        log_probs = torch.log_softmax(logits, -1)
        targets = torch.randint(0, 60, (40,), generator=generator)
        targets[:10] = log_probs[:10].argmax(-1)
        ours = boosted_prob(log_probs, targets)
        theirs = boostedprob.calculate_boostedprob(log_probs.clone(), targets)
        torch.testing.assert_close(ours, theirs.float())
        from_logits = boosted_prob(logits, targets, log_partition=torch.logsumexp(logits, -1))
        torch.testing.assert_close(from_logits, theirs.float())


def test_boosted_prob_is_dominant_mass():
    log_probs = torch.tensor([[0.5, 0.4, 0.05, 0.05]]).log()
    scores = boosted_prob(log_probs.expand(3, 4), torch.tensor([1, 2, 0]))
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.05, 0.9]))
