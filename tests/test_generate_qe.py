"""fairseq-generate --print-qe in real subprocesses (QE lines, byte-identical fairseq lines,
--quiet, fallbacks, bad input), the raw-text API and command, and QE read off the search
compared with force-decoding."""

import json
import math
import re

import pytest
from conftest import PACKAGE_DIR, fairseq, fairseq_here, one_error_line

from fairseq_sigmoid_qe.core.qe_methods.records import RECORD_VERSION, loads

pytestmark = pytest.mark.integration


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| ")
METHODS = ("sigmoid", "softmax", "boostedprob")
# fairseq's options of every compared run: n-best lists, batches by tokens, sacrebleu's line;
# hypotheses of the tiny test model stop at 40 tokens.
OPTIONS = [
    "--nbest",
    "2",
    "--post-process",
    "sentencepiece",
    "--max-tokens",
    "300",
    "--scoring",
    "sacrebleu",
    "--max-len-b",
    "40",
]


def generate(data_bin, checkpoint, *extra, check=True):
    return fairseq(
        "generate",
        data_bin,
        "--user-dir",
        PACKAGE_DIR,
        "--path",
        checkpoint,
        "--beam",
        "5",
        "--batch-size",
        "16",
        "--cpu",
        *extra,
        check=check,
    )


def refused_generate(
    data_bin, checkpoint, *extra, options=("--beam", "5", "--batch-size", "16", "--cpu")
):
    """fairseq-generate in this process (conftest.fairseq_here), for refusals found while the
    task is set up; the task named, as the plugin's generate hook names it for the command."""
    return fairseq_here(
        "generate", data_bin, "--user-dir", PACKAGE_DIR, "--task", "translation_qe",
        "--path", checkpoint, *options, *extra,
    )  # fmt: skip


def fairseq_lines(stdout):
    """What fairseq itself prints (its timestamped log lines aside), QE lines removed."""
    return [
        line
        for line in stdout.splitlines()
        if not LOG_LINE.match(line) and not re.match(r"^Q[TW]?-\d+\t", line)
    ]


def by_prefix(stdout, prefix):
    return [line.split("\t") for line in stdout.splitlines() if line.startswith(prefix)]


def read_jsonl(path):
    """The QE records of a file, parsed strictly (NaN and Infinity are not JSON)."""
    return [loads(line) for line in open(path, encoding="utf-8")]


@pytest.fixture(scope="module")
def head_checkpoint(trained_head):
    return str(trained_head[0] / "checkpoint_last.pt")


@pytest.fixture(scope="module")
def runs(real_data_bin, head_checkpoint, tmp_path_factory):
    """The same generation without QE, with --print-qe (defaults) on stdout, and with
    --print-qe and other QE options into --results-path: (stdout, records) of each."""
    tmp = tmp_path_factory.mktemp("runs")
    plain = generate(real_data_bin, head_checkpoint, *OPTIONS)
    with_qe = generate(
        real_data_bin, head_checkpoint, *OPTIONS, "--print-qe", "--qe-output", tmp / "qe.jsonl"
    )
    generate(
        real_data_bin,
        head_checkpoint,
        *OPTIONS,
        "--results-path",
        tmp / "out",
        "--print-qe",
        "--qe-sentence-agg",
        "min",
        "--qe-word-agg",
        "prod",
        "--qe-dominant-at",
        "step",
        "--qe-output",
        tmp / "other.jsonl",
    )
    to_file = (tmp / "out" / "generate-test.txt").read_text(encoding="utf-8")
    return {
        "plain": (plain.stdout, None),
        "qe": (with_qe.stdout, read_jsonl(tmp / "qe.jsonl")),
        "file": (to_file, read_jsonl(tmp / "other.jsonl")),
    }


def test_fairseq_output_byte_identical(runs):
    plain = fairseq_lines(runs["plain"][0])
    assert plain == fairseq_lines(runs["qe"][0]) == fairseq_lines(runs["file"][0])
    assert any(line.startswith("Generate test with beam=5") and "BLEU" in line for line in plain)
    assert "Q-" not in runs["plain"][0]


def test_every_hypothesis_gets_qe_lines(runs):
    for with_qe, records in (runs["qe"], runs["file"]):
        hypotheses = by_prefix(with_qe, "H-")
        sentence = by_prefix(with_qe, "Q-")
        tokens = by_prefix(with_qe, "QT-")
        words = by_prefix(with_qe, "QW-")
        detok = by_prefix(with_qe, "D-")
        sources = {int(s[0][2:]): s[1] for s in by_prefix(with_qe, "S-")}
        assert len(hypotheses) == len(sentence) == len(tokens) == len(words) == len(records)
        assert len(hypotheses) == 2 * len(sources) > 100
        lines = [
            line.split("\t", 1)[0][:2]
            for line in with_qe.splitlines()
            if re.match(r"^(P|Q|QT|QW)-\d+\t", line)
        ]
        assert lines == ["P-", "Q-", "QT", "QW"] * len(hypotheses)  # QE right after its P-
        for h, q, qt, qw, d, record in zip(hypotheses, sentence, tokens, words, detok, records):
            assert h[0][2:] == q[0][2:] == qt[0][3:] == qw[0][3:]
            assert len(qt[1].split()) == len(record["tokens"])
            assert "".join(record["tokens"]).replace("\u2581", " ").strip() == h[2]
            assert record["translation"] == d[2]
            assert record["version"] == RECORD_VERSION
            assert record["decoding"] == {"search": "beam", "beam": 5}
            assert record["source"] == sources[record["id"]]
            assert len(qw[1].split()) == len(d[2].split())
            values = [float(x) for x in q[1:]] + [float(x) for x in qt[1].split()]
            assert all(0.0 <= v <= 1.0 for v in values)


def test_sentence_score_is_product_of_token_scores(runs):
    with_qe, records = runs["qe"]
    sentence = by_prefix(with_qe, "Q-")
    tokens = by_prefix(with_qe, "QT-")
    for record, q, qt in zip(records, sentence, tokens):
        scores = record["token_scores"]
        assert [f"{s:.4f}" for s in scores["sigmoid"]] == qt[1].split()
        for method, printed in zip(METHODS, q[1:]):
            assert float(printed) == pytest.approx(math.prod(scores[method]), rel=1e-5)
            assert record["sentence_scores"][method] == pytest.approx(float(printed), rel=1e-5)
        assert record["id"] == int(q[0][2:])


def test_softmax_baseline_matches_fairseq_positional_scores(runs):
    with_qe, records = runs["qe"]
    positional = by_prefix(with_qe, "P-")
    for record, p in zip(records, positional):
        log2_probs = [float(x) for x in p[1].split()][:-1]  # EOS excluded
        expected = [2**x for x in log2_probs]
        assert record["token_scores"]["softmax"] == pytest.approx(expected, abs=2e-4)


def test_results_path_and_other_options(runs):
    """QE lines go where fairseq writes (--results-path); the sentence/word aggregation
    options are applied; dominant sets taken at every search step give the scores of the
    default (recomputed from the used rows: this model is narrow)."""
    with_qe, records = runs["file"]
    sentence, detok = by_prefix(with_qe, "Q-"), by_prefix(with_qe, "D-")
    assert len(sentence) == len(records) == len(by_prefix(with_qe, "H-")) > 50
    for record, default, q, d in zip(records, runs["qe"][1], sentence, detok):
        assert record["tokens"] == default["tokens"]
        for method in METHODS:
            tokens, words = record["token_scores"][method], record["word_scores"][method]
            assert tokens == pytest.approx(default["token_scores"][method], rel=1e-4, abs=1e-6)
            if not tokens:  # an empty hypothesis: no sentence score (NaN)
                assert math.isnan(record["sentence_scores"][method])
                continue
            assert record["sentence_scores"][method] == min(tokens)
            assert len(words) == len(d[2].split())
            assert math.prod(words) == pytest.approx(math.prod(tokens), rel=1e-9)
        if record["tokens"]:
            assert float(q[1]) == pytest.approx(min(record["token_scores"]["sigmoid"]), rel=1e-5)


@pytest.fixture(scope="module")
def reference_run(real_data_bin, head_checkpoint, tmp_path_factory):
    """--score-reference --print-qe --qe-include-eos --quiet: (stdout, records)."""
    jsonl = tmp_path_factory.mktemp("reference") / "qe.jsonl"
    result = generate(
        real_data_bin,
        head_checkpoint,
        "--score-reference",
        "--print-qe",
        "--qe-include-eos",
        "--quiet",
        "--qe-output",
        jsonl,
    )
    return result.stdout, read_jsonl(jsonl)


def test_include_eos_and_score_reference(reference_run):
    stdout, records = reference_run
    tokens = by_prefix(stdout, "QT-")
    assert len(tokens) == len(records) > 50
    for record, qt in zip(records, tokens):
        assert record["tokens"][-1] == "</s>"
        assert record["tokens"][:-1] == record["translation"].split()  # no --post-process
        assert record["decoding"] == {"search": "forced"}
        assert len(qt[1].split()) == len(record["tokens"]) == len(record["token_scores"]["sigmoid"])
        assert record["word_scores"] is None and not by_prefix(stdout, "QW-")


def test_quiet_still_prints_qe_lines(reference_run):
    """--quiet: fairseq prints no hypotheses, --print-qe still prints every Q- line."""
    stdout, records = reference_run
    for prefix in ("S-", "T-", "H-", "P-"):
        assert not by_prefix(stdout, prefix)
    sentence = by_prefix(stdout, "Q-")
    assert [int(q[0][2:]) for q in sentence] == [r["id"] for r in records]
    for record, q in zip(records, sentence):
        for method, printed in zip(METHODS, q[1:]):
            assert float(printed) == pytest.approx(record["sentence_scores"][method], rel=1e-5)


def test_ensemble_falls_back_to_force_decoding_and_says_so(real_data_bin, head_checkpoint, runs):
    """An ensemble's search cannot be read for one model's QE: one warning line on stderr,
    and QE force-decoded with the first model (here both models are the head, so the scores
    equal those read off the single model's search)."""
    result = generate(real_data_bin, f"{head_checkpoint}:{head_checkpoint}", *OPTIONS, "--print-qe")
    warnings = [line for line in result.stderr.splitlines() if "fairseq-sigmoid-qe:" in line]
    assert len(warnings) == 1 and "warning:" in warnings[0] and "ensemble" in warnings[0]
    single, ensemble = by_prefix(runs["qe"][0], "QT-"), by_prefix(result.stdout, "QT-")
    assert len(single) == len(ensemble)
    same = [
        (a, b)
        for a, b, ha, hb in zip(
            single, ensemble, by_prefix(runs["qe"][0], "H-"), by_prefix(result.stdout, "H-")
        )
        if ha[2] == hb[2]
    ]
    assert len(same) > 0.9 * len(single)
    for a, b in same:
        assert [float(x) for x in a[1].split()] == pytest.approx(
            [float(x) for x in b[1].split()], abs=2e-4
        )


def test_print_qe_without_a_head_fails_clearly(real_data_bin, base_checkpoint, tmp_path):
    result = generate(
        real_data_bin,
        base_checkpoint,
        "--print-qe",
        "--qe-output",
        tmp_path / "qe.jsonl",
        check=False,
    )
    assert result.returncode != 0
    assert not (tmp_path / "qe.jsonl").exists()
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "sigmoid head" in errors[0]


def test_existing_qe_output_is_not_overwritten(real_data_bin, head_checkpoint, tmp_path):
    existing = tmp_path / "qe.jsonl"
    existing.write_text("keep me\n")
    result = generate(
        real_data_bin, head_checkpoint, "--print-qe", "--qe-output", existing, check=False
    )
    assert result.returncode != 0 and "exists" in result.stderr
    assert existing.read_text() == "keep me\n"


def test_data_folder_without_dictionaries_is_refused(real_data_bin, head_checkpoint, tmp_path):
    """fairseq's task setup would end in a traceback: --print-qe, the raw-text command."""
    import os

    from fairseq_sigmoid_qe.cli import raw_text
    from fairseq_sigmoid_qe.core.errors import QEUserError

    folder = tmp_path / "no-dicts"
    folder.mkdir()
    for name in os.listdir(real_data_bin):
        if name.endswith((".bin", ".idx")):
            os.symlink(os.path.join(real_data_bin, name), folder / name)
    message = f"data folder {folder} has no dict.en.txt"
    result = refused_generate(folder, head_checkpoint, "--print-qe")
    assert message in one_error_line(result)
    (tmp_path / "src.txt").write_text("a b\n")
    with pytest.raises(QEUserError, match=message):
        raw_text.main(
            [
                "translate",
                "--checkpoint",
                head_checkpoint,
                "--data-dir",
                str(folder),
                "--spm-model",
                raw_test_text(real_data_bin)[2],
                "--sources",
                str(tmp_path / "src.txt"),
            ]
        )


def test_qe_output_in_a_missing_folder_is_refused_before_any_work(
    real_data_bin, head_checkpoint, tmp_path
):
    output = tmp_path / "nowhere" / "qe.jsonl"
    result = generate(
        real_data_bin, head_checkpoint, "--print-qe", "--qe-output", output, check=False
    )
    line = one_error_line(result)
    assert line.endswith(f"--qe-output {output}: folder {output.parent} does not exist")
    assert not re.search(r"^H-\d+", result.stdout, flags=re.M)  # nothing translated


def raw_test_text(real_data_bin):
    from pathlib import Path

    text = Path(real_data_bin).parent / "text"
    return (
        (text / "test.raw.en").read_text().splitlines(),
        (text / "test.raw.de").read_text().splitlines(),
        str(text / "spm.model"),
    )


def test_raw_text_api_scores_equal_the_cli(real_data_bin, head_checkpoint, reference_run):
    from fairseq_sigmoid_qe.api import QEModel

    cli = {r["id"]: r for r in reference_run[1]}
    sources, references, spm_model = raw_test_text(real_data_bin)
    qe = QEModel.from_checkpoint(head_checkpoint, real_data_bin, spm_model, include_eos=True)
    api = qe.score(sources, references)
    assert len(api) == len(sources) and len(cli) > 50
    for index in cli:
        record = api[index]
        assert record["tokens"] == cli[index]["tokens"]
        for method in METHODS:
            assert record["token_scores"][method] == pytest.approx(
                cli[index]["token_scores"][method], rel=1e-4, abs=1e-6
            )
            assert record["sentence_scores"][method] == pytest.approx(
                cli[index]["sentence_scores"][method], rel=1e-4, abs=1e-9
            )
    qe = QEModel.from_checkpoint(head_checkpoint, real_data_bin, spm_model)
    translated = qe.translate(sources[:20])
    assert all(
        0 <= r["sentence_scores"]["sigmoid"] <= 1
        for r in translated
        if r["token_scores"]["sigmoid"]
    )
    kept = [i for i, r in enumerate(translated) if r["translation"].strip()]
    assert len(kept) >= 10
    rescored = qe.score([sources[i] for i in kept], [translated[i]["translation"] for i in kept])
    same = [
        (translated[i], r) for i, r in zip(kept, rescored) if translated[i]["tokens"] == r["tokens"]
    ]
    assert len(same) >= 8  # translate() reads QE off the search; score() off the scorer
    for searched, forced in same:
        assert "</s>" not in searched["tokens"]
        for method in METHODS:
            assert searched["token_scores"][method] == pytest.approx(
                forced["token_scores"][method], rel=1e-3, abs=2e-4
            )


def test_console_command(real_data_bin, head_checkpoint, tmp_path):
    import subprocess
    import sys

    sources, references, spm_model = raw_test_text(real_data_bin)
    (tmp_path / "src.txt").write_text("\n".join(sources[:3]) + "\n")
    (tmp_path / "tgt.txt").write_text("\n".join(references[:3]) + "\n")
    command = [
        sys.executable,
        "-m",
        "fairseq_sigmoid_qe.cli.raw_text",
        "score",
        "--checkpoint",
        head_checkpoint,
        "--data-dir",
        real_data_bin,
        "--spm-model",
        spm_model,
        "--sources",
        str(tmp_path / "src.txt"),
        "--translations",
        str(tmp_path / "tgt.txt"),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["source"] for r in lines] == sources[:3]


@pytest.mark.parametrize(
    "broken,message",
    [
        ("checkpoint", "missing"),
        ("sources", "missing"),
        ("empty_line", "translation line 2 is empty"),
    ],
)
def test_console_command_bad_input(real_data_bin, head_checkpoint, tmp_path, broken, message):
    """Bad input is one QEUserError (one line through the console's excepthook)."""
    from fairseq_sigmoid_qe.cli import raw_text
    from fairseq_sigmoid_qe.core.errors import QEUserError

    sources, references, spm_model = raw_test_text(real_data_bin)
    (tmp_path / "src.txt").write_text("\n".join(sources[:3]) + "\n")
    (tmp_path / "tgt.txt").write_text(references[0] + "\n\n" + references[2] + "\n")
    paths = {"checkpoint": head_checkpoint, "sources": str(tmp_path / "src.txt")}
    paths[broken] = str(tmp_path / "missing")
    with pytest.raises(QEUserError, match=message):
        raw_text.main(
            [
                "score",
                "--checkpoint",
                paths["checkpoint"],
                "--data-dir",
                real_data_bin,
                "--spm-model",
                spm_model,
                "--sources",
                paths["sources"],
                "--translations",
                str(tmp_path / "tgt.txt"),
            ]
        )


def recorded_and_forced(model, task, generator, sample):
    """Scores of every returned hypothesis read off the generator's search record, and
    force-decoded anew."""
    import torch

    from fairseq_sigmoid_qe.core.qe_methods import score_tokens

    with torch.no_grad():
        hypos = generator.generate([model], sample)
    dictionary = task.target_dictionary
    pairs = [(i, hypo) for i, beams in enumerate(hypos) for hypo in beams]
    rows = torch.tensor([i for i, _ in pairs])
    tokens = [hypo["tokens"] for _, hypo in pairs]
    searched = generator.search_record.token_scores(
        rows, tokens, [h["positional_scores"] for _, h in pairs], dictionary.pad(), dictionary.eos()
    )
    padded = torch.nn.utils.rnn.pad_sequence(
        tokens, batch_first=True, padding_value=dictionary.pad()
    )
    net_input = sample["net_input"]
    forced = score_tokens(
        model,
        net_input["src_tokens"][rows],
        net_input["src_lengths"][rows],
        padded,
        dictionary.pad(),
        dictionary.eos(),
    )
    return searched, forced, pairs


def first_test_batch(task, sentences):
    task.load_dataset("test")
    return next(
        iter(
            task.get_batch_iterator(
                dataset=task.dataset("test"), max_sentences=sentences
            ).next_epoch_itr(shuffle=False)
        )
    )


def assert_same_scores(searched, forced):
    import torch

    assert searched is not None, "the decoding was not recorded"
    scores, mask = searched
    assert torch.equal(mask, forced.mask)
    for method in ("sigmoid", "softmax", "boostedprob"):
        torch.testing.assert_close(scores[method], forced.method(method), atol=2e-4, rtol=1e-3)


def tempered_scores(model, task, sample, pairs, forced, temperature):
    """Softmax and BoostedProb of the hypotheses under the tempered distribution the search
    used (softmax(z / T)), force-decoded; the sigmoid head ignores the temperature."""
    import torch

    from fairseq_sigmoid_qe.core.dominant import boosted_prob
    from fairseq_sigmoid_qe.core.qe_methods import shift_right

    dictionary = task.target_dictionary
    rows = torch.tensor([i for i, _ in pairs])
    padded = torch.nn.utils.rnn.pad_sequence(
        [h["tokens"] for _, h in pairs], batch_first=True, padding_value=dictionary.pad()
    )
    net_input = sample["net_input"]
    _, logits = model.frozen_forward(
        net_input["src_tokens"][rows],
        net_input["src_lengths"][rows],
        shift_right(padded, dictionary.eos(), dictionary.pad()),
    )
    log_probs = torch.log_softmax(logits.float() / temperature, dim=-1)
    zero = torch.zeros(())
    forced.scores["softmax"] = torch.where(
        forced.mask, log_probs.gather(-1, padded.unsqueeze(-1)).squeeze(-1).exp(), zero
    )
    forced.scores["boostedprob"] = torch.where(forced.mask, boosted_prob(log_probs, padded), zero)
    return forced


@pytest.fixture(scope="module")
def head_model(real_data_bin, head_checkpoint):
    from fairseq_sigmoid_qe.api import load_head_model

    return load_head_model(head_checkpoint, real_data_bin)


@pytest.mark.parametrize(
    "dominant_at,rows_per_chunk,temperature",
    [
        ("used_rows", None, 1.0),
        ("used_rows", 7, 1.0),
        ("used_rows", None, 1.5),
        ("step", None, 1.0),
        ("step", None, 1.5),
    ],
)
def test_scores_read_off_the_search_equal_force_decoding(
    head_model, dominant_at, rows_per_chunk, temperature
):
    """--print-qe takes beam-search QE from the search itself; it must equal re-scoring the
    finished hypotheses by force-decoding, for every hypothesis of the beam (BoostedProb from
    dominant sets taken at every step, or recomputed from the used rows a chunk at a time;
    with --temperature the search normalises tempered logits and so does QE)."""
    from fairseq_sigmoid_qe.core.qe_options import QEOptions
    from fairseq_sigmoid_qe.decoding.recording import RecordingSequenceGenerator

    model, task = head_model
    generator = RecordingSequenceGenerator(
        [model],
        task.target_dictionary,
        beam_size=4,
        max_len_b=60,
        temperature=temperature,
        qe_options=QEOptions(dominant_at=dominant_at),
        qe_rows_per_chunk=rows_per_chunk,
    )
    sample = first_test_batch(task, 12)
    searched, forced, pairs = recorded_and_forced(model, task, generator, sample)
    kept = [record.dominant is not None for record in generator.search_record.steps.values()]
    assert all(kept) if dominant_at == "step" else not any(kept)
    if temperature != 1:
        forced = tempered_scores(model, task, sample, pairs, forced, temperature)
    assert_same_scores(searched, forced)
    assert len(pairs) == 4 * len(sample["id"])
    assert not model.decoder.output_projection._forward_hooks  # the hook is gone


@pytest.mark.parametrize("width,each_step", [(128, False), (511, False), (512, True), (1024, True)])
def test_dominant_sets_each_step_from_a_decoder_width(width, each_step):
    """``dominant_at="auto"``: wide decoders (re-applying the projection costs V·d per row)
    summarise each step's rows; narrow ones recompute the used rows."""
    from fairseq_sigmoid_qe.decoding.recording import dominant_each_step

    assert dominant_each_step(width) is each_step
    assert dominant_each_step(width, "step")
    assert not dominant_each_step(width, "used_rows")
    with pytest.raises(ValueError, match="dominant_at"):
        dominant_each_step(width, "sometimes")


def test_scores_read_off_the_scorer_equal_force_decoding(head_model):
    """--score-reference: fairseq's scorer runs one forward pass; QE reads h and the dominant
    sets off it instead of a second pass, with the same scores."""
    from fairseq_sigmoid_qe.decoding.recording import RecordingSequenceScorer

    model, task = head_model
    scorer = RecordingSequenceScorer(task.target_dictionary)
    sample = first_test_batch(task, 9)
    searched, forced, pairs = recorded_and_forced(model, task, scorer, sample)
    assert_same_scores(searched, forced)
    assert len(pairs) == len(sample["id"])
    assert all(record.dominant is not None for record in scorer.search_record.steps.values())


def test_record_declines_what_it_did_not_record(head_model):
    """A hypothesis whose positions the record never saw gives None (the caller then
    force-decodes): here tokens that no decoder input of the batch produced."""
    import torch

    from fairseq_sigmoid_qe.decoding.recording import RecordingSequenceScorer

    model, task = head_model
    scorer = RecordingSequenceScorer(task.target_dictionary)
    sample = first_test_batch(task, 4)
    with torch.no_grad():
        hypos = scorer.generate([model], sample)
    record = scorer.search_record
    tokens = [h[0]["tokens"] for h in hypos]
    positional = [h[0]["positional_scores"] for h in hypos]
    pad, eos = task.target_dictionary.pad(), task.target_dictionary.eos()
    rows = torch.arange(len(tokens))
    assert record.token_scores(rows, tokens, positional, pad, eos) is not None
    altered = [t.clone() for t in tokens]
    altered[1][0] = (altered[1][0] + 1) % len(task.target_dictionary)
    longer = [torch.cat([t[:-1], t[:-1], t[-1:]]) for t in tokens]
    assert record.token_scores(rows, altered, positional, pad, eos) is None
    assert (
        record.token_scores(rows, longer, [torch.cat([p, p]) for p in positional], pad, eos) is None
    )


def test_a_declining_record_is_said_once_and_force_decoded(head_model, capsys, monkeypatch):
    """Hypotheses the search record does not cover are force-decoded, with one warning line
    per process (never silently)."""
    import torch

    from fairseq_sigmoid_qe.core import errors
    from fairseq_sigmoid_qe.decoding.recording import RecordingSequenceScorer, hypothesis_records

    monkeypatch.setattr(errors, "_WARNED", set())
    model, task = head_model
    dictionary = task.target_dictionary
    scorer = RecordingSequenceScorer(dictionary)
    sample = first_test_batch(task, 4)
    with torch.no_grad():
        hypos = scorer.generate([model], sample)
    tokens = [h[0]["tokens"].clone() for h in hypos]
    tokens[0][0] = (tokens[0][0] + 1) % len(dictionary)  # a prefix the scorer never saw
    positional = [h[0]["positional_scores"] for h in hypos]
    rows = list(range(len(tokens)))
    for _ in range(2):
        records = hypothesis_records(
            model, sample, rows, tokens, dictionary, scorer.search_record, positional
        )
    forced = hypothesis_records(model, sample, rows, tokens, dictionary)  # no record: forced
    assert [r["tokens"] for r in records] == [r["tokens"] for r in forced]
    for record, expected in zip(records, forced):
        for method in METHODS:
            assert record["token_scores"][method] == pytest.approx(
                expected["token_scores"][method], rel=1e-4, abs=1e-6
            )
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "force-decoded" in warnings[0]


def test_generate_hook_is_scoped_to_one_print_qe_run(monkeypatch, tmp_path):
    """In a fairseq-generate run with --print-qe (only there) the hook adds --task
    translation_qe and makes _main write through a QEPrinter; when the run ends the original
    _main and command line are back."""
    import io
    import sys
    from types import SimpleNamespace

    from fairseq_sigmoid_qe.core.errors import QEUserError
    from fairseq_sigmoid_qe.decoding.generate_output import QEPrinter, active_printer
    from fairseq_sigmoid_qe.tasks import generate_hook

    seen = {}

    def original_main(cfg, output_file):
        seen.update(stream=output_file, printer=active_printer(), argv=list(sys.argv))
        output_file.write("P-0\t-0.5\n")
        return "scorer"

    module = SimpleNamespace(_main=original_main)
    monkeypatch.setattr(generate_hook, "_generate_modules", lambda: [module])
    monkeypatch.setattr(generate_hook, "_running_generate", lambda: True)
    monkeypatch.setattr(generate_hook.install, "done", False, raising=False)
    checked = []
    monkeypatch.setattr(generate_hook.checkpoint_files, "check_loadable", checked.append)
    command = ["fairseq-generate", "data-bin", "--path", "head.pt", "--print-qe"]
    monkeypatch.setattr(sys, "argv", list(command))
    generate_hook.install()
    assert sys.argv == [command[0], "--task", "translation_qe", *command[1:]]
    assert module._main is not original_main
    cfg = SimpleNamespace(
        common_eval=SimpleNamespace(quiet=False, post_process=None, path="head.pt:other.pt"),
        generation=SimpleNamespace(nbest=1),
        bpe=None,
        tokenizer=None,
        task=SimpleNamespace(qe_output=None),
    )
    stream = io.StringIO()
    assert module._main(cfg, stream) == "scorer"
    assert isinstance(seen["stream"], QEPrinter) and seen["printer"] is seen["stream"]
    assert stream.getvalue() == "P-0\t-0.5\n" and checked == ["head.pt", "other.pt"]
    assert module._main is original_main and sys.argv == command and active_printer() is None
    for argv, message in (
        ([*command, "--task", "translation"], "leave out --task"),
        ([*command[:-1], "--qe-output", "x.jsonl"], "needs --print-qe"),
    ):
        monkeypatch.setattr(generate_hook.install, "done", False, raising=False)
        monkeypatch.setattr(sys, "argv", list(argv))
        with pytest.raises(QEUserError, match=message):
            generate_hook.install()
        assert module._main is original_main


@pytest.mark.parametrize("fails", [False, True])
def test_qe_output_is_its_name_only_when_the_run_succeeds(monkeypatch, tmp_path, fails):
    """--qe-output is written through QE_OUTPUT.part: renamed when fairseq-generate's run
    ends well, removed when it fails (never left half-written)."""
    import io
    import sys
    from types import SimpleNamespace

    from fairseq_sigmoid_qe.core.textfiles import StreamedOutput
    from fairseq_sigmoid_qe.tasks import generate_hook

    output = tmp_path / "qe.jsonl"

    def original_main(cfg, printer):
        printer.jsonl = StreamedOutput(str(output), "--qe-output")  # as its first record does
        printer.jsonl.write("{}\n")
        assert (tmp_path / "qe.jsonl.part").exists() and not output.exists()
        if fails:
            raise RuntimeError("fairseq failed")

    module = SimpleNamespace(_main=original_main)
    monkeypatch.setattr(generate_hook, "_generate_modules", lambda: [module])
    monkeypatch.setattr(generate_hook, "_running_generate", lambda: True)
    monkeypatch.setattr(generate_hook.install, "done", False, raising=False)
    monkeypatch.setattr(
        sys, "argv", ["fairseq-generate", "data-bin", "--print-qe", "--qe-output", str(output)]
    )
    monkeypatch.setattr(generate_hook.checkpoint_files, "check_loadable", lambda path: None)
    generate_hook.install()
    cfg = SimpleNamespace(
        common_eval=SimpleNamespace(quiet=False, post_process=None, path="head.pt"),
        generation=SimpleNamespace(nbest=1),
        bpe=None,
        tokenizer=None,
        task=SimpleNamespace(qe_output=str(output)),
    )
    if fails:
        with pytest.raises(RuntimeError):
            module._main(cfg, io.StringIO())
        assert not output.exists()
    else:
        module._main(cfg, io.StringIO())
        assert output.read_text() == "{}\n"
    assert not (tmp_path / "qe.jsonl.part").exists()
