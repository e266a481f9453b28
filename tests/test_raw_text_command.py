"""The raw-text command (fairseq-sigmoid-qe) given bad bytes, a bad --output, long text."""

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest
import torch
from conftest import one_error_line, raw_text_here

from fairseq_sigmoid_qe.core.qe_methods.records import build_record, decoding_info, dumps, loads

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def head_checkpoint(trained_head):
    return str(trained_head[0] / "checkpoint_last.pt")


def command(real_data_bin, head_checkpoint, *arguments, stdin=b""):
    """The command in a subprocess, stdin given as bytes; its output decoded."""
    spm_model = Path(real_data_bin).parent / "text" / "spm.model"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairseq_sigmoid_qe.cli.raw_text",
            *arguments,
            "--checkpoint",
            head_checkpoint,
            "--data-dir",
            real_data_bin,
            "--spm-model",
            str(spm_model),
        ],
        input=stdin,
        capture_output=True,
    )
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    return result


def test_non_utf8_input_is_one_error_line(real_data_bin, head_checkpoint, tmp_path):
    sources, translations = tmp_path / "src.txt", tmp_path / "hyp.txt"
    sources.write_bytes("Open the file.\nSave all.\n".encode("utf-8"))
    translations.write_bytes(b"\xd6ffne die Datei.\nSpeichern Sie alles.\n")  # Latin-1 "Ö"
    result = command(
        real_data_bin,
        head_checkpoint,
        "score",
        "--sources",
        sources,
        "--translations",
        translations,
    )
    assert one_error_line(result).endswith(
        f"--translations {translations} is not UTF-8 text: line 1 has the byte 0xd6"
    )
    piped = command(
        real_data_bin, head_checkpoint, "translate", stdin=b"Open the file.\nSave \xff all.\n"
    )
    assert one_error_line(piped).endswith(
        "--sources stdin is not UTF-8 text: line 2 has the byte 0xff"
    )


def one_piece_words(real_data_bin, side, count):
    """``count`` distinct words of the training text that the sentencepiece model keeps as
    one piece (so N of them are N tokens, in the l10n corpus and the synthetic language)."""
    import sentencepiece

    spm = sentencepiece.SentencePieceProcessor(
        model_file=str(Path(real_data_bin).parent / "text" / "spm.model")
    )
    path = Path(real_data_bin).parent / "text" / f"train.raw.{side}"
    words = dict.fromkeys(path.read_text(encoding="utf-8").split())
    found = [word for word in words if len(spm.encode(word)) == 1][:count]
    assert len(found) == count
    return found


def test_sentence_longer_than_max_tokens(real_data_bin, head_checkpoint, tmp_path):
    words = one_piece_words(real_data_bin, "en", 3)
    sources = tmp_path / "src.txt"
    sources.write_text(" ".join(words) + "\n" + " ".join(words * 4) + "\n", encoding="utf-8")
    result = command(
        real_data_bin, head_checkpoint, "translate", "--sources", sources, "--max-tokens", "8"
    )
    line = one_error_line(result)
    assert line.startswith("fairseq-sigmoid-qe translate: error: source line 2 has ")
    assert one_error_line(result).endswith("tokens, more than --max-tokens 8 lets into a batch")


def test_output_folder_is_checked_before_any_work(real_data_bin, tmp_path):
    sources = tmp_path / "src.txt"
    sources.write_text("Open the file.\n", encoding="utf-8")
    output = tmp_path / "missing" / "qe.jsonl"
    # the checkpoint does not exist either: the output is checked before it would be read
    result = command(
        real_data_bin,
        str(tmp_path / "no-head.pt"),
        "translate",
        "--sources",
        sources,
        "--output",
        output,
    )
    assert f"--output {output}: folder {output.parent} does not exist" in one_error_line(result)
    existing = tmp_path / "qe.jsonl"
    existing.write_text("keep me\n")
    result = command(
        real_data_bin,
        str(tmp_path / "no-head.pt"),
        "translate",
        "--sources",
        sources,
        "--output",
        existing,
    )
    assert "exists; nothing is overwritten" in one_error_line(result)
    assert existing.read_text() == "keep me\n"


def test_long_translations_keep_a_ranking(real_data_bin, head_checkpoint, tmp_path):
    """Two 1,000-token translations: the products underflow to 0, their logs still rank."""
    sources, translations = tmp_path / "src.txt", tmp_path / "hyp.txt"
    source = " ".join(one_piece_words(real_data_bin, "en", 3))
    sources.write_text(f"{source}\n{source}\n", encoding="utf-8")
    first, second = one_piece_words(real_data_bin, "de", 2)
    translations.write_text(
        " ".join([first] * 1000) + "\n" + " ".join([second] * 1000) + "\n", encoding="utf-8"
    )
    output = tmp_path / "qe.jsonl"
    result = command(
        real_data_bin,
        head_checkpoint,
        "score",
        "--sources",
        sources,
        "--translations",
        translations,
        "--output",
        output,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # a strict JSON parser reads every record (NaN / Infinity would be refused)
    records = [loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert all(len(r["tokens"]) >= 1000 for r in records)
    assert all(0.0 <= s <= 1.0 for r in records for s in r["sentence_scores"].values())
    underflowed = 0
    for method in ("sigmoid", "softmax", "boostedprob"):
        logs = [r["sentence_log_scores"][method] for r in records]
        for record, log in zip(records, logs):
            assert log == pytest.approx(math.fsum(map(math.log, record["token_scores"][method])))
            assert record["sentence_scores"][method] == pytest.approx(math.exp(log), abs=0)
            assert math.isfinite(log)
            underflowed += log < -746  # exp(log) is 0.0
        assert logs[0] != logs[1]
    assert underflowed >= 2


def todays_jsonl(qe, sources, translations=None):
    """The command's output as it was before records were streamed: one dataset of every
    sentence, all results held, written in input order at the end."""
    from argparse import Namespace

    from fairseq_sigmoid_qe.core.words import detokenize
    from fairseq_sigmoid_qe.decoding.search_loop import generate_with_qe

    generation = (
        Namespace(score_reference=True) if translations is not None else Namespace(beam=qe.beam)
    )
    decoding = (
        decoding_info("forced") if translations is not None else decoding_info("beam", beam=qe.beam)
    )
    results = [None] * len(sources)
    for sample, hypos in generate_with_qe(
        qe.task, qe.model, qe._dataset(sources, translations), generation, qe.max_tokens
    ):
        for row, beams in enumerate(hypos):
            qe_record = beams[0]["qe"]
            index = int(sample["id"][row])
            results[index] = build_record(
                qe_record,
                id=index,
                source=sources[index],
                translation=detokenize(qe_record["tokens"]),
                decoding=decoding,
            )
    return "".join(dumps(record) + "\n" for record in results)


@pytest.fixture(scope="module")
def test_text(real_data_bin, tmp_path_factory):
    """(sources file, translations file, source lines, spm model) of 40 test sentences."""
    text = Path(real_data_bin).parent / "text"
    sources = (text / "test.raw.en").read_text(encoding="utf-8").splitlines()[:40]
    references = (text / "test.raw.de").read_text(encoding="utf-8").splitlines()[:40]
    folder = tmp_path_factory.mktemp("test-text")
    (folder / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (folder / "ref.txt").write_text("\n".join(references) + "\n", encoding="utf-8")
    return folder / "src.txt", folder / "ref.txt", (sources, references), str(text / "spm.model")


def test_records_are_byte_identical_to_todays(real_data_bin, head_checkpoint, test_text, tmp_path):
    """Streamed to stdout or OUTPUT, with the sentencepiece model found beside the data dir:
    the same bytes as the whole-input path."""
    from fairseq_sigmoid_qe.api import QEModel

    src, ref, (sources, references), spm_model = test_text
    qe = QEModel.from_checkpoint(head_checkpoint, real_data_bin, spm_model)
    threads = str(torch.get_num_threads())  # float sums depend on it: the same here and there
    for arguments, expected in [
        (["translate"], todays_jsonl(qe, sources)),
        (["score", "--translations", ref], todays_jsonl(qe, sources, references)),
    ]:
        auto_spm = subprocess.run(
            [
                sys.executable,
                "-m",
                "fairseq_sigmoid_qe.cli.raw_text",
                *arguments,
                "--sources",
                src,
                "--checkpoint",
                head_checkpoint,
                "--data-dir",
                real_data_bin,
                "--cpu",
                "--quiet",
                "--threads",
                threads,
            ],
            capture_output=True,
        )
        assert auto_spm.returncode == 0, auto_spm.stderr[-3000:]
        assert auto_spm.stdout.decode("utf-8") == expected
        output = tmp_path / f"{arguments[0]}.jsonl"
        result = command(
            real_data_bin,
            head_checkpoint,
            *arguments,
            "--sources",
            src,
            "--output",
            output,
            "--cpu",
            "--threads",
            threads,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert output.read_text(encoding="utf-8") == expected
        assert not Path(f"{output}.part").exists()


def test_input_order_over_several_chunks_and_batches(real_data_bin, head_checkpoint, test_text):
    """Chunks of 7 sentences in batches of at most 3 give the records of one batch per
    sentence, in input order."""
    from fairseq_sigmoid_qe.api import QEModel

    _, _, (sources, references), spm_model = test_text
    batches = QEModel.from_checkpoint(head_checkpoint, real_data_bin, spm_model, batch_size=3)
    batches.chunk_sentences = 7
    single = QEModel.from_checkpoint(head_checkpoint, real_data_bin, spm_model, batch_size=1)
    sizes = []
    chunked = [record for _, record in batches.records(sources, on_batch=sizes.append)]
    assert sum(sizes) == len(sources) and max(sizes) == 3 and len(sizes) >= 14
    one_by_one = single.translate(sources)
    assert [r["tokens"] for r in chunked] == [r["tokens"] for r in one_by_one]
    assert [r["translation"] for r in chunked] == [r["translation"] for r in one_by_one]
    for a, b in zip(chunked, one_by_one):
        for method in a["sentence_scores"]:
            assert a["token_scores"][method] == pytest.approx(
                b["token_scores"][method], rel=1e-4, abs=1e-5
            )
    scored = [r["tokens"] for r in batches.score(sources, references)]
    assert scored == [r["tokens"] for r in single.score(sources, references)]


def test_nbest_records_carry_ranks(real_data_bin, head_checkpoint, test_text, tmp_path):
    src = test_text[0]
    sources = test_text[2][0][:10]
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    best = command(
        real_data_bin,
        head_checkpoint,
        "translate",
        "--sources",
        tmp_path / "src.txt",
        "--cpu",
        "--quiet",
    )
    nbest = command(
        real_data_bin,
        head_checkpoint,
        "translate",
        "--sources",
        tmp_path / "src.txt",
        "--cpu",
        "--quiet",
        "--nbest",
        "3",
    )
    assert best.returncode == 0 and nbest.returncode == 0, nbest.stderr[-3000:]
    best = [json.loads(line) for line in best.stdout.splitlines()]
    nbest = [json.loads(line) for line in nbest.stdout.splitlines()]
    assert [(r["source"], r["rank"]) for r in nbest] == [(s, k) for s in sources for k in range(3)]
    assert [r for r in nbest if r["rank"] == 0] == best
    assert all(r["rank"] == 0 for r in best)
    for first in range(0, len(nbest), 3):
        assert len({tuple(r["tokens"]) for r in nbest[first : first + 3]}) == 3
    too_many = command(
        real_data_bin, head_checkpoint, "translate", "--sources", src, "--nbest", "6"
    )
    assert one_error_line(too_many).endswith(
        "--nbest 6 is out of range: it must be [1, 5] (at most --beam)"
    )


def test_summary_and_progress_on_stderr(real_data_bin, head_checkpoint, test_text, tmp_path):
    src, ref = test_text[0], test_text[1]
    output = tmp_path / "qe.jsonl"
    result = command(
        real_data_bin,
        head_checkpoint,
        "score",
        "--sources",
        src,
        "--translations",
        ref,
        "--output",
        output,
        "--summary",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    progress = [line for line in result.stderr.splitlines() if " sentences/s, " in line]
    assert progress[-1].startswith("fairseq-sigmoid-qe score: 40/40 sentences (100%), ")
    assert progress[-1].endswith(" elapsed, done")
    summary = [
        line.split()
        for line in result.stderr.splitlines()
        if line.startswith("fairseq-sigmoid-qe score: sentence scores ")
    ]
    assert summary[0][4:] == ["method", "mean", "p10", "p50", "p90"]
    assert [row[4] for row in summary[1:]] == list(records[0]["sentence_scores"])
    for row in summary[1:]:
        values = numpy.array([r["sentence_scores"][row[4]] for r in records])
        values = values[numpy.isfinite(values)]
        expected = [values.mean(), *numpy.quantile(values, [0.1, 0.5, 0.9])]
        assert [float(v) for v in row[5:9]] == pytest.approx(expected, rel=1e-5)
        assert row[9] == f"({values.size}"
    quiet = command(
        real_data_bin, head_checkpoint, "score", "--sources", src, "--translations", ref, "--quiet"
    )
    assert quiet.returncode == 0 and " sentences/s, " not in quiet.stderr
    assert "sentence scores" not in quiet.stderr


def test_failed_run_leaves_no_output_file(
    real_data_bin, head_checkpoint, test_text, tmp_path, monkeypatch
):
    """Records go to OUTPUT.part as they are made; a run stopped after the first is left
    with neither OUTPUT nor OUTPUT.part. A leftover .part file is refused, untouched."""
    from fairseq_sigmoid_qe import api as hub
    from fairseq_sigmoid_qe.cli import raw_text

    src, _, _, spm_model = test_text
    output = tmp_path / "qe.jsonl"
    part = Path(f"{output}.part")
    seen = []
    records = hub.QEModel.records

    def stopped_after_one(self, *args, **kwargs):
        stream = records(self, *args, **kwargs)
        yield next(stream)
        seen.append(part.read_text(encoding="utf-8"))  # written before the run ends
        raise KeyboardInterrupt

    monkeypatch.setattr(hub.QEModel, "records", stopped_after_one)
    with pytest.raises(KeyboardInterrupt):
        raw_text.main(
            [
                "translate",
                "--checkpoint",
                head_checkpoint,
                "--data-dir",
                real_data_bin,
                "--spm-model",
                spm_model,
                "--sources",
                str(src),
                "--output",
                str(output),
                "--quiet",
                "--cpu",
            ]
        )
    assert len(seen) == 1 and json.loads(seen[0])["source"] == test_text[2][0][0]
    assert not output.exists() and not part.exists()
    part.write_text("keep me\n")
    result = command(
        real_data_bin, head_checkpoint, "translate", "--sources", src, "--output", output
    )
    assert one_error_line(result).endswith(
        f"--output {output}: {part} exists; nothing is overwritten"
    )
    assert part.read_text() == "keep me\n" and not output.exists()


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--threads", "0"], "--threads 0 is out of range: it must be at least 1"),
        (["--batch-size", "0"], "--batch-size 0 is out of range: it must be at least 1"),
        (["--nbest", "0"], "--nbest 0 is out of range: it must be [1, 5] (at most --beam)"),
        (["--device", "abacus"], "--device abacus is not a device (cpu, cuda, cuda:N)"),
        (["--cpu", "--device", "cuda"], "--cpu and --device cuda contradict each other"),
    ],
)
def test_bad_option_values_are_one_error_line(tmp_path, arguments, message):
    (tmp_path / "src.txt").write_text("Open the file.\n", encoding="utf-8")
    result = raw_text_here(
        "translate", "--checkpoint", tmp_path / "head.pt", "--data-dir", tmp_path,
        "--sources", tmp_path / "src.txt", *arguments,
    )  # fmt: skip
    assert one_error_line(result).endswith(message)


def test_score_refuses_nbest(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairseq_sigmoid_qe.cli.raw_text",
            "score",
            "--checkpoint",
            "head.pt",
            "--data-dir",
            str(tmp_path),
            "--translations",
            "hyp.txt",
            "--nbest",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    # score has one translation per source: --nbest is not one of its options
    assert one_error_line(result).endswith("unrecognized arguments: --nbest 2")


def test_spm_model_is_found_beside_the_data_dir(tmp_path):
    from fairseq_sigmoid_qe.api import find_spm_model
    from fairseq_sigmoid_qe.core.errors import QEUserError

    data_bin, text = tmp_path / "data-bin", tmp_path / "text"
    data_bin.mkdir()
    text.mkdir()
    assert find_spm_model(str(data_bin)) is None
    (text / "spm.vocab").write_text("")
    (text / "spm.model").write_text("")
    assert find_spm_model(str(data_bin)) == str(text / "spm.model")
    (data_bin / "spm.model").write_text("")
    with pytest.raises(
        QEUserError,
        match=r"--spm-model not given and 2 sentencepiece models "
        r"found near --data-dir \(.*data-bin/spm.model, .*text/spm.model\): "
        r"choose one with --spm-model",
    ):
        find_spm_model(str(data_bin))
    (text / "spm.model").unlink()
    assert find_spm_model(str(data_bin)) == str(data_bin / "spm.model")


def test_output_becomes_its_name_only_when_complete(tmp_path, monkeypatch):
    from fairseq_sigmoid_qe.core import textfiles
    from fairseq_sigmoid_qe.core.errors import QEUserError
    from fairseq_sigmoid_qe.core.textfiles import StreamedOutput

    path = tmp_path / "qe.jsonl"
    part = Path(f"{path}.part")
    output = StreamedOutput(str(path))
    output.write("{}\n")
    assert part.read_text() == "{}\n" and not path.exists()
    output.commit()
    assert path.read_text() == "{}\n" and not part.exists()

    raced = tmp_path / "raced.jsonl"
    output = StreamedOutput(str(raced))
    output.write("{}\n")
    raced.write_text("someone else's\n")
    with pytest.raises(
        QEUserError,
        match=r"appeared while this ran; nothing is overwritten: "
        r"the records are in .*raced.jsonl.part$",
    ):
        output.commit()
    output.discard()  # as main does after a failure: the kept records stay
    assert raced.read_text() == "someone else's\n"
    assert Path(f"{raced}.part").read_text() == "{}\n"

    def no_hard_links(source, target):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(textfiles.os, "link", no_hard_links)
    renamed = tmp_path / "renamed.jsonl"
    output = StreamedOutput(str(renamed))
    output.write("{}\n")
    output.commit()
    assert renamed.read_text() == "{}\n" and not Path(f"{renamed}.part").exists()


def pieces_only(real_data_bin, tmp_path):
    """A data folder holding only the dictionaries (no sentencepiece model beside it) and the
    sentencepiece model to make pieces with: raw text then is taken as pieces."""
    import shutil

    import sentencepiece

    folder = tmp_path / "pieces" / "data-bin"
    folder.mkdir(parents=True)
    for name in ("dict.en.txt", "dict.de.txt"):
        shutil.copy(Path(real_data_bin) / name, folder / name)
    spm = sentencepiece.SentencePieceProcessor(
        model_file=str(Path(real_data_bin).parent / "text" / "spm.model")
    )
    return folder, lambda text: " ".join(spm.encode(text, out_type=str))


def training_line(real_data_bin, side):
    """The first raw training sentence of one side (every piece of it is in the dictionary)."""
    path = Path(real_data_bin).parent / "text" / f"train.raw.{side}"
    return path.read_text(encoding="utf-8").splitlines()[0]


def pieces_command(data_dir, head_checkpoint, *arguments):
    """The command in this process (conftest.raw_text_here)."""
    return raw_text_here(
        *arguments, "--checkpoint", head_checkpoint, "--data-dir", data_dir, "--quiet"
    )


def test_byte_order_mark_is_not_text(real_data_bin, head_checkpoint, tmp_path):
    """A UTF-8 BOM in front of the first line (as Windows editors write) changes no score."""
    data_dir, pieces = pieces_only(real_data_bin, tmp_path)
    source, translation = (training_line(real_data_bin, side) for side in ("en", "de"))
    outputs = []
    for bom in ("", "\ufeff"):
        sources, translations = tmp_path / f"src{bom!r}", tmp_path / f"hyp{bom!r}"
        sources.write_text(bom + pieces(source) + "\n", encoding="utf-8")
        translations.write_text(bom + pieces(translation) + "\n", encoding="utf-8")
        result = pieces_command(
            data_dir, head_checkpoint, "score", "--sources", sources, "--translations",
            translations,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    assert "<unk>" not in json.dumps(outputs[1]) and outputs[1]["source"] == pieces(source)


@pytest.mark.parametrize("symbol", ["<pad>", "</s>", "<s>", "<unk>"])
def test_special_symbols_in_raw_text_are_refused(real_data_bin, head_checkpoint, tmp_path, symbol):
    data_dir, pieces = pieces_only(real_data_bin, tmp_path)
    sources, translations = tmp_path / "src.txt", tmp_path / "hyp.txt"
    sources.write_text(pieces("Open the file.") + "\n" + pieces("Save all.") + "\n")
    translations.write_text(
        pieces("Öffne die Datei.") + "\n" + pieces("Alles") + f" {symbol} " + pieces("speichern.")
    )
    result = pieces_command(
        data_dir, head_checkpoint, "score", "--sources", sources, "--translations", translations
    )
    assert one_error_line(result).endswith(
        f"translation line 2 holds {symbol}, a special symbol of the dictionary, which would "
        "not be scored as the text it is"
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_termination_removes_the_part_file(real_data_bin, head_checkpoint, tmp_path, signum):
    """SIGTERM and SIGHUP, like SIGINT: neither OUTPUT nor OUTPUT.part is left, so the rerun
    is not blocked; the process then ends by the signal."""
    sources, output = tmp_path / "src.txt", tmp_path / "qe.jsonl"
    sources.write_text("Open the file and save all of the files in the folder now.\n" * 400)
    spm_model = Path(real_data_bin).parent / "text" / "spm.model"
    process = subprocess.Popen(
        [sys.executable, "-m", "fairseq_sigmoid_qe.cli.raw_text", "translate", "--sources"]
        + [str(sources), "--output", str(output), "--checkpoint", head_checkpoint]
        + ["--data-dir", real_data_bin, "--spm-model", str(spm_model), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    part = Path(f"{output}.part")
    deadline = time.monotonic() + 600
    while not part.exists():
        assert process.poll() is None, process.stderr.read()
        if time.monotonic() > deadline:  # a hang guard, not a speed bound
            pytest.fail("the command never started writing")
        time.sleep(0.02)
    process.send_signal(signum)
    stderr = process.communicate(timeout=600)[1]
    assert process.returncode == -signum, stderr[-3000:]
    assert "Traceback" not in stderr and f"stopped by {signal.Signals(signum).name}" in stderr
    assert not part.exists() and not output.exists()


def test_translate_by_sampling(real_data_bin, head_checkpoint, test_text, tmp_path):
    """translate --sampling --top-p --temperature --seed: sampled translations, each record
    saying how; the same seed gives the same records, the API the same as the command."""
    from fairseq_sigmoid_qe.api import QEModel

    sources = test_text[2][0][:8]
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    options = ["--sources", tmp_path / "src.txt", "--cpu", "--quiet", "--sampling"]
    options += ["--top-p", "0.8", "--temperature", "1.3", "--nbest", "2"]
    runs = [
        command(real_data_bin, head_checkpoint, "translate", *options, "--seed", seed)
        for seed in ("4", "4", "5")
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-3000:]
    first, again, other = ([loads(line) for line in r.stdout.splitlines()] for r in runs)
    assert first == again
    assert [(r["id"], r["rank"]) for r in first] == [(i, k) for i in range(8) for k in (0, 1)]
    assert all(
        r["decoding"]
        == {"search": "sampling", "samples": 2, "top_p": 0.8, "temperature": 1.3, "seed": 4}
        for r in first
    )
    assert [r["tokens"] for r in first] != [r["tokens"] for r in other]
    beam = command(real_data_bin, head_checkpoint, "translate", *options[:4])  # no --sampling
    beam_records = [loads(line) for line in beam.stdout.splitlines()]
    assert all(r["decoding"] == {"search": "beam", "beam": 5} for r in beam_records)
    assert [r["tokens"] for r in beam_records] != [r["tokens"] for r in first if r["rank"] == 0]
    spm_model = test_text[3]
    qe = QEModel.from_checkpoint(head_checkpoint, real_data_bin, spm_model)
    api = qe.translate(sources, nbest=2, sampling=True, top_p=0.8, temperature=1.3, seed=4)
    assert [r["tokens"] for r in api] == [r["tokens"] for r in first]
    for arguments, message in [
        (["--top-p", "0.8"], "--top-p and --temperature need --sampling"),
        (["--sampling", "--top-p", "1.5"], "--top-p 1.5 is out of range"),
        (["--sampling", "--temperature", "0"], "--temperature 0.0 is out of range"),
    ]:
        refused = command(real_data_bin, head_checkpoint, "translate", *options[:2], *arguments)
        assert message in one_error_line(refused)


def test_the_api_and_the_command_choose_the_device_the_same_way():
    """One rule (api.choose_device): the command's --cpu/--device and the API's device=, the
    GPU when there is one by default."""
    import inspect
    from argparse import Namespace

    import torch

    from fairseq_sigmoid_qe.api import QEModel, choose_device, device_of
    from fairseq_sigmoid_qe.core.errors import QEUserError

    assert inspect.signature(QEModel.from_checkpoint).parameters["device"].default is None
    default = device_of(Namespace(cpu=False, device=None))
    assert choose_device() == default
    assert default.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert choose_device("cpu") == choose_device(torch.device("cpu")) == torch.device("cpu")
    assert device_of(Namespace(cpu=True, device=None)) == torch.device("cpu")
    with pytest.raises(QEUserError, match="--device abacus is not a device"):
        choose_device("abacus")
