"""Head training resumes from and writes over its own checkpoints only.

fairseq-train resumes from ``--restore-file`` (by default ``SAVE_DIR/checkpoint_last.pt``),
``--finetune-from-model`` or ``--continue-once``, and writes ``checkpoint*.pt`` files into
``--save-dir``. Before the trainer touches any of them, each existing one must be a
sigmoid-head checkpoint of the same base weights and dictionaries: a base checkpoint, another
head or any other file there is refused in one line, whatever its name. A file there that
cannot be loaded (cut off by a kill or a full disk) is refused naming the newest intact head
checkpoint to resume from, and so is a start at update 0 (``checkpoint_last.pt`` deleted) that
would write over this head's own checkpoints. Every write into ``--save-dir`` is whole or
absent (:mod:`.durable_saves`).
"""

import hashlib
import os

import torch

from ..core.errors import QEUserError
from . import base_checkpoint as bc
from . import checkpoint_files, qe_heads

DEFAULT_RESTORE_FILE = "checkpoint_last.pt"
RESUME_OPTIONS = ("restore_file", "finetune_from_model", "continue_once")


def weights_fingerprint(state_dict):
    """sha1 of a state dict's names, dtypes, shapes and bytes: which base a head wraps."""
    digest = hashlib.sha1()
    for name in sorted(state_dict):
        value = state_dict[name]
        if not torch.is_tensor(value):
            digest.update(f"{name} {value!r}\n".encode("utf-8"))
            continue
        digest.update(f"{name} {value.dtype} {tuple(value.shape)}\n".encode("utf-8"))
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def files_to_check(args):
    """(path, option) of every file head training may resume from or write over: the
    non-default resume options' files, existing or not (fairseq starts again at update 0,
    without a word, from a missing ``--restore-file`` or a folder), and every ``*.pt`` file
    in ``--save-dir``."""
    found = []
    for option in RESUME_OPTIONS:
        path = getattr(args, option, None)
        if path and not (option == "restore_file" and path == DEFAULT_RESTORE_FILE):
            found.append((path, "--" + option.replace("_", "-")))
    save_dir = getattr(args, "save_dir", None)
    if save_dir and os.path.isdir(save_dir):
        found += [
            (path, "--save-dir")
            for path in (os.path.join(save_dir, name) for name in sorted(os.listdir(save_dir)))
            if path.endswith(".pt") and os.path.isfile(path)
        ]
    return found


def is_checkpoint_name(name):
    """A name fairseq-train writes in ``--save-dir`` (checkpoint_last.pt, checkpoint_best.pt,
    checkpointN.pt, checkpoint_E_U.pt, checkpoint.best_METRIC_V.pt)."""
    return name.startswith("checkpoint") and name.endswith(".pt")


def check_save_dir(save_dir):
    """Before any work (fairseq's own check of ``--save-dir`` ends in a traceback, and a
    checkpoint name it cannot write, or writes through a link, only fails or escapes at
    the first save): ``--save-dir`` is a folder (or does not exist yet), and none of the
    checkpoint names fairseq writes there is a folder or a link."""
    if not save_dir or not os.path.lexists(save_dir):
        return
    if not os.path.isdir(save_dir):
        what = "a link to nothing" if os.path.islink(save_dir) else "a file, not a folder"
        raise QEUserError(f"--save-dir {save_dir} is {what}: give a folder (new or a head's)")
    for name in sorted(os.listdir(save_dir)):
        path = os.path.join(save_dir, name)
        if not is_checkpoint_name(name):
            continue
        if os.path.islink(path):
            target = os.readlink(path)
            what = f"a link to {target}" + ("" if os.path.exists(path) else " (which is gone)")
        elif os.path.isdir(path):
            what = "a folder"
        else:
            continue
        raise QEUserError(
            f"--save-dir {save_dir} holds {name}, {what}: head training writes its "
            f"checkpoints as files in --save-dir itself; move {name} away, or give a "
            "--save-dir of its own"
        )


def _model_config(path):
    """(model config, updates) of a checkpoint, reading no weights (memory-mapped), or
    (None, why it cannot be loaded)."""
    problem = checkpoint_files.file_problem(path)
    if problem is not None:
        return None, problem
    try:
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception as exc:  # torch and pickle raise many types for a foreign file
        return None, checkpoint_files.load_problem(path, exc)
    try:
        history = state.get("optimizer_history") or [{}]
        return bc.base_model_config(state, path), history[-1].get("num_updates", 0)
    except Exception:  # a dict of something else, or no dict at all
        return None, "not a fairseq checkpoint"


def not_own_reason(model_cfg, args, head_arch):
    """Why the checkpoint of ``model_cfg`` is not one of this head training's own, or None."""
    arch = bc.model_config_name(model_cfg)
    if arch != head_arch:
        return f"a '{arch}' checkpoint, not a sigmoid head"
    stored = dict(vars(model_cfg)) if hasattr(model_cfg, "__dict__") else dict(model_cfg)
    canonical = qe_heads.canonical_head_type
    stored_type = (canonical(stored.get("qe_head_type") or "full"), stored.get("qe_head_rank"))
    if stored_type != (canonical(args.qe_head_type), args.qe_head_rank):
        return f"a sigmoid head of another type ({qe_heads.describe(*stored_type)})"
    if stored.get("qe_dictionary_fingerprint") != args.qe_dictionary_fingerprint:
        return "a sigmoid head trained with other dictionaries"
    if stored.get("base_fingerprint") is None:  # heads saved before the fingerprint existed
        same_base = stored.get("base_model_config") == args.base_model_config
    else:
        same_base = stored["base_fingerprint"] == args.base_fingerprint
    return None if same_base else "a sigmoid head of another base"


def newest(own):
    """The path of the (updates, path) pair with the most updates; at a tie
    checkpoint_last.pt, then checkpoint_best.pt, then the newest file."""
    preference = {DEFAULT_RESTORE_FILE: 2, "checkpoint_best.pt": 1}

    def key(pair):
        updates, path = pair
        return updates, preference.get(os.path.basename(path), 0), os.path.getmtime(path)

    return max(own, key=key)[1] if own else None


def starts_afresh(args):
    """Whether fairseq-train would start at update 0 in ``--save-dir`` (no checkpoint_last.pt,
    no other resume option)."""
    if getattr(args, "restore_file", DEFAULT_RESTORE_FILE) != DEFAULT_RESTORE_FILE:
        return False
    if getattr(args, "finetune_from_model", None) or getattr(args, "continue_once", None):
        return False
    return not os.path.lexists(os.path.join(args.save_dir, DEFAULT_RESTORE_FILE))


def check_training_files(args, head_arch):
    """Refuse, before any training, a resume or save file that is not this head's own or
    cannot be loaded, and a start at update 0 over this head's own checkpoints."""
    own, damaged = [], []
    for path, option in files_to_check(args):
        model_cfg, updates = _model_config(path)
        if model_cfg is None:
            if option != "--save-dir":
                raise QEUserError(
                    f"{option} {path} cannot be loaded ({updates}): head training resumes "
                    "only from an intact checkpoint of its own"
                )
            damaged.append((path, updates))
            continue
        reason = not_own_reason(model_cfg, args, head_arch)
        if reason is None:
            if option == "--save-dir":
                own.append((updates, path))
            continue
        if option == "--save-dir":
            raise QEUserError(
                f"--save-dir {args.save_dir} holds {os.path.basename(path)}, {reason}: head "
                "training would resume from it or write over it; give the head a --save-dir "
                "of its own"
            )
        raise QEUserError(
            f"{option} {path} is {reason}: head training resumes only from its "
            "own checkpoints (the base goes to --base-checkpoint)"
        )
    intact = newest(own)
    if damaged:
        path, problem = damaged[0]
        then = (
            f"resume from the newest intact head checkpoint with --restore-file {intact}"
            if intact
            else "no intact head checkpoint is left there"
        )
        raise QEUserError(
            f"--save-dir {args.save_dir} holds {os.path.basename(path)}, which cannot be "
            f"loaded ({problem}): head training would resume from it or write over it; move "
            f"it away, then {then}"
        )
    if intact and starts_afresh(args):
        raise QEUserError(
            f"--save-dir {args.save_dir} holds head checkpoints but no {DEFAULT_RESTORE_FILE}: "
            "training would start again at update 0 and write over them; resume with "
            f"--restore-file {intact} (the newest), or give a new --save-dir"
        )
