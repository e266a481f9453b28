"""Reading the frozen base model: its architecture config, its dictionaries, its weights."""

import hashlib
import json
import os
from argparse import Namespace

from omegaconf import DictConfig, OmegaConf, open_dict

from ..core.errors import QEUserError, warn_once
from . import checkpoint_files


def read_base_checkpoint(path):
    """Load a fairseq checkpoint to CPU, with a clear error when it is missing or unreadable."""
    from fairseq import checkpoint_utils

    if not path:
        raise QEUserError(
            "--base-checkpoint is required: the trained Transformer to add the head to"
        )
    if not os.path.lexists(path):
        raise QEUserError(f"base checkpoint not found: {path}")
    problem = checkpoint_files.file_problem(path)
    if problem is None:
        try:
            state = checkpoint_utils.load_checkpoint_to_cpu(path)
        except Exception as exc:  # torch raises many types for a corrupt/foreign file
            problem = checkpoint_files.load_problem(path, exc)
    if problem is not None:
        raise QEUserError(f"cannot read base checkpoint {path}: {problem}")
    if not isinstance(state, dict):
        raise QEUserError(f"{path} is not a fairseq checkpoint (no 'model' state)")
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


def config_option(config, name):
    """``config.name`` of a recorded config (a dict, DictConfig or Namespace), or None."""
    if config is None:
        return None
    return config.get(name) if hasattr(config, "get") else getattr(config, name, None)


def training_folder(state, path):
    """The folder the base was trained in (against which its relative paths were meant), from
    its recorded ``--save-dir`` and where ``path`` lies, or None when they do not fit."""
    cfg = state.get("cfg")
    save_dir = config_option(config_option(cfg, "checkpoint"), "save_dir") or config_option(
        state.get("args"), "save_dir"
    )
    if not save_dir:
        return None
    here = os.path.dirname(os.path.abspath(path))
    if os.path.isabs(save_dir):
        return None  # training ran anywhere
    relative = os.path.normpath(save_dir)
    if relative == os.curdir:
        return here
    if relative.split(os.sep)[0] == os.pardir or not here.endswith(os.sep + relative):
        return None
    return here[: -len(relative) - 1] or os.sep


def recorded_dictionary_files(state, path):
    """{side: dict file} the base was trained with, found through the data folder its config
    records (a checkpoint stores no dictionary; a relative folder is taken from the folder
    the base was trained in, never from the current one), or a reason why they cannot be
    found."""
    from fairseq.data.data_utils import infer_language_pair

    task_cfg = _training_task_config(state)
    data = getattr(task_cfg, "data", None) if task_cfg is not None else None
    if not data:
        return f"base checkpoint {path} records no training data folder"
    folder = data.split(os.pathsep)[0]
    if not os.path.isabs(folder):
        trained_in = training_folder(state, path)
        if trained_in is None:
            return (
                f"the training data folder {folder} recorded in base checkpoint {path} is "
                "relative, and the folder the base was trained in is unknown (the checkpoint "
                "is no longer in its --save-dir)"
            )
        folder = os.path.join(trained_in, folder)
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
    no longer match the base's vocabulary sizes) only the sizes are checked, with a warning
    on stderr."""
    found = recorded_dictionary_files(state, path)
    if isinstance(found, str):
        warn_once(f"dictionary content not verified (only sizes): {found}")
        return
    for side, ours in (("source", task.source_dictionary), ("target", task.target_dictionary)):
        recorded = task.load_dictionary(found[side])
        if len(recorded) != len(ours):
            warn_once(
                f"dictionary content not verified (only sizes): {found[side]} no longer has "
                f"the base's {side} vocabulary size"
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
