"""``sigmoid_head_transformer``: a frozen encoder-decoder Transformer plus a sigmoid QE head.

The head ``W_qe`` (|V| x d) reads the same final decoder hidden states ``h`` as the softmax
output projection and scores a token ``y`` as ``σ(h · W_qe[y])``. It starts at the softmax
projection (a copy, or for the compact head types a small change of it, see
:mod:`.qe_heads`); only it is trained.
"""

import logging
from dataclasses import dataclass, field, fields
from typing import Optional

import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.models import (
    ARCH_MODEL_REGISTRY,
    FairseqEncoderDecoderModel,
    register_model,
    register_model_architecture,
)
from fairseq.models import (
    build_model as build_fairseq_model,
)
from fairseq.models.transformer import TransformerModel
from torch import nn

from ..core.errors import QEUserError
from . import base_checkpoint as bc
from . import data_folder, durable_saves, head_checkpoints, qe_heads, training_preflight

logger = logging.getLogger(__name__)

ARCH_NAME = "sigmoid_head_transformer"
TASK_NAME_QE = "translation_qe"  # tasks/ (a higher layer) registers it


@dataclass
class SigmoidHeadConfig(FairseqDataclass):
    base_checkpoint: Optional[str] = field(
        default=None,
        metadata={
            "help": "trained fairseq encoder-decoder Transformer checkpoint to wrap; its "
            "architecture comes from the checkpoint, its weights are loaded and frozen"
        },
    )
    qe_head_bias: bool = field(
        default=False,
        metadata={"help": "give the sigmoid head a per-token bias (the paper uses none)"},
    )
    qe_head_type: ChoiceEnum(qe_heads.HEAD_TYPES + tuple(qe_heads.FORMER_NAMES)) = field(
        default="full",
        metadata={
            "help": "full: W_qe, a trained copy of the output projection (|V|d parameters); "
            "logit_affine: sigmoid(a z + c) of the frozen logit z, a = 1, c = 0 at start (2); "
            "hidden_transform: the frozen projection read through a learned d x d map (d^2; "
            "formerly 'rescaling'); "
            "lowrank: the projection plus A B of rank --qe-head-rank (r(|V|+d))"
        },
    )
    qe_head_rank: Optional[int] = field(
        default=None, metadata={"help": "rank r of --qe-head-type lowrank"}
    )
    base_model_config: Optional[str] = field(
        default=None,
        metadata={
            "help": "set automatically: the base model's config as JSON, so that a head "
            "checkpoint rebuilds without the base file"
        },
    )
    qe_dictionary_fingerprint: Optional[str] = field(
        default=None,
        metadata={"help": "set automatically: hash of the dictionaries the head was trained with"},
    )
    base_fingerprint: Optional[str] = field(
        default=None,
        metadata={
            "help": "set automatically: hash of the base's weights, so that head "
            "training resumes only from heads of the same base"
        },
    )


def _is_encoder_decoder_transformer(model):
    decoder = getattr(model, "decoder", None)
    return (
        isinstance(model, FairseqEncoderDecoderModel)
        and isinstance(getattr(decoder, "output_projection", None), nn.Linear)
        and getattr(decoder, "adaptive_softmax", None) is None
        and hasattr(decoder, "extract_features")
    )


def _count(params):
    return sum(p.numel() for p in params)


@register_model(ARCH_NAME)
class SigmoidHeadTransformerModel(TransformerModel):
    """A frozen base Transformer (always in ``eval()``) with a trainable sigmoid QE head."""

    def __init__(self, args, encoder, decoder, qe_head):
        FairseqEncoderDecoderModel.__init__(self, encoder, decoder)
        self.args = args
        self.supports_align_args = False
        self.qe_head = qe_head
        self._logits_buffer = None
        for module in (self.encoder, self.decoder):
            for param in module.parameters():
                param.requires_grad_(False)
        self.train(self.training)

    @classmethod
    def add_args(cls, parser):
        gen_parser_from_dataclass(parser, SigmoidHeadConfig())

    @classmethod
    def build_model(cls, args, task):
        sigmoid_head_transformer(args)
        qe_heads.check_head_options(args.qe_head_type, args.qe_head_rank)
        if args.base_model_config:
            base = _rebuild_base(args, task)
        else:
            base = _load_base(args, task)
        qe_head = build_head(args, base.decoder.output_projection)
        model = cls(args, base.encoder, base.decoder, qe_head)
        n_base, n_head = _count(base.parameters()), _count(qe_head.parameters())
        logger.info(
            "sigmoid head (%s): base %d parameters (frozen), head %d trainable (+%.2f%%)",
            qe_heads.describe(args.qe_head_type, args.qe_head_rank),
            n_base,
            n_head,
            100.0 * n_head / max(n_base, 1),
        )
        return model

    def train(self, mode=True):
        """Train mode reaches only the head: the base stays in eval() (no dropout)."""
        super().train(mode)
        self.encoder.eval()
        self.decoder.eval()
        return self

    @torch.no_grad()
    def frozen_forward(
        self, src_tokens, src_lengths, prev_output_tokens, encoder_out=None, **unused
    ):
        """Final decoder hidden states ``h`` [B, T, d] and the softmax logits [B, T, V]
        (``encoder_out``: the encoder's output for ``src_tokens`` if already computed).

        In training mode the logits land in a buffer kept across updates (a fresh
        [positions x V] tensor per update costs its page faults again), so they are only
        valid until the next call."""
        if encoder_out is None:
            encoder_out = self.encoder(src_tokens, src_lengths=src_lengths)
        features, _ = self.decoder.extract_features(prev_output_tokens, encoder_out=encoder_out)
        if not self.training:
            return features, self.decoder.output_layer(features)
        return features, self._logits_into_buffer(features)

    def _logits_into_buffer(self, features):
        """``decoder.output_layer(features)`` (the same numbers) written into a reused buffer."""
        projection = self.decoder.output_projection
        shape = features.shape[:-1] + (projection.out_features,)
        needed = features.shape[:-1].numel() * projection.out_features
        if self._logits_buffer is None or self._logits_buffer.numel() < needed:
            self._logits_buffer = features.new_empty(needed)
        out = self._logits_buffer[:needed].view(shape)
        if projection.bias is None:
            return torch.matmul(features, projection.weight.t(), out=out)
        return torch.addmm(
            projection.bias,
            features.reshape(-1, features.size(-1)),
            projection.weight.t(),
            out=out.view(-1, shape[-1]),
        ).view(shape)

    def qe_logits(self, features, tokens):
        """``z = h · W_qe[y] (+ b[y])`` for the given tokens only, never the full vocabulary.

        ``features`` [..., d] and ``tokens`` [..., m] -> logits [..., m].
        """
        return self.qe_head.logits_for(features, tokens)


def build_head(args, projection):
    """The QE head the options ask for, on the base's frozen output ``projection``."""
    return qe_heads.build_qe_head(
        projection, args.qe_head_type, args.qe_head_rank, bool(args.qe_head_bias)
    )


def _load_base(args, task):
    training_preflight.check_training_setup(args, task)
    path = args.base_checkpoint
    state = bc.read_base_checkpoint(path)
    base_cfg = bc.base_model_config(state, path)
    _check_base_arch(base_cfg, path)
    bc.check_dictionary_sizes(state, task, path)
    bc.check_dictionary_content(state, task, path)
    base = build_fairseq_model(base_cfg, task)
    if not _is_encoder_decoder_transformer(base):
        raise QEUserError(
            f"base checkpoint {path} holds a {type(base).__name__}, not an encoder-decoder "
            "Transformer with a plain softmax output projection"
        )
    try:
        base.load_state_dict(state["model"], strict=True, model_cfg=base_cfg)
    except RuntimeError as exc:
        raise QEUserError(f"base checkpoint {path} does not match its own config: {exc}") from exc
    args.base_model_config = bc.serialize_model_config(base_cfg)
    args.qe_dictionary_fingerprint = bc.dictionary_fingerprint(task)
    args.base_fingerprint = head_checkpoints.weights_fingerprint(state["model"])
    head_checkpoints.check_training_files(args, ARCH_NAME)
    if getattr(args, "save_dir", None):
        durable_saves.install(args.save_dir)
    return base


def _rebuild_base(args, task):
    expected = getattr(args, "qe_dictionary_fingerprint", None)
    if expected and expected != bc.dictionary_fingerprint(task):
        raise QEUserError(
            "dictionary mismatch: this sigmoid-head checkpoint was trained with other "
            "dictionaries than the data directory's dict.*.txt; use the data it was trained on"
        )
    base_cfg = bc.deserialize_model_config(args.base_model_config)
    return build_fairseq_model(bc.without_file_references(base_cfg), task)


def _check_base_arch(base_cfg, path):
    arch = bc.model_config_name(base_cfg)
    if arch == ARCH_NAME:
        raise QEUserError(f"{path} is already a sigmoid-head checkpoint; give the base Transformer")
    model_cls = ARCH_MODEL_REGISTRY.get(arch)
    if model_cls is None or not issubclass(model_cls, FairseqEncoderDecoderModel):
        raise QEUserError(
            f"base checkpoint {path} holds a '{arch}' model, not an encoder-decoder Transformer"
        )


def check_before_any_work(args):
    """Head training's checks of what fairseq-train reads and writes before it reaches the
    model (its ``--save-dir`` check and task setup end in tracebacks): run when fairseq
    applies the architecture to the parsed command line, the plugin's first sight of it."""
    if getattr(args, "base_model_config", None) or not hasattr(args, "save_dir"):
        return  # a head checkpoint being rebuilt, or no fairseq-train command line
    head_checkpoints.check_save_dir(args.save_dir)
    if getattr(args, "task", "translation") in ("translation", TASK_NAME_QE):
        data_folder.check_data_folder(
            getattr(args, "data", None),
            getattr(args, "source_lang", None),
            getattr(args, "target_lang", None),
        )


@register_model_architecture(ARCH_NAME, ARCH_NAME)
def sigmoid_head_transformer(args):
    defaults = SigmoidHeadConfig()
    for spec in fields(SigmoidHeadConfig):
        if spec.name != "_name" and not hasattr(args, spec.name):
            setattr(args, spec.name, getattr(defaults, spec.name))
    check_before_any_work(args)
