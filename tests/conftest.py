import os
import re
import shutil
import socket
import subprocess
import sys

import pytest
from filelock import FileLock


def share_the_cores():
    """Under pytest-xdist, each worker and the fairseq runs it starts use their share of the
    cores: every worker using all of them made the integration tests a third slower."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        share = str(max(1, len(os.sched_getaffinity(0)) // workers))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = share


share_the_cores()  # before torch is imported, which reads it once

from fairseq_sigmoid_qe import register_fairseq_components  # noqa: E402

register_fairseq_components()  # as --user-dir does: tests load checkpoints in-process too

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(REPO, "fairseq_sigmoid_qe")
L10N_DIR = os.environ.get(
    "L10N_EN_DE_DIR", os.path.join(REPO, "..", "shared", "data", "l10n-en-de")
)


def fairseq(tool, *arguments, check=True, cwd=None):
    """Run a fairseq CLI tool (as its console script would) and return the completed process."""
    command = [sys.executable, "-m", f"fairseq_cli.{tool}", *map(str, arguments)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def run_here(command, run, log=False):
    """``run()`` (a command's main) in this process, for refusals: no interpreter start and no
    imports (about 5 s a fairseq command). Returns what a subprocess would: ``returncode``
    (``SystemExit``'s code, or 1 for an uncaught error), ``stdout`` (the command's output;
    with ``log``, also the log at INFO, as fairseq's commands print it) and ``stderr`` (its
    messages; an uncaught error as the process would print it). Exit status, the excepthook
    itself and signals keep their subprocess tests."""
    import contextlib
    import io
    import logging
    import warnings

    from fairseq_sigmoid_qe.core import errors

    out, err = io.StringIO(), io.StringIO()
    handler, root = logging.StreamHandler(out), logging.getLogger()
    level, returncode = root.level, 0
    if log:
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # hydra's deprecation notes
                try:
                    returncode = run() or 0
                except SystemExit as exit:
                    returncode = exit.code if isinstance(exit.code, int) else 1
                except Exception as error:
                    returncode = 1
                    errors._excepthook(type(error), error, error.__traceback__)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return subprocess.CompletedProcess(command, returncode, out.getvalue(), err.getvalue())


def fairseq_here(tool, *arguments):
    """fairseq-train's or fairseq-generate's ``cli_main`` in this process (:func:`run_here`)."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.distributed import utils as distributed_utils
    from fairseq_cli import generate, train

    from fairseq_sigmoid_qe.models import durable_saves

    def run():
        if tool == "train":
            parser = options.get_training_parser()
        else:
            parser = options.get_generation_parser()
            parser.add_argument("--arch", "-a", default="wav2vec2")  # as generate's cli_main
        args = options.parse_args_and_arch(parser, input_args=list(map(str, arguments)))
        if tool == "train":
            distributed_utils.call_main(convert_namespace_to_omegaconf(args), train.main)
        else:
            generate.main(args)

    try:
        return run_here([f"fairseq-{tool}", *map(str, arguments)], run, log=True)
    finally:
        durable_saves.restore()  # as the process's exit would (atexit): fairseq's own writes


def raw_text_here(*arguments):
    """``fairseq-sigmoid-qe translate|score ...`` in this process (:func:`run_here`)."""
    from fairseq_sigmoid_qe.cli import raw_text

    arguments = list(map(str, arguments))
    return run_here(["fairseq-sigmoid-qe", *arguments], lambda: raw_text.main(arguments))


def free_port():
    """A TCP port on 127.0.0.1 that is free now (for --distributed-init-method tcp://)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def binarize(prefix, destdir, splits=("train", "valid"), *extra):
    """fairseq-preprocess of en-de text ``PREFIX/{split}.{en,de}`` into ``destdir``."""
    prefixes = [(f"--{split}pref", os.path.join(prefix, split)) for split in splits]
    return fairseq(
        "preprocess",
        *("--source-lang", "en", "--target-lang", "de"),
        *[argument for pair in prefixes for argument in pair],
        *("--destdir", destdir, "--workers", "1"),
        *extra,
    )


@pytest.fixture(autouse=True)
def no_subcommand_left_named():
    """A test that runs a subcommand in this process (``console.main([...])``) names it for
    the process's messages (``core.errors.set_command``): unnamed again for the next test."""
    yield
    from fairseq_sigmoid_qe.core import errors

    errors._COMMAND.clear()


ERROR_LINE = re.compile(r"fairseq-sigmoid-qe(?: [a-z-]+)?: error: ")


def one_error_line(result):
    """The one ``fairseq-sigmoid-qe[ COMMAND]: error:`` line of a failed command (no
    traceback)."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if ERROR_LINE.search(line)]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return lines[0]


TINY_BASE = [
    "--arch",
    "transformer",
    "--encoder-layers",
    "1",
    "--decoder-layers",
    "1",
    "--encoder-embed-dim",
    "32",
    "--decoder-embed-dim",
    "32",
    "--encoder-ffn-embed-dim",
    "64",
    "--decoder-ffn-embed-dim",
    "64",
    "--encoder-attention-heads",
    "2",
    "--decoder-attention-heads",
    "2",
    "--optimizer",
    "adam",
    "--lr",
    "0.003",
    "--cpu",
    "--no-epoch-checkpoints",
    "--log-format",
    "simple",
    "--num-workers",
    "0",
]


def head_args(data_bin, base_checkpoint, save_dir, *extra):
    return [
        data_bin,
        "--user-dir",
        PACKAGE_DIR,
        "--arch",
        "sigmoid_head_transformer",
        "--base-checkpoint",
        base_checkpoint,
        "--criterion",
        "nce_dominant",
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
        "--max-tokens",
        "1500",
        "--cpu",
        "--no-epoch-checkpoints",
        "--log-format",
        "simple",
        "--log-interval",
        "1",
        "--num-workers",
        "0",
        "--save-dir",
        save_dir,
        *extra,
    ]


TIER_ORDER = {"e2e": 0, "integration": 1, "unit": 2}


def pytest_collection_modifyitems(items):
    """The longest tiers first (e2e, integration, then unit): with ``-n auto`` the short
    tests fill the workers' gaps at the end instead of one long file running alone."""

    def rank(item):
        return min(
            (TIER_ORDER[m.name] for m in item.iter_markers() if m.name in TIER_ORDER), default=3
        )

    items.sort(key=rank)


def built_once(tmp_path_factory, name, build):
    """A session fixture's folder, built by ``build(folder)`` once for the whole run: under
    pytest-xdist (``-n``) the first worker to ask builds it while the others wait for it,
    instead of every worker training its own copy. Fixtures only read what it holds."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, shared by its workers
    folder, done = base / name, base / f"{name}.built"
    with FileLock(f"{folder}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


def have_l10n_corpus():
    return os.path.isfile(os.path.join(L10N_DIR, "train.en"))


@pytest.fixture(scope="session")
def l10n_dir():
    """The real l10n-en-de corpus, for the tests that are about it (they skip without it)."""
    if not have_l10n_corpus():
        pytest.skip(f"l10n-en-de corpus not found at {L10N_DIR}")
    return L10N_DIR


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    """The l10n-en-de corpus if this clone has it (``../shared``), else the project's
    synthetic language written in its shape (``{train,valid,test}.{en,de}``): the plugin's
    integration tests run in any clone."""
    if have_l10n_corpus():
        return L10N_DIR
    from fairseq_sigmoid_qe.testing.corpora import synthetic_l10n_corpus

    return str(built_once(tmp_path_factory, "synthetic-corpus", synthetic_l10n_corpus))


@pytest.fixture(scope="session")
def real_data_bin(tmp_path_factory, corpus_dir):
    """A small slice of en-de text (the l10n corpus, or its synthetic stand-in without it:
    :func:`corpus_dir`), sentencepiece-encoded and binarized; its text (raw and encoded, and
    ``spm.model``) in the sibling ``text`` folder."""
    from fairseq_sigmoid_qe.demo.l10n_data import prepare_l10n

    def build(root):
        text = root / "text"
        prepare_l10n(
            corpus_dir, str(text), train_pairs=3000, test_pairs=100, vocab_size=600, valid_pairs=100
        )
        binarize(text, root / "data-bin", ("train", "valid", "test"))

    return str(built_once(tmp_path_factory, "real", build) / "data-bin")


@pytest.fixture(scope="session")
def base_checkpoint(tmp_path_factory, real_data_bin):
    def build(save_dir):
        fairseq(
            "train",
            real_data_bin,
            *TINY_BASE,
            "--max-tokens",
            "2000",
            "--max-update",
            "60",
            "--save-dir",
            save_dir,
            "--seed",
            "3",
        )

    return str(built_once(tmp_path_factory, "base", build) / "checkpoint_last.pt")


@pytest.fixture(scope="session")
def trained_head(tmp_path_factory, real_data_bin, base_checkpoint):
    """A sigmoid head trained for 40 updates on the base; (save_dir, fairseq-train output)."""

    def build(save_dir):
        extra = ("--max-update", "40", "--seed", "5")
        result = fairseq("train", *head_args(real_data_bin, base_checkpoint, save_dir, *extra))
        (save_dir.parent / f"{save_dir.name}.log").write_text(result.stdout + result.stderr)

    save_dir = built_once(tmp_path_factory, "head", build)
    return save_dir, (save_dir.parent / f"{save_dir.name}.log").read_text()
