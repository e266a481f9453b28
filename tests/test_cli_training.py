"""The real fairseq CLI: base training, head training, freezing, resuming, bad inputs."""

import os
import re

import pytest
import torch
from conftest import binarize, fairseq, fairseq_here, free_port, head_args, one_error_line

import fairseq_sigmoid_qe  # noqa: F401  (safe globals for torch.load)

pytestmark = pytest.mark.integration


def load_state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def logged_losses(stdout):
    return [float(x) for x in re.findall(r"train_inner \|.*?loss=([0-9.]+)", stdout)]


def test_head_loss_falls(trained_head):
    _, output = trained_head
    losses = logged_losses(output)
    assert len(losses) >= 30, output[-2000:]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, losses


def test_logs_parameter_counts_and_statistics(trained_head):
    _, output = trained_head
    assert re.search(
        r"sigmoid head \(full\): base \d+ parameters \(frozen\), head \d+ trainable", output
    )
    for name in ("sigmoid_pos", "sigmoid_neg", "dominant_size"):
        assert f"| {name} " in output, name


def test_base_bit_identical_and_only_head_changed(trained_head, base_checkpoint):
    save_dir, _ = trained_head
    base = load_state(base_checkpoint)["model"]
    head = load_state(save_dir / "checkpoint_last.pt")["model"]
    assert set(head) == set(base) | {"qe_head.weight"}
    for key, tensor in base.items():
        assert torch.equal(head[key], tensor), key
    initial = base["decoder.output_projection.weight"]
    assert head["qe_head.weight"].shape == initial.shape
    assert not torch.equal(head["qe_head.weight"], initial)


def test_head_checkpoint_is_self_contained(trained_head, base_checkpoint, real_data_bin, tmp_path):
    """A head checkpoint loads after its base file has gone: here a copy of it names a base
    that is not there (moving the session's base away would pull it from under the tests
    that other workers run at the same time)."""
    from fairseq_sigmoid_qe.api import load_head_model

    save_dir, _ = trained_head
    state = torch.load(save_dir / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    model_cfg = state["cfg"]["model"]
    assert model_cfg.base_checkpoint == base_checkpoint
    model_cfg.base_checkpoint = str(tmp_path / "moved-away.pt")
    torch.save(state, tmp_path / "head.pt")
    model, task = load_head_model(str(tmp_path / "head.pt"), real_data_bin)
    assert not (tmp_path / "moved-away.pt").exists()
    assert all(not p.requires_grad for p in model.decoder.parameters())
    assert len(task.target_dictionary) == model.qe_head.weight.shape[0]


def test_resume_continues_the_same_run(tmp_path, real_data_bin, base_checkpoint, trained_head):
    """The session's head (40 updates in one run) again, in two runs of 20 updates."""
    straight, resumed = trained_head[0], tmp_path / "resumed"
    fairseq(
        "train",
        *head_args(real_data_bin, base_checkpoint, resumed, "--max-update", "20", "--seed", "5"),
    )
    second = fairseq(
        "train",
        *head_args(real_data_bin, base_checkpoint, resumed, "--max-update", "40", "--seed", "5"),
    )
    assert "Loaded checkpoint" in second.stdout + second.stderr
    a = load_state(straight / "checkpoint_last.pt")
    b = load_state(resumed / "checkpoint_last.pt")
    assert (
        a["optimizer_history"][-1]["num_updates"] == b["optimizer_history"][-1]["num_updates"] == 40
    )
    torch.testing.assert_close(
        b["model"]["qe_head.weight"], a["model"]["qe_head.weight"], rtol=0, atol=1e-6
    )


def test_missing_base_checkpoint(tmp_path, real_data_bin):
    result = fairseq_here(
        "train",
        *head_args(real_data_bin, str(tmp_path / "nope.pt"), tmp_path / "out", "--max-update", "1"),
    )
    assert "base checkpoint not found" in one_error_line(result)


def test_base_trained_with_another_dictionary(tmp_path, real_data_bin, base_checkpoint):
    text = tmp_path / "text"
    text.mkdir()
    for split in ("train", "valid"):
        for lang, words in (("en", "a b c d"), ("de", "x y z")):
            (text / f"{split}.{lang}").write_text(f"{words}\n{words} {words}\n")
    other_bin = tmp_path / "other-bin"
    binarize(text, other_bin)
    result = fairseq_here(
        "train",
        *head_args(other_bin, base_checkpoint, tmp_path / "out", "--max-update", "1"),
    )
    line = one_error_line(result)
    assert "dictionary mismatch" in line and "source vocabulary" in line


def test_base_that_is_not_an_encoder_decoder(tmp_path, real_data_bin, base_checkpoint):
    state = load_state(base_checkpoint)
    state["cfg"]["model"].arch = "transformer_lm"
    state["cfg"]["model"]._name = "transformer_lm"
    fake = tmp_path / "lm.pt"
    torch.save(state, fake)
    result = fairseq_here(
        "train", *head_args(real_data_bin, fake, tmp_path / "out", "--max-update", "1")
    )
    assert "not an encoder-decoder Transformer" in one_error_line(result)


def test_unknown_sampler(tmp_path, real_data_bin, base_checkpoint):
    result = fairseq_here(
        "train",
        *head_args(
            real_data_bin,
            base_checkpoint,
            tmp_path / "out",
            "--max-update",
            "1",
            "--negative-sampler",
            "bogus",
        ),
    )
    assert "--negative-sampler" in one_error_line(result)
    assert not os.path.exists(tmp_path / "out" / "checkpoint_last.pt")


def test_data_parallel_two_workers(tmp_path, real_data_bin, base_checkpoint):
    """fairseq's own data-parallel training (gloo, CPU): two workers, one aggregated log."""
    import subprocess
    import sys

    save_dir = tmp_path / "ddp"
    init = f"tcp://127.0.0.1:{free_port()}"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fairseq_cli.train",
                *map(
                    str,
                    head_args(
                        real_data_bin,
                        base_checkpoint,
                        save_dir,
                        "--max-update",
                        "6",
                        "--seed",
                        "9",
                        "--distributed-world-size",
                        "2",
                        "--distributed-rank",
                        str(rank),
                        "--distributed-init-method",
                        init,
                        "--distributed-no-spawn",
                        "--distributed-backend",
                        "gloo",
                        "--ddp-backend",
                        "legacy_ddp",
                    ),
                ),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    # Every update all-reduces gradients over both workers, so rank 0 finishing 6 updates
    # means rank 1 ran them too. Rank 1 may abort (SIGABRT) while torch tears down the gloo
    # group at interpreter exit, after training: fairseq never destroys the group.
    assert workers[0].returncode == 0, outputs[0][-3000:]
    assert workers[1].returncode in (0, -6), outputs[1][-3000:]
    assert "distributed init (rank 1)" in outputs[0] + outputs[1]
    assert len(logged_losses(outputs[0])) == 6
    base = load_state(base_checkpoint)["model"]
    head = load_state(save_dir / "checkpoint_last.pt")["model"]
    assert all(torch.equal(head[key], tensor) for key, tensor in base.items())
    assert not torch.equal(head["qe_head.weight"], base["decoder.output_projection.weight"])


def test_resume_in_a_later_epoch_is_exact_when_batches_are_fixed(
    tmp_path, real_data_bin, base_checkpoint
):
    """A run resumed in epoch 2 equals an uninterrupted one when fairseq's batches cannot
    differ (one sentence each): the negatives depend only on fairseq's per-update seed, the
    rank and the batch. (fairseq breaks length ties with the seed of the epoch a run starts
    in, so with several sentences per batch a resumed run may group equal-length sentences
    otherwise and drift apart: docs/training.md, "Resuming".)"""
    text = tmp_path / "text"
    text.mkdir()
    source_text = os.path.join(os.path.dirname(real_data_bin), "text")
    for lang in ("en", "de"):
        lines = open(os.path.join(source_text, f"train.{lang}"), encoding="utf-8").readlines()
        (text / f"train.{lang}").write_text("".join(lines[:12]), encoding="utf-8")
        (text / f"valid.{lang}").write_text("".join(lines[12:16]), encoding="utf-8")
    small_bin = tmp_path / "data-bin"
    fairseq(
        "preprocess",
        "--source-lang",
        "en",
        "--target-lang",
        "de",
        "--trainpref",
        text / "train",
        "--validpref",
        text / "valid",
        "--srcdict",
        os.path.join(real_data_bin, "dict.en.txt"),
        "--tgtdict",
        os.path.join(real_data_bin, "dict.de.txt"),
        "--destdir",
        small_bin,
        "--workers",
        "1",
    )
    options = ["--batch-size", "1", "--seed", "4", "--max-update"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fairseq("train", *head_args(small_bin, base_checkpoint, straight, *options, "18"))
    fairseq("train", *head_args(small_bin, base_checkpoint, resumed, *options, "15"))
    second = fairseq("train", *head_args(small_bin, base_checkpoint, resumed, *options, "18"))
    assert "Loaded checkpoint" in second.stdout and "(epoch 2 @ 15 updates)" in second.stdout
    a = load_state(straight / "checkpoint_last.pt")["model"]["qe_head.weight"]
    b = load_state(resumed / "checkpoint_last.pt")["model"]["qe_head.weight"]
    torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
