"""--qe-methods: the registry of QE methods, entropy read off the search, the seeded
Monte-Carlo methods (mc_dropout, mc_seq_entropy), translations unchanged, bad combinations."""

import json
import math
from functools import partial

import pytest
import torch
from conftest import PACKAGE_DIR, fairseq, one_error_line
from test_generate_qe import first_test_batch, raw_test_text, recorded_and_forced, refused_generate

pytestmark = pytest.mark.integration

ALL = "sigmoid,softmax,boostedprob,entropy,mc_dropout,mc_seq_entropy"
OPTIONS = [
    "--nbest",
    "2",
    "--post-process",
    "sentencepiece",
    "--max-tokens",
    "300",
    "--max-len-b",
    "40",
    "--batch-size",
    "16",
    "--cpu",
]


@pytest.fixture(scope="module")
def head_checkpoint(trained_head):
    return str(trained_head[0] / "checkpoint_last.pt")


@pytest.fixture(scope="module")
def head_model(real_data_bin, head_checkpoint):
    from fairseq_sigmoid_qe.api import load_head_model

    return load_head_model(head_checkpoint, real_data_bin)


def generate(data_bin, checkpoint, *extra, check=True):
    return fairseq(
        "generate",
        data_bin,
        "--user-dir",
        PACKAGE_DIR,
        "--path",
        checkpoint,
        *OPTIONS,
        *extra,
        check=check,
    )


def printed_translations(stdout):
    """fairseq's own lines of each sentence (S-, T-, H-, D-, P-)."""
    return [line for line in stdout.splitlines() if line[:2] in ("S-", "T-", "H-", "D-", "P-")]


def direct_entropy(model, sample, rows, tokens, pad, eos, temperature=1.0):
    """exp(-H) of each hypothesis position, H = -Σ p log p computed plainly from the frozen
    model's logits (p = 0 terms left out)."""
    from fairseq_sigmoid_qe.core.qe_methods import shift_right

    padded = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True, padding_value=pad)
    net_input = sample["net_input"]
    with torch.no_grad():
        _, logits = model.frozen_forward(
            net_input["src_tokens"][rows],
            net_input["src_lengths"][rows],
            shift_right(padded, eos, pad),
        )
    p = torch.softmax(logits.double() / temperature, dim=-1)
    terms = torch.where(p > 0, -p * torch.log(p), torch.zeros_like(p))
    return torch.where(padded.ne(pad), torch.exp(-terms.sum(-1)), torch.zeros(())).float()


def test_method_names_are_checked():
    from fairseq_sigmoid_qe.core.qe_methods import DEFAULT_METHODS, METHODS, parse_methods

    assert parse_methods("sigmoid,softmax,boostedprob") == DEFAULT_METHODS
    assert parse_methods(ALL) == tuple(METHODS)
    for bad, reason in (
        ("sigmoid,unknown", "unknown method"),
        ("entropy,entropy", "twice"),
        ("", "empty"),
        ("sigmoid,", "empty"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_methods(bad)


@pytest.mark.parametrize(
    "dominant_at,temperature", [("used_rows", 1.0), ("step", 1.0), ("used_rows", 1.5)]
)
def test_entropy_read_off_the_search_equals_a_direct_computation(
    head_model, dominant_at, temperature
):
    from fairseq_sigmoid_qe.core.qe_options import QEOptions
    from fairseq_sigmoid_qe.decoding.recording import RecordingSequenceGenerator

    model, task = head_model
    dictionary = task.target_dictionary
    generator = RecordingSequenceGenerator(
        [model],
        dictionary,
        beam_size=3,
        max_len_b=40,
        temperature=temperature,
        qe_options=QEOptions(methods=("entropy", "softmax"), dominant_at=dominant_at),
    )
    sample = first_test_batch(task, 8)
    searched, _, pairs = recorded_and_forced(model, task, generator, sample)
    rows = torch.tensor([i for i, _ in pairs])
    tokens = [h["tokens"] for _, h in pairs]
    assert searched is not None and list(searched[0]) == ["entropy", "softmax"]
    expected = direct_entropy(
        model, sample, rows, tokens, dictionary.pad(), dictionary.eos(), temperature
    )
    torch.testing.assert_close(searched[0]["entropy"], expected, atol=1e-4, rtol=1e-4)
    steps = generator.search_record.steps.values()
    assert all((s.entropy is not None) == (dominant_at == "step") for s in steps)
    assert all(s.dominant is None for s in steps)  # boostedprob not asked for: not computed


def test_entropy_of_the_scorer_and_of_force_decoding(head_model):
    """--score-reference reads the entropy off its one pass; force-decoding gives the same."""
    from fairseq_sigmoid_qe.core.qe_methods import score_tokens
    from fairseq_sigmoid_qe.core.qe_options import QEOptions
    from fairseq_sigmoid_qe.decoding.recording import RecordingSequenceScorer

    model, task = head_model
    dictionary = task.target_dictionary
    scorer = RecordingSequenceScorer(dictionary, qe_options=QEOptions(methods=("entropy",)))
    sample = first_test_batch(task, 6)
    with torch.no_grad():
        hypos = scorer.generate([model], sample)
    tokens = [h[0]["tokens"] for h in hypos]
    rows = torch.arange(len(tokens))
    searched = scorer.search_record.token_scores(
        rows, tokens, [h[0]["positional_scores"] for h in hypos], dictionary.pad(), dictionary.eos()
    )
    expected = direct_entropy(model, sample, rows, tokens, dictionary.pad(), dictionary.eos())
    torch.testing.assert_close(searched[0]["entropy"], expected, atol=1e-4, rtol=1e-4)
    padded = torch.nn.utils.rnn.pad_sequence(
        tokens, batch_first=True, padding_value=dictionary.pad()
    )
    forced = score_tokens(
        model,
        sample["net_input"]["src_tokens"],
        sample["net_input"]["src_lengths"],
        padded,
        dictionary.pad(),
        dictionary.eos(),
        methods=("entropy",),
    )
    torch.testing.assert_close(forced.scores["entropy"], expected, atol=1e-4, rtol=1e-4)


def test_entropy_sentence_score_is_exp_of_minus_mean_entropy():
    from fairseq.data import Dictionary

    from fairseq_sigmoid_qe.core.qe_methods import hypothesis_qe

    dictionary = Dictionary()
    a, b = dictionary.add_symbol("a"), dictionary.add_symbol("b")
    entropies = [0.5, 2.0, 1.0]  # the last is EOS'
    record = hypothesis_qe(
        {"entropy": [math.exp(-h) for h in entropies]},
        [a, b, dictionary.eos()],
        dictionary,
        sentence_agg="min",
    )
    assert record["sentence_log_scores"]["entropy"] == pytest.approx(-1.25)
    assert record["sentence_scores"]["entropy"] == pytest.approx(math.exp(-1.25))


def hypotheses_of(model, task, sample, beam=3):
    from fairseq.sequence_generator import SequenceGenerator

    generator = SequenceGenerator([model], task.target_dictionary, beam_size=beam, max_len_b=40)
    with torch.no_grad():
        hypos = generator.generate([model], sample)
    tokens = [beams[0]["tokens"] for beams in hypos]
    return torch.nn.utils.rnn.pad_sequence(
        tokens, batch_first=True, padding_value=task.target_dictionary.pad()
    )


def explicit_dropout_passes(model, sample, padded, dictionary, samples, seed):
    """TP_n of each hypothesis and each sample's token log-probabilities, drawn the plain
    way: seed, dropout modules to train mode, one force-decoding pass per sample."""
    from fairseq.modules import FairseqDropout

    from fairseq_sigmoid_qe.core.qe_methods import shift_right

    pad, eos = dictionary.pad(), dictionary.eos()
    dropouts = [m for m in model.modules() if isinstance(m, FairseqDropout)]
    prev = shift_right(padded, eos, pad)
    counted = padded.ne(pad) & padded.ne(eos)
    net_input = sample["net_input"]
    passes = []
    torch.manual_seed(seed)
    for module in dropouts:
        module.train()
    try:
        for _ in range(samples):
            with torch.no_grad():
                _, logits = model.frozen_forward(
                    net_input["src_tokens"], net_input["src_lengths"], prev
                )
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            passes.append(log_probs.gather(-1, padded.unsqueeze(-1)).squeeze(-1))
    finally:
        for module in dropouts:
            module.eval()
    tp = torch.stack([(lp * counted).sum(1) / counted.sum(1) for lp in passes])
    return tp, torch.stack(passes)


def test_mc_dropout_equals_explicit_seeded_passes(head_model):
    from fairseq_sigmoid_qe.decoding.monte_carlo import dropout_modules, mc_dropout

    model, task = head_model
    dictionary = task.target_dictionary
    assert dropout_modules(model)  # the tiny base has fairseq's default dropout 0.1
    sample = first_test_batch(task, 6)
    padded = hypotheses_of(model, task, sample)
    net_input = sample["net_input"]
    token_scores, d_tp, d_var = mc_dropout(
        model,
        net_input["src_tokens"],
        net_input["src_lengths"],
        padded,
        dictionary.pad(),
        dictionary.eos(),
        samples=4,
        seed=11,
    )
    tp, passes = explicit_dropout_passes(model, sample, padded, dictionary, 4, 11)
    torch.testing.assert_close(d_tp, tp.mean(0))
    torch.testing.assert_close(d_var, tp.var(0, unbiased=False))
    mask = padded.ne(dictionary.pad())
    torch.testing.assert_close(token_scores[mask], passes.exp().mean(0)[mask])
    assert (d_var > 0).all()  # dropout on: the samples differ
    assert not any(m.training for m in model.modules())  # every module back in eval()
    again = mc_dropout(
        model,
        net_input["src_tokens"],
        net_input["src_lengths"],
        padded,
        dictionary.pad(),
        dictionary.eos(),
        samples=4,
        seed=11,
    )
    assert torch.equal(again[1], d_tp) and torch.equal(again[2], d_var)  # same seed


def test_mc_dropout_without_dropout_has_variance_zero(head_model):
    """With every dropout at 0 the samples are the plain pass: D-Var 0, D-TP = TP; such a
    model is refused by the task (check_dropout)."""
    from fairseq_sigmoid_qe.decoding.monte_carlo import check_dropout, dropout_modules, mc_dropout

    model, task = head_model
    dictionary = task.target_dictionary
    sample = first_test_batch(task, 5)
    padded = hypotheses_of(model, task, sample)
    net_input = sample["net_input"]
    modules = dropout_modules(model)
    saved = [m.p for m in modules]
    try:
        for module in modules:
            module.p = 0.0
        _, d_tp, d_var = mc_dropout(
            model,
            net_input["src_tokens"],
            net_input["src_lengths"],
            padded,
            dictionary.pad(),
            dictionary.eos(),
            samples=3,
            seed=5,
        )
        refusal = check_dropout(model, ("sigmoid", "mc_dropout"))
        plain, _ = explicit_dropout_passes(model, sample, padded, dictionary, 1, 0)
    finally:
        for module, p in zip(modules, saved):
            module.p = p
    assert torch.equal(d_var, torch.zeros_like(d_var))
    torch.testing.assert_close(d_tp, plain[0])
    assert "mc_dropout needs a model trained with dropout" in refusal
    assert check_dropout(model, ("mc_dropout",)) is None


def test_sequence_entropy_is_the_mean_length_normalised_log_probability():
    from fairseq_sigmoid_qe.core.qe_methods.mc_seq_entropy import sequence_entropy

    samples = [torch.tensor([-1.0, -3.0]), torch.tensor([-0.5, -0.5, -2.0])]
    assert sequence_entropy(samples) == pytest.approx((2.0 + 1.0) / 2)


def api_records(model, task, sample_ids_seed, methods, samples=3):
    from argparse import Namespace
    from dataclasses import replace

    from fairseq_sigmoid_qe.decoding.search_loop import generate_with_qe

    task.qe_options = replace(
        task.qe_options, methods=methods, mc_samples=samples, seed=sample_ids_seed
    )
    task.load_dataset("test")
    dataset = task.dataset("test")
    records = []
    for sample, hypos in generate_with_qe(
        task, model, dataset, Namespace(beam=3, max_len_b=40), max_tokens=400
    ):
        if len(records) > 20:
            break
        records += [
            (int(i), [h["tokens"].tolist() for h in beams], beams[0]["qe"])
            for i, beams in zip(sample["id"], hypos)
        ]
    return records


def test_monte_carlo_methods_are_seeded_and_leave_translations_alone(head_model):
    """Same seed, same numbers; another seed, other numbers; translations and every other
    method's scores as without the MC methods; the model in eval() afterwards."""
    model, task = head_model
    saved = task.qe_options
    try:
        before = api_records(model, task, 1, ("sigmoid", "softmax", "boostedprob"))
        first = api_records(model, task, 1, tuple(ALL.split(",")))
        second = api_records(model, task, 1, tuple(ALL.split(",")))
        other = api_records(model, task, 2, tuple(ALL.split(",")))
        after = api_records(model, task, 1, ("sigmoid", "softmax", "boostedprob"))
    finally:
        task.qe_options = saved
    assert not any(m.training for m in model.modules())
    assert [r[:2] for r in before] == [r[:2] for r in first] == [r[:2] for r in after]
    assert before == after
    assert first == second
    for (_, _, qe), (_, _, _other), (_, _, plain) in zip(first, other, before):
        assert list(qe["sentence_scores"]) == [
            "sigmoid",
            "softmax",
            "boostedprob",
            "entropy",
            "mc_dropout",
            "mc_dropout_var",
            "mc_seq_entropy",
        ]
        assert list(qe["token_scores"]) == [
            "sigmoid",
            "softmax",
            "boostedprob",
            "entropy",
            "mc_dropout",
        ]
        for method in ("sigmoid", "softmax", "boostedprob"):
            assert qe["token_scores"][method] == plain["token_scores"][method]
        assert qe["sentence_log_scores"]["mc_dropout"] <= 0
        assert qe["sentence_scores"]["mc_seq_entropy"] == pytest.approx(
            math.exp(qe["sentence_log_scores"]["mc_seq_entropy"])
        )
    assert any(
        a[2]["sentence_scores"]["mc_dropout"] != b[2]["sentence_scores"]["mc_dropout"]
        for a, b in zip(first, other)
    )
    assert any(
        a[2]["sentence_scores"]["mc_seq_entropy"] != b[2]["sentence_scores"]["mc_seq_entropy"]
        for a, b in zip(first, other)
    )


@pytest.fixture(scope="module")
def cli_runs(real_data_bin, head_checkpoint, tmp_path_factory):
    """Beam search and sampling, each without QE and with every method (--seed 7)."""
    tmp = tmp_path_factory.mktemp("methods")
    runs = {}
    for name, search in (
        ("beam", ["--beam", "4"]),
        ("sampling", ["--beam", "2", "--sampling", "--seed", "7"]),
    ):
        runs[name, "plain"] = generate(real_data_bin, head_checkpoint, *search).stdout
        out = tmp / f"{name}.jsonl"
        runs[name, "qe"] = generate(
            real_data_bin,
            head_checkpoint,
            *search,
            "--seed",
            "7",
            "--print-qe",
            "--qe-methods",
            ALL,
            "--qe-mc-samples",
            "3",
            "--qe-output",
            out,
        ).stdout
        runs[name, "records"] = [json.loads(line) for line in open(out, encoding="utf-8")]
    return runs


def test_translations_byte_identical_with_every_method(cli_runs):
    for search in ("beam", "sampling"):
        plain = printed_translations(cli_runs[search, "plain"])
        assert plain and plain == printed_translations(cli_runs[search, "qe"])


def test_q_lines_have_one_column_per_method_in_order(cli_runs):
    stdout, records = cli_runs["beam", "qe"], cli_runs["beam", "records"]
    q_lines = [line.split("\t") for line in stdout.splitlines() if line.startswith("Q-")]
    assert len(q_lines) == len(records) > 50
    methods = ALL.split(",")
    for line, record in zip(q_lines, records):
        assert len(line) == 1 + len(methods)
        for method, printed in zip(methods, line[1:]):
            assert float(printed) == pytest.approx(record["sentence_scores"][method], rel=1e-5)
            assert 0.0 <= float(printed) <= 1.0
        assert record["sentence_scores"]["mc_dropout_var"] >= 0
        assert "mc_seq_entropy" not in record["token_scores"]


def zero_dropout_copy(checkpoint, path):
    """The head checkpoint with every dropout of its stored base config set to 0."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model_cfg = state["cfg"]["model"]
    stored = json.loads(model_cfg.base_model_config)
    config = stored.get("namespace") or stored.get("dictconfig")
    for key, value in list(config.items()):
        if "dropout" in key and isinstance(value, (int, float)) and not isinstance(value, bool):
            config[key] = 0.0
    model_cfg.base_model_config = json.dumps(stored, sort_keys=True)
    torch.save(state, path)
    return str(path)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--qe-methods", "sigmoid,perplexity"], "--qe-methods sigmoid,perplexity: unknown method"),
        (["--qe-methods", "entropy,entropy"], "entropy is given twice"),
        (
            ["--qe-methods", "entropy", "--qe-mc-samples", "5"],
            "--qe-mc-samples needs a Monte-Carlo method",
        ),
        (
            ["--qe-methods", "mc_dropout", "--qe-mc-samples", "0"],
            "--qe-mc-samples 0 is out of range",
        ),
        ("no dropout", "mc_dropout needs a model trained with dropout"),
    ],
)
def test_bad_method_combinations_one_error_line(
    real_data_bin, head_checkpoint, tmp_path, extra, message
):
    run, checkpoint = partial(refused_generate, options=OPTIONS), head_checkpoint
    if extra == "no dropout":  # found with the model loaded: by the real command
        checkpoint = zero_dropout_copy(head_checkpoint, tmp_path / "no_dropout.pt")
        run, extra = partial(generate, check=False), ["--qe-methods", "sigmoid,mc_dropout"]
    result = run(real_data_bin, checkpoint, "--beam", "2", "--print-qe", *extra)
    assert message in one_error_line(result)
    assert not any(line.startswith("H-") for line in result.stdout.splitlines())


def test_qe_methods_need_print_qe(real_data_bin, head_checkpoint):
    result = generate(
        real_data_bin, head_checkpoint, "--beam", "2", "--qe-methods", "entropy", check=False
    )  # the real command: its exit status and one line
    assert "--qe-methods needs --print-qe" in one_error_line(result)


def test_raw_text_command_takes_the_methods(real_data_bin, head_checkpoint, tmp_path):
    """The command's --qe-methods/--qe-mc-samples/--seed: the methods' keys in order, the same
    numbers for the same seed; a bad list is one QEUserError."""
    from fairseq_sigmoid_qe.cli import raw_text
    from fairseq_sigmoid_qe.core.errors import QEUserError

    sources, _, spm_model = raw_test_text(real_data_bin)
    (tmp_path / "src.txt").write_text("\n".join(sources[:6]) + "\n")
    common = [
        "translate",
        "--checkpoint",
        head_checkpoint,
        "--data-dir",
        real_data_bin,
        "--spm-model",
        spm_model,
        "--sources",
        str(tmp_path / "src.txt"),
        "--quiet",
        "--beam",
        "2",
        "--qe-methods",
        "mc_seq_entropy,entropy,mc_dropout",
        "--qe-mc-samples",
        "2",
    ]
    outputs = []
    for name, seed in (("a", "4"), ("b", "4"), ("c", "5")):
        raw_text.main(common + ["--seed", seed, "--output", str(tmp_path / f"{name}.jsonl")])
        outputs.append([json.loads(line) for line in open(tmp_path / f"{name}.jsonl")])
    first, same, other = outputs
    assert len(first) == 6 and first == same and first != other
    for record in first:
        assert list(record["sentence_scores"]) == [
            "mc_seq_entropy",
            "entropy",
            "mc_dropout",
            "mc_dropout_var",
        ]
        assert list(record["token_scores"]) == ["entropy", "mc_dropout"]
    with pytest.raises(QEUserError, match="unknown method 'mc'"):
        raw_text.main(
            common[:-4] + ["--qe-methods", "sigmoid,mc", "--output", str(tmp_path / "d.jsonl")]
        )
    assert not (tmp_path / "d.jsonl").exists()
