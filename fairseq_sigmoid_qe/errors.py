"""One clear line for user mistakes (bad checkpoint, wrong data, ...) and for fallbacks."""
import sys

PROGRAM = "fairseq-sigmoid-qe"
_WARNED = set()


class QEUserError(Exception):
    """A mistake in what the user gave us; printed as one line, not a traceback."""


def _excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    if issubclass(exc_type, QEUserError):
        sys.stderr.write(f"{PROGRAM}: error: {exc}\n")
        return
    _previous(exc_type, exc, tb)


def install_excepthook():
    """Make an uncaught QEUserError print one line (the interpreter still exits with 1)."""
    if sys.excepthook is not _excepthook:
        sys.excepthook = _excepthook


def warn_once(message):
    """One stderr line the first time ``message`` comes up in this process (a fallback the
    user should know about, never silent)."""
    if message not in _WARNED:
        _WARNED.add(message)
        sys.stderr.write(f"{PROGRAM}: warning: {message}\n")
