"""Head training (real fairseq-train) refuses, in one line and before any work, what would
lose a checkpoint, learn garbage or crash in fairseq later."""

import hashlib
import importlib.util
import os
import shutil

import pytest
import torch
from conftest import binarize, fairseq, fairseq_here, head_args, one_error_line

pytestmark = pytest.mark.integration


def digest(path):
    return hashlib.sha1(open(path, "rb").read()).hexdigest()


def train_head(data_bin, base, save_dir, *extra, subprocess=False):
    """A refused head training: in this process, or as the real command (``subprocess``)."""
    arguments = head_args(data_bin, base, save_dir, "--max-update", "1", *extra)
    if subprocess:
        return fairseq("train", *arguments, check=False)
    return fairseq_here("train", *arguments)


def assert_nothing_trained(result):
    assert "begin training" not in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["checkpoint_best.pt", "checkpoint_last.pt", "base.pt"])
def test_save_dir_holding_the_base_is_refused(tmp_path, real_data_bin, base_checkpoint, name):
    folder = tmp_path / "base"
    folder.mkdir()
    base = folder / name
    shutil.copy(base_checkpoint, base)
    before = digest(base)
    result = train_head(real_data_bin, base, folder, subprocess=name == "checkpoint_best.pt")
    assert one_error_line(result).endswith(
        f"--save-dir {folder} holds {name}, a 'transformer' checkpoint, not a sigmoid head: "
        "head training would resume from it or write over it; give the head a --save-dir of "
        "its own"
    )
    assert_nothing_trained(result)
    assert os.listdir(folder) == [name] and digest(base) == before


def test_restore_file_that_is_not_a_head_is_refused(tmp_path, real_data_bin, base_checkpoint):
    save_dir = tmp_path / "head"
    result = train_head(real_data_bin, base_checkpoint, save_dir, "--restore-file", base_checkpoint)
    assert one_error_line(result).endswith(
        f"--restore-file {base_checkpoint} is a 'transformer' checkpoint, not a sigmoid head: "
        "head training resumes only from its own checkpoints (the base goes to "
        "--base-checkpoint)"
    )
    assert_nothing_trained(result)
    assert not list(save_dir.glob("*.pt"))


def test_head_of_another_base_is_refused(tmp_path, real_data_bin, base_checkpoint, trained_head):
    """Another base (one weight changed) whose recorded data folder is gone: its dictionaries
    can only be compared by size (a warning); a head of it is not resumed with the first."""
    state = torch.load(base_checkpoint, map_location="cpu", weights_only=False)
    state["model"]["decoder.layers.0.fc1.bias"] += 0.01
    state["cfg"]["task"]["data"] = str(tmp_path / "moved-data-bin")
    other_base = tmp_path / "other_base.pt"
    torch.save(state, other_base)
    save_dir = tmp_path / "head"
    first = train_head(real_data_bin, other_base, save_dir, subprocess=True)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "not verified" not in first.stdout  # fairseq logs to stdout; the warning is ours
    warnings = [line for line in first.stderr.splitlines() if "not verified" in line]
    assert len(warnings) == 1 and warnings[0].endswith(
        f"dictionary content not verified (only sizes): the training data folder "
        f"{tmp_path / 'moved-data-bin'} recorded in base checkpoint {other_base} is gone"
    )
    saved = {name: digest(save_dir / name) for name in os.listdir(save_dir)}
    result = train_head(real_data_bin, base_checkpoint, save_dir, subprocess=True)
    assert "holds checkpoint_best.pt, a sigmoid head of another base" in one_error_line(result)
    assert {name: digest(save_dir / name) for name in os.listdir(save_dir)} == saved


@pytest.fixture(scope="module")
def permuted_data(tmp_path_factory, real_data_bin):
    """(data-bin, {lang: [base's symbol 4, symbol 5]}): a few sentences binarized with the
    base's dictionaries, the first two ordinary symbols swapped (same sizes: only a content
    check sees it)."""
    root = tmp_path_factory.mktemp("permuted")
    text, permuted = root / "text", root / "dicts"
    text.mkdir()
    permuted.mkdir()
    source_text = os.path.join(os.path.dirname(real_data_bin), "text")
    swapped = {}
    for lang in ("en", "de"):
        lines = open(os.path.join(real_data_bin, f"dict.{lang}.txt"), encoding="utf-8").readlines()
        swapped[lang] = [line.split()[0] for line in lines[:2]]
        lines[0], lines[1] = lines[1], lines[0]
        (permuted / f"dict.{lang}.txt").write_text("".join(lines), encoding="utf-8")
        sample = open(os.path.join(source_text, f"valid.{lang}"), encoding="utf-8").readlines()
        for split in ("train", "valid"):
            (text / f"{split}.{lang}").write_text("".join(sample[:20]), encoding="utf-8")
    other_bin = root / "data-bin"
    binarize(
        text, other_bin, ("train", "valid"), "--srcdict", permuted / "dict.en.txt", "--tgtdict",
        permuted / "dict.de.txt",
    )  # fmt: skip
    return str(other_bin), swapped


def assert_refused_as_permuted(result, base_dict, swapped):
    line = one_error_line(result)
    base_symbol, data_symbol = swapped["en"]  # dictionary index 4 (after the 4 specials)
    assert (
        f"dictionary mismatch: the data's source dictionary differs from the base's "
        f"({base_dict}) at symbol 4: {data_symbol!r} where the base has {base_symbol!r}"
    ) in line
    assert line.endswith(
        "binarize the data with the base's dictionaries (fairseq-preprocess --srcdict/--tgtdict)"
    )
    assert_nothing_trained(result)


def test_data_with_the_base_symbols_in_another_order_is_refused(
    tmp_path, real_data_bin, base_checkpoint, permuted_data
):
    """Same sizes, two symbols swapped: only a content check sees it."""
    other_bin, swapped = permuted_data
    result = train_head(other_bin, base_checkpoint, tmp_path / "head")
    assert_refused_as_permuted(result, f"{real_data_bin}/dict.en.txt", swapped)


def test_base_trained_with_a_relative_data_path_is_checked_from_another_folder(
    tmp_path, real_data_bin, base_checkpoint, permuted_data
):
    """``fairseq-train data-bin`` run in folder A records ``data-bin`` and ``--save-dir
    checkpoints`` as given. A head trained from folder B, whose own ``data-bin`` holds the
    permuted dictionaries, must compare them with A's ``data-bin`` (not B's with itself)."""
    trained_in, elsewhere = tmp_path / "A", tmp_path / "B"
    (trained_in / "checkpoints").mkdir(parents=True)
    elsewhere.mkdir()
    os.symlink(real_data_bin, trained_in / "data-bin")
    os.symlink(permuted_data[0], elsewhere / "data-bin")
    state = torch.load(base_checkpoint, map_location="cpu", weights_only=False)
    state["cfg"]["task"]["data"] = "data-bin"  # as fairseq-train records a relative run
    state["cfg"]["checkpoint"]["save_dir"] = "checkpoints"
    torch.save(state, trained_in / "checkpoints" / "checkpoint_best.pt")
    base = os.path.join("..", "A", "checkpoints", "checkpoint_best.pt")
    arguments = head_args("data-bin", base, "head", "--max-update", "1")
    result = fairseq("train", *arguments, check=False, cwd=elsewhere)
    assert_refused_as_permuted(result, f"{trained_in}/data-bin/dict.en.txt", permuted_data[1])
    assert not (elsewhere / "head").exists() or not list((elsewhere / "head").glob("*.pt"))


XLA = importlib.util.find_spec("torch_xla") is not None


@pytest.mark.parametrize(
    "options, message",
    [
        (["--fp16"], "--fp16 casts the whole model, the frozen base too, to float16"),
        (["--memory-efficient-fp16"], "--memory-efficient-fp16 casts the whole model"),
        (
            ["--bf16"],
            "--bf16 needs a TPU (in fairseq --bf16 implies --tpu) and torch_xla is not installed",
        ),
        (
            ["--max-tokens", "LONGEST-1"],
            "--max-tokens LONGEST-1 is below the longest sentence of the valid set",
        ),
        (
            ["--max-tokens", "2", "--max-tokens-valid", "4000"],
            "--max-tokens 2 is below the shortest training sentence",
        ),
        (["--dominant-epsilon", "2"], "--dominant-epsilon 2.0 is out of range: it must be (0, 1)"),
        (["--num-negatives", "5000"], "--num-negatives 5000 does not fit"),
        (["--valid-subset", "valid,nope"], "--valid-subset nope: data folder "),
        (["--train-subset", "test1"], "--train-subset test1: data folder "),
    ],
)
def test_settings_fairseq_or_the_head_cannot_use(
    tmp_path, real_data_bin, base_checkpoint, options, message
):
    if options[0] == "--bf16" and XLA:
        pytest.skip("the precision flag works on this machine")
    below = str(longest_valid_sentence(real_data_bin) - 1)  # LONGEST-1: one token short
    options = [below if option == "LONGEST-1" else option for option in options]
    message = message.replace("LONGEST-1", below)
    save_dir = tmp_path / "head"
    result = train_head(real_data_bin, base_checkpoint, save_dir, *options)
    assert message in one_error_line(result)
    assert_nothing_trained(result)
    assert not list(save_dir.glob("*.pt"))


def longest_valid_sentence(data_bin):
    """Tokens of the valid set's longest sentence (with its end of sentence), either side."""
    from fairseq.data import data_utils

    longest = 0
    for lang in ("en", "de"):
        dataset = data_utils.load_indexed_dataset(f"{data_bin}/valid.en-de.{lang}", None)
        longest = max(longest, int(dataset.sizes.max()))  # read while its file is mapped
        del dataset
    return longest


def folder_without_dictionaries(tmp_path, real_data_bin):
    """The binarized splits of ``real_data_bin`` (links), without its dict.*.txt."""
    folder = tmp_path / "no-dicts"
    folder.mkdir()
    for name in os.listdir(real_data_bin):
        if name.endswith((".bin", ".idx")):
            os.symlink(os.path.join(real_data_bin, name), folder / name)
    return folder


@pytest.mark.parametrize("case", ["missing", "empty", "no dictionaries", "languages given"])
def test_data_folder_fairseq_cannot_set_up_is_refused(
    tmp_path, real_data_bin, base_checkpoint, case
):
    extra = ["--source-lang", "en", "--target-lang", "de"] if case == "languages given" else []
    data = {
        "missing": tmp_path / "nowhere",
        "empty": tmp_path / "empty",
        "no dictionaries": folder_without_dictionaries(tmp_path, real_data_bin),
        "languages given": tmp_path / "empty",
    }[case]
    if case in ("empty", "languages given"):
        data.mkdir()
    result = train_head(data, base_checkpoint, tmp_path / "head", *extra)
    expected = {
        "missing": f"data folder {data} does not exist: give the folder fairseq-preprocess "
        "wrote (--destdir)",
        "empty": f"data folder {data} holds no binarized split (SPLIT.SRC-TGT.SRC.idx) to "
        "tell the language pair from: give --source-lang and --target-lang, or the folder "
        "fairseq-preprocess wrote (--destdir)",
        "no dictionaries": f"data folder {data} has no dict.en.txt (the en dictionary "
        "fairseq-preprocess writes): give the folder of the binarized data",
        "languages given": f"data folder {data} has no dict.en.txt",
    }[case]
    assert expected in one_error_line(result)
    assert_nothing_trained(result)
    assert not (tmp_path / "head").exists()  # refused before fairseq makes --save-dir


@pytest.mark.parametrize(
    "case",
    ["a file", "a dangling link", "a link elsewhere", "a folder", "an interval folder"],
)
def test_save_dir_fairseq_cannot_write_into_is_refused(
    tmp_path, real_data_bin, base_checkpoint, case
):
    """Checked before any work: fairseq's own check of --save-dir ends in a traceback, and a
    checkpoint name that is a folder or a link fails (or writes elsewhere) at the first save."""
    save_dir, elsewhere = tmp_path / "head", tmp_path / "elsewhere"
    elsewhere.mkdir()
    if case == "a file":
        save_dir.write_text("notes\n")
    else:
        save_dir.mkdir()
    name = {"a folder": "checkpoint_best.pt", "an interval folder": "checkpoint3.pt"}.get(
        case, "checkpoint_last.pt"
    )
    if case == "a dangling link":
        os.symlink(tmp_path / "gone.pt", save_dir / name)
    elif case == "a link elsewhere":
        (elsewhere / name).write_text("not to be written over\n")
        os.symlink(elsewhere / name, save_dir / name)
    elif case != "a file":
        (save_dir / name).mkdir()
    before = sorted(os.listdir(save_dir)) if save_dir.is_dir() else None
    result = train_head(real_data_bin, base_checkpoint, save_dir)
    line = one_error_line(result)
    what = {
        "a dangling link": f"a link to {tmp_path / 'gone.pt'} (which is gone)",
        "a link elsewhere": f"a link to {elsewhere / name}",
        "a folder": "a folder",
        "an interval folder": "a folder",
    }
    if case == "a file":
        assert line.endswith(
            f"--save-dir {save_dir} is a file, not a folder: give a folder (new or a head's)"
        )
    else:
        assert line.endswith(
            f"--save-dir {save_dir} holds {name}, {what[case]}: head training writes its "
            f"checkpoints as files in --save-dir itself; move {name} away, or give a "
            "--save-dir of its own"
        )
        assert sorted(os.listdir(save_dir)) == before
    assert_nothing_trained(result)
    if case == "a link elsewhere":
        assert (elsewhere / name).read_text() == "not to be written over\n"
    assert len(os.listdir(elsewhere)) == (case == "a link elsewhere")


@pytest.mark.parametrize("case", ["missing", "a folder"])
def test_resume_file_that_is_not_there_is_refused(tmp_path, real_data_bin, base_checkpoint, case):
    """fairseq starts again at update 0, without a word, from a --restore-file it cannot
    find (a typo) or that is a folder."""
    path = tmp_path / "typo.pt"
    if case == "a folder":
        path.mkdir()
    save_dir = tmp_path / "head"
    result = train_head(real_data_bin, base_checkpoint, save_dir, "--restore-file", path)
    reason = "no such file" if case == "missing" else "it is a folder, not a checkpoint file"
    assert one_error_line(result).endswith(
        f"--restore-file {path} cannot be loaded ({reason}): head training resumes only from "
        "an intact checkpoint of its own"
    )
    assert_nothing_trained(result)
    assert not list(save_dir.glob("*.pt"))
