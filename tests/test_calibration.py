"""Calibration (no fairseq): isotonic regression and Platt scaling against scikit-learn and
scipy, the decision measures, thresholds, error spans, the calibration file, and the
``calibrate`` command end to end on the synthetic task's exact labels."""

import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, one_error_line
from scipy import optimize

from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.core.words import SENTENCEPIECE_SPACE, detokenize, word_ids, word_spans
from fairseq_sigmoid_qe.demo.synthetic import SyntheticConfig, SyntheticLanguage
from fairseq_sigmoid_qe.evaluation import calibration as cal

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("n, ties", [(1, False), (2, False), (7, True), (300, True), (2000, False)])
def test_isotonic_is_monotone_and_equals_scikit_learn(n, ties):
    isotonic = pytest.importorskip("sklearn.isotonic")
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    if ties:
        x = np.round(x, 1)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(float) + rng.normal(scale=0.1, size=n)
    xs, ys = cal.isotonic_fit(x, y)
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) >= 0)
    queries = np.r_[np.linspace(x.min() - 1, x.max() + 1, 500), x]
    predicted = cal.isotonic_predict(queries, xs, ys)
    assert np.all(np.diff(cal.isotonic_predict(np.sort(queries), xs, ys)) >= 0)
    reference = isotonic.IsotonicRegression(out_of_bounds="clip").fit(x, y)
    np.testing.assert_allclose(predicted, reference.predict(queries), atol=1e-12)


def test_isotonic_hand_example():
    # 1 3 2 4 -> the violators 3, 2 pool to 2.5; the tie at x = 4 pools first to 5
    xs, ys = cal.isotonic_fit([1, 2, 3, 4, 4], [1, 3, 2, 4, 6])
    assert cal.isotonic_predict([1, 2, 3, 4, 0, 9], xs, ys).tolist() == [1, 2.5, 2.5, 5, 1, 5]


def test_platt_minimises_cross_entropy():
    rng = np.random.default_rng(3)
    x = rng.normal(loc=-3, scale=2, size=3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(-(0.8 * x + 1.5)))).astype(float)
    a, b = cal.platt_fit(x, y)

    def loss(theta):
        p = np.clip(cal.platt_predict(x, *theta), 1e-12, 1 - 1e-12)
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

    best = optimize.minimize(
        loss,
        [0.0, 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 10000},
    ).x
    assert (a, b) == pytest.approx(tuple(best), abs=1e-4)
    assert loss((a, b)) <= loss(best) + 1e-12


def test_decision_measures_by_hand_and_against_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    probs, labels = [0.1, 0.4, 0.35, 0.8, 0.95, 0.6], [0, 0, 1, 1, 1, 0]
    # bins: 0.1 -> [0] ; 0.35 -> [1] ; 0.4 -> [0] ; 0.6 -> [0] ; 0.8 -> [1] ; 0.95 -> [1]
    expected_ece = (0.1 + 0.65 + 0.4 + 0.6 + 0.2 + 0.05) / 6
    assert cal.expected_calibration_error(probs, labels) == pytest.approx(expected_ece)
    assert cal.brier(probs, labels) == pytest.approx(metrics.brier_score_loss(labels, probs))
    predicted_bad = np.asarray(probs) < 0.5
    gold_bad = np.asarray(labels) == 0
    assert cal.f1_bad(predicted_bad, gold_bad) == pytest.approx(
        metrics.f1_score(gold_bad, predicted_bad)
    )
    assert cal.matthews(predicted_bad, gold_bad) == pytest.approx(
        metrics.matthews_corrcoef(gold_bad, predicted_bad)
    )
    assert cal.matthews([True] * 3, [True, False, True]) == 0.0


def test_threshold_maximises_f1_of_bad_or_reaches_a_precision():
    rng = np.random.default_rng(5)
    scores = np.round(rng.random(200), 2)
    gold_bad = rng.random(200) > scores
    threshold = cal.bad_threshold(scores, gold_bad)
    cuts = np.r_[np.unique(scores), 1.5]
    best = max(cal.f1_bad(scores < c, gold_bad) for c in cuts)
    assert cal.f1_bad(scores < threshold, gold_bad) == pytest.approx(best)
    precise = cal.bad_threshold(scores, gold_bad, target_precision=0.9)
    flagged = scores < precise
    assert (flagged & gold_bad).sum() / flagged.sum() >= 0.9
    recalls = [
        ((scores < c) & gold_bad).sum()
        for c in cuts
        if (scores < c).any() and ((scores < c) & gold_bad).sum() / (scores < c).sum() >= 0.9
    ]
    assert (flagged & gold_bad).sum() == max(recalls)
    assert cal.bad_threshold([0.2, 0.9], [True, False], target_precision=1.0) == 0.55
    assert cal.bad_threshold([0.2, 0.9], [False, True], target_precision=1.0) is None
    assert 0.9 < cal.bad_threshold([0.2, 0.9], [False, True], target_precision=0.5) < 0.9 + 1e-9
    assert cal.bad_threshold([0.5, 0.5], [False, False], target_precision=0.5) is None


PIECES = ["▁Öffne", "▁die", "▁Da", "tei", "▁", ",", "▁bitte", "▁—", "▁jetzt", "!"]


def test_spans_map_back_to_the_exact_characters():
    text = detokenize(PIECES)
    assert text == "Öffne die Datei , bitte — jetzt!"
    spans = word_spans(text)
    assert len(spans) == max(word_ids(PIECES)) + 1
    assert [text[a:b] for a, b in spans] == text.split()
    tags = ["OK", "BAD", "BAD", "OK", "OK", "BAD", "BAD"]
    errors = cal.error_spans(text, [0.1, 0.8, 0.6, 0.2, 0.3, 0.9, 0.7], tags)
    assert errors == [
        {"start": 6, "end": 15, "text": "die Datei", "confidence": pytest.approx(0.7)},
        {"start": 24, "end": 32, "text": "— jetzt!", "confidence": pytest.approx(0.8)},
    ]
    for error in errors:
        assert text[error["start"] : error["end"]] == error["text"]
    with pytest.raises(ValueError):
        cal.error_spans(text, [0.5], ["BAD"])


def synthetic_records(count, seed, miscalibrated=True):
    """QE records of hypotheses of the synthetic task (some words swapped for another word's
    synonym) with word scores that rank valid words higher but are too high, and the exact
    word labels and sentence qualities."""
    language = SyntheticLanguage.build(SyntheticConfig(seed=1, num_source_words=300))
    rng = np.random.default_rng(seed)
    targets = [t for synonyms in language.lexicon.values() for t in synonyms]
    records, labels, qualities = [], [], []
    for index, (src, ref) in enumerate(language.sample_pairs(rng, count)):
        hyp = [str(rng.choice(targets)) if rng.random() < 0.3 else word for word in ref]
        tags = language.token_labels(src, hyp)
        logits = 2.0 * np.asarray(tags) - 0.5 + rng.normal(scale=1.2, size=len(hyp))
        word = (1 / (1 + np.exp(-(logits + (2.0 if miscalibrated else 0.0))))).tolist()
        log_score = float(np.sum(np.log(word)))
        records.append(
            {
                "id": index,
                "tokens": [SENTENCEPIECE_SPACE + w for w in hyp],
                "detokenized": " ".join(hyp),
                "word_scores": {"sigmoid": word, "softmax": word[::-1]},
                "sentence_scores": {"sigmoid": math.exp(log_score), "softmax": 0.5},
                "sentence_log_scores": {"sigmoid": log_score, "softmax": math.log(0.5)},
            }
        )
        labels.append(" ".join("OK" if t else "BAD" for t in tags))
        qualities.append(language.sentence_quality(src, hyp))
    return records, labels, qualities


def write_set(folder, name, count, seed):
    records, labels, qualities = synthetic_records(count, seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / f"{name}.tags").write_text("".join(line + "\n" for line in labels))
    (folder / f"{name}.gold").write_text("".join(f"{q}\n" for q in qualities))
    return records


def calibrate_command(*arguments):
    """``fairseq-sigmoid-qe calibrate ...`` as the console script runs it."""
    script = (
        "import sys; from fairseq_sigmoid_qe.cli.console import raw_text; "
        "sys.argv[0] = 'fairseq-sigmoid-qe'; sys.exit(raw_text())"
    )
    return subprocess.run(
        [sys.executable, "-c", script, "calibrate", *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def evaluate_command(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "fairseq_sigmoid_qe.cli.evaluate", *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


@pytest.mark.parametrize("kind", ["isotonic", "platt"])
def test_calibrate_command_end_to_end(tmp_path, kind):
    """Fit on a synthetic dev set (exact labels), then on held-out sentences: calibrated
    probabilities are better calibrated than the raw ones, and the records' tags and spans
    follow the file."""
    write_set(tmp_path, "dev", 300, seed=11)
    test_records = write_set(tmp_path, "test", 300, seed=12)
    output = tmp_path / f"{kind}.json"
    result = calibrate_command(
        "--qe",
        tmp_path / "dev.jsonl",
        "--method",
        "sigmoid",
        "--map",
        kind,
        "--gold-scores",
        tmp_path / "dev.gold",
        "--word-labels",
        tmp_path / "dev.tags",
        "--output",
        output,
    )
    assert result.returncode == 0, result.stderr
    assert "sentence after" in result.stdout and "word after" in result.stdout
    saved = json.loads(output.read_text())
    assert saved["format"] == cal.FORMAT and saved["method"] == "sigmoid"
    assert saved["word"]["after"]["ece"] < saved["word"]["before"]["ece"]
    if importlib.util.find_spec("matplotlib") is not None:  # the reliability diagram
        assert (tmp_path / f"{kind}.png").stat().st_size > 1000
    calibration = cal.load_calibration(output, ("sigmoid", "softmax"))

    evaluation = evaluate_command(
        "--qe",
        tmp_path / "test.jsonl",
        "--gold-scores",
        tmp_path / "test.gold",
        "--word-labels",
        tmp_path / "test.tags",
        "--calibration",
        output,
        "--json",
    )
    assert evaluation.returncode == 0, evaluation.stderr
    report = json.loads(evaluation.stdout)
    words = {row["method"]: row for row in report["word_methods"]}
    assert words["sigmoid+calibrated"]["ece"] < words["sigmoid"]["ece"] / 2
    assert words["sigmoid+calibrated"]["f1_bad"] > words["sigmoid"]["f1_bad"]
    sentences = {row["method"]: row for row in report["methods"]}
    assert sentences["sigmoid+calibrated"]["ece"] < sentences["sigmoid"]["ece"]

    threshold = calibration.levels["word"].threshold
    for record in test_records[:50]:
        calibrated = cal.calibrate_record(json.loads(json.dumps(record)), calibration)
        probs = calibrated["calibrated"]["word_scores"]
        tags = calibrated["calibrated"]["word_tags"]
        assert tags == ["OK" if p >= threshold else "BAD" for p in probs]
        text = record["detokenized"]
        bad_words = [w for w, t in zip(text.split(), tags) if t == "BAD"]
        assert [w for e in calibrated["errors"] for w in e["text"].split()] == bad_words
        for error in calibrated["errors"]:
            assert text[error["start"] : error["end"]] == error["text"]
            assert 0 <= error["confidence"] <= 1
        sentence = calibrated["calibrated"]
        assert sentence["sentence_tag"] == (
            "OK"
            if sentence["sentence_score"] >= calibration.levels["sentence"].threshold
            else "BAD"
        )
        assert {k: v for k, v in calibrated.items() if k not in ("calibrated", "errors")} == record
        # the same words in another rendering of the text (a tokenizer's detokenized text, as
        # the raw-text command with --tokenizer/--bpe gives): the spans are on that text
        other = "\u00a0 ".join(text.split()) + " "
        respanned = cal.calibrate_record(json.loads(json.dumps(record)), calibration, text=other)
        assert respanned["calibrated"] == calibrated["calibrated"]
        assert [e["text"].replace("\u00a0", "") for e in respanned["errors"]] == [
            e["text"] for e in calibrated["errors"]
        ]
        for error in respanned["errors"]:
            assert other[error["start"] : error["end"]] == error["text"]


def test_calibration_file_round_trip_and_its_errors(tmp_path):
    x = np.linspace(-3, 3, 50)
    outcomes = (x > 0).astype(float)
    level = cal.LevelCalibration.fit("word", "isotonic", x, outcomes, outcomes == 0)
    path = tmp_path / "c.json"
    path.write_text(cal.Calibration("softmax", {"word": level}).dumps())
    loaded = cal.load_calibration(path, ("sigmoid", "softmax"))
    np.testing.assert_array_equal(loaded.levels["word"](x), level(x))
    assert loaded.levels["word"].threshold == level.threshold

    with pytest.raises(
        QEUserError, match="calibrates the method 'softmax', which this run does not score"
    ):
        cal.load_calibration(path, ("sigmoid",))
    data = json.loads(path.read_text())
    broken = {
        "truncated": path.read_text()[:40],
        "not JSON": "{]",
        "another format": json.dumps({**data, "format": "comet"}),
        "another version": json.dumps({**data, "version": 99}),
        "unsorted knots": json.dumps(
            {**data, "word": {**data["word"], "x": data["word"]["x"][::-1]}}
        ),
        "no level": json.dumps({k: v for k, v in data.items() if k != "word"}),
        "map values outside [0, 1]": json.dumps(
            {**data, "word": {**data["word"], "y": [5 * y for y in data["word"]["y"]]}}
        ),
        "a NaN threshold": path.read_text().replace(
            f'"threshold": {json.dumps(level.threshold)}', '"threshold": NaN'
        ),
    }
    for name, text in broken.items():
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(QEUserError, match="is not a calibration file") as error:
            cal.load_calibration(tmp_path / "bad.json", ("sigmoid", "softmax"))
        assert "\n" not in str(error.value), name
    with pytest.raises(QEUserError, match="cannot read --qe-calibration"):
        cal.load_calibration(tmp_path / "missing.json", ("sigmoid",))


@pytest.mark.parametrize("kind", cal.MAPS)
@pytest.mark.parametrize("bad", [False, True])
def test_gold_of_one_class_cannot_be_calibrated(kind, bad):
    """All OK (or all BAD): every map is constant and the threshold would tag all BAD."""
    x = np.linspace(-3, 3, 40)
    outcomes = np.full(40, 0.0 if bad else 1.0)
    with pytest.raises(QEUserError) as error:
        cal.LevelCalibration.fit("word", kind, x, outcomes, outcomes == 0)
    assert str(error.value) == (
        f"word level: all 40 words of this dev set are {'BAD' if bad else 'OK'} by their gold, "
        "so no OK/BAD threshold can be fitted; calibrate on a dev set with both OK and BAD words"
    )
    with pytest.raises(QEUserError, match="no word of this dev set has a finite score"):
        cal.LevelCalibration.fit("word", kind, x[:0], outcomes[:0], outcomes[:0] == 0)


def test_command_errors_are_one_line(tmp_path):
    records = write_set(tmp_path, "dev", 20, seed=1)
    (tmp_path / "corrupt.json").write_text('{"format": "fairseq-sigmoid-qe-calibration", ')
    all_ok = "".join(" ".join(["OK"] * len(r["tokens"])) + "\n" for r in records)
    (tmp_path / "all-ok.tags").write_text(all_ok)
    (tmp_path / "all-bad.labels").write_text("0\n" * len(records))
    (tmp_path / "b.png").write_text("an earlier diagram")
    cases = [
        (
            calibrate_command(
                "--qe",
                tmp_path / "dev.jsonl",
                "--method",
                "sigmoid",
                "--word-labels",
                tmp_path / "all-ok.tags",
                "--output",
                tmp_path / "a.json",
            ),
            "word level: all ",
        ),
        (
            calibrate_command(
                "--qe",
                tmp_path / "dev.jsonl",
                "--method",
                "sigmoid",
                "--map",
                "platt",
                "--gold-labels",
                tmp_path / "all-bad.labels",
                "--output",
                tmp_path / "a.json",
            ),
            f"sentence level: all {len(records)} sentences of this dev set are BAD by their gold",
        ),
        (
            calibrate_command(
                "--qe",
                tmp_path / "dev.jsonl",
                "--method",
                "comet",
                "--gold-scores",
                tmp_path / "dev.gold",
                "--output",
                tmp_path / "a.json",
            ),
            "--method comet: ",
        ),
        (
            calibrate_command(
                "--qe",
                tmp_path / "dev.jsonl",
                "--method",
                "sigmoid",
                "--output",
                tmp_path / "a.json",
            ),
            "calibrate needs gold",
        ),
        (
            calibrate_command(
                "--qe",
                tmp_path / "dev.jsonl",
                "--method",
                "sigmoid",
                "--gold-scores",
                tmp_path / "dev.gold",
                "--output",
                tmp_path / "dev.jsonl",
            ),
            "exists; nothing is overwritten",
        ),
        (
            calibrate_command(
                "--qe",
                tmp_path / "dev.jsonl",
                "--method",
                "sigmoid",
                "--gold-scores",
                tmp_path / "dev.gold",
                "--target-precision",
                "0",
                "--output",
                tmp_path / "a.json",
            ),
            "--target-precision 0.0 is out",
        ),
        (
            evaluate_command(
                "--qe",
                tmp_path / "dev.jsonl",
                "--gold-scores",
                tmp_path / "dev.gold",
                "--calibration",
                tmp_path / "corrupt.json",
            ),
            "is not a calibration file: not JSON",
        ),
        (
            evaluate_command(
                "--qe",
                tmp_path / "dev.jsonl",
                "--gold-scores",
                tmp_path / "dev.gold",
                "--word-labels",
                tmp_path / "dev.gold",
            ),
            "is not OK or BAD",
        ),
    ]
    if importlib.util.find_spec("matplotlib") is not None:  # else no diagram is drawn
        result = calibrate_command(
            "--qe",
            tmp_path / "dev.jsonl",
            "--method",
            "sigmoid",
            "--gold-scores",
            tmp_path / "dev.gold",
            "--output",
            tmp_path / "b.json",
        )
        message = f"--output {tmp_path / 'b.json'}: its reliability diagram {tmp_path / 'b.png'} "
        cases.append((result, message + "exists; nothing is overwritten"))
    for result, message in cases:
        assert message in one_error_line(result)
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()
    assert (tmp_path / "b.png").read_text() == "an earlier diagram"
