"""The recipes' gold plumbing without COMET weights: the stand-in comet-score (the real tool's
command line and output layout), examples/common/comet_gold.py, the chrF fallback without
comet-score, and the paper's table."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.unit

COMMON = os.path.join(REPO, "examples", "common")
sys.path.insert(0, COMMON)

import comet_gold  # noqa: E402
import paper_table  # noqa: E402

from fairseq_sigmoid_qe.core.errors import QEUserError  # noqa: E402
from fairseq_sigmoid_qe.evaluation.gold import load_comet_json  # noqa: E402

STAND_IN = os.path.join(COMMON, "standin-bin", "comet-score")
SOURCES = ["Open the file.", "Save it now.", "Close the window please."]
REFERENCES = ["Öffne die Datei.", "Speichere sie jetzt.", "Schließe bitte das Fenster."]
HYPOTHESES = ["Öffne die Datei.", "Speichern jetzt.", "Fenster"]


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def stand_in(*arguments, env=None):
    return subprocess.run(
        [STAND_IN, *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable, **(env or {})},
    )


def qe_file(path, hypotheses=HYPOTHESES):
    records = [
        {"id": i, "rank": 0, "detokenized": h, "sentence_scores": {"sigmoid": 0.1 * (i + 1)}}
        for i, h in enumerate(hypotheses)
    ]
    return write(path, [json.dumps(r, ensure_ascii=False) for r in reversed(records)])


def test_stand_in_writes_the_real_layout(tmp_path):
    src, hyp = write(tmp_path / "src.txt", SOURCES), write(tmp_path / "hyp.txt", HYPOTHESES)
    ref = write(tmp_path / "ref.txt", REFERENCES)
    out = tmp_path / "x.json"
    result = stand_in("-s", src, "-t", hyp, "-r", ref, "--model", "Unbabel/XCOMET-XL",
                      "--to_json", str(out), "--gpus", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert list(data) == [hyp]  # keyed by the -t path as given
    segments = data[hyp]
    assert [s["mt"] for s in segments] == HYPOTHESES and [s["ref"] for s in segments] == REFERENCES
    assert segments[0]["COMET"] == 1.0 and segments[2]["COMET"] < segments[1]["COMET"] < 1.0
    assert "errors" not in segments[0] and segments[2]["errors"][0]["severity"] == "minor"
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"{hyp}\tSegment {i}\tscore: {s['COMET']:.4f}" for i, s in enumerate(segments)
    ]
    assert lines[3].startswith(f"{hyp}\tscore: ") and lines[4] == f"Predictions saved in: {out}."
    assert load_comet_json(str(out)) == [s["COMET"] for s in segments]
    kiwi = tmp_path / "kiwi.json"
    result = stand_in("-s", src, "-t", hyp, "--model", "Unbabel/wmt22-cometkiwi-da",
                      "--to_json", str(kiwi))  # fmt: skip
    assert result.returncode == 0 and "ref" not in json.loads(kiwi.read_text())[hyp][0]


def test_stand_in_refuses_a_reference_model_without_references(tmp_path):
    src, hyp = write(tmp_path / "src.txt", SOURCES), write(tmp_path / "hyp.txt", HYPOTHESES)
    result = stand_in("-s", src, "-t", hyp, "--model", "Unbabel/wmt22-comet-da")
    assert result.returncode == 2
    assert "Unbabel/wmt22-comet-da requires -r/--references" in result.stderr


@pytest.fixture
def with_stand_in(monkeypatch, tmp_path):
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("COMET_SCORE", STAND_IN)
    monkeypatch.setenv("COMET_STANDIN_LOG", str(log))
    monkeypatch.setenv("COMET_ARGS", "--gpus 0 --batch_size 4")
    monkeypatch.setenv("PYTHON", sys.executable)
    return log


def test_run_writes_gold_and_adds_cometkiwi(with_stand_in, tmp_path):
    qe = qe_file(tmp_path / "qe.jsonl")
    src, ref = write(tmp_path / "s.en", SOURCES), write(tmp_path / "r.de", REFERENCES)
    out = tmp_path / "gold"
    argv = ["run", "--qe", qe, "--sources", src, "--references", ref, "--out", str(out)]
    assert comet_gold.main(argv) == 0
    calls = [json.loads(line)["argv"] for line in with_stand_in.read_text().splitlines()]
    assert calls == [
        ["-s", f"{out}/src.txt", "-t", f"{out}/hyp.txt", "-r", f"{out}/ref.txt", "--model",
         "Unbabel/XCOMET-XL", "--to_json", f"{out}/xcomet.json.part", "--gpus", "0",
         "--batch_size", "4"],
        ["-s", f"{out}/src.txt", "-t", f"{out}/hyp.txt", "--model", "Unbabel/wmt22-cometkiwi-da",
         "--to_json", f"{out}/cometkiwi.json.part", "--gpus", "0", "--batch_size", "4"],
    ]  # fmt: skip
    assert (out / "hyp.txt").read_text(encoding="utf-8").splitlines() == HYPOTHESES
    records = [json.loads(line) for line in (out / "qe.jsonl").read_text().splitlines()]
    kiwi = load_comet_json(str(out / "cometkiwi.json"))
    assert [r["sentence_scores"]["cometkiwi"] for r in records] == kiwi
    assert [r["sentence_scores"]["sigmoid"] for r in records] == pytest.approx([0.1, 0.2, 0.3])
    assert load_comet_json(str(out / "xcomet.json"))[0] == 1.0
    assert comet_gold.main(argv) == 0  # kept: comet-score is not called again
    assert len(with_stand_in.read_text().splitlines()) == 2


def test_merge_refuses_other_hypotheses(with_stand_in, tmp_path):
    src = write(tmp_path / "s.en", SOURCES)
    out = tmp_path / "gold"
    comet_gold.main(["run", "--qe", qe_file(tmp_path / "a.jsonl"), "--sources", src,
                     "--out", str(out)])  # fmt: skip
    other = qe_file(tmp_path / "b.jsonl", HYPOTHESES[:2] + ["Das Fenster"])
    with pytest.raises(QEUserError, match="segment 2 scored another translation"):
        comet_gold.merge(
            comet_gold.load_records(other), str(out / "cometkiwi.json"), str(tmp_path / "c")
        )
    assert not (tmp_path / "c").exists()


def test_records_must_cover_the_sources(with_stand_in, tmp_path):
    src = write(tmp_path / "s.en", SOURCES + ["one more"])
    with pytest.raises(QEUserError, match="not one per line of"):
        comet_gold.write_inputs(qe_file(tmp_path / "a.jsonl"), src, None, str(tmp_path / "g"))


def test_failing_comet_score_is_one_error_and_leaves_no_json(monkeypatch, tmp_path):
    failing = tmp_path / "comet-score"
    failing.write_text("#!/bin/sh\necho 'KeyError: model not supported' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("COMET_SCORE", str(failing))
    src = write(tmp_path / "s.en", SOURCES)
    argv = [
        "run",
        "--qe",
        qe_file(tmp_path / "a.jsonl"),
        "--sources",
        src,
        "--out",
        str(tmp_path / "g"),
    ]
    with pytest.raises(QEUserError, match="failed \\(exit 1; its messages are above"):
        comet_gold.main(argv)
    assert not list((tmp_path / "g").glob("*.json*"))


def test_comet_score_on_path_is_found(monkeypatch):
    monkeypatch.delenv("COMET_SCORE", raising=False)
    monkeypatch.setenv("PATH", os.path.dirname(STAND_IN) + os.pathsep + os.environ["PATH"])
    assert comet_gold.find_comet_score() == STAND_IN
    monkeypatch.setenv("COMET_SCORE", os.path.join(COMMON, "comet_gold.py"))  # not executable
    with pytest.raises(QEUserError, match="is not an executable file"):
        comet_gold.find_comet_score()


def test_without_comet_score_the_gold_is_chrf(tmp_path):
    """paper_steps.sh's evaluate(): no comet-score on PATH, no COMET_SCORE -> sentence chrF."""
    work = tmp_path / "work"
    (work / "raw").mkdir(parents=True)
    write(work / "raw" / "wmt22.de", REFERENCES)
    qe = qe_file(tmp_path / "qe.jsonl")
    script = (
        f"set -euo pipefail; WORK={work}; PYTHON={sys.executable}; SMOKE=0; "
        f'source {COMMON}/paper_steps.sh; echo "note: $GOLD_NOTE"; evaluate wmt22-beam wmt22 {qe}'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COMET_SCORE",)}
    env["PATH"] = os.path.dirname(sys.executable) + ":/usr/bin:/bin"
    env["PYTHONPATH"] = REPO
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no COMET-Kiwi row" in result.stdout
    evaluation = json.loads((work / "eval" / "wmt22-beam.json").read_text())
    assert evaluation["gold"] == "references" and evaluation["metric"] == "chrf"
    assert [row["method"] for row in evaluation["methods"]] == ["sigmoid"]


def evaluation_file(work, name, pearsons, gold="json"):
    rows = [{"method": m, "n": 7, "pearson": p} for m, p in pearsons.items()]
    (work / "eval").mkdir(parents=True, exist_ok=True)
    content = {"gold": gold, "gold_file": str(work / "gold" / name / "xcomet.json"),
               "metric": None, "methods": rows}  # fmt: skip
    (work / "eval" / f"{name}.json").write_text(json.dumps(content))


def test_table_puts_each_cell_in_its_place(tmp_path):
    work = tmp_path
    methods = ("softmax", "boostedprob", "sigmoid", "cometkiwi")
    for index, (name, mode) in enumerate(
        [(s, m) for s in ("test", "wmt22") for m in ("beam", "sampling")]
    ):
        evaluation_file(work, f"{name}-{mode}", {m: index + j / 10 for j, m in enumerate(methods)})
    evaluation_file(work, "other_worst-reference", {"sigmoid": None}, gold="scores")
    evaluation_file(work, "wmt22-beam-random", {"sigmoid": 0.25})
    (work / "raw").mkdir()
    (work / "raw" / "other.json").write_text(
        json.dumps({"gold": "mqm", "best": {"system": "Online-B"}, "worst": {"system": "X"}})
    )
    table = paper_table.render(str(work), "deltalm", "A note.")
    lines = table.splitlines()
    assert "| sigmoid head | 0.200 | 1.200 | .403 | 2.200 | 3.200 | .515 |" in lines
    assert "| COMET-Kiwi (supervised) | 0.300 | 1.300 | .537 | 2.300 | 3.300 | .634 |" in lines
    assert "| random | - | 0.250 | n/a (not available here) |" in lines
    assert "best system (Online-B, n = -)" in table and "worst system (X, n = 7)" in table
    assert "| sigmoid head | - | nan | n/a (not available here) |" in lines  # Table 3
    assert "A note." in table
