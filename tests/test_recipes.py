"""The Transformer Base reproduction recipe, end to end in its --smoke mode (real CLI)."""

import json
import os
import subprocess
import sys

from conftest import REPO


def test_transformer_base_recipe_smoke(l10n_dir, tmp_path):
    work = tmp_path / "work"
    env = {
        **os.environ,
        "WORK": str(work),
        "PYTHON": sys.executable,
        "L10N_EN_DE_DIR": l10n_dir,
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        ["bash", os.path.join(REPO, "examples", "transformer_base_paracrawl", "run.sh"), "--smoke"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    test_lines = (work / "text" / "test.raw.de").read_text().splitlines()
    records = [json.loads(line) for line in (work / "qe.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == list(range(len(test_lines)))
    assert all(0.0 <= r["sentence_scores"]["sigmoid"] <= 1.0 for r in records)
    table = (work / "eval.txt").read_text()
    for method in ("sigmoid", "softmax", "boostedprob"):
        assert method in table
    head_log = [line for line in result.stdout.splitlines() if "sigmoid_pos" in line]
    assert head_log, "the head was not trained by nce_dominant"
