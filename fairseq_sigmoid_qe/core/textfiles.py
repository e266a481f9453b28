"""The user's text files: the one reader (their lines, or one clear error line) and the one
writer of output files that must never be left half-written or overwritten."""

import os
import sys

from .errors import QEUserError, stopping_on_termination

BOM = "\ufeff"


def iter_lines(path, what):
    """Lines of a UTF-8 text file (``-``: standard input, read as bytes) without their line
    ends (``\\n`` or ``\\r\\n``) or a leading byte-order mark, one at a time; a file that
    cannot be read, or a line that is not UTF-8, is a :class:`QEUserError` naming ``what``,
    the file and the line."""
    name = "stdin" if path == "-" else path
    try:
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    except OSError as exc:
        raise QEUserError(f"cannot read {what} {path}: {exc.strerror}") from exc
    try:
        for number, raw in enumerate(stream, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise QEUserError(
                    f"{what} {name} is not UTF-8 text: line {number} has the "
                    f"byte 0x{raw[exc.start]:02x}"
                ) from None
            if number == 1:
                line = line.removeprefix(BOM)  # a byte-order mark is no text
            yield line[: -1 if line.endswith("\n") else None].removesuffix("\r")
    except OSError as exc:
        raise QEUserError(f"cannot read {what} {path}: {exc.strerror}") from exc
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def read_lines(path, what):
    """Every line of :func:`iter_lines`; an empty file is a :class:`QEUserError` too."""
    lines = list(iter_lines(path, what))
    if not lines:
        raise QEUserError(f"{what} {'stdin' if path == '-' else path} is empty")
    return lines


def part_file(path):
    return path + ".part"


def refuse_existing(path, option="--output"):
    """Before any work: ``path`` and the ``.part`` file it is written through must not exist."""
    for existing in (path, part_file(path)):
        if os.path.lexists(existing):
            raise QEUserError(f"{option} {path}: {existing} exists; nothing is overwritten")


def check_new_output(path, option="--output"):
    """Before any work: ``path`` (``-``: stdout) and its ``.part`` file must be new, in a
    folder that exists and is writable."""
    if path == "-":
        return
    refuse_existing(path, option)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise QEUserError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise QEUserError(f"{option} {path}: folder {folder} is not writable")


class StreamedOutput:
    """JSONL lines to stdout (``-``), or to a new ``PATH.part`` renamed to ``PATH`` by
    :meth:`commit` once everything is written and removed by :meth:`discard` when the run
    fails (also when it is stopped by SIGINT, SIGTERM or SIGHUP, which raise meanwhile):
    a file named ``PATH`` is always complete, and never overwritten."""

    def __init__(self, path, option="--output"):
        self.path, self.option = path, option
        self.part = None if path == "-" else part_file(path)
        if self.part is None:
            self.stream = sys.stdout
            return
        try:
            self.stream = open(self.part, "x", encoding="utf-8")
            self._signals = stopping_on_termination()
        except FileExistsError:
            raise QEUserError(
                f"{option} {path}: {self.part} exists; nothing is overwritten"
            ) from None
        except OSError as exc:
            raise QEUserError(f"cannot write {option} {path}: {exc.strerror}") from exc

    def write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:  # stdout's reader went away (| head): the command ends quietly
            raise
        except OSError as exc:  # e.g. a full disk
            raise QEUserError(f"cannot write {self.option} {self.path}: {exc.strerror}") from exc

    def commit(self):
        if self.part is None:
            return
        part, self.part = self.part, None  # from here on the records are kept in any case
        self._signals.restore()
        try:
            self.stream.close()
            try:
                os.link(part, self.path)  # unlike a rename, never replaces a file
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                if os.path.lexists(self.path):
                    raise FileExistsError from None
                os.rename(part, self.path)
                return
        except FileExistsError:
            raise QEUserError(
                f"{self.option} {self.path} appeared while this ran; nothing is "
                f"overwritten: the records are in {part}"
            ) from None
        except OSError as exc:
            raise QEUserError(
                f"cannot write {self.option} {self.path}: {exc.strerror}; the records are in {part}"
            ) from exc
        os.remove(part)

    def discard(self):
        if self.part is not None:
            self.stream.close()
            os.remove(self.part)
            self.part = None
            self._signals.restore()
