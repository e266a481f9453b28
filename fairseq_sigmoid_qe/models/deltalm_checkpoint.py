"""DeltaLM's official release files: their weight names, and loading one into our model.

The release (``deltalm-base.pt``, ``deltalm-large.pt``) is a torch file ``{"weights":
state_dict}``. Official name -> module name (the rest is identical)::

    src_embedding.{embed_tokens,embed_positions}.*  encoder.{embed_tokens,embed_positions}.*
    src_embedding.emb_layer_norm.*  (base only)     encoder.layernorm_embedding.*
    tgt_embedding.*                                 decoder.* (same renames)
    encoder.layers.N.ffn.fc{1,2}.*                  encoder.layers.N.fc{1,2}.*
    decoder.layers.N.ffn_1.fc{1,2}.*  (first FFN)   decoder.layers.N.fc{3,4}.*  + ffn_layer_norm
    decoder.layers.N.ffn_2.fc{1,2}.*  (second FFN)  decoder.layers.N.fc{1,2}.*  + final_layer_norm
"""

import logging
import os
import re

import torch

from ..core.errors import QEUserError

logger = logging.getLogger(__name__)

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
        path,
        file_rows,
        model.decoder.embed_tokens.weight.shape[0],
    )
