"""QE sharded over workers: ``fairseq-generate --print-qe --num-shards K --shard-id I`` per
worker, and ``fairseq-sigmoid-qe merge`` putting the K QE files into the input's order."""

import json
import subprocess
import sys

import pytest
from conftest import PACKAGE_DIR, fairseq, one_error_line

pytestmark = pytest.mark.integration

# many small batches, so that each of the two shards gets several
OPTIONS = ["--beam", "4", "--nbest", "2", "--max-tokens", "300", "--batch-size", "8"]
OPTIONS += ["--post-process", "sentencepiece", "--max-len-b", "40", "--cpu"]


def generate(data_bin, checkpoint, *extra, check=True):
    return fairseq(
        "generate",
        data_bin,
        "--user-dir",
        PACKAGE_DIR,
        "--path",
        checkpoint,
        *OPTIONS,
        "--print-qe",
        *extra,
        check=check,
    )


def merge(*arguments):
    """``fairseq-sigmoid-qe merge ...`` as the console script runs it."""
    script = (
        "import sys; from fairseq_sigmoid_qe.cli.console import raw_text; "
        "sys.argv[0] = 'fairseq-sigmoid-qe'; raw_text()"
    )
    return subprocess.run(
        [sys.executable, "-c", script, "merge", *map(str, arguments)],
        capture_output=True,
        text=True,
    )


def hypothesis_lines(stdout):
    return sorted(line for line in stdout.splitlines() if line.startswith(("H-", "D-", "P-")))


@pytest.fixture(scope="module")
def sharded(real_data_bin, trained_head, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    head = str(trained_head[0] / "checkpoint_last.pt")
    whole = generate(real_data_bin, head, "--qe-output", tmp / "whole.jsonl")
    shards = [
        generate(
            real_data_bin,
            head,
            "--num-shards",
            "2",
            "--shard-id",
            str(shard),
            "--qe-output",
            tmp / f"qe.{shard}.jsonl",
        )
        for shard in (0, 1)
    ]
    return tmp, head, whole, shards


def test_shards_split_the_test_set_and_keep_its_translations(sharded):
    tmp, _, whole, shards = sharded
    ids = [{json.loads(line)["id"] for line in open(tmp / f"qe.{s}.jsonl")} for s in (0, 1)]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    assert ids[0] | ids[1] == {json.loads(line)["id"] for line in open(tmp / "whole.jsonl")}
    merged_output = hypothesis_lines(shards[0].stdout) + hypothesis_lines(shards[1].stdout)
    assert sorted(merged_output) == hypothesis_lines(whole.stdout)


def test_merged_shards_equal_the_unsharded_records(sharded):
    tmp, _, _, _ = sharded
    result = merge("--qe", tmp / "qe.1.jsonl", tmp / "qe.0.jsonl", "--output", tmp / "m.jsonl")
    assert result.returncode == 0, result.stderr
    whole = (tmp / "whole.jsonl").read_text(encoding="utf-8").splitlines()
    merged = (tmp / "m.jsonl").read_text(encoding="utf-8").splitlines()

    def key(line):
        record = json.loads(line)
        return record["id"], record["rank"]

    assert merged == sorted(whole, key=key)  # the same records, byte for byte, in input order
    assert [key(line) for line in merged] == sorted(key(line) for line in merged)
    assert merged != whole  # the unsharded file is in batch order (by length), not input order
    assert not (tmp / "m.jsonl.part").exists()


def test_merge_refuses_a_shard_given_twice_and_an_existing_output(sharded):
    tmp, _, _, _ = sharded
    twice = merge("--qe", tmp / "qe.0.jsonl", tmp / "qe.0.jsonl", "--output", tmp / "t.jsonl")
    assert "give each shard once" in one_error_line(twice)
    assert not (tmp / "t.jsonl").exists() and not (tmp / "t.jsonl.part").exists()
    (tmp / "kept.jsonl").write_text("kept\n")
    existing = merge("--qe", tmp / "qe.0.jsonl", "--output", tmp / "kept.jsonl")
    assert "nothing is overwritten" in one_error_line(existing)
    assert (tmp / "kept.jsonl").read_text() == "kept\n"


def test_merge_refuses_records_without_ids(tmp_path):
    (tmp_path / "raw.jsonl").write_text(json.dumps({"sentence_scores": {"sigmoid": 0.5}}) + "\n")
    result = merge("--qe", tmp_path / "raw.jsonl", "--output", tmp_path / "m.jsonl")
    assert "no integer id and rank" in one_error_line(result)


@pytest.mark.parametrize(
    "options,message",
    [
        (["--num-shards", "2", "--shard-id", "2"], "--shard-id 2 is out of range"),
        (["--num-shards", "0"], "--num-shards 0 is out of range"),
    ],
)
def test_bad_shards_are_refused(sharded, real_data_bin, options, message, tmp_path):
    _, head, _, _ = sharded
    result = generate(
        real_data_bin, head, *options, "--qe-output", tmp_path / "q.jsonl", check=False
    )
    assert message in one_error_line(result)
    assert not (tmp_path / "q.jsonl").exists()
