"""fairseq-train that stops dead in the middle of a checkpoint write, for kill tests.

``PAUSE_AT=KIND:N`` (KIND: ``torch.save``, ``copy`` or ``move``) pauses the N-th such write
into ``PAUSE_DIR``: half the bytes written (``torch.save``, ``copy``) or just before the file
is moved onto its name (``move``); ``PAUSE_MARKER`` is created then, and the process sleeps
until the test kills it. Usage: python pause_at_save.py FAIRSEQ-TRAIN-ARGS...
"""

import io
import os
import shutil
import sys
import time

import torch

KIND, NTH = os.environ["PAUSE_AT"].split(":")
FOLDER = os.path.realpath(os.environ["PAUSE_DIR"])
calls = []


def due(path):
    if isinstance(path, int):  # a file opened from a descriptor (os.fdopen) is named by it
        path = os.readlink(f"/proc/self/fd/{path}")
    if os.path.realpath(os.path.dirname(os.path.abspath(str(path)))) != FOLDER:
        return False
    calls.append(path)
    return len(calls) == int(NTH)


def pause():
    open(os.environ["PAUSE_MARKER"], "w").close()
    time.sleep(3600)


def half_then_pause(data, handle):
    handle.write(data[: len(data) // 2])
    handle.flush()
    pause()


if KIND == "torch.save":
    original_save = torch.save

    def save(obj, f, *args, **kwargs):
        if not (hasattr(f, "write") and due(getattr(f, "name", ""))):
            return original_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        original_save(obj, buffer, *args, **kwargs)
        half_then_pause(buffer.getvalue(), f)

    torch.save = save
elif KIND == "copy":
    original_copyfileobj, original_copyfile = shutil.copyfileobj, shutil.copyfile

    def copyfileobj(fsrc, fdst, length=0):
        if not due(getattr(fdst, "name", "")):
            return original_copyfileobj(fsrc, fdst, length)
        half_then_pause(fsrc.read(), fdst)

    def copyfile(src, dst, *, follow_symlinks=True):  # fairseq's own copy goes here
        if not due(dst):
            return original_copyfile(src, dst, follow_symlinks=follow_symlinks)
        with open(src, "rb") as source, open(dst, "wb") as target:
            half_then_pause(source.read(), target)

    shutil.copyfileobj, shutil.copyfile = copyfileobj, copyfile
elif KIND == "move":

    def pausing(original):
        def move(src, dst, *args, **kwargs):
            if str(dst).endswith(".pt") and due(dst):
                pause()
            return original(src, dst, *args, **kwargs)

        return move

    os.replace, os.rename = pausing(os.replace), pausing(os.rename)

from fairseq_cli.train import cli_main  # noqa: E402

sys.argv = ["fairseq-train", *sys.argv[1:]]
cli_main()
