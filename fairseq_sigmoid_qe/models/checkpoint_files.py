"""Why a checkpoint file cannot be loaded, in a few words, for every command's one line.

torch's own errors name the symptom (``KeyError: 101``, ``Ran out of input``, ``failed
finding central directory``); what the user needs is the cause: the file is empty, was cut
off (a checkpoint is a zip archive whose directory is written last), or is not a PyTorch
checkpoint at all.
"""

import os
import zipfile

from ..core.errors import QEUserError

ZIP_MAGIC = b"PK\x03\x04"


def first_line(exc):
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def file_problem(path):
    """What is wrong with ``path`` as a checkpoint file that can be seen without loading it
    (missing, a folder, empty, a cut-off archive), or None."""
    if os.path.isdir(path):
        return "it is a folder, not a checkpoint file"
    if not os.path.exists(path):
        return "no such file" + (" (a dangling link)" if os.path.islink(path) else "")
    size = os.path.getsize(path)
    if size == 0:
        return "the file is empty"
    with open(path, "rb") as handle:
        head = handle.read(len(ZIP_MAGIC))
    if head == ZIP_MAGIC and not zipfile.is_zipfile(path):
        return f"the file is cut off or damaged, its archive incomplete at {size} bytes"
    return None


def load_problem(path, exc):
    """Why loading ``path`` raised ``exc``."""
    seen = file_problem(path)
    if seen is not None:
        return seen
    with open(path, "rb") as handle:
        head = handle.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        return "not a PyTorch checkpoint"
    return first_line(exc)


def load_state(path, what="checkpoint", **load_options):
    """A checkpoint's state dict (``torch.load`` to CPU), or one line ``cannot load WHAT
    PATH: why``; a file that loads but is no fairseq checkpoint is refused too."""
    import torch

    problem = file_problem(path)
    if problem is None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=False, **load_options)
        except Exception as exc:  # torch and pickle raise many types for a foreign file
            problem = load_problem(path, exc)
        else:
            if isinstance(state, dict) and "model" in state:
                return state
            problem = "not a fairseq checkpoint (no model state)"
    raise QEUserError(f"cannot load {what} {path}: {problem}")


def check_loadable(path, what="checkpoint"):
    """Refuse, without reading its weights, a checkpoint file that cannot be loaded; its
    state (weights memory-mapped) when it can."""
    problem = file_problem(path)
    if problem is None:
        with open(path, "rb") as handle:
            if handle.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
                return load_state(path, what)  # an old-format (pickle) file: only loading tells
        return load_state(path, what, mmap=True)
    raise QEUserError(f"cannot load {what} {path}: {problem}")
