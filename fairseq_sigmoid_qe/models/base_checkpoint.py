"""Reading the frozen base model: its architecture config, its dictionaries, its weights."""

import hashlib
import json
import logging
import os
from argparse import Namespace

from omegaconf import DictConfig, OmegaConf, open_dict

from ..core.errors import QEUserError

logger = logging.getLogger(__name__)


def read_base_checkpoint(path):
    """Load a fairseq checkpoint to CPU, with a clear error when it is missing or unreadable."""
    from fairseq import checkpoint_utils

    if not path:
        raise QEUserError(
            "--base-checkpoint is required: the trained Transformer to add the head to"
        )
    if not os.path.isfile(path):
        raise QEUserError(f"base checkpoint not found: {path}")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path)
    except Exception as exc:  # torch raises many types for a corrupt/foreign file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # one line
        raise QEUserError(f"cannot read base checkpoint {path}: {reason}") from exc
    if "model" not in state:
        raise QEUserError(f"{path} is not a fairseq checkpoint (no 'model' state)")
    return state


def base_model_config(state, path):
    """The base model's own config (a Namespace for argparse models, else a DictConfig)."""
    cfg = state.get("cfg")
    model_cfg = cfg.get("model") if cfg is not None else None
    if model_cfg is None and state.get("args") is not None:
        model_cfg = state["args"]
    if model_cfg is None:
        raise QEUserError(f"base checkpoint {path} carries no model config")
    return model_cfg


def model_config_name(model_cfg):
    if isinstance(model_cfg, Namespace):
        return getattr(model_cfg, "arch", None) or getattr(model_cfg, "_name", None)
    return model_cfg.get("_name") or model_cfg.get("arch")


def serialize_model_config(model_cfg):
    """JSON text of a base config, so a head checkpoint can rebuild its base without the file."""
    if isinstance(model_cfg, Namespace):
        return json.dumps({"namespace": vars(model_cfg)}, default=str, sort_keys=True)
    if not isinstance(model_cfg, DictConfig):
        model_cfg = OmegaConf.create(model_cfg)
    container = OmegaConf.to_container(model_cfg, resolve=True, enum_to_str=True)
    return json.dumps({"dictconfig": container}, default=str, sort_keys=True)


def deserialize_model_config(text):
    stored = json.loads(text)
    if "namespace" in stored:
        return Namespace(**stored["namespace"])
    return OmegaConf.create(stored["dictconfig"])


def check_dictionary_sizes(state, task, path):
    """The base must have been trained with the data's dictionaries (same sizes)."""
    weights = state["model"]
    pairs = [
        ("source", "encoder.embed_tokens.weight", task.source_dictionary),
        ("target", "decoder.embed_tokens.weight", task.target_dictionary),
    ]
    for side, key, dictionary in pairs:
        if key in weights and dictionary is not None and weights[key].shape[0] != len(dictionary):
            raise QEUserError(
                f"dictionary mismatch: base checkpoint {path} has a {side} vocabulary of "
                f"{weights[key].shape[0]} symbols, but the data's {side} dictionary has "
                f"{len(dictionary)}; binarize the data with the dictionaries the base was "
                "trained on"
            )


def _training_task_config(state):
    cfg = state.get("cfg")
    task_cfg = cfg.get("task") if cfg is not None else None
    return task_cfg if task_cfg is not None else state.get("args")


def recorded_dictionary_files(state, path):
    """{side: dict file} the base was trained with, found through the data folder its config
    records (a checkpoint stores no dictionary), or a reason why they cannot be found."""
    from fairseq.data.data_utils import infer_language_pair

    task_cfg = _training_task_config(state)
    data = getattr(task_cfg, "data", None) if task_cfg is not None else None
    if not data:
        return f"base checkpoint {path} records no training data folder"
    folder = data.split(os.pathsep)[0]
    if not os.path.isdir(folder):
        return f"the training data folder {folder} recorded in base checkpoint {path} is gone"
    source, target = getattr(task_cfg, "source_lang", None), getattr(task_cfg, "target_lang", None)
    if source is None or target is None:
        source, target = infer_language_pair(folder)
    if source is None or target is None:
        return f"the language pair of {folder}, recorded in base checkpoint {path}, is unknown"
    files = {
        "source": os.path.join(folder, f"dict.{source}.txt"),
        "target": os.path.join(folder, f"dict.{target}.txt"),
    }
    missing = [f for f in files.values() if not os.path.isfile(f)]
    if missing:
        return f"{missing[0]}, recorded in base checkpoint {path}, is gone"
    return files


def check_dictionary_content(state, task, path):
    """The data's dictionaries must hold the base's symbols in the base's order. Compared with
    the dictionary files in the data folder the base's config records; when they are gone (or
    no longer match the base's vocabulary sizes) only the sizes are checked, with a warning."""
    found = recorded_dictionary_files(state, path)
    if isinstance(found, str):
        logger.warning("dictionary content not verified (only sizes): %s", found)
        return
    for side, ours in (("source", task.source_dictionary), ("target", task.target_dictionary)):
        recorded = task.load_dictionary(found[side])
        if len(recorded) != len(ours):
            logger.warning(
                "dictionary content not verified (only sizes): %s no longer has the "
                "base's %s vocabulary size",
                found[side],
                side,
            )
            continue
        if recorded.symbols != ours.symbols:
            index = next(
                i for i, (a, b) in enumerate(zip(recorded.symbols, ours.symbols)) if a != b
            )
            raise QEUserError(
                f"dictionary mismatch: the data's {side} dictionary differs from the base's "
                f"({found[side]}) at symbol {index}: {ours.symbols[index]!r} where the base "
                f"has {recorded.symbols[index]!r}; binarize the data with the base's "
                "dictionaries (fairseq-preprocess --srcdict/--tgtdict)"
            )


def dictionary_fingerprint(task):
    """Hash of both dictionaries' symbols, stored in the head checkpoint and checked at load."""
    digest = hashlib.sha1()
    for dictionary in (task.source_dictionary, task.target_dictionary):
        digest.update("\n".join(dictionary.symbols).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def without_file_references(model_cfg):
    """Drop options that point at files (pretrained embeddings, pretrained checkpoints): when a
    head checkpoint rebuilds its base, every weight comes from the checkpoint itself."""
    keys = [
        key
        for key in (vars(model_cfg) if isinstance(model_cfg, Namespace) else model_cfg.keys())
        if key.endswith("_embed_path") or key.startswith("pretrained_")
    ]
    for key in keys:
        if isinstance(model_cfg, Namespace):
            setattr(model_cfg, key, None)
        else:
            with open_dict(model_cfg):
                model_cfg[key] = None
    return model_cfg
