"""``sparse_adam``: Adam that moves only the rows that received a gradient (lazy Adam).

The authors train the head with ``torch.optim.SparseAdam``: at each update only the rows of
``W_qe`` whose tokens were scored (references and sampled negatives) change, and only their
moments decay; every other row, and its optimizer state, stays exactly as it was. Dense Adam
instead keeps moving every row that was ever touched, by its decaying momentum, long after
its last gradient.

Rows are the first dimension of a parameter. A gradient may be sparse (the head emits one when
its weight is marked :data:`SPARSE_GRAD_ATTRIBUTE`, which this optimizer does for every parameter
it updates directly) or dense, in which case its rows that are not all zero count as touched.
"""

import ast
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, List

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.optim import FairseqOptimizer, register_optimizer
from omegaconf import II, OmegaConf

SPARSE_GRAD_ATTRIBUTE = "accepts_sparse_grad"


def touched_rows(grad):
    """(row ids [R], their gradient rows [R, ...]) of a sparse or dense gradient."""
    if grad.is_sparse and grad.sparse_dim() == 1:
        grad = grad.coalesce()
        return grad.indices()[0], grad.values()
    grad = grad.to_dense() if grad.is_sparse else grad
    flat = grad.reshape(grad.size(0), -1) if grad.dim() else grad.reshape(1, 1)
    rows = flat.ne(0).any(dim=1).nonzero().squeeze(1)
    return rows, grad[rows] if grad.dim() else grad.reshape(1)


def lazy_adam_rows(param, rows, grad_rows, exp_avg, exp_avg_sq, step, lr, betas, eps):
    """One Adam step on ``param[rows]`` only (in place), with the moments of those rows; the
    bias corrections use the parameter's global ``step`` (counted from 1), as SparseAdam."""
    beta1, beta2 = betas
    grad_rows = grad_rows.to(exp_avg.dtype)
    avg = exp_avg[rows].mul_(beta1).add_(grad_rows, alpha=1 - beta1)
    avg_sq = exp_avg_sq[rows].mul_(beta2).addcmul_(grad_rows, grad_rows, value=1 - beta2)
    exp_avg[rows], exp_avg_sq[rows] = avg, avg_sq
    correction1 = 1 - beta1**step
    correction2 = 1 - beta2**step
    denominator = (avg_sq / correction2).sqrt_().add_(eps)
    param.data[rows] -= (lr / correction1) * (avg / denominator).to(param.dtype)


class LazyAdam(torch.optim.Optimizer):
    """Adam on the touched rows only (see the module docstring); no weight decay."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        if lr <= 0 or eps <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid sparse_adam settings: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param, dtype=torch.float)
                    state["exp_avg_sq"] = torch.zeros_like(param, dtype=torch.float)
                state["step"] += 1
                rows, grad_rows = touched_rows(param.grad)
                if rows.numel():
                    lazy_adam_rows(
                        param,
                        rows,
                        grad_rows,
                        state["exp_avg"],
                        state["exp_avg_sq"],
                        state["step"],
                        group["lr"],
                        group["betas"],
                        group["eps"],
                    )
        return loss


def data_parallel():
    """Whether training runs on several processes: fairseq's all-reduce (legacy DDP) flattens
    gradients into one dense buffer, so there the head emits dense gradients, and the rows
    that some process touched are the non-zero rows of the averaged gradient."""
    return torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


@dataclass
class SparseAdamConfig(FairseqDataclass):
    adam_betas: Any = field(default=(0.9, 0.999), metadata={"help": "betas for Adam"})
    adam_eps: float = field(default=1e-8, metadata={"help": "epsilon for Adam"})
    lr: List[float] = II("optimization.lr")


@register_optimizer("sparse_adam", dataclass=SparseAdamConfig)
class FairseqSparseAdam(FairseqOptimizer):
    """Lazy (row-sparse) Adam for the sigmoid head, as the authors' SparseAdam."""

    def __init__(self, cfg, params):
        super().__init__(cfg)
        params = list(params)
        for param in params:
            if isinstance(param, torch.Tensor) and not data_parallel():
                setattr(param, SPARSE_GRAD_ATTRIBUTE, True)
        self._optimizer = LazyAdam(params, **self.optimizer_config)

    @property
    def optimizer_config(self):
        betas = self.cfg.adam_betas
        if isinstance(betas, str):  # "(0.9, 0.98)" from the command line
            betas = ast.literal_eval(betas)
        elif not isinstance(betas, (tuple, list)):
            betas = OmegaConf.to_container(betas)
        lr = self.cfg.lr[0] if isinstance(self.cfg.lr, Collection) else self.cfg.lr
        return {"lr": lr, "betas": tuple(betas), "eps": self.cfg.adam_eps}

    def multiply_grads(self, c):
        """Scale every gradient by ``c`` (fairseq's scales a sparse gradient's ``.data``, an
        alias that does not reach the gradient)."""
        for param in self.params:
            if param.grad is not None:
                param.grad.mul_(c.to(param.grad.device) if torch.is_tensor(c) else c)

    def clip_grad_norm(self, max_norm, aggregate_norm_fn=None):
        """fairseq's clipping, for sparse gradients too (their values hold the norm)."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return torch.tensor(0.0)
        norms = [(g.coalesce().values() if g.is_sparse else g).float().norm() for g in grads]
        total = torch.stack(norms).norm()
        if aggregate_norm_fn is not None:
            total = aggregate_norm_fn(total)
        if max_norm > 0:
            self.multiply_grads((max_norm / (total + 1e-6)).clamp_(max=1))
        return total
