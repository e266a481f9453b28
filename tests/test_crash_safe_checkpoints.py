"""A head training killed (kill -9) at any moment of a checkpoint save loses no checkpoint:
every ``.pt`` file in --save-dir loads or is absent, and the next run resumes. A checkpoint
that cannot be loaded anyway, or a deleted checkpoint_last.pt, is refused naming the intact
checkpoint to resume from, never trained over from update 0."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import fairseq, fairseq_here, head_args, one_error_line

from fairseq_sigmoid_qe.models import durable_saves

pytestmark = pytest.mark.integration

PAUSER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pause_at_save.py")
SAVE_EVERY_UPDATE = ("--save-interval-updates", "1", "--seed", "5")


def checkpoints(save_dir):
    return sorted(name for name in os.listdir(save_dir) if name.endswith(".pt"))


def updates_of(path):
    """The update count a checkpoint was saved at; fails on a damaged one."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    assert "model" in state and state["model"], path
    return state["optimizer_history"][-1]["num_updates"]


def kill_at(save_dir, pause_at, max_update, *args):
    """Run head training until it pauses at ``pause_at`` inside a save, then kill -9 it."""
    marker = save_dir.parent / "paused"
    if marker.exists():
        marker.unlink()
    env = dict(os.environ, PAUSE_AT=pause_at, PAUSE_DIR=str(save_dir), PAUSE_MARKER=str(marker))
    command = [sys.executable, PAUSER, *args, "--max-update", str(max_update)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 3600  # a busy machine
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"{pause_at}: training ended unpaused:\n{process.stderr.read()}")
        if time.monotonic() > deadline:  # a hang guard, not a speed bound
            pytest.fail(f"{pause_at}: never paused")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()


def test_kill_at_every_step_of_a_save_loses_no_checkpoint(tmp_path, real_data_bin, base_checkpoint):
    save_dir = tmp_path / "head"
    args = head_args(real_data_bin, base_checkpoint, save_dir, *SAVE_EVERY_UPDATE)
    fairseq("train", *args, "--max-update", "2")
    assert checkpoints(save_dir) == [
        "checkpoint_1_1.pt",
        "checkpoint_1_2.pt",
        "checkpoint_best.pt",
        "checkpoint_last.pt",
    ]
    # each kill stops the next save (of update 3) at another moment: in the first file's
    # write, before it takes its name, in the copies to checkpoint_best.pt and _last.pt
    # (fairseq's copy empties the old file first), before a copy takes its name
    for pause_at in ("torch.save:1", "move:1", "copy:1", "copy:2", "move:2", "move:3"):
        before = {name: updates_of(save_dir / name) for name in checkpoints(save_dir)}
        kill_at(save_dir, pause_at, 3, *args)
        after = {name: updates_of(save_dir / name) for name in checkpoints(save_dir)}
        assert set(before) <= set(after), pause_at
        for name, updates in after.items():  # the old checkpoint or the whole new one
            assert updates == before.get(name, 3) or updates == 3, (pause_at, name, updates)
    assert durable_saves.leftover_temporaries(str(save_dir))  # a killed copy's leftovers
    resumed = fairseq("train", *args, "--max-update", "4")
    assert "loaded checkpoint" in resumed.stdout.lower()
    assert updates_of(save_dir / "checkpoint_last.pt") == 4
    assert not durable_saves.leftover_temporaries(str(save_dir))


@pytest.fixture
def head_dir(tmp_path, real_data_bin, base_checkpoint):
    save_dir = tmp_path / "head"
    fairseq("train", *head_args(real_data_bin, base_checkpoint, save_dir, "--max-update", "2"))
    return save_dir


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_damaged_checkpoint_last_is_refused_naming_the_intact_one(
    head_dir, real_data_bin, base_checkpoint, damage
):
    last, best = head_dir / "checkpoint_last.pt", head_dir / "checkpoint_best.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"")
    best_bytes = best.read_bytes()
    args = head_args(real_data_bin, base_checkpoint, head_dir, "--max-update", "3")
    result = (
        fairseq("train", *args, check=False) if damage == "empty" else fairseq_here("train", *args)
    )
    problem = "the file is empty"
    if damage == "truncated":
        problem = "the file is cut off or damaged, its archive incomplete at "
    line = one_error_line(result)
    assert f"--save-dir {head_dir} holds checkpoint_last.pt, which cannot be loaded ({problem}" in (
        line
    )
    assert line.endswith(
        "head training would resume from it or write over it; move it away, then resume "
        f"from the newest intact head checkpoint with --restore-file {best}"
    )
    assert best.read_bytes() == best_bytes and "begin training" not in result.stdout
    # deleting it instead would start again at update 0 over checkpoint_best.pt: refused
    last.unlink()
    line = one_error_line(fairseq_here("train", *args))
    assert line.endswith(
        f"--save-dir {head_dir} holds head checkpoints but no checkpoint_last.pt: training "
        "would start again at update 0 and write over them; resume with --restore-file "
        f"{best} (the newest), or give a new --save-dir"
    )
    assert best.read_bytes() == best_bytes
    if damage == "empty":  # the advice works: training continues from update 2
        fairseq("train", *args, "--restore-file", best)
        assert updates_of(last) == 3


def test_durable_copy_is_restored_exactly(tmp_path):
    from fairseq.file_io import PathManager

    copy, rename = PathManager.__dict__["copy"], PathManager.__dict__["rename"]
    durable_saves.install(str(tmp_path))
    try:
        (tmp_path / "a.pt").write_bytes(b"new")
        (tmp_path / "b.pt").write_bytes(b"old")
        assert PathManager.copy(str(tmp_path / "a.pt"), str(tmp_path / "b.pt")) is False
        assert PathManager.copy(str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), overwrite=True)
        assert (tmp_path / "b.pt").read_bytes() == b"new"
        other = tmp_path / "other"
        other.mkdir()
        PathManager.copy(str(tmp_path / "a.pt"), str(other / "c.pt"))  # fairseq's own copy
        assert (other / "c.pt").read_bytes() == b"new"
    finally:
        durable_saves.restore()
    assert PathManager.__dict__["copy"] is copy and PathManager.__dict__["rename"] is rename
