"""The sigmoid QE head's types (``--qe-head-type``): how ``z = h · W_qe[y]`` is parameterised.

- ``full``: ``W_qe`` (|V| x d), a trained copy of the softmax output projection (the paper's);
- ``logit_affine``: ``z = a · (h · W_out[y]) + c``, two scalars on the frozen logit (a = 1,
  c = 0 at start): the authors' compact head (their ``Linear(1, 1)`` on the logit);
- ``hidden_transform``: ``z = (h M) · W_out[y]``, the frozen projection ``W_out`` read through
  a learned d x d map ``M`` (identity at start); its former name ``rescaling`` still loads;
- ``lowrank``: ``W_qe = W_out + A B`` with ``A`` (|V| x r) and ``B`` (r x d, zero at start).

With ``--qe-head-bias`` every type adds a per-token bias ``b[y]`` (|V|, zero at start). The
compact types never hold ``W_out`` themselves: they read the base decoder's projection (with
shared embeddings, the embedding matrix), which the checkpoint already stores, so their
parameters and their checkpoint entries are only ``a, c``, ``M`` or ``A, B`` (and ``b``). Every type
starts at the softmax projection's logits. Callers read only :meth:`QEHead.logits_for`.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import QEUserError
from ..optim.sparse_adam import SPARSE_GRAD_ATTRIBUTE

HEAD_TYPES = ("full", "logit_affine", "hidden_transform", "lowrank")
FORMER_NAMES = {"rescaling": "hidden_transform"}
"""Head types under an earlier name: checkpoints saved with it load as the new type."""


def canonical_head_type(head_type):
    """The current name of ``head_type`` (``rescaling`` -> ``hidden_transform``)."""
    return FORMER_NAMES.get(head_type, head_type)


def embedding_rows(weight, tokens):
    """``weight[tokens]``; its gradient is sparse (the touched rows only) when the optimizer
    marked ``weight`` as accepting one (``--optimizer sparse_adam``)."""
    sparse = torch.is_grad_enabled() and getattr(weight, SPARSE_GRAD_ATTRIBUTE, False)
    return F.embedding(tokens, weight, sparse=sparse)


def rows_dot(features, rows):
    """``features`` [..., d] · ``rows`` [..., m, d] -> [..., m]."""
    return torch.einsum("...d,...md->...m", features.to(rows.dtype), rows)


def parameter_count(head_type, vocab_size, dim, rank=None, bias=False):
    """Trainable parameters of a head (closed form): |V|d, 2, d², or r(|V| + d); +|V| with a
    bias."""
    core = {
        "full": lambda: vocab_size * dim,
        "logit_affine": lambda: 2,
        "hidden_transform": lambda: dim * dim,
        "lowrank": lambda: rank * (vocab_size + dim),
    }[canonical_head_type(head_type)]()
    return core + (vocab_size if bias else 0)


def check_head_options(head_type, rank, dim=None):
    """Refuse, in one line, a head type and rank that do not go together (a rank above the
    model dimension ``dim``, where known)."""
    head_type = canonical_head_type(head_type)
    if head_type not in HEAD_TYPES:
        raise QEUserError(
            f"--qe-head-type {head_type!r} is unknown; use one of {', '.join(HEAD_TYPES)}"
        )
    if head_type != "lowrank":
        if rank is not None:
            raise QEUserError(
                f"--qe-head-rank is only for --qe-head-type lowrank (this head is '{head_type}')"
            )
        return
    if rank is None:
        raise QEUserError("--qe-head-type lowrank needs --qe-head-rank R (e.g. 64)")
    if rank <= 0:
        raise QEUserError(f"--qe-head-rank {rank} is out of range: it must be at least 1")
    if dim is not None and rank > dim:
        raise QEUserError(
            f"--qe-head-rank {rank} is out of range: it must be at most the model "
            f"dimension {dim} (a higher rank adds parameters, not rank)"
        )


class QEHead(nn.Module):
    """Base of the head types: the frozen projection (read, never registered) and the bias."""

    def __init__(self, projection, bias):
        super().__init__()
        self.__dict__["_frozen"] = projection  # not a submodule: never saved or trained twice
        self.bias = nn.Parameter(torch.zeros(projection.out_features)) if bias else None

    @property
    def frozen(self):
        return self._frozen

    def token_rows(self, tokens):
        """The rows ``W_qe[tokens]`` [..., m, d] of the head's effective matrix."""
        raise NotImplementedError

    def transform(self, features):
        """``h`` as the rows are read against it (``h M`` for the hidden-transform head)."""
        return features

    def low_rank_logits(self, features, tokens):
        """A term added to the logits (``(h Bᵀ) · A[y]`` for the low-rank head), or None."""
        return None

    def logits_for(self, features, tokens):
        """``z = h · W_qe[y] (+ b[y])`` for the given tokens only, never the full vocabulary.

        ``features`` [..., d] and ``tokens`` [..., m] -> logits [..., m]."""
        logits = rows_dot(self.transform(features), self.token_rows(tokens))
        extra = self.low_rank_logits(features, tokens)
        if extra is not None:
            logits = logits + extra
        frozen_bias = self.frozen_bias()
        if frozen_bias is not None:
            logits = logits + F.embedding(tokens, frozen_bias.unsqueeze(1)).squeeze(-1)
        logits = self.map_logits(logits)
        if self.bias is not None:
            logits = logits + embedding_rows(self.bias.unsqueeze(1), tokens).squeeze(-1)
        return logits

    def map_logits(self, logits):
        """A map of the logits before the per-token bias (``a z + c`` for ``logit_affine``)."""
        return logits

    def frozen_bias(self):
        """The frozen projection's own bias, which compact heads keep (none for ``full``)."""
        return self.frozen.bias

    def forward(self, features):
        """Logits of every token [..., |V|] (for inspection and tests; scoring uses
        :meth:`logits_for`)."""
        vocab = torch.arange(self.frozen.out_features, device=features.device)
        return self.logits_for(features.unsqueeze(-2), vocab).squeeze(-2)


class FullHead(QEHead):
    """``W_qe``: a trainable |V| x d copy of the softmax projection (and of its bias)."""

    def __init__(self, projection, bias):
        super().__init__(projection, bias)
        self.weight = nn.Parameter(projection.weight.detach().clone())
        if self.bias is not None and projection.bias is not None:
            with torch.no_grad():
                self.bias.copy_(projection.bias)

    def token_rows(self, tokens):
        return embedding_rows(self.weight, tokens)

    def frozen_bias(self):
        return None


class LogitAffineHead(QEHead):
    """``z = a · z_out[y] + c``: the frozen logit ``z_out[y] = h · W_out[y]`` rescaled by two
    scalars, ``a`` = 1 and ``c`` = 0 at start (the untrained head)."""

    def __init__(self, projection, bias):
        super().__init__(projection, bias)
        self.scale = nn.Parameter(torch.ones(1))
        self.shift = nn.Parameter(torch.zeros(1))

    def token_rows(self, tokens):
        return F.embedding(tokens, self.frozen.weight)

    def map_logits(self, logits):
        return logits * self.scale.to(logits.dtype) + self.shift.to(logits.dtype)


class HiddenTransformHead(QEHead):
    """``z = (h M) · W_out[y]``: a d x d map ``M`` (identity at start) before the frozen rows."""

    FORMER_KEYS = {"rescale": "hidden_map"}

    def __init__(self, projection, bias):
        super().__init__(projection, bias)
        self.hidden_map = nn.Parameter(torch.eye(projection.in_features))

    def token_rows(self, tokens):
        return F.embedding(tokens, self.frozen.weight)

    def transform(self, features):
        return features.to(self.hidden_map.dtype) @ self.hidden_map

    def upgrade_state_dict_named(self, state_dict, name):
        """Checkpoints of the former ``rescaling`` type name ``M`` ``rescale``."""
        prefix = f"{name}." if name else ""
        for old, new in self.FORMER_KEYS.items():
            if prefix + old in state_dict and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)


class LowRankHead(QEHead):
    """``W_qe[y] = W_out[y] + A[y] B``: A (|V| x r, random), B (r x d, zero at start); the
    logits as ``h · W_out[y] + (h Bᵀ) · A[y]``, so no [tokens x d] rows of ``A B`` are formed."""

    def __init__(self, projection, bias, rank):
        super().__init__(projection, bias)
        vocab, dim = projection.out_features, projection.in_features
        self.up = nn.Parameter(torch.randn(vocab, rank) / rank**0.5)
        self.down = nn.Parameter(torch.zeros(rank, dim))

    def token_rows(self, tokens):
        return F.embedding(tokens, self.frozen.weight)

    def low_rank_logits(self, features, tokens):
        return rows_dot(
            features.to(self.down.dtype) @ self.down.t(), embedding_rows(self.up, tokens)
        )


def build_qe_head(projection, head_type="full", rank=None, bias=False):
    """The head of ``head_type`` on the base's frozen output projection (an ``nn.Linear``)."""
    check_head_options(head_type, rank, projection.in_features)
    head_type = canonical_head_type(head_type)
    if head_type == "lowrank":
        return LowRankHead(projection, bias, rank)
    return {
        "full": FullHead,
        "logit_affine": LogitAffineHead,
        "hidden_transform": HiddenTransformHead,
    }[head_type](projection, bias)


def describe(head_type, rank=None):
    """``lowrank r=64``, ``logit_affine``, ``full``: the head's name in reports."""
    head_type = canonical_head_type(head_type)
    return f"{head_type} r={rank}" if head_type == "lowrank" else head_type
