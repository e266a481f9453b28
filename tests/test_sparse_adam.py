"""sparse_adam: lazy Adam on the touched rows, equal to torch's SparseAdam; sparse head grads."""

from argparse import Namespace

import pytest
import torch
import torch.nn.functional as F

from fairseq_sigmoid_qe.optim.sparse_adam import (
    SPARSE_GRAD_ATTRIBUTE,
    FairseqSparseAdam,
    LazyAdam,
    touched_rows,
)

pytestmark = pytest.mark.unit


def steps(weight, optimizer, batches, sparse):
    for tokens in batches:
        optimizer.zero_grad()
        loss = (F.embedding(tokens, weight, sparse=sparse) ** 2).sum() + F.embedding(
            tokens, weight, sparse=sparse
        ).sum()
        loss.backward()
        optimizer.step()


def batches():
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(0, 6, (5,), generator=generator) for _ in range(8)]


def test_equals_torch_sparse_adam_and_dense_gradients_give_the_same():
    torch.manual_seed(0)
    start = torch.randn(10, 3)
    reference = torch.nn.Parameter(start.clone())
    steps(reference, torch.optim.SparseAdam([reference], lr=0.01), batches(), sparse=True)
    for sparse in (True, False):
        weight = torch.nn.Parameter(start.clone())
        steps(weight, LazyAdam([weight], lr=0.01), batches(), sparse=sparse)
        torch.testing.assert_close(weight.data, reference.data, rtol=1e-6, atol=1e-7)
    untouched = sorted(set(range(10)) - {int(t) for b in batches() for t in b})
    assert untouched and torch.equal(weight.data[untouched], start[untouched])


def test_rows_without_gradient_keep_value_and_state():
    weight = torch.nn.Parameter(torch.randn(6, 2))
    optimizer = LazyAdam([weight], lr=0.1)
    steps(weight, optimizer, [torch.tensor([0, 1])], sparse=True)
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[weight].items()}
    before = weight.data.clone()
    steps(weight, optimizer, [torch.tensor([2])], sparse=True)
    # dense Adam would keep moving rows 0 and 1 by their momentum; lazy Adam does not
    assert torch.equal(weight.data[:2], before[:2]) and not torch.equal(weight.data[2], before[2])
    assert torch.equal(optimizer.state[weight]["exp_avg"][:2], state["exp_avg"][:2])
    assert torch.equal(optimizer.state[weight]["exp_avg_sq"][:2], state["exp_avg_sq"][:2])


def test_touched_rows_of_sparse_and_dense():
    dense = torch.zeros(4, 2)
    dense[1, 0], dense[3, 1] = 1.0, -2.0
    rows, values = touched_rows(dense)
    assert rows.tolist() == [1, 3] and torch.equal(values, dense[[1, 3]])
    for sparse in (dense.to_sparse(1), dense.to_sparse()):  # rows sparse, or every element
        rows, values = touched_rows(sparse)
        assert rows.tolist() == [1, 3] and torch.equal(values, dense[[1, 3]])


def test_fairseq_wrapper_marks_params_clips_sparse_norms_and_reads_betas():
    weight = torch.nn.Parameter(torch.randn(5, 3))
    cfg = Namespace(lr=[0.01], adam_betas="(0.9, 0.98)", adam_eps=1e-8)
    optimizer = FairseqSparseAdam(cfg, [weight])
    assert getattr(weight, SPARSE_GRAD_ATTRIBUTE)
    assert optimizer.optimizer.param_groups[0]["betas"] == (0.9, 0.98)
    F.embedding(torch.tensor([1, 1, 4]), weight, sparse=True).sum().mul(3.0).backward()
    dense_norm = weight.grad.to_dense().norm()
    norm = optimizer.clip_grad_norm(1.0)
    assert float(norm) == pytest.approx(float(dense_norm), rel=1e-6)
    assert float(weight.grad.to_dense().norm()) == pytest.approx(1.0, rel=1e-4)
    optimizer.multiply_grads(torch.tensor(0.25))  # fairseq's sample-size normalisation
    assert float(weight.grad.to_dense().norm()) == pytest.approx(0.25, rel=1e-4)


def test_head_emits_sparse_gradients_only_for_a_marked_weight():
    from fairseq_sigmoid_qe.models.qe_heads import embedding_rows

    weight = torch.nn.Parameter(torch.randn(7, 4))
    embedding_rows(weight, torch.tensor([[1, 2]])).sum().backward()
    assert not weight.grad.is_sparse
    weight.grad = None
    setattr(weight, SPARSE_GRAD_ATTRIBUTE, True)
    embedding_rows(weight, torch.tensor([[1, 2]])).sum().backward()
    assert weight.grad.is_sparse
    with torch.no_grad():
        assert embedding_rows(weight, torch.tensor([3])).shape == (1, 4)
