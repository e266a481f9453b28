"""One clear line and a non-zero exit for user mistakes (bad checkpoint, wrong data, ...),
and one line for fallbacks."""

import math
import os
import signal
import sys
import threading

PROGRAM = "fairseq-sigmoid-qe"
_WARNED = set()
_COMMAND = []  # the subcommand this process runs (set_command), if any


def set_command(name):
    """Name the subcommand (``translate``, ``evaluate``...) every message of this process
    then carries: ``fairseq-sigmoid-qe translate: error: ...``."""
    _COMMAND[:] = [name]


def program():
    """The name messages carry: ``fairseq-sigmoid-qe`` and the subcommand, if one runs."""
    return f"{PROGRAM} {_COMMAND[0]}" if _COMMAND else PROGRAM


class QEUserError(Exception):
    """A mistake in what the user gave us; printed as one line, not a traceback."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP while an output file is written: raised like SIGINT's
    KeyboardInterrupt, so that the ``finally`` and ``except`` blocks remove ``OUTPUT.part``."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


TERMINATING = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class _SignalsRaise:
    """SIGTERM and SIGHUP raise :class:`Terminated` until :meth:`restore`."""

    def __init__(self):
        self.previous = {}
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; it also gets the signal
        for signum in TERMINATING:
            self.previous[signum] = signal.signal(signum, self._raise)

    @staticmethod
    def _raise(signum, frame):
        raise Terminated(signum)

    def restore(self):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


def stopping_on_termination():
    """From now on SIGTERM and SIGHUP raise :class:`Terminated` (``.restore()`` ends it)."""
    return _SignalsRaise()


def _excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    if issubclass(exc_type, QEUserError):
        sys.stderr.write(f"{program()}: error: {exc}\n")
        return
    if issubclass(exc_type, Terminated):  # cleaned up; now end as the signal asked
        sys.stderr.write(f"{PROGRAM}: stopped by {exc}\n")
        sys.stderr.flush()
        signal.signal(exc.signum, signal.SIG_DFL)
        os.kill(os.getpid(), exc.signum)
    _previous(exc_type, exc, tb)


def install_excepthook():
    """Make an uncaught QEUserError print one line (the interpreter still exits with 1)."""
    if sys.excepthook is not _excepthook:
        sys.excepthook = _excepthook


def check_range(
    option, value, low=-math.inf, high=math.inf, low_open=False, high_open=False, meaning=""
):
    """Refuse ``value`` of ``option`` (e.g. ``--dominant-epsilon``) outside its interval
    (NaN never fits); ``meaning`` says in a few words what the bound protects."""
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if above and below:
        return
    if high == math.inf:
        interval = f"{'greater than' if low_open else 'at least'} {low:g}"
    else:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    why = f" ({meaning})" if meaning else ""
    raise QEUserError(f"{option} {value!r} is out of range: it must be {interval}{why}")


def warn_once(message):
    """One stderr line the first time ``message`` comes up in this process (a fallback the
    user should know about, never silent)."""
    if message not in _WARNED:
        _WARNED.add(message)
        sys.stderr.write(f"{program()}: warning: {message}\n")
