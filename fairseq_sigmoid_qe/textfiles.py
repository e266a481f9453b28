"""The one reader of the user's text files: their lines, or one clear error line."""
import sys

from .errors import QEUserError


def iter_lines(path, what):
    """Lines of a UTF-8 text file (``-``: standard input, read as bytes) without their line
    ends (``\\n`` or ``\\r\\n``), one at a time; a file that cannot be read, or a line that is
    not UTF-8, is a :class:`QEUserError` naming ``what``, the file and the line."""
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
                raise QEUserError(f"{what} {name} is not UTF-8 text: line {number} has the "
                                  f"byte 0x{raw[exc.start]:02x}") from None
            yield line[:-1 if line.endswith("\n") else None].removesuffix("\r")
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
