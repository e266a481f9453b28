"""``fairseq-sigmoid-qe COMMAND``: the one console command and its subcommands (each its own
parser, ``--help`` and messages named ``fairseq-sigmoid-qe COMMAND``), ``--version``; the
older script names ``fairseq-sigmoid-qe-quickstart`` and ``fairseq-sigmoid-qe-evaluate`` run
the same subcommands. A command that needs fairseq, without it installed, is one error line
naming the ``fairseq`` extra; fairseq's start-up notices are silenced; a closed output pipe
(``| head``) ends the command quietly."""

import argparse
import importlib
import importlib.util
import logging
import os
import sys

from ..core.errors import PROGRAM, program, set_command

FAIRSEQ_MISSING = (
    "needs fairseq, which is not installed: install this package's 'fairseq' "
    "extra as setup.sh does (bash setup.sh; fairseq-fixed must be built with "
    "--no-build-isolation --no-deps)"
)

# subcommand -> (cli module, whether it needs fairseq, what it does)
COMMANDS = {
    "translate": ("raw_text", True, "translate raw text, with QE of every translation (JSONL)"),
    "score": ("raw_text", True, "QE of given translations of raw text (JSONL)"),
    "calibrate": ("calibrate", False, "fit a calibration (OK/BAD, error spans) on a dev set"),
    "evaluate": ("evaluate", False, "QE scores against gold quality (correlations, ECE, ...)"),
    "quickstart": ("quickstart", True, "the main job end to end: data, base, head, QE, table"),
    "prepare-data": ("prepare_data", False, "sentencepiece-encode a corpus for fairseq"),
    "token-groups": ("token_groups", True, "the token-group tables of a synthetic run"),
    "merge": ("merge", False, "join the --qe-output files of fairseq-generate's shards"),
}
BROKEN_PIPE_EXIT = 141  # 128 + SIGPIPE, as a shell reports a command ended by a closed pipe


def require_fairseq(command):
    if importlib.util.find_spec("fairseq") is None:
        sys.stderr.write(f"{PROGRAM} {command}: error: {FAIRSEQ_MISSING}\n")
        sys.exit(1)


def silence_fairseq_notices():
    """fairseq logs notices when imported (e.g. that tensorboardX is not installed) and
    configures logging to print them; our commands show warnings and errors only."""
    for name in ("fairseq", "fairseq_cli"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run(command, argv):
    """Run subcommand ``command`` on its arguments ``argv``; its exit status."""
    module_name, needs_fairseq, _ = COMMANDS[command]
    set_command(command)
    if needs_fairseq:
        require_fairseq(command)
        silence_fairseq_notices()
    module = importlib.import_module(f"{__package__}.{module_name}")
    arguments = [command, *argv] if module_name == "raw_text" else list(argv)
    try:
        code = module.main(arguments)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (| head): no traceback, and none at exit when Python flushes
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE_EXIT
    return code or 0


def parser():
    top = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Sigmoid-head quality estimation for Fairseq translation models. "
        f"'{PROGRAM} COMMAND --help' shows a command's options.",
    )
    from .. import __version__

    top.add_argument("--version", action="version", version=f"{PROGRAM} {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, _, what) in COMMANDS.items():
        commands.add_parser(name, help=what, add_help=False)
    return top


def main(argv=None):
    """``fairseq-sigmoid-qe``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        parser().parse_args(argv[:1])  # --help, --version, or one error line
    return run(argv[0], argv[1:])


def quickstart():
    """``fairseq-sigmoid-qe-quickstart``: ``fairseq-sigmoid-qe quickstart``."""
    return run("quickstart", sys.argv[1:])


def evaluate():
    """``fairseq-sigmoid-qe-evaluate``: ``fairseq-sigmoid-qe evaluate``."""
    return run("evaluate", sys.argv[1:])


def raw_text():
    """Kept for callers of the former entry point: ``fairseq-sigmoid-qe``."""
    return main()


__all__ = ["main", "quickstart", "evaluate", "raw_text", "program"]
