"""QE evaluator: metrics against scipy / brute force, gold loading, CLI output and errors."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import sacrebleu
from conftest import REPO
from scipy import stats

from fairseq_sigmoid_qe.cli import evaluate as cli_evaluate
from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.core.textfiles import read_lines
from fairseq_sigmoid_qe.evaluation.ambiguity import ambiguity_report
from fairseq_sigmoid_qe.evaluation.gold import (
    gold_values,
    load_gold,
    load_references,
    reference_word_labels,
    word_gold,
)
from fairseq_sigmoid_qe.evaluation.metrics import (
    binary_cross_entropy,
    kendall,
    pearson,
    prediction_rejection_ratio,
    roc_auc,
    spearman,
)
from fairseq_sigmoid_qe.evaluation.records import hypothesis_text, load_records
from fairseq_sigmoid_qe.evaluation.report import evaluate_methods

pytestmark = pytest.mark.unit

ERROR_PREFIX = "fairseq-sigmoid-qe evaluate: error:"


def brute_force_prr(confidence, quality, max_rejection=1.0):
    """PRR from explicit subsets: reject the k least confident, k = 0 .. int(r * n) - 1."""
    n = len(quality)
    steps = int(max_rejection * n)

    def area(scores):
        order = sorted(range(n), key=lambda i: -scores[i])
        return sum(np.mean([quality[i] for i in order[: n - k]]) for k in range(steps)) / steps

    return (area(confidence) - np.mean(quality)) / (area(quality) - np.mean(quality))


def brute_force_auc(scores, labels):
    pairs = [
        (p, q)
        for p, lp in zip(scores, labels)
        if lp == 1
        for q, lq in zip(scores, labels)
        if lq == 0
    ]
    return sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in pairs) / len(pairs)


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def write_lines(path, values):
    path.write_text("".join(f"{v}\n" for v in values), encoding="utf-8")
    return str(path)


def make_records(scores_by_method, ranks=None, shuffle_seed=0):
    """Records with ids 0..n-1 (written in shuffled order) and optional extra ranks."""
    n = len(next(iter(scores_by_method.values())))
    records = [
        {
            "id": i,
            "rank": 0,
            "tokens": ["\u2581w", "</s>"],
            "sentence_scores": {m: float(v[i]) for m, v in scores_by_method.items()},
        }
        for i in range(n)
    ]
    for i in range(n) if ranks else []:
        records.append(
            {
                "id": i,
                "rank": 1,
                "tokens": ["\u2581x"],
                "sentence_scores": {m: -1.0 for m in scores_by_method},
            }
        )
    order = np.random.default_rng(shuffle_seed).permutation(len(records))
    return [records[j] for j in order]


def run_cli(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "fairseq_sigmoid_qe.cli.evaluate", *arguments],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_equal_scipy(seed):
    rng = np.random.default_rng(seed)
    gold = rng.normal(size=50)
    predicted = 0.5 * gold + rng.normal(size=50)
    assert pearson(predicted, gold) == pytest.approx(stats.pearsonr(predicted, gold)[0])
    assert spearman(predicted, gold) == pytest.approx(stats.spearmanr(predicted, gold)[0])
    assert kendall(predicted, gold) == pytest.approx(stats.kendalltau(predicted, gold)[0])
    assert pearson(predicted, gold) > 0.2


def test_known_correlations():
    gold = np.array([0.1, 0.4, 0.2, 0.9])
    assert pearson(3 * gold + 1, gold) == pytest.approx(1.0)
    assert spearman(np.exp(gold), gold) == pytest.approx(1.0)
    assert kendall(-gold, gold) == pytest.approx(-1.0)


def test_constant_column_gives_nan():
    gold = [0.1, 0.5, 0.3]
    for metric in (pearson, spearman, kendall):
        assert math.isnan(metric([0.7, 0.7, 0.7], gold))
        assert math.isnan(metric(gold, [1.0, 1.0, 1.0]))
    assert math.isnan(prediction_rejection_ratio(gold, [1.0, 1.0, 1.0]))
    assert prediction_rejection_ratio([0.7, 0.7, 0.7], gold) == pytest.approx(0.0)


def test_prr_oracle_anti_oracle_and_hand_example():
    rng = np.random.default_rng(3)
    quality = rng.uniform(size=40)
    assert prediction_rejection_ratio(quality, quality) == pytest.approx(1.0)
    assert prediction_rejection_ratio(np.exp(quality), quality) == pytest.approx(1.0)
    assert prediction_rejection_ratio(-quality, quality) < -0.5
    # kept means after rejecting 0..3: .575, .7, .6, .7 (area .64375); oracle .74375, random .575
    confidence, quality = [0.1, 0.4, 0.35, 0.8], [0.2, 0.5, 0.9, 0.7]
    assert prediction_rejection_ratio(confidence, quality) == pytest.approx(11 / 27)


def test_prr_random_confidence_is_zero_in_expectation():
    rng = np.random.default_rng(4)
    quality = rng.uniform(size=200)
    values = [prediction_rejection_ratio(rng.uniform(size=200), quality) for _ in range(200)]
    assert abs(np.mean(values)) < 0.03
    assert np.std(values) > 0.01


@pytest.mark.parametrize("max_rejection", [1.0, 0.5])
def test_prr_equals_brute_force(max_rejection):
    rng = np.random.default_rng(5)
    quality = rng.uniform(size=30)
    confidence = quality + rng.normal(scale=0.3, size=30)
    assert prediction_rejection_ratio(confidence, quality, max_rejection) == (
        pytest.approx(brute_force_prr(confidence, quality, max_rejection))
    )


def test_prr_ties_count_as_random_order():
    quality = [1.0, 0.0, 0.5, 0.5]
    tied = prediction_rejection_ratio([1.0, 1.0, 0.0, 0.0], quality)
    orders = [brute_force_prr(c, quality) for c in ([2, 1, 0, 0], [1, 2, 0, 0])]
    assert tied == pytest.approx(np.mean(orders))


@pytest.mark.parametrize("seed", [0, 1])
def test_roc_auc_equals_pair_count(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=40)
    scores = np.round(labels * 0.3 + rng.uniform(size=40), 1)  # rounding makes ties
    assert roc_auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels))
    assert math.isnan(roc_auc(scores, np.ones(40)))


def test_binary_cross_entropy_hand_example():
    expected = -(math.log(0.9) + math.log(0.8) + math.log(1e-7)) / 3
    assert binary_cross_entropy([0.9, 0.2, 1.0], [1, 0, 0]) == pytest.approx(expected, rel=1e-6)


def test_evaluate_methods_matches_records_by_id(tmp_path):
    rng = np.random.default_rng(6)
    gold = rng.uniform(size=30)
    sigmoid, softmax = gold + rng.normal(scale=0.2, size=30), rng.uniform(size=30)
    qe = write_jsonl(
        tmp_path / "qe.jsonl", make_records({"sigmoid": sigmoid, "softmax": softmax}, ranks=True)
    )
    records = load_records(qe)
    assert [r["id"] for r in records] == list(range(30))
    quality = gold_values(records, load_gold(write_lines(tmp_path / "g", gold)))
    rows = evaluate_methods(records, quality, label="T2")
    assert [r["method"] for r in rows] == ["T2/sigmoid", "T2/softmax"]
    assert rows[0]["pearson"] == pytest.approx(stats.pearsonr(sigmoid, gold)[0])
    assert rows[1]["prr"] == pytest.approx(brute_force_prr(softmax, gold))
    assert len(load_records(qe, all_ranks=True)) == 60


def test_references_chrf_equals_sacrebleu(tmp_path):
    references = ["Öffne die Datei.", "Das Haus ist groß.", "Speichern Sie alles."]
    records = [
        {
            "id": 2,
            "tokens": ["\u2581Speicher", "n", "\u2581alles", ".", "</s>"],
            "sentence_scores": {"sigmoid": 0.3},
        },
        {
            "id": 0,
            "hypothesis": "\u2581Öffne \u2581die \u2581Datei .",
            "detokenized": "Öffne die Datei",
            "sentence_scores": {"sigmoid": 0.9},
        },
        {"id": 1, "hypothesis": "Das Ha@@ us ist klein .", "sentence_scores": {"sigmoid": 0.5}},
    ]
    loaded = load_records(write_jsonl(tmp_path / "qe.jsonl", records))
    hypotheses = ["Öffne die Datei", "Das Haus ist klein .", "Speichern alles."]
    assert [hypothesis_text(r) for r in loaded] == hypotheses
    gold = load_gold(write_lines(tmp_path / "ref", references), "references")
    quality = gold_values(loaded, gold, "references", "chrf")
    expected = [sacrebleu.sentence_chrf(h, [r]).score / 100 for h, r in zip(hypotheses, references)]
    assert quality == pytest.approx(expected)
    bleu = gold_values(loaded, gold, "references", "bleu")
    assert bleu[2] == pytest.approx(
        sacrebleu.sentence_bleu(hypotheses[2], [references[2]], use_effective_order=True).score
        / 100
    )
    ter = gold_values(loaded, gold, "references", "ter")
    assert all(0 <= t <= 1 for t in ter) and ter[0] > ter[1]


@pytest.fixture
def cli_files(tmp_path):
    rng = np.random.default_rng(7)
    gold = rng.uniform(size=25)
    scores = {"sigmoid": gold + rng.normal(scale=0.1, size=25), "softmax": rng.uniform(size=25)}
    return {
        "qe": write_jsonl(tmp_path / "qe.jsonl", make_records(scores)),
        "gold": write_lines(tmp_path / "gold.txt", gold),
        "labels": write_lines(tmp_path / "labels.txt", (gold > 0.5).astype(int)),
        "scores": scores,
        "values": gold,
        "dir": tmp_path,
    }


def test_cli_table(cli_files):
    result = run_cli("--qe", cli_files["qe"], "--gold-scores", cli_files["gold"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("method")))
    assert lines[header].split() == [
        "method",
        "n",
        "pearson",
        "spearman",
        "kendall",
        "prr",
        "ece",
        "brier",
        "mcc",
        "f1_bad",
        "pearson_low",
        "pearson_high",
        "spearman_low",
        "spearman_high",
        "pearson_given_length",
        "pearson_in_length_bins",
    ]
    sigmoid = lines[header + 1].split()
    assert sigmoid[:2] == ["sigmoid", "25"]
    r = stats.pearsonr(cli_files["scores"]["sigmoid"], cli_files["values"])[0]
    assert float(sigmoid[2]) == pytest.approx(r, abs=5e-4)
    assert lines[header + 2].split()[0] == "softmax"


def test_cli_json_binary_and_two_files(cli_files):
    result = run_cli(
        "--qe",
        cli_files["qe"],
        cli_files["qe"],
        "--names",
        "T2",
        "rand",
        "--gold-labels",
        cli_files["labels"],
        "--json",
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    rows = {row["method"]: row for row in output["methods"]}
    assert list(rows) == ["T2/sigmoid", "T2/softmax", "rand/sigmoid", "rand/softmax"]
    labels = (cli_files["values"] > 0.5).astype(int)
    predicted = cli_files["scores"]["softmax"]
    assert rows["rand/softmax"]["roc_auc"] == pytest.approx(brute_force_auc(predicted, labels))
    assert rows["T2/softmax"]["bce"] == pytest.approx(binary_cross_entropy(predicted, labels))
    assert rows["T2/sigmoid"]["spearman"] == pytest.approx(
        stats.spearmanr(cli_files["scores"]["sigmoid"], labels)[0]
    )


def test_intervals_paired_test_and_aggregates(tmp_path):
    """--bootstrap intervals hold the estimate and are seeded; --compare gives the paired
    test; --aggregate recomputes sentence scores from token scores; length is controlled."""
    rng = np.random.default_rng(3)
    n = 120
    lengths = rng.integers(1, 30, size=n)
    gold = rng.uniform(size=n)
    records = []
    for i in range(n):
        good = np.clip(gold[i] ** (1 / lengths[i]) + rng.normal(0, 0.01, lengths[i]), 0.01, 1)
        bad = rng.uniform(0.5, 1.0, lengths[i])
        records.append(
            {
                "id": i,
                "tokens": ["\u2581w"] * int(lengths[i]) + ["</s>"],
                "token_scores": {"good": good.tolist(), "bad": bad.tolist()},
                "sentence_scores": {"good": float(np.prod(good)), "bad": float(np.prod(bad))},
            }
        )
    qe = write_jsonl(tmp_path / "qe.jsonl", records)
    gold_file = write_lines(tmp_path / "gold.txt", gold)

    def rows(*options):
        result = run_cli("--qe", qe, "--gold-scores", gold_file, "--json", *options)
        assert result.returncode == 0, result.stderr
        return {row["method"]: row for row in json.loads(result.stdout)["methods"]}

    plain = rows("--compare", "bad", "--seed", "5")
    good = plain["good"]
    assert good["pearson_low"] < good["pearson"] < good["pearson_high"]
    assert good["spearman_low"] < good["spearman"] < good["spearman_high"]
    assert good["delta_pearson"] == pytest.approx(good["pearson"] - plain["bad"]["pearson"])
    assert good["delta_low"] > 0 and good["share_better"] > 0.99
    assert plain["bad"]["delta_pearson"] is None  # the reference itself (NaN in JSON: null)
    assert rows("--compare", "bad", "--seed", "5")["good"] == good
    assert rows("--compare", "bad", "--seed", "6")["good"]["pearson_low"] != good["pearson_low"]
    product = rows("--aggregate", "product", "--bootstrap", "0")
    assert product["good"]["pearson"] == pytest.approx(good["pearson"])
    assert "pearson_low" not in product["good"]
    geomean = rows("--aggregate", "geomean", "--bootstrap", "0")
    expected = [np.exp(np.mean(np.log(r["token_scores"]["good"]))) for r in records]
    assert geomean["good"]["pearson"] == pytest.approx(stats.pearsonr(expected, gold)[0])
    assert good["pearson_given_length"] == pytest.approx(good["pearson"], abs=0.1)


@pytest.mark.parametrize(
    "arguments,fragment",
    [
        (["--compare", "nosuch"], "--compare nosuch: no such method"),
        (["--compare", "sigmoid", "--bootstrap", "0"], "--compare needs --bootstrap"),
        (["--bootstrap", "-1"], "--bootstrap -1 is out of range"),
        (["--length-bins", "0"], "--length-bins 0 is out of range"),
    ],
)
def test_uncertainty_user_errors(cli_files, arguments, fragment):
    result = run_cli("--qe", cli_files["qe"], "--gold-scores", cli_files["gold"], *arguments)
    assert_one_error_line(result, fragment)


def test_plot_writes_png(cli_files, capsys):
    pytest.importorskip("matplotlib")
    plots = cli_files["dir"] / "plots"
    assert (
        cli_evaluate.main(
            ["--qe", cli_files["qe"], "--gold-scores", cli_files["gold"], "--plot", str(plots)]
        )
        == 0
    )
    path = plots / "scatter.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    assert f"plot: {path}" in capsys.readouterr().out


def assert_one_error_line(result, fragment):
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_cli_missing_gold_file(cli_files):
    missing = os.path.join(cli_files["dir"], "missing.txt")
    assert_one_error_line(run_cli("--qe", cli_files["qe"], "--gold-scores", missing), missing)


def test_cli_count_mismatch(cli_files):
    short = write_lines(cli_files["dir"] / "short.txt", cli_files["values"][:20])
    assert_one_error_line(
        run_cli("--qe", cli_files["qe"], "--gold-scores", short), "has no line in"
    )


@pytest.mark.parametrize(
    "arguments,fragment",
    [
        ([], "exactly one of"),
        (["--gold-labels", "GOLD"], "is not 0 or 1"),
        (["--gold-scores", "GOLD", "--all-ranks"], "--all-ranks needs --references"),
        (["--gold-scores", "GOLD", "--metric", "bleu"], "--metric needs --references"),
        (["--gold-scores", "LONG"], "give the gold of the same test set"),
    ],
)
def test_user_errors(cli_files, arguments, fragment):
    long = write_lines(cli_files["dir"] / "long.txt", list(cli_files["values"]) + [0.5])
    arguments = [{"GOLD": cli_files["gold"], "LONG": long}.get(a, a) for a in arguments]
    with pytest.raises(QEUserError, match=fragment):
        cli_evaluate.main(["--qe", cli_files["qe"], *arguments])


def test_bad_qe_files(tmp_path):
    gold = write_lines(tmp_path / "gold.txt", [0.1, 0.2])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": 0, "sentence_scores": {"sigmoid": 0.5}}\n{"id": 1,\n')
    duplicate = write_jsonl(
        tmp_path / "dup.jsonl",
        [
            {"id": 0, "rank": 0, "sentence_scores": {"sigmoid": 0.5}},
            {"id": 0, "rank": 0, "sentence_scores": {"sigmoid": 0.6}},
        ],
    )
    for path, fragment in (
        (empty, "is empty"),
        (broken, "line 2 is not JSON"),
        (duplicate, "two records for id 0"),
    ):
        with pytest.raises(QEUserError, match=fragment):
            cli_evaluate.main(["--qe", str(path), "--gold-scores", gold])


def test_multi_reference_gold_keeps_the_best_match(tmp_path):
    hypotheses = ["Nach unten verschieben", "Gelb", "Datei öffnen"]
    first = ["Runter", "gelb", "Öffne die Datei"]
    second = ["Nach unten verschieben", "", "Datei öffnen"]
    records = [
        {"id": i, "detokenized": h, "sentence_scores": {"sigmoid": 0.1 * i}}
        for i, h in enumerate(hypotheses)
    ]
    loaded = load_records(write_jsonl(tmp_path / "qe.jsonl", records))
    paths = [write_lines(tmp_path / "ref1", first), write_lines(tmp_path / "ref2", second)]
    files = load_references(paths)
    assert files[1] == ["gelb"]  # the empty line gives no reference
    tsv = tmp_path / "refs.tsv"
    tsv.write_text(
        "".join("\t".join(r for r in refs if r) + "\n" for refs in zip(first, second)),
        encoding="utf-8",
    )
    from_tsv = load_gold(str(tsv), "references_tsv")
    assert from_tsv == files
    multi = gold_values(loaded, files, "references", "chrf")
    single = gold_values(loaded, [r[0] for r in files], "references", "chrf")
    expected = [
        max(sacrebleu.sentence_chrf(h, [r]).score for r in refs) / 100
        for h, refs in zip(hypotheses, files)
    ]
    assert multi == pytest.approx(expected)
    assert multi[0] == pytest.approx(1.0) and single[0] < 0.5  # a valid synonym is credited
    result = run_cli("--qe", str(tmp_path / "qe.jsonl"), "--references-tsv", str(tsv), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["methods"][0]["pearson"] == pytest.approx(
        stats.pearsonr([0.0, 0.1, 0.2], expected)[0]
    )


def test_references_files_must_align(tmp_path):
    a = write_lines(tmp_path / "a", ["x", "y"])
    b = write_lines(tmp_path / "b", ["x"])
    with pytest.raises(QEUserError, match="differ in length"):
        load_references([a, b])
    tsv = tmp_path / "refs.tsv"
    tsv.write_text("x\ty\n\t\n", encoding="utf-8")
    with pytest.raises(QEUserError, match="line 2 has no reference"):
        load_gold(str(tsv), "references_tsv")


def ambiguity_records():
    """Two sources with three and two valid translations, one source with one (left out)."""
    rows = [
        ("a", 0.8, 0.4),
        ("a", 0.4, 0.1),
        ("a", 0.6, 0.2),
        ("b", 0.5, 0.05),
        ("b", 0.5, 0.5),
        ("c", 0.9, 0.9),
    ]
    return [
        {"id": i, "source": src, "sentence_scores": {"sigmoid": sig, "softmax": soft}}
        for i, (src, sig, soft) in enumerate(rows)
    ]


def test_ambiguity_report_by_hand(tmp_path):
    rows = {r["method"]: r for r in ambiguity_report(ambiguity_records())}
    assert rows["sigmoid"]["sources"] == 2 and rows["sigmoid"]["translations"] == 5
    assert rows["sigmoid"]["min_max_ratio"] == pytest.approx((0.4 / 0.8 + 1.0) / 2)
    assert rows["softmax"]["min_max_ratio"] == pytest.approx((0.1 / 0.4 + 0.05 / 0.5) / 2)
    assert rows["sigmoid"]["mean_score"] == pytest.approx(np.mean([0.8, 0.4, 0.6, 0.5, 0.5]))
    assert rows["sigmoid"]["share_ge_0.5"] == pytest.approx(4 / 5)
    assert rows["softmax"]["share_ge_0.5"] == pytest.approx(1 / 5)
    groups = write_lines(tmp_path / "groups", ["g1", "g1", "g2", "g2", "g2", "g3"])
    regrouped = {
        r["method"]: r for r in ambiguity_report(ambiguity_records(), read_lines(groups, "groups"))
    }
    assert regrouped["sigmoid"]["min_max_ratio"] == pytest.approx((0.4 / 0.8 + 0.5 / 0.6) / 2)
    path = write_jsonl(tmp_path / "refs.jsonl", ambiguity_records())
    result = run_cli("--qe", path, "--ambiguity")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == [
        "method",
        "sources",
        "translations",
        "min_max_ratio",
        "mean_score",
        "share_ge_0.5",
    ]
    assert lines[2].split()[:3] == ["sigmoid", "2", "5"]


@pytest.mark.parametrize(
    "arguments,fragment",
    [
        (["--ambiguity", "--references", "R"], "--ambiguity takes no --references"),
        (["--groups", "R", "--references", "R"], "--groups needs --ambiguity"),
        (["--ambiguity", "--groups", "SHORT"], "has no line in --groups"),
    ],
)
def test_ambiguity_user_errors(tmp_path, arguments, fragment):
    path = write_jsonl(tmp_path / "refs.jsonl", ambiguity_records())
    files = {
        "R": write_lines(tmp_path / "r", ["x"] * 6),
        "SHORT": write_lines(tmp_path / "s", ["a"]),
    }
    with pytest.raises(QEUserError, match=fragment):
        cli_evaluate.main(["--qe", path, *[files.get(a, a) for a in arguments]])
    lonely = write_jsonl(tmp_path / "one.jsonl", ambiguity_records()[-1:])
    with pytest.raises(QEUserError, match="two or more translations"):
        cli_evaluate.main(["--qe", lonely, "--ambiguity"])


def test_nan_scores_are_left_out_and_counted(cli_files):
    scores = dict(cli_files["scores"])
    scores["sigmoid"] = scores["sigmoid"].copy()
    scores["sigmoid"][[3, 11]] = math.nan  # e.g. empty hypotheses
    qe = write_jsonl(cli_files["dir"] / "nan.jsonl", make_records(scores))
    table = run_cli("--qe", qe, "--gold-scores", cli_files["gold"])
    assert table.returncode == 0, table.stderr
    warnings = [line for line in table.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "fairseq-sigmoid-qe evaluate: warning: sigmoid: 2 of 25 sentences left "
        "out (NaN or infinite score or gold)"
    ]
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[2:]}
    assert rows["sigmoid"][1] == "23" and rows["softmax"][1] == "25"
    keep = np.isfinite(scores["sigmoid"])
    expected = stats.pearsonr(scores["sigmoid"][keep], cli_files["values"][keep])[0]
    assert float(rows["sigmoid"][2]) == pytest.approx(expected, abs=5e-4)
    output = json.loads(run_cli("--qe", qe, "--gold-scores", cli_files["gold"], "--json").stdout)
    assert [(row["method"], row["n"], row["dropped"]) for row in output["methods"]] == [
        ("sigmoid", 23, 2),
        ("softmax", 25, 0),
    ]


def test_all_nan_method_is_an_error(cli_files):
    scores = {**cli_files["scores"], "boostedprob": np.full(25, math.nan)}
    qe = write_jsonl(cli_files["dir"] / "allnan.jsonl", make_records(scores))
    assert_one_error_line(
        run_cli("--qe", qe, "--gold-scores", cli_files["gold"]),
        "method boostedprob: none of its 25 sentences has a finite score",
    )


def test_evaluator_never_imports_fairseq(cli_files):
    program = (
        "import sys; from fairseq_sigmoid_qe.cli.evaluate import main; "
        f"main(['--qe', {cli_files['qe']!r}, '--gold-scores', {cli_files['gold']!r}]); "
        "print('fairseq imported:', any(m.split('.')[0] == 'fairseq' for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "fairseq imported: False"


def test_reference_word_labels_use_the_best_matching_reference():
    references = ["Öffnen Sie die Datei.", "Öffne die Datei jetzt."]
    # the second reference matches best (chrF); "Öffne" and "Datei," count without punctuation
    assert reference_word_labels("Öffne bitte die Datei, jetzt", references) == [
        1,
        0,
        1,
        1,
        1,
    ]
    assert reference_word_labels("Sie Datei", "Öffnen Sie die Datei.") == [1, 1]
    records = [
        {
            "id": 0,
            "tokens": ["Monitor", "profil"],
            "detokenized": "Monitorprofil",
            "word_scores": {"sigmoid": [0.9, 0.8]},
            "sentence_scores": {"sigmoid": 0.7},
        },
        {
            "id": 1,
            "tokens": ["\u2581Das", "\u2581Haus", "."],
            "detokenized": "Das Haus.",
            "word_scores": {"sigmoid": [0.9, 0.3]},
            "sentence_scores": {"sigmoid": 0.2},
        },
    ]
    # words as the word scores have them: pieces with no word start are taken as words
    labels = word_gold(records, references=[["Monitor"], ["Das Haus."]])
    assert labels == [[1, 0], [1, 1]]
    with pytest.raises(QEUserError, match="has 2 words but 3 word labels"):
        word_gold(records, labels=[[1, 0, 1], [1, 1]])
