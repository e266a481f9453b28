"""One clear line and a non-zero exit for user mistakes (bad checkpoint, wrong data, ...)."""
import sys


class QEUserError(Exception):
    """A mistake in what the user gave us; printed as one line, not a traceback."""


def _excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    if issubclass(exc_type, QEUserError):
        sys.stderr.write(f"fairseq-sigmoid-qe: error: {exc}\n")
        return
    _previous(exc_type, exc, tb)


def install_excepthook():
    """Make an uncaught QEUserError print one line (the interpreter still exits with 1)."""
    if sys.excepthook is not _excepthook:
        sys.excepthook = _excepthook
