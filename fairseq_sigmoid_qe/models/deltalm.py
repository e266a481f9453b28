"""``deltalm``: DeltaLM (Ma et al. 2021) as a fairseq model, loadable from the official weights.

The encoder is fairseq's post-norm Transformer encoder (learned positions, unscaled embeddings,
GELU; an embedding layer norm in deltalm_base only, as in the official code and release).
Each decoder layer is *interleaved*: self-attention, FFN, cross-attention, FFN, every sublayer
with its own residual and layer norm. All token embeddings and the softmax output projection
share one matrix, as in DeltaLM.

``--pretrained-deltalm-checkpoint deltalm-base.pt`` starts training from the official release
(read by :mod:`.deltalm_checkpoint`). The option is cleared in the model's config once the
weights are in, so a fine-tuned checkpoint reloads (fairseq-generate, or as the frozen base of
``sigmoid_head_transformer``) without the pretrained file.
"""

from argparse import Namespace

import torch
from fairseq.data import Dictionary
from fairseq.distributed import fsdp_wrap
from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import (
    TransformerConfig,
    TransformerDecoderBase,
    TransformerEncoderBase,
    TransformerModel,
)
from fairseq.modules import LayerNorm
from fairseq.modules.checkpoint_activations import checkpoint_wrapper
from fairseq.modules.transformer_layer import TransformerDecoderLayerBase
from torch import nn

from ..core.errors import QEUserError
from .deltalm_checkpoint import load_official_checkpoint
from .qe_heads import build_qe_head, describe

MODEL_NAME = "deltalm"
# fairseq Dictionary built from DeltaLM's dict.txt (249,997 pieces + <s> <pad> </s> <unk>); the
# released embedding tables have 250,104 rows (extra special tokens), cut to the dictionary.
DELTALM_DICTIONARY_SIZE = 250_001


# --------------------------------------------------------------------------- the model


class DeltaLMDecoderLayer(TransformerDecoderLayerBase):
    """Self-attention -> FFN -> cross-attention -> FFN, each with a residual and its own norm.

    The first FFN is ``fc3``/``fc4`` with ``ffn_layer_norm``; the second (after
    cross-attention) is the inherited ``fc1``/``fc2`` with ``final_layer_norm``.
    """

    def __init__(self, cfg, no_encoder_attn=False):
        super().__init__(cfg, no_encoder_attn=no_encoder_attn)
        unsupported = {
            "cross_self_attention": self.cross_self_attention,
            "scale_attn": self.attn_ln is not None,
            "scale_heads": self.c_attn is not None,
            "scale_fc": self.ffn_layernorm is not None,
            "scale_resids": self.w_resid is not None,
        }
        chosen = [name for name, on in unsupported.items() if on]
        if chosen:
            raise QEUserError(f"deltalm does not support --{chosen[0].replace('_', '-')}")
        ffn_dim = cfg.decoder.ffn_embed_dim
        noise, block = self.quant_noise, self.quant_noise_block_size
        self.fc3 = self.build_fc1(self.embed_dim, ffn_dim, noise, block)
        self.fc4 = self.build_fc2(ffn_dim, self.embed_dim, noise, block)
        self.ffn_layer_norm = LayerNorm(self.embed_dim, export=cfg.export)

    def _sublayer(self, x, layer_norm, body):
        """Residual block around ``body`` (returns output, attention), pre- or post-norm."""
        residual = x
        if self.normalize_before:
            x = layer_norm(x)
        x, attn = body(x)
        x = self.residual_connection(self.dropout_module(x), residual)
        if not self.normalize_before:
            x = layer_norm(x)
        return x, attn

    def _feed_forward(self, fc_in, fc_out):
        def body(x):
            hidden = self.activation_dropout_module(self.activation_fn(fc_in(x)))
            return fc_out(hidden), None

        return body

    def forward(
        self,
        x,
        encoder_out=None,
        encoder_padding_mask=None,
        incremental_state=None,
        prev_self_attn_state=None,
        prev_attn_state=None,
        self_attn_mask=None,
        self_attn_padding_mask=None,
        need_attn=False,
        need_head_weights=False,
    ):
        """``x`` [T, B, C] -> (output [T, B, C], cross-attention weights or None, None)."""
        if prev_self_attn_state is not None or prev_attn_state is not None:
            raise NotImplementedError("deltalm decoder layers take no prev_*_attn_state")
        need_attn = need_attn or need_head_weights

        def self_attention(h):
            return self.self_attn(
                query=h,
                key=h,
                value=h,
                key_padding_mask=self_attn_padding_mask,
                incremental_state=incremental_state,
                need_weights=False,
                attn_mask=self_attn_mask,
            )

        def cross_attention(h):
            return self.encoder_attn(
                query=h,
                key=encoder_out,
                value=encoder_out,
                key_padding_mask=encoder_padding_mask,
                incremental_state=incremental_state,
                static_kv=True,
                need_weights=need_attn or (not self.training and self.need_attn),
                need_head_weights=need_head_weights,
            )

        x, _ = self._sublayer(x, self.self_attn_layer_norm, self_attention)
        x, _ = self._sublayer(x, self.ffn_layer_norm, self._feed_forward(self.fc3, self.fc4))
        attn = None
        if self.encoder_attn is not None and encoder_out is not None:
            x, attn = self._sublayer(x, self.encoder_attn_layer_norm, cross_attention)
        x, _ = self._sublayer(x, self.final_layer_norm, self._feed_forward(self.fc1, self.fc2))
        return x, attn, None


class DeltaLMDecoder(TransformerDecoderBase):
    """fairseq's Transformer decoder (incremental decoding, tied output projection) with
    interleaved DeltaLM layers."""

    def build_decoder_layer(self, cfg, no_encoder_attn=False):
        layer = DeltaLMDecoderLayer(cfg, no_encoder_attn)
        if cfg.checkpoint_activations:
            layer = checkpoint_wrapper(layer, offload_to_cpu=cfg.offload_activations)
            return fsdp_wrap(layer, min_num_params=0)
        return fsdp_wrap(layer, min_num_params=cfg.min_params_to_wrap)


@register_model(MODEL_NAME)
class DeltaLMModel(TransformerModel):
    """DeltaLM encoder-decoder; one shared vocabulary and embedding matrix."""

    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        parser.add_argument(
            "--pretrained-deltalm-checkpoint",
            type=str,
            metavar="PATH",
            default=None,
            help="official DeltaLM weights (deltalm-base.pt / deltalm-large.pt) to start from; "
            "read once when training starts, never when a saved checkpoint is loaded",
        )

    @classmethod
    def build_model(cls, args, task):
        ARCHITECTURES[getattr(args, "arch", "deltalm_base")](args)
        if task.source_dictionary != task.target_dictionary:
            raise QEUserError(
                "deltalm needs one vocabulary for both languages: binarize with "
                "--srcdict dict.txt --tgtdict dict.txt (DeltaLM's dict.txt) or --joined-dictionary"
            )
        model = super().build_model(args, task)
        path = getattr(args, "pretrained_deltalm_checkpoint", None)
        if path:
            load_official_checkpoint(model, path)
            # The weights are in the model now; saved checkpoints must not point at the file.
            args.pretrained_deltalm_checkpoint = None
        return model

    @classmethod
    def build_encoder(cls, cfg, src_dict, embed_tokens):
        return TransformerEncoderBase(TransformerConfig.from_namespace(cfg), src_dict, embed_tokens)

    @classmethod
    def build_decoder(cls, cfg, tgt_dict, embed_tokens):
        return DeltaLMDecoder(TransformerConfig.from_namespace(cfg), tgt_dict, embed_tokens)


def _default(args, name, value):
    setattr(args, name, getattr(args, name, value))


def _deltalm_architecture(
    args, dim, ffn_dim, encoder_layers, heads, decoder_layers, layernorm_embedding
):
    """The official settings of one size (microsoft/unilm's DeltaLM): dimensions and layer
    counts as defaults, the rest fixed because the released weights assume them."""
    _default(args, "encoder_embed_dim", dim)
    _default(args, "encoder_ffn_embed_dim", ffn_dim)
    _default(args, "encoder_layers", encoder_layers)
    _default(args, "encoder_attention_heads", heads)
    _default(args, "decoder_embed_dim", args.encoder_embed_dim)
    _default(args, "decoder_ffn_embed_dim", args.encoder_ffn_embed_dim)
    _default(args, "decoder_layers", decoder_layers)
    _default(args, "decoder_attention_heads", args.encoder_attention_heads)
    _default(args, "activation_fn", "gelu")
    _default(args, "max_source_positions", 512)
    _default(args, "max_target_positions", 512)
    args.encoder_normalize_before = args.decoder_normalize_before = False
    args.encoder_learned_pos = args.decoder_learned_pos = True
    args.layernorm_embedding = layernorm_embedding
    args.no_scale_embedding = True
    args.share_all_embeddings = args.share_decoder_input_output_embed = True
    args.adaptive_softmax_cutoff = None


@register_model_architecture(MODEL_NAME, "deltalm_base")
def deltalm_base(args):
    """DeltaLM-base: 12 encoder / 6 decoder layers, 768 dims, 12 heads, FFN 3072, an
    embedding layer norm."""
    _deltalm_architecture(args, 768, 3072, 12, 12, 6, layernorm_embedding=True)


@register_model_architecture(MODEL_NAME, "deltalm_large")
def deltalm_large(args):
    """DeltaLM-large: 24 encoder / 12 decoder layers, 1024 dims, 16 heads, FFN 4096, no
    embedding layer norm (the official large architecture turns it off; its release has none)."""
    _deltalm_architecture(args, 1024, 4096, 24, 16, 12, layernorm_embedding=False)


ARCHITECTURES = {"deltalm_base": deltalm_base, "deltalm_large": deltalm_large}


# --------------------------------------------------------------------------- sizes


def placeholder_dictionary(size):
    """A dictionary of ``size`` symbols (fairseq's specials, then placeholders), to build a
    model of that vocabulary without data."""
    dictionary = Dictionary()
    for index in range(size - len(dictionary)):
        dictionary.add_symbol(f"piece{index}")
    return dictionary


def build_deltalm(dictionary, arch="deltalm_base", **options):
    """A DeltaLM model for ``dictionary`` (both sides), e.g. ``encoder_layers=1`` overrides."""
    args = Namespace(**options)
    args.arch = arch
    ARCHITECTURES[arch](args)
    task = Namespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return DeltaLMModel.build_model(args, task)


def parameter_counts(
    arch="deltalm_base", vocab_size=DELTALM_DICTIONARY_SIZE, head_type="full", rank=None
):
    """(base parameters, sigmoid-head parameters) for ``arch`` on a ``vocab_size`` vocabulary
    and a head of ``head_type`` (rank ``rank`` for ``lowrank``), counted from the real modules
    built on the meta device (no memory)."""
    dictionary = placeholder_dictionary(vocab_size)
    with torch.device("meta"):
        model = build_deltalm(dictionary, arch)
        projection = model.decoder.output_projection
        assert isinstance(projection, nn.Linear) and projection.bias is None
        head = build_qe_head(projection, head_type, rank)
    base = sum(param.numel() for param in model.parameters())  # tied weights count once
    return base, sum(param.numel() for param in head.parameters())


REPORTED_HEADS = (
    ("full", None),
    ("logit_affine", None),
    ("hidden_transform", None),
    ("lowrank", 16),
    ("lowrank", 64),
    ("lowrank", 256),
)


def overhead_report():
    """One line per architecture and head type: base and head sizes on DeltaLM's real
    vocabulary."""
    lines = []
    for arch in ARCHITECTURES:
        for head_type, rank in REPORTED_HEADS:
            n_base, n_head = parameter_counts(arch, head_type=head_type, rank=rank)
            share = 100 * n_head / n_base
            lines.append(
                f"{arch}: base {n_base:,}, sigmoid head "
                f"{describe(head_type, rank)} {n_head:,} (+{share:.2f}%)"
            )
    return "\n".join(lines)
