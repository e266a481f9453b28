"""examples/l10n_cpu/results_table.py on a small made-up work directory: the choice rule
(mrdev only, both decodings), and every table with its intervals and paired tests."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

pytestmark = pytest.mark.unit

SCRIPT = os.path.join(REPO, "examples", "l10n_cpu", "results_table.py")
SPLITS = {"valid": 30, "mrdev": 30, "test": 40, "mrtest": 40}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def record(i, hypothesis, scores):
    tokens = ["\u2581" + w for w in hypothesis.split()]
    return {
        "id": i,
        "rank": 0,
        "tokens": tokens,
        "detokenized": hypothesis,
        "token_scores": {m: [v] * len(tokens) for m, v in scores.items()},
        "sentence_scores": {m: v ** len(tokens) for m, v in scores.items()},
        "sentence_log_scores": {m: len(tokens) * float(np.log(v)) for m, v in scores.items()},
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Hypotheses with a known quality q (the share of reference words kept): head scores
    track q with noise that shrinks from init to dense_cut_first_dedup."""
    root = str(tmp_path_factory.mktemp("l10n"))
    rng = np.random.default_rng(0)
    noise = {"init": 0.3, "dense_cut_last": 0.2, "dense_cut_first_dedup": 0.05}
    for name in noise:
        if name != "init":
            write(os.path.join(root, "heads", name, "done"), "")
    words = [f"wort{i}" for i in range(12)]
    for split, n in SPLITS.items():
        references = [" ".join(rng.choice(words, size=rng.integers(3, 9))) for _ in range(n)]
        if split.startswith("mr"):
            write(
                os.path.join(root, "text", f"{split}.refs.tsv"),
                "".join(r + "\t" + r + "\n" for r in references),
            )
        else:
            write(
                os.path.join(root, "text", f"{split}.raw.de"), "".join(r + "\n" for r in references)
            )
        for decoding in ("beam", "sampled"):
            for system in ("self", "other"):
                keep = rng.uniform(0.2, 1.0, size=n)
                hypotheses = [
                    " ".join(w if rng.uniform() < k else "falsch" for w in r.split())
                    for r, k in zip(references, keep)
                ]
                for name, scale in noise.items():
                    lines = []
                    for i, (h, k) in enumerate(zip(hypotheses, keep)):
                        value = float(np.clip(k + scale * rng.normal(), 0.05, 0.99))
                        scores = {"sigmoid": value, "softmax": float(rng.uniform(0.1, 0.9))}
                        scores["boostedprob"] = float(np.clip(k + 0.25 * rng.normal(), 0.05, 0.99))
                        lines.append(json.dumps(record(i, h, scores)) + "\n")
                    write(
                        os.path.join(root, decoding, system, split, f"qe-{name}.jsonl"),
                        "".join(lines),
                    )
                baselines = [
                    record(i, h, {"entropy": float(rng.uniform(0.2, 0.9)), "mc_dropout": 0.5})
                    for i, h in enumerate(hypotheses)
                ]
                for r in baselines:  # MC dropout: a sentence score of its own, no token scores
                    del r["token_scores"]["mc_dropout"]
                write(
                    os.path.join(root, decoding, system, split, "qe-baselines.jsonl"),
                    "".join(json.dumps(r) + "\n" for r in baselines),
                )
    return root


def run(workdir, *options):
    result = subprocess.run(
        [sys.executable, SCRIPT, workdir, *options], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_choice_follows_mrdev(workdir):
    assert run(workdir, "--choose-variant").strip() == "cut_first_dedup"
    assert run(workdir, "--choose-head").strip() == "dense_cut_first_dedup"


def test_tables_have_intervals_and_paired_tests(workdir):
    tables = run(workdir)
    assert "Chosen variant: cut_first_dedup; chosen head: dense_cut_first_dedup" in tables
    for decoding in ("beam", "sampled"):
        assert f"## {decoding}, Eval Self, mrtest (multi-ref chrF)" in tables
    section = tables.split("## sampled, Eval Other, test (1 ref chrF)")[1].split("##")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in section.splitlines() if "|" in line}
    best = rows["sigmoid head: dense_cut_first_dedup"].split(" | ")
    low, high = (float(v) for v in best[2].split("[")[1].rstrip("]").split(", "))
    assert low < float(best[2].split()[0]) < high
    assert float(best[4]) > 0.9  # P(> BoostedProb): it tracks quality with less noise
    assert rows["BoostedProb"].split(" | ")[3] == "–"
    assert "MC dropout, N = 10" in rows and "token entropy" in rows


def test_an_earlier_runs_choice_reports_its_seeds(workdir, tmp_path):
    """--chosen-head: a fresh work directory that repeats only the chosen head and its seeds
    (no variants to choose from) still gets its tables and the seeds' mean ± sd."""
    root = tmp_path / "seeds"
    shutil.copytree(workdir, root)
    renamed = {"dense_cut_last": "logit_affine", "dense_cut_first_dedup": "logit_affine_seed2"}
    for old, new in renamed.items():
        os.rename(root / "heads" / old, root / "heads" / new)
        for path in root.glob(f"*/*/*/qe-{old}.jsonl"):
            os.rename(path, path.with_name(f"qe-{new}.jsonl"))
    failed = subprocess.run(
        [sys.executable, SCRIPT, str(root), "--choose-variant"], capture_output=True, text=True
    )
    assert failed.returncode != 0 and "no candidate" in failed.stderr
    tables = run(str(root), "--chosen-head", "logit_affine")
    assert "Chosen head (an earlier run's choice): logit_affine" in tables
    seeds = tables.split("## The chosen head's seeds (Pearson, product)")[1].split("##")[0]
    assert (
        "| setting | logit_affine | logit_affine_seed2 | mean ± sd | BoostedProb | "
        "mean − BoostedProb | Δ logit_affine vs BoostedProb [95% CI] | "
        "geometric mean: logit_affine vs BoostedProb (P) |" in seeds
    )
    row = next(line for line in seeds.splitlines() if line.startswith("| beam, self, mrtest"))
    first, second, spread, boosted, gap, delta, geo = row.strip("| ").split(" | ")[1:]
    mean, sd = (float(v) for v in spread.split(" ± "))
    values = np.array([float(first), float(second)])
    assert abs(mean - values.mean()) <= 0.001 and abs(sd - values.std(ddof=1)) <= 0.002
    assert abs(float(gap) - (mean - float(boosted))) <= 0.002
    low, high = (float(v) for v in delta.split("[")[1].split("]")[0].split(", "))
    assert low < float(delta.split()[0]) < high
    assert abs(float(delta.split()[0]) - (float(first) - float(boosted))) <= 0.002
    assert 0.0 <= float(geo.split("(P ")[1].rstrip(")")) <= 1.0
    for bad in (["--chosen-head", "logit_afine"], ["--chosen-head"], ["--chose-head"]):
        result = subprocess.run(
            [sys.executable, SCRIPT, str(root), *bad], capture_output=True, text=True
        )
        assert result.returncode != 0 and result.stderr.startswith("results_table.py: error: ")
        assert len(result.stderr.strip().splitlines()) == 1
