"""``fairseq-generate|fairseq-interactive --user-dir fairseq_sigmoid_qe --print-qe``: the run
reaches the ``translation_qe`` task, and the task's QE lines reach the command's output.

The QE itself uses fairseq's extension points only: the registered task's options,
generators (``seq_gen_cls``, a ``SequenceScorer`` subclass), inference step and
``score_qe`` hook. fairseq-generate and fairseq-interactive offer no extension point for the
output, so when the plugin is imported by one of their runs whose command line has
``--print-qe`` (and only then), :func:`install` does these, the only changes it makes outside
the plugin:

1. ``--task translation_qe`` is added to ``sys.argv`` when no ``--task`` is given:
   their default task is ``translation``, and the user's command names no task.
2. fairseq-generate: ``fairseq_cli.generate._main`` is wrapped for the run so that its output
   stream is a :class:`~..decoding.generate_output.QEPrinter`: fairseq-generate prints each
   hypothesis itself and has no per-hypothesis output hook, and QE lines follow their
   hypothesis' ``P-`` line.
3. fairseq-interactive: ``fairseq_cli.interactive.main`` is wrapped for the run so that
   ``sys.stdout`` (where it prints) is a QEPrinter that flushes after each hypothesis' QE
   lines (a line in, its QE out), and ``make_batches`` so that the printer knows the input
   line of each row (fairseq-interactive's samples carry no ids).
Before any work, both wrappers also refuse in one line a ``--path`` checkpoint that cannot be
loaded (fairseq's loader would end in a traceback). The original ``sys.argv``, ``_main``,
``main``, ``make_batches`` and ``sys.stdout`` are put back when the run ends.
"""

import argparse
import importlib
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


def _running(module, script):
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return (spec is not None and spec.name == module) or (os.path.basename(sys.argv[0]) == script)


def _running_generate():
    return _running("fairseq_cli.generate", "fairseq-generate")


def _running_interactive():
    return _running("fairseq_cli.interactive", "fairseq-interactive")


def _modules(name):
    """A fairseq command's module, as imported and (``python -m``) as ``__main__``."""
    installed = importlib.import_module(name)
    found = [installed]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == name and main is not installed:
        found.append(main)
    return found


def _generate_modules():
    return _modules("fairseq_cli.generate")


def _interactive_modules():
    return _modules("fairseq_cli.interactive")


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


def _wrap_interactive_for_one_run(modules, argv):
    """Change 3 above: each module's ``main`` prints through a QEPrinter that knows each
    row's input line; the originals (and the command line ``argv``) are put back when the run
    ends."""
    originals = [(module, module.main, module.make_batches) for module in modules]

    def restore():
        for module, main, make_batches in originals:
            module.main, module.make_batches = main, make_batches
        sys.argv[:] = argv

    def wrapped(original, module, make_batches):
        def main(cfg):
            stdout = sys.stdout
            try:
                if isinstance(cfg, argparse.Namespace):
                    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

                    cfg = convert_namespace_to_omegaconf(cfg)
                for path in utils.split_paths(cfg.common_eval.path):
                    checkpoint_files.check_loadable(path)
                printer = QEPrinter(stdout, cfg, flush_after_qe=True)
                module.make_batches = numbered_batches(make_batches, printer)
                succeeded = False
                sys.stdout = printer
                try:
                    with printing(printer):
                        result = original(cfg)
                    succeeded = True
                    return result
                finally:
                    sys.stdout = stdout
                    printer.close(succeeded)
            finally:
                restore()

        return main

    for module, original, make_batches in originals:
        module.main = wrapped(original, module, make_batches)


def numbered_batches(make_batches, printer):
    """fairseq-interactive's ``make_batches``, telling ``printer`` the input line (counted
    over the whole run) of each row of the batch it yields, before it is scored."""

    def batches(lines, *args, **kwargs):
        for batch in make_batches(lines, *args, **kwargs):
            printer.batch_ids = [printer.lines_before + i for i in batch.ids.tolist()]
            yield batch
        printer.lines_before += len(lines)

    return batches


def command_line_qe(argv):
    """(--print-qe given, the --task given or None, the other QE flags given)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--print-qe", action="store_true")
    parser.add_argument("--task", default=None)
    known, rest = parser.parse_known_args(argv)
    others = [arg.split("=", 1)[0] for arg in rest if arg.split("=", 1)[0] in QE_FLAGS]
    return known.print_qe, known.task, others


def install():
    """In a fairseq-generate (fairseq-interactive) run with ``--print-qe``: changes 1 and 2
    (1 and 3) above (once)."""
    if getattr(install, "done", False):
        return
    if _running_generate():
        modules, wrap = _generate_modules, _wrap_main_for_one_run
    elif _running_interactive():
        modules, wrap = _interactive_modules, _wrap_interactive_for_one_run
    else:
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
    wrap(modules(), list(sys.argv))
    if task is None:
        sys.argv[1:1] = ["--task", TASK_NAME]
    install.done = True
