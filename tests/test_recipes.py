"""The Transformer Base reproduction recipe, end to end in its --smoke mode (real CLI): the
data through the fetcher from local stand-in downloads, both decodings, Eval Other, the gold
through a stand-in comet-score, and the paper's table."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.e2e

PAPER_TABLE2 = (".155", ".235", ".383", ".536", ".199", ".367", ".586", ".722")


def read_records(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def table_row(table, label):
    line = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_transformer_base_recipe_smoke(l10n_dir, tmp_path):
    work = tmp_path / "work"
    log = tmp_path / "comet-calls.jsonl"
    env = {
        **os.environ,
        "WORK": str(work),
        "PYTHON": sys.executable,
        "L10N_EN_DE_DIR": l10n_dir,
        "OMP_NUM_THREADS": "1",
        "COMET_STANDIN_LOG": str(log),
    }
    env.pop("COMET_SCORE", None)
    result = subprocess.run(
        ["bash", os.path.join(REPO, "examples", "transformer_base_paracrawl", "run.sh"), "--smoke"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

    # Data: fetched from the stand-in downloads, deduplicated, split without overlap.
    raw = work / "raw"
    pairs = {
        split: list(
            zip(*((raw / f"{split}.{lang}").read_text().splitlines() for lang in "en de".split()))
        )
        for split in ("train", "valid", "test")
    }
    assert [len(pairs[s]) for s in ("train", "valid", "test")] == [2000, 100, 60]
    every = [pair for split in pairs.values() for pair in split]
    assert len(set(every)) == len(every)
    lock = json.loads((work / "downloads" / "sha256.lock.json").read_text())
    assert sorted(os.path.basename(url) for url in lock) == [
        "mt-metrics-eval-v2.tgz",
        "paracrawl.txt.gz",
    ]

    # QE of every decoding and setting, one record per sentence.
    sizes = {
        "test": 60,
        "wmt22": len((raw / "wmt22.en").read_text().splitlines()),
        "other_best": len((raw / "other_best.human").read_text().splitlines()),
        "other_worst": len((raw / "other_worst.human").read_text().splitlines()),
    }
    hypotheses = {}
    for name, mode in [(s, m) for s in ("test", "wmt22") for m in ("beam", "sampling")] + [
        ("other_best", "reference"),
        ("other_worst", "reference"),
    ]:
        records = read_records(work / "qe" / f"{name}-{mode}.jsonl")
        assert sorted(r["id"] for r in records) == list(range(sizes[name]))
        assert all(0.0 <= r["sentence_scores"]["sigmoid"] <= 1.0 for r in records)
        hypotheses[name, mode] = [r["translation"] for r in sorted(records, key=lambda r: r["id"])]
    assert hypotheses["wmt22", "beam"] != hypotheses["wmt22", "sampling"]
    other = (raw / "other_best.de").read_text(encoding="utf-8").splitlines()
    forced = hypotheses["other_best", "reference"]  # force-decoded, not translated: the
    same = sum(a == b for a, b in zip(forced, other))  # system's words (but rare characters)
    assert same >= 0.8 * len(other)

    # The gold: XCOMET-XL with references (Eval Self), CometKiwi without; human scores (Other).
    calls = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    models = [call[call.index("--model") + 1] for call in calls]
    assert (
        models.count("Unbabel/XCOMET-XL") == 4 and models.count("Unbabel/wmt22-cometkiwi-da") == 6
    )
    for call, model in zip(calls, models):
        assert ("-r" in call) == (model == "Unbabel/XCOMET-XL")
        assert call[call.index("--to_json") + 1].endswith(".json.part")
    self_eval = json.loads((work / "eval" / "wmt22-sampling.json").read_text())
    assert self_eval["gold"] == "json" and self_eval["gold_file"].endswith("xcomet.json")
    other_eval = json.loads((work / "eval" / "other_worst-reference.json").read_text())
    assert other_eval["gold"] == "scores" and other_eval["gold_file"].endswith("other_worst.human")
    assert {row["method"] for row in other_eval["methods"]} == {
        "sigmoid",
        "softmax",
        "boostedprob",
        "cometkiwi",
    }

    # The table: ours from those evaluations, the paper's Table 2 beside them.
    table = (work / "results.md").read_text()
    for number in PAPER_TABLE2:
        assert number in table
    kiwi = {row["method"]: row["pearson"] for row in self_eval["methods"]}["cometkiwi"]
    row = table_row(table, "COMET-Kiwi (supervised)")
    assert row[4] == f"{kiwi:.3f}" and row[2] == ".536" and row[5] == ".722"
    assert "stand-in" in table and "Table 6" in table
    head_log = [line for line in result.stdout.splitlines() if "sigmoid_pos" in line]
    assert head_log, "the head was not trained by nce_dominant"
