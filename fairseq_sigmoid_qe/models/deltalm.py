"""``deltalm``: DeltaLM (Ma et al. 2021) as a fairseq model, loadable from the official weights.

The encoder is fairseq's post-norm Transformer encoder (learned positions, embedding layer norm,
unscaled embeddings, GELU). Each decoder layer is *interleaved*: self-attention, FFN,
cross-attention, FFN, every sublayer with its own residual and layer norm. All token embeddings
and the softmax output projection share one matrix, as in DeltaLM.

``--pretrained-deltalm-checkpoint deltalm-base.pt`` starts training from the official release
(a torch file ``{"weights": state_dict}``). The option is cleared in the model's config once the
weights are in, so a fine-tuned checkpoint reloads (fairseq-generate, or as the frozen base of
``sigmoid_head_transformer``) without the pretrained file.

Official name -> module name (the rest is identical)::

    src_embedding.{embed_tokens,embed_positions}.*  encoder.{embed_tokens,embed_positions}.*
    src_embedding.emb_layer_norm.*                  encoder.layernorm_embedding.*
    tgt_embedding.*                                 decoder.* (same renames)
    encoder.layers.N.ffn.fc{1,2}.*                  encoder.layers.N.fc{1,2}.*
    decoder.layers.N.ffn_1.fc{1,2}.*  (first FFN)   decoder.layers.N.fc{3,4}.*  + ffn_layer_norm
    decoder.layers.N.ffn_2.fc{1,2}.*  (second FFN)  decoder.layers.N.fc{1,2}.*  + final_layer_norm
"""
import logging
import os
import re
from argparse import Namespace

import torch
from torch import nn
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

from ..errors import QEUserError

logger = logging.getLogger(__name__)

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
                query=h, key=h, value=h, key_padding_mask=self_attn_padding_mask,
                incremental_state=incremental_state, need_weights=False,
                attn_mask=self_attn_mask,
            )

        def cross_attention(h):
            return self.encoder_attn(
                query=h, key=encoder_out, value=encoder_out,
                key_padding_mask=encoder_padding_mask, incremental_state=incremental_state,
                static_kv=True, need_weights=need_attn or (not self.training and self.need_attn),
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
            "--pretrained-deltalm-checkpoint", type=str, metavar="PATH", default=None,
            help="official DeltaLM weights (deltalm-base.pt / deltalm-large.pt) to start from; "
            "read once when training starts, never when a saved checkpoint is loaded",
        )

    @classmethod
    def build_model(cls, args, task):
        deltalm_base(args)
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


@register_model_architecture(MODEL_NAME, "deltalm_base")
def deltalm_base(args):
    """DeltaLM-base: 12 encoder / 6 decoder layers, 768 dims, 12 heads, FFN 3072."""
    _default(args, "encoder_embed_dim", 768)
    _default(args, "encoder_ffn_embed_dim", 3072)
    _default(args, "encoder_layers", 12)
    _default(args, "encoder_attention_heads", 12)
    _default(args, "decoder_embed_dim", args.encoder_embed_dim)
    _default(args, "decoder_ffn_embed_dim", args.encoder_ffn_embed_dim)
    _default(args, "decoder_layers", 6)
    _default(args, "decoder_attention_heads", args.encoder_attention_heads)
    _default(args, "activation_fn", "gelu")
    # Fixed by DeltaLM's design (the released weights assume them): post-norm, learned
    # positions, embedding layer norm, unscaled embeddings, one tied embedding matrix.
    args.encoder_normalize_before = args.decoder_normalize_before = False
    args.encoder_learned_pos = args.decoder_learned_pos = True
    args.layernorm_embedding = True
    args.no_scale_embedding = True
    args.share_all_embeddings = args.share_decoder_input_output_embed = True
    args.adaptive_softmax_cutoff = None


@register_model_architecture(MODEL_NAME, "deltalm_large")
def deltalm_large(args):
    """DeltaLM-large: 24 encoder / 12 decoder layers, 1024 dims, 16 heads, FFN 4096."""
    _default(args, "encoder_embed_dim", 1024)
    _default(args, "encoder_ffn_embed_dim", 4096)
    _default(args, "encoder_layers", 24)
    _default(args, "encoder_attention_heads", 16)
    _default(args, "decoder_layers", 12)
    deltalm_base(args)


# --------------------------------------------------------------------------- official names

_EMBEDDING_OWNERS = {"src_embedding": "encoder", "tgt_embedding": "decoder"}
_EMBEDDING_MODULES = {
    "embed_tokens": "embed_tokens",
    "embed_positions": "embed_positions",
    "emb_layer_norm": "layernorm_embedding",
}
_FFN_MODULES = {
    "encoder": {"ffn.fc1": "fc1", "ffn.fc2": "fc2"},
    "decoder": {"ffn_1.fc1": "fc3", "ffn_1.fc2": "fc4", "ffn_2.fc1": "fc1", "ffn_2.fc2": "fc2"},
}
_LAYER_KEY = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.(.+)\.(\w+)$")
_EMBEDDING_KEY = re.compile(r"^(\w+)\.(\w+)\.(\w+)$")


def _inverse(mapping):
    return {value: key for key, value in mapping.items()}


def fairseq_key(official_key):
    """Our module name for an official DeltaLM weight name, or None if there is none."""
    match = _EMBEDDING_KEY.match(official_key)
    if match and match.group(1) in _EMBEDDING_OWNERS:
        owner, module, param = match.groups()
        if module not in _EMBEDDING_MODULES:
            return None
        return f"{_EMBEDDING_OWNERS[owner]}.{_EMBEDDING_MODULES[module]}.{param}"
    match = _LAYER_KEY.match(official_key)
    if not match:
        return None
    side, index, module, param = match.groups()
    module = _FFN_MODULES[side].get(module, module)
    return f"{side}.layers.{index}.{module}.{param}"


def official_key(key):
    """The official DeltaLM weight name for one of our state-dict keys (inverse of fairseq_key)."""
    match = _EMBEDDING_KEY.match(key)
    if match and match.group(1) in _inverse(_EMBEDDING_OWNERS):
        side, module, param = match.groups()
        if module in _inverse(_EMBEDDING_MODULES):
            owner = _inverse(_EMBEDDING_OWNERS)[side]
            return f"{owner}.{_inverse(_EMBEDDING_MODULES)[module]}.{param}"
    match = _LAYER_KEY.match(key)
    if not match:
        return key
    side, index, module, param = match.groups()
    module = _inverse(_FFN_MODULES[side]).get(module, module)
    return f"{side}.layers.{index}.{module}.{param}"


def _derived_keys(model):
    """State-dict entries the official file does not carry: buffers and the tied projection."""
    keys = {key for key in model.state_dict() if key.endswith(".version")}
    projection = model.decoder.output_projection
    if projection.weight is model.decoder.embed_tokens.weight:
        keys.add("decoder.output_projection.weight")
    return keys


def official_state_dict(model):
    """Our weights under the official DeltaLM names (what ``{"weights": ...}`` holds)."""
    derived = _derived_keys(model)
    return {
        official_key(key): value.detach().clone()
        for key, value in model.state_dict().items()
        if key not in derived
    }


# --------------------------------------------------------------------------- loading


def read_official_weights(path):
    """The ``weights`` state dict of an official DeltaLM release file."""
    if not os.path.isfile(path):
        raise QEUserError(f"pretrained DeltaLM checkpoint not found: {path}")
    try:
        # A trusted release file, read like fairseq reads its own checkpoints.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt/foreign file
        raise QEUserError(f"cannot read pretrained DeltaLM checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or not isinstance(state.get("weights"), dict):
        found = sorted(state)[:5] if isinstance(state, dict) else type(state).__name__
        raise QEUserError(
            f"{path} is not an official DeltaLM checkpoint: no 'weights' state dict "
            f"(found {found}); a fairseq checkpoint of a fine-tuned model is loaded with "
            "--finetune-from-model or --restore-file instead"
        )
    return state["weights"]


def _few(names, limit=4):
    names = sorted(names)
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _copy_weight(target, value, name):
    """Copy one official tensor (tables: their overlapping rows); an error text or None."""
    if name.endswith(("embed_tokens.weight", "embed_positions.weight")):
        if tuple(target.shape[1:]) != tuple(value.shape[1:]):
            return f"{name}: {list(value.shape)} vs {list(target.shape)}"
        rows = min(target.shape[0], value.shape[0])
        target[:rows].copy_(value[:rows])
        return None
    if target.shape != value.shape:
        return f"{name}: {list(value.shape)} vs {list(target.shape)}"
    target.copy_(value)
    return None


def load_official_checkpoint(model, path):
    """Copy an official DeltaLM release into ``model``; every official weight must find its
    module and every module weight its official weight. Token and position tables are cut or
    extended to the model's sizes (rows beyond the file keep their initialisation)."""
    weights = read_official_weights(path)
    own = model.state_dict()
    derived = _derived_keys(model)
    targets = {name: fairseq_key(name) for name in weights}
    unexpected = [name for name, key in targets.items() if key is None or key not in own]
    covered = set(targets.values())
    missing = [official_key(key) for key in own if key not in derived and key not in covered]
    if unexpected or missing:
        problems = []
        if unexpected:
            problems.append(f"unexpected weights {_few(unexpected)}")
        if missing:
            problems.append(f"missing weights {_few(missing)}")
        raise QEUserError(
            f"pretrained DeltaLM checkpoint {path} does not fit this model "
            f"(--arch and layer counts): {'; '.join(problems)}"
        )
    with torch.no_grad():
        errors = [_copy_weight(own[targets[name]], weights[name], name) for name in weights]
    errors = [error for error in errors if error]
    if errors:
        raise QEUserError(
            f"pretrained DeltaLM checkpoint {path} has other shapes (file vs model) than this "
            f"model: {_few(errors, 3)}; check --arch deltalm_base/deltalm_large and its options"
        )
    file_rows = weights["src_embedding.embed_tokens.weight"].shape[0]
    logger.info(
        "loaded DeltaLM weights from %s (%d embedding rows in the file, %d in the dictionary)",
        path, file_rows, model.decoder.embed_tokens.weight.shape[0],
    )


# --------------------------------------------------------------------------- helpers


def _dictionary_of_size(size):
    dictionary = Dictionary()
    for index in range(size - len(dictionary)):
        dictionary.add_symbol(f"piece{index}")
    return dictionary


def build_deltalm(dictionary, arch="deltalm_base", **options):
    """A DeltaLM model for ``dictionary`` (both sides), e.g. ``encoder_layers=1`` overrides."""
    args = Namespace(**options)
    args.arch = arch
    {"deltalm_base": deltalm_base, "deltalm_large": deltalm_large}[arch](args)
    task = Namespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return DeltaLMModel.build_model(args, task)


TINY_OPTIONS = dict(
    encoder_layers=1, decoder_layers=1, encoder_embed_dim=32, decoder_embed_dim=32,
    encoder_ffn_embed_dim=64, decoder_ffn_embed_dim=64, encoder_attention_heads=2,
    decoder_attention_heads=2, max_source_positions=512, max_target_positions=512,
)


def randomize_(model, seed=0, scale=0.2):
    """Give every weight a random value (layer-norm gains around 1), for layout tests."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * scale
            param.copy_(noise + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return model


def write_random_official_checkpoint(path, num_rows, seed=0, arch="deltalm_base", **options):
    """Write ``{"weights": ...}`` with the official layout and random values: ``num_rows``
    embedding rows (the release has 250,104), dims from ``options`` (TINY_OPTIONS by default)."""
    model = build_deltalm(_dictionary_of_size(num_rows), arch, **(options or TINY_OPTIONS))
    weights = official_state_dict(randomize_(model, seed))
    torch.save({"weights": weights}, path)
    return weights


def parameter_counts(arch="deltalm_base", vocab_size=DELTALM_DICTIONARY_SIZE):
    """(base parameters, sigmoid-head parameters) for ``arch`` on a ``vocab_size`` vocabulary,
    counted from the real modules built on the meta device (no memory)."""
    dictionary = _dictionary_of_size(vocab_size)
    with torch.device("meta"):
        model = build_deltalm(
            dictionary, arch, max_source_positions=512, max_target_positions=512
        )
    base = sum(param.numel() for param in model.parameters())  # tied weights count once
    projection = model.decoder.output_projection
    assert isinstance(projection, nn.Linear) and projection.bias is None
    return base, projection.weight.numel()


def overhead_report():
    """One line per architecture: base and head sizes on DeltaLM's real vocabulary."""
    lines = []
    for arch in ("deltalm_base", "deltalm_large"):
        n_base, n_head = parameter_counts(arch)
        share = 100 * n_head / n_base
        lines.append(f"{arch}: base {n_base:,}, sigmoid head {n_head:,} (+{share:.1f}%)")
    return "\n".join(lines)
