"""Head training on fairseq's distributed engine: 2 gloo processes on CPU (legacy DDP, dense
Adam and sparse_adam), resumed, against one process with twice the --update-freq on the same
batches; the frozen base bit-identical on every rank, checkpoints from rank 0 only, and the
refusals every rank says before any writes."""

import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import REPO, free_port, head_args, one_error_line

pytestmark = pytest.mark.integration

WORKER = os.path.join(REPO, "tests", "distributed_worker.py")


def launch(data_bin, base, save_dir, state, world, *extra):
    """fairseq-train of the head on ``world`` processes (1: a plain run); Popen objects."""
    command = [sys.executable, WORKER, str(state), *head_args(data_bin, base, save_dir, *extra)]
    command += ["--seed", "5", "--disable-validation"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if world == 1:
        return [
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        ]
    ranks = [
        "--distributed-world-size",
        str(world),
        "--distributed-backend",
        "gloo",
        "--distributed-init-method",
        f"tcp://127.0.0.1:{free_port()}",
        "--distributed-no-spawn",
    ]
    return [
        subprocess.Popen(
            [*command, *ranks, "--distributed-rank", str(rank)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(world)
    ]


def finish(processes):
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=1500)
        results.append(
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        )
    return results


def succeeded(results):
    """``results`` of ranks that trained; a rank other than 0 may abort (SIGABRT) while torch
    tears down the gloo group at interpreter exit, after training (fairseq never destroys the
    group): its recorded state says what it trained."""
    for rank, result in enumerate(results):
        assert result.returncode in ((0,) if rank == 0 else (0, -6)), result.stderr[-3000:]
    return results


DENSE = ["--optimizer", "adam"]
SPARSE = ["--optimizer", "sparse_adam"]
DDP = ["--ddp-backend", "legacy_ddp"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, real_data_bin, base_checkpoint):
    tmp = tmp_path_factory.mktemp("distributed")
    one = ["--update-freq", "2", "--max-update", "3"]
    wave = {
        "single": launch(
            real_data_bin, base_checkpoint, tmp / "single", tmp / "single", 1, *DENSE, *one
        ),
        "first": launch(
            real_data_bin,
            base_checkpoint,
            tmp / "two",
            tmp / "first",
            2,
            *DENSE,
            *DDP,
            "--max-update",
            "2",
        ),
        "sparse_single": launch(
            real_data_bin, base_checkpoint, tmp / "ss", tmp / "ss", 1, *SPARSE, *one
        ),
        "sparse_first": launch(
            real_data_bin,
            base_checkpoint,
            tmp / "st",
            tmp / "sparse_first",
            2,
            *SPARSE,
            *DDP,
            "--max-update",
            "2",
        ),
    }
    done = {name: succeeded(finish(processes)) for name, processes in wave.items()}
    foreign = tmp / "foreign"
    foreign.mkdir()
    shutil.copy(base_checkpoint, foreign / "checkpoint_last.pt")
    wave = {
        "resumed": launch(
            real_data_bin,
            base_checkpoint,
            tmp / "two",
            tmp / "resumed",
            2,
            *DENSE,
            *DDP,
            "--max-update",
            "3",
        ),
        "sparse_resumed": launch(
            real_data_bin,
            base_checkpoint,
            tmp / "st",
            tmp / "sparse_resumed",
            2,
            *SPARSE,
            *DDP,
            "--max-update",
            "3",
        ),
        "c10d": launch(
            real_data_bin,
            base_checkpoint,
            tmp / "c10d",
            tmp / "c10d",
            2,
            *DENSE,
            "--ddp-backend",
            "c10d",
            "--max-update",
            "1",
        ),
        "foreign": launch(
            real_data_bin,
            base_checkpoint,
            foreign,
            tmp / "foreign",
            2,
            *DENSE,
            *DDP,
            "--max-update",
            "1",
        ),
    }
    for name in ("resumed", "sparse_resumed"):
        done[name] = succeeded(finish(wave.pop(name)))
    done.update({name: finish(processes) for name, processes in wave.items()})
    return tmp, done


def states(tmp, name, world):
    return [torch.load(tmp / f"{name}.rank{rank}.pt") for rank in range(world)]


LR = 0.003  # head_args' --lr
ATOL = 0.02 * LR
"""How far a head weight of 2 ranks may lie from the single process' after 3 updates: 2% of
one Adam step. The two sum the same gradients in another order (an all-reduce of two halves
against one accumulation), and Adam's step m / sqrt(v) magnifies that rounding where a
weight's gradients nearly cancel over the updates (seen: 1.4e-5 on one weight of 11,008 with
sparse_adam, bit for bit with Adam); other negatives or unaveraged gradients would move
whole rows by about one step."""


def assert_same_training(single, ranks, base_checkpoint, seen_before=()):
    """``ranks`` (the two ranks' last states) trained what ``single`` did on the same batches
    (``seen_before``: each rank's batches before a resume)."""
    base = torch.load(base_checkpoint, weights_only=False)["model"]
    assert single["updates"] == ranks[0]["updates"] == ranks[1]["updates"] == 3
    # the same batches: each update's sample ids of both ranks are the single process' ones
    seen = [list(before) + rank["seen"] for before, rank in zip(seen_before or ([], []), ranks)]
    assert len(seen[0]) == len(seen[1]) == len(single["seen"]) == 3
    for zero, one, alone in zip(*seen, single["seen"]):
        assert zero and one and sorted(zero + one) == alone
    for rank in ranks:
        for name, value in base.items():
            assert torch.equal(rank["model"][name], value), name  # the base, bit for bit
        assert torch.equal(rank["model"]["qe_head.weight"], ranks[0]["model"]["qe_head.weight"])
    start = base["decoder.output_projection.weight"]
    trained, alone = ranks[0]["model"]["qe_head.weight"], single["model"]["qe_head.weight"]
    moved = trained.ne(start).any(dim=1)
    assert moved.any()
    assert torch.equal(moved, alone.ne(start).any(dim=1))  # the same rows moved
    torch.testing.assert_close(trained, alone, rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    "single, first, resumed",
    [("single", "first", "resumed"), ("ss", "sparse_first", "sparse_resumed")],
    ids=["adam", "sparse_adam"],
)
def test_two_ranks_resumed_equal_one_process_with_twice_the_update_freq(
    runs, base_checkpoint, single, first, resumed
):
    tmp, done = runs
    log = done[resumed][0].stdout + done[resumed][0].stderr
    assert "Loaded checkpoint" in log and "(epoch 1 @ 2 updates)" in log
    before = [rank["seen"] for rank in states(tmp, first, 2)]
    (alone,) = states(tmp, single, 1)
    assert_same_training(alone, states(tmp, resumed, 2), base_checkpoint, before)


def test_only_rank_zero_writes_checkpoints(runs):
    tmp, done = runs
    for name in ("first", "resumed", "sparse_first", "sparse_resumed"):
        zero, one = (result.stdout + result.stderr for result in done[name])
        assert "Saving checkpoint" in zero and "Saving checkpoint" not in one
    for save_dir in ("two", "st"):
        assert sorted(os.listdir(tmp / save_dir)) == ["checkpoint_last.pt"]


def test_refusals_come_from_every_rank_before_anything_is_written(runs, base_checkpoint):
    tmp, done = runs
    for result in done["c10d"]:
        assert one_error_line(result).endswith("use --ddp-backend legacy_ddp")
    assert not (tmp / "c10d").exists() or not os.listdir(tmp / "c10d")
    for result in done["foreign"]:
        assert "give the head a --save-dir of its own" in one_error_line(result)
    with (
        open(base_checkpoint, "rb") as original,
        open(tmp / "foreign" / "checkpoint_last.pt", "rb") as kept,
    ):
        assert original.read() == kept.read()
    assert os.listdir(tmp / "foreign") == ["checkpoint_last.pt"]
