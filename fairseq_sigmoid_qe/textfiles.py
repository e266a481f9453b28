"""The one reader of the user's text files: their lines, or one clear error line."""
import sys

from .errors import QEUserError


def iter_lines(path, what):
    """Lines of a UTF-8 text file (``-``: standard input) without their line ends, one at a
    time; a file that cannot be read or is not UTF-8 is a :class:`QEUserError` naming
    ``what``."""
    try:
        if path == "-":
            for line in sys.stdin:
                yield line.rstrip("\n")
            return
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield line.rstrip("\n")
    except OSError as exc:
        raise QEUserError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise QEUserError(f"{what} {path} is not UTF-8 text") from None


def read_lines(path, what):
    """Every line of :func:`iter_lines`; an empty file is a :class:`QEUserError` too."""
    lines = list(iter_lines(path, what))
    if not lines:
        raise QEUserError(f"{what} {path} is empty")
    return lines
