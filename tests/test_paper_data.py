"""examples/common/paper_data.py: ParaCrawl sampling, WMT22 through sacrebleu, the human
scores of Eval Other, RAW_DIR instead of downloads (all on the local stand-in downloads of
smoke_downloads.py; nothing from the internet)."""

import gzip
import json
import os
import subprocess
import sys

import pytest
from conftest import L10N_DIR, REPO

sys.path.insert(0, os.path.join(REPO, "examples", "common"))

import paper_data  # noqa: E402
import smoke_downloads  # noqa: E402

from fairseq_sigmoid_qe.core.errors import QEUserError  # noqa: E402

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    out = tmp_path_factory.mktemp("downloads-stand-in")
    smoke_downloads.build(str(out), L10N_DIR)
    return out


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def write_corpus(path, rows):
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(row + "\n" for row in rows)
    return str(path)


def test_sampling_deduplicates_filters_and_splits(tmp_path):
    rows = [f"source {i}\tZiel {i}" for i in range(50)]
    rows += rows[:20]  # duplicates
    rows += ["only one side\t ", "no tab", "w " * 20 + "\tlang", "\tleer"]
    corpus = write_corpus(tmp_path / "c.txt.gz", rows)
    counts = paper_data.sample_paracrawl(corpus, str(tmp_path), 30, 5, 4, seed=3, max_words=10)
    assert counts == {"train": 30, "valid": 5, "test": 4}
    splits = {
        s: list(zip(lines(tmp_path / f"{s}.en"), lines(tmp_path / f"{s}.de")))
        for s in ("train", "valid", "test")
    }
    every = [pair for pairs in splits.values() for pair in pairs]
    assert len(set(every)) == 39
    assert all(en.startswith("source") and de.startswith("Ziel") for en, de in every)
    assert all(en.split()[1] == de.split()[1] for en, de in every)  # still aligned
    assert not list(tmp_path.glob("*.part"))
    again = tmp_path / "again"
    again.mkdir()
    paper_data.sample_paracrawl(corpus, str(again), 30, 5, 4, seed=3, max_words=10)
    assert lines(again / "test.en") == lines(tmp_path / "test.en")
    other = tmp_path / "other_seed"
    other.mkdir()
    paper_data.sample_paracrawl(corpus, str(other), 30, 5, 4, seed=4, max_words=10)
    assert lines(other / "test.en") != lines(tmp_path / "test.en")


def test_too_small_a_corpus_is_refused(tmp_path):
    corpus = write_corpus(tmp_path / "c.txt.gz", ["a\tb", "c\td"])
    with pytest.raises(QEUserError, match="2 usable distinct pairs"):
        paper_data.sample_paracrawl(corpus, str(tmp_path), 10, 2, 2)


def test_wmt22_through_sacrebleu(stand_ins, tmp_path):
    sources = paper_data.load_sources(str(stand_ins / "sources.json"))
    out = tmp_path / "raw"
    out.mkdir()
    count = paper_data.prepare_wmt22(sources, str(tmp_path / "dl"), str(out))
    pairs = smoke_downloads.corpus_pairs(L10N_DIR, "test", smoke_downloads.WMT22_SEGMENTS)
    assert count == len(pairs)
    assert lines(out / "wmt22.en") == [" ".join(en.split()) for en, _ in pairs]
    assert lines(out / "wmt22.de") == [" ".join(de.split()) for _, de in pairs]
    assert lines(out / "wmt22.refB.de") != lines(out / "wmt22.de")
    cache = tmp_path / "dl" / "sacrebleu" / "wmt22"
    assert (cache / "raw" / paper_data.WMT22_XML).is_file()  # extracted where sacrebleu reads
    assert (cache / "wmt22.en-de.src").is_file()  # sacrebleu's own text files


def test_wrong_wmt22_md5_is_refused(stand_ins, tmp_path):
    sources = paper_data.load_sources(str(stand_ins / "sources.json"))
    sources["wmt22"]["md5"] = "0" * 32
    with pytest.raises(QEUserError, match="md5 .*, expected 0+; the download was removed"):
        paper_data.prepare_wmt22(sources, str(tmp_path / "dl"), str(tmp_path))


def test_score_files_and_the_best_and_worst_system(tmp_path):
    path = tmp_path / "en-de.mqm.seg.score"
    path.write_text(
        "A\t-1.0\nA\tNone\nA\t-3.0\n"
        "B\t0\nB\t-0.5\nB\tNone\n"
        "refA\t0\nrefA\t0\nrefA\t0\n"
        "C\t-9\nC\t-7\nC\t-8\n",
        encoding="utf-8",
    )
    scores = paper_data.read_score_file(str(path), 3)
    assert scores["A"] == [-1.0, None, -3.0] and scores["refA"] == [0.0] * 3
    outputs = {name: ["x", "y", "z"] for name in ("A", "B", "C", "refA")}
    outputs["C"] = ["x", "", "z"]  # an empty output is not rated
    best, worst = paper_data.choose_systems(scores, outputs)
    assert best == ("B", -0.25, [0, 1])  # refA is a human reference, never a system
    assert worst == ("C", -8.5, [0, 2])
    with pytest.raises(QEUserError, match="system A has not one score per source segment"):
        paper_data.read_score_file(str(path), 4)


def test_eval_other_sets_from_the_mt_metrics_eval_layout(stand_ins, tmp_path):
    sources = paper_data.load_sources(str(stand_ins / "sources.json"))
    info = paper_data.prepare_human(sources, str(tmp_path / "dl"), str(tmp_path))
    assert info["best"]["system"] == "SysCopy" and info["worst"]["system"] == "SysReverse"
    assert json.loads((tmp_path / "other.json").read_text()) == info
    for which in ("best", "worst"):
        human = [float(v) for v in lines(tmp_path / f"other_{which}.human")]
        assert len(human) == info[which]["segments"] == len(lines(tmp_path / f"other_{which}.en"))
        assert sum(human) / len(human) == pytest.approx(info[which]["mean_human_score"])
    assert lines(tmp_path / "other_best.de")[0] == lines(tmp_path / "other_best.de")[0].strip()


def run_prepare(*arguments):
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "examples", "common", "paper_data.py"), "prepare"]
        + list(arguments),
        capture_output=True,
        text=True,
    )


def test_raw_dir_is_used_instead_of_downloading(tmp_path):
    raw_dir = tmp_path / "given"
    raw_dir.mkdir()
    for name in paper_data.PARTS["paracrawl"] + paper_data.PARTS["wmt22"]:
        (raw_dir / name).write_text("a line\n", encoding="utf-8")
    nowhere = tmp_path / "sources.json"  # any download would fail: the files do not exist
    nowhere.write_text(
        json.dumps(
            {n: {"url": f"file://{tmp_path}/missing/{n}", "file": n} for n in paper_data.SOURCES}
        )
    )
    out = tmp_path / "raw"
    result = run_prepare(
        "--out",
        str(out),
        "--raw-dir",
        str(raw_dir),
        "--downloads",
        str(tmp_path / "dl"),
        "--sources",
        str(nowhere),
        "--no-eval-other",
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        paper_data.PARTS["paracrawl"] + paper_data.PARTS["wmt22"]
    )
    assert not (tmp_path / "dl").exists()


def test_offline_without_raw_dir_is_one_clear_error(tmp_path):
    nowhere = tmp_path / "sources.json"
    nowhere.write_text(
        json.dumps({"paracrawl": {"url": f"file://{tmp_path}/missing.gz", "file": "p.gz"}})
    )
    result = run_prepare(
        "--out",
        str(tmp_path / "raw"),
        "--downloads",
        str(tmp_path / "dl"),
        "--sources",
        str(nowhere),
    )
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 1 and len(errors) == 1 and "Traceback" not in result.stderr
    assert "cannot fetch file://" in errors[0] and "RAW_DIR" in errors[0]
    assert "train.en" in errors[0]
