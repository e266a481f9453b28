"""``fairseq-generate --user-dir fairseq_sigmoid_qe --print-qe``: the run reaches the
``translation_qe`` task, and the task's QE lines reach fairseq-generate's output.

The QE itself uses fairseq's extension points only: the registered task's options,
generators (``seq_gen_cls``, a ``SequenceScorer`` subclass), inference step and
``score_qe`` hook. fairseq-generate offers no extension point for two things, so when the
plugin is imported by a fairseq-generate run whose command line has ``--print-qe`` (and
only then), :func:`install` does these, the only changes it makes outside the plugin:

1. ``--task translation_qe`` is added to ``sys.argv`` when no ``--task`` is given:
   fairseq-generate's default task is ``translation``, and the user's command names no task.
2. ``fairseq_cli.generate._main`` is wrapped for the run so that its output stream is a
   :class:`~.qe_output.QEPrinter`: fairseq-generate prints each hypothesis itself and has
   no per-hypothesis output hook, and QE lines follow their hypothesis' ``P-`` line.
   Before any work, the wrapper also refuses in one line a ``--path`` checkpoint that
   cannot be loaded (fairseq's loader would end in a traceback).
The original ``sys.argv`` and ``_main`` are put back when the run ends.
"""

import argparse
import os
import sys
from dataclasses import fields

from fairseq import utils

from ..core.errors import QEUserError
from ..decoding.generate_output import QEPrinter, printing
from ..models import checkpoint_files
from .translation_qe import TASK_NAME, TranslationQEConfig

QE_FLAGS = tuple(
    "--" + spec.name.replace("_", "-")
    for spec in fields(TranslationQEConfig)
    if spec.name == "print_qe" or spec.name.startswith("qe_")
)


def _running_generate():
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return (spec is not None and spec.name == "fairseq_cli.generate") or (
        os.path.basename(sys.argv[0]) == "fairseq-generate"
    )


def _generate_modules():
    """fairseq-generate's module, as imported and (``python -m``) as ``__main__``."""
    import fairseq_cli.generate as installed

    found = [installed]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == "fairseq_cli.generate" and main is not installed:
        found.append(main)
    return found


def _wrap_main_for_one_run(modules, argv):
    """Change 2 above: each module's ``_main`` writes through a QEPrinter; the originals
    (and the command line ``argv``) are put back when the run ends."""
    originals = [(module, module._main) for module in modules]

    def wrapped(original):
        def _main(cfg, output_file):
            try:
                for path in utils.split_paths(cfg.common_eval.path):
                    checkpoint_files.check_loadable(path)
                printer = QEPrinter(output_file, cfg)
                succeeded = False
                try:
                    with printing(printer):
                        result = original(cfg, printer)
                    succeeded = True
                    return result
                finally:
                    printer.close(succeeded)
            finally:
                for module, main in originals:
                    module._main = main
                sys.argv[:] = argv

        return _main

    for module, original in originals:
        module._main = wrapped(original)


def command_line_qe(argv):
    """(--print-qe given, the --task given or None, the other QE flags given)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--print-qe", action="store_true")
    parser.add_argument("--task", default=None)
    known, rest = parser.parse_known_args(argv)
    others = [arg.split("=", 1)[0] for arg in rest if arg.split("=", 1)[0] in QE_FLAGS]
    return known.print_qe, known.task, others


def install():
    """In a fairseq-generate run with ``--print-qe``: changes 1 and 2 above (once)."""
    if not _running_generate() or getattr(install, "done", False):
        return
    print_qe, task, others = command_line_qe(sys.argv[1:])
    if not print_qe:
        if others:
            raise QEUserError(f"{others[0]} needs --print-qe")
        return
    if task is not None and task != TASK_NAME:
        raise QEUserError(
            f"--print-qe runs the {TASK_NAME} task (fairseq's translation with "
            f"QE): leave out --task {task}"
        )
    _wrap_main_for_one_run(_generate_modules(), list(sys.argv))
    if task is None:
        sys.argv[1:1] = ["--task", TASK_NAME]
    install.done = True
