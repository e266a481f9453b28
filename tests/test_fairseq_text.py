"""The raw-text command and the API on a model whose text is Moses-tokenized and split by
subword-nmt, as many released Fairseq models are (built here, tiny): fairseq's own tokenizer
and BPE through its encoder registry, the translations those of fairseq-interactive with the
same flags, word scores on the detokenized words."""

import itertools
import shutil
import subprocess
import sys

import pytest
from conftest import PACKAGE_DIR, TINY_BASE, binarize, fairseq, head_args

from fairseq_sigmoid_qe.core.qe_methods.records import loads

pytestmark = pytest.mark.integration

sacremoses = pytest.importorskip("sacremoses")
pytest.importorskip("subword_nmt")

PAIRS, VALID, TEST = 2000, 100, 8


def punctuated(line, index):
    """A corpus line as prose: capitalised, a comma after the second word of every other
    line, a final full stop (the synthetic corpus has none; Moses splits them off)."""
    words = line.split()
    if index % 2 and len(words) > 3:
        words[1] += ","
    text = " ".join(words) + "."
    return text[:1].upper() + text[1:]


def moses_bpe(lines, lang, bpe):
    """The text as fairseq's moses tokenizer (its defaults) and subword-nmt BPE encode it."""
    tokenizer = sacremoses.MosesTokenizer(lang)
    return [
        bpe.process_line(
            tokenizer.tokenize(line, aggressive_dash_splits=True, return_str=True, escape=True)
        )
        for line in lines
    ]


@pytest.fixture(scope="module")
def moses_model(tmp_path_factory, corpus_dir):
    """(data-bin, BPE codes, head checkpoint, raw test en, raw test de) of a base and head
    trained on 2,000 Moses + subword-nmt pairs."""
    from subword_nmt.apply_bpe import BPE
    from subword_nmt.learn_bpe import learn_bpe

    root = tmp_path_factory.mktemp("moses")
    raw = {}
    for split, count in (("train", PAIRS), ("valid", VALID), ("test", TEST)):
        for lang in ("en", "de"):
            with open(f"{corpus_dir}/{split}.{lang}", encoding="utf-8") as f:
                lines = [line.rstrip("\n") for line in itertools.islice(f, count)]
            raw[split, lang] = [punctuated(line, i) for i, line in enumerate(lines)]
    tokenized = {
        lang: [
            sacremoses.MosesTokenizer(lang).tokenize(
                line, aggressive_dash_splits=True, return_str=True, escape=True
            )
            for line in raw["train", lang]
        ]
        for lang in ("en", "de")
    }
    joint = root / "joint.tok"
    joint.write_text("\n".join(tokenized["en"] + tokenized["de"]) + "\n", encoding="utf-8")
    codes = root / "bpecodes"
    with open(joint, encoding="utf-8") as infile, open(codes, "w", encoding="utf-8") as out:
        learn_bpe(infile, out, 600)
    with open(codes, encoding="utf-8") as f:
        bpe = BPE(f)
    text = root / "text"
    text.mkdir()
    for (split, lang), lines in raw.items():
        (text / f"{split}.{lang}").write_text(
            "\n".join(moses_bpe(lines, lang, bpe)) + "\n", encoding="utf-8"
        )
    data_bin = root / "data-bin"
    binarize(str(text), str(data_bin), ("train", "valid", "test"))
    base = root / "base"
    fairseq(
        "train", data_bin, *TINY_BASE, "--max-tokens", "2000", "--max-update", "40",
        "--save-dir", base, "--seed", "3",
    )  # fmt: skip
    head = root / "head"
    fairseq(
        "train",
        *head_args(data_bin, base / "checkpoint_last.pt", head, "--max-update", "20"),
    )
    return (
        str(data_bin),
        str(codes),
        str(head / "checkpoint_last.pt"),
        raw["test", "en"],
        raw["test", "de"],
    )


def raw_text(data_bin, checkpoint, *arguments):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairseq_sigmoid_qe.cli.raw_text",
            *map(str, arguments),
            "--checkpoint",
            checkpoint,
            "--data-dir",
            data_bin,
            "--cpu",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [loads(line) for line in result.stdout.splitlines()]


def test_moses_subword_nmt_end_to_end(moses_model, tmp_path):
    data_bin, codes, checkpoint, sources, references = moses_model
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join(references) + "\n", encoding="utf-8")
    text = ["--tokenizer", "moses", "--bpe", "subword_nmt", "--bpe-codes", codes]
    translated = raw_text(
        data_bin, checkpoint, "translate", "--sources", tmp_path / "src.txt", *text
    )
    assert [r["source"] for r in translated] == sources
    # fairseq-interactive with the same flags: the same translations, as its D- lines
    interactive = subprocess.run(
        [
            sys.executable, "-m", "fairseq_cli.interactive", data_bin, "--path", checkpoint,
            "--user-dir", PACKAGE_DIR, "--source-lang", "en", "--target-lang", "de",
            "--beam", "5", "--cpu", *text,
        ],
        input="\n".join(sources) + "\n",
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert interactive.returncode == 0, interactive.stderr[-3000:]
    detokenized = [
        line.split("\t")[2] for line in interactive.stdout.splitlines() if line.startswith("D-")
    ]
    assert [r["translation"] for r in translated] == detokenized
    # the API with the same tokenizer and BPE: the same records
    from fairseq_sigmoid_qe.api import QEModel

    qe = QEModel.from_checkpoint(
        checkpoint,
        data_bin,
        device="cpu",
        tokenizer="moses",
        bpe="subword_nmt",
        text_options={"bpe_codes": codes},
    )
    assert qe.translate(sources) == translated
    # a model folder as Fairseq releases them: its bpecodes found without --bpe-codes
    released = tmp_path / "released"
    shutil.copytree(data_bin, released)
    shutil.copy(codes, released / "bpecodes")
    scored = raw_text(
        str(released),
        checkpoint,
        "score",
        "--sources",
        tmp_path / "src.txt",
        "--translations",
        tmp_path / "ref.txt",
        *text[:4],
    )
    assert any("@@" in piece for r in scored for piece in r["tokens"])  # subword-nmt pieces
    assert any(not word.isalnum() for r in scored for word in r["translation"].split())
    for record in translated + scored:
        assert "@@" not in record["translation"]
        words = record["translation"].split()
        if not words:  # a tiny model's empty translation has no words to score
            assert record["word_scores"] is None
            continue
        for method, scores in record["word_scores"].items():
            # one score per word of the detokenized text ("file." one word, not "file" ".")
            assert len(scores) == len(words)
            assert min(record["token_scores"][method]) == min(scores)  # min over its pieces
    punctuated = [r for r in scored if r["translation"].rstrip()[-1:] in ".!?"]
    assert punctuated  # Moses splits the final stop off; the record's words do not
    for record in punctuated:
        assert len(record["word_scores"]["sigmoid"]) < len(
            " ".join(record["tokens"]).replace("@@ ", "").split()
        )


def test_calibrated_word_tags_and_error_spans_are_on_the_detokenized_text(moses_model, tmp_path):
    """--calibration with --tokenizer moses --bpe subword_nmt: word tags for the words of the
    translation as the user reads it, error spans at its characters."""
    import json

    data_bin, codes, checkpoint, sources, _ = moses_model
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    text = ["--tokenizer", "moses", "--bpe", "subword_nmt", "--bpe-codes", codes]
    records = raw_text(data_bin, checkpoint, "translate", "--sources", tmp_path / "src.txt", *text)
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (tmp_path / "labels").write_text("".join(f"{i % 2}\n" for i in range(len(records))))
    words = [r["translation"].split() for r in records]
    (tmp_path / "tags").write_text(
        "".join(" ".join("BAD" if (i + j) % 2 else "OK" for j in range(len(w))) + "\n"
                for i, w in enumerate(words))
    )  # fmt: skip
    fitted = subprocess.run(
        [sys.executable, "-m", "fairseq_sigmoid_qe.cli.calibrate", "--qe", dev]
        + ["--method", "sigmoid", "--map", "platt", "--gold-labels", tmp_path / "labels"]
        + ["--word-labels", tmp_path / "tags", "--output", tmp_path / "cal.json"],
        capture_output=True,
        text=True,
    )
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    calibrated = raw_text(
        data_bin, checkpoint, "translate", "--sources", tmp_path / "src.txt", *text,
        "--calibration", tmp_path / "cal.json",
    )  # fmt: skip
    spans = 0
    for record, plain in zip(calibrated, records):
        assert record["translation"] == plain["translation"]
        tags = record["calibrated"]["word_tags"]
        assert len(tags) == len(record["translation"].split())
        bad = [w for w, t in zip(record["translation"].split(), tags) if t == "BAD"]
        assert [w for e in record["errors"] for w in e["text"].split()] == bad
        for error in record["errors"]:
            assert record["translation"][error["start"] : error["end"]] == error["text"]
            spans += 1
    assert spans  # some word is BAD somewhere: the spans were checked
