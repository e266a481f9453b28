"""nce_dominant in process: the loss formula, padding, statistics, per-worker sampling."""

from argparse import Namespace

import pytest
import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.data import Dictionary, LanguagePairDataset
from fairseq.models.transformer import TransformerModel, base_architecture

from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.criterions.nce_dominant import NceDominantCriterion
from fairseq_sigmoid_qe.models.qe_heads import build_qe_head
from fairseq_sigmoid_qe.models.sigmoid_head_transformer import SigmoidHeadTransformerModel

pytestmark = pytest.mark.integration


class Task:
    def __init__(self, dictionary):
        self.source_dictionary = self.target_dictionary = dictionary


def tiny_setup(words):
    """A dictionary of ``words`` symbols, its task and a 1+1-layer head model (train mode)."""
    dictionary = Dictionary()
    for i in range(words):
        dictionary.add_symbol(f"w{i}", n=10 + i)
    task = Task(dictionary)
    args = Namespace(
        arch="transformer",
        encoder_layers=1,
        decoder_layers=1,
        encoder_embed_dim=16,
        decoder_embed_dim=16,
        encoder_ffn_embed_dim=32,
        decoder_ffn_embed_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
    )
    base_architecture(args)
    base = TransformerModel.build_model(args, task)
    head = build_qe_head(base.decoder.output_projection)
    model = SigmoidHeadTransformerModel(
        Namespace(qe_head_bias=False), base.encoder, base.decoder, head
    )
    model.train()
    return dictionary, task, model


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    return tiny_setup(8)


def batch(dictionary, pairs):
    tensors = [
        (torch.tensor(s + [dictionary.eos()]), torch.tensor(t + [dictionary.eos()]))
        for s, t in pairs
    ]
    dataset = LanguagePairDataset(
        [s for s, _ in tensors],
        [len(s) for s, _ in tensors],
        dictionary,
        [t for _, t in tensors],
        [len(t) for _, t in tensors],
        dictionary,
    )
    return dataset.collater([dataset[i] for i in range(len(tensors))])


def criterion(task, sampler="random", negatives=10, **options):
    settings = dict(
        sampling_temperature=2.0,
        avoid_dominant=False,
        no_avoid_dominant=True,
        dominant_p_jump=0.3,
        dominant_epsilon=0.005,
        dominant_cut="last",
    )
    settings.update(options)
    return NceDominantCriterion(task, negatives, sampler, **settings)


def test_loss_is_the_nce_formula_and_padding_adds_nothing(setup):
    dictionary, task, model = setup
    # every allowed token is a negative (support = V - pad - reference), so no randomness
    nce = criterion(task, "random", negatives=len(dictionary) - 2)
    pairs = [([4, 5, 6], [7, 8]), ([9, 10], [11, 4, 5, 6, 7])]
    loss_both, size_both, _ = nce(model, batch(dictionary, pairs))
    losses = [nce(model, batch(dictionary, [pair]))[0] for pair in pairs]
    assert size_both == 2 + 1 + 5 + 1
    torch.testing.assert_close(loss_both, sum(losses), rtol=1e-5, atol=1e-5)

    sample = batch(dictionary, pairs[:1])
    features, _ = model.frozen_forward(**sample["net_input"])
    z = model.qe_head(features[0])
    manual = 0.0
    for position, reference in enumerate(sample["target"][0].tolist()):
        negatives = [t for t in range(len(dictionary)) if t not in (reference, dictionary.pad())]
        manual += (
            -F.logsigmoid(z[position, reference]) - F.logsigmoid(-z[position, negatives]).sum()
        )
    torch.testing.assert_close(losses[0], manual, rtol=1e-5, atol=1e-5)


def test_only_the_head_gets_gradients(setup):
    dictionary, task, model = setup
    loss, _, _ = criterion(task, "token_freq+softmax", negatives=4, no_avoid_dominant=False)(
        model, batch(dictionary, [([4, 5, 6], [7, 8, 9])])
    )
    model.zero_grad()
    loss.backward()
    assert model.qe_head.weight.grad is not None and model.qe_head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("qe_head"))
    assert not model.encoder.training and not model.decoder.training


def test_logged_statistics_reduce_over_workers(setup):
    dictionary, task, model = setup
    nce = criterion(task, "token_freq", negatives=3, no_avoid_dominant=False)
    logs = [
        nce(model, batch(dictionary, pairs))[2]
        for pairs in ([([4, 5], [6, 7, 8])], [([9, 10, 11], [4, 5]), ([6], [7])])
    ]
    with metrics.aggregate() as aggregated:
        NceDominantCriterion.reduce_metrics(logs)
    values = aggregated.get_smoothed_values()
    positions = sum(log["sample_size"] for log in logs)
    assert positions == 4 + 3 + 2
    expected_loss = float(sum(log["loss"] for log in logs)) / positions
    assert values["loss"] == pytest.approx(expected_loss, rel=1e-3)
    expected_pos = float(sum(log["positive_sigmoid"] for log in logs)) / positions
    assert values["sigmoid_pos"] == pytest.approx(expected_pos, rel=1e-3)
    assert 0 <= values["sigmoid_neg"] <= 1 and values["dominant_size"] >= 0
    assert NceDominantCriterion.logging_outputs_can_be_summed()


def test_per_worker_generators_differ_and_follow_fairseq_seed(setup, monkeypatch):
    """Each rank and each micro-batch of an update draws its own negatives, from fairseq's
    per-update seed: rank r of W ranks draws what micro-batch r of one process draws."""
    _, task, _ = setup
    nce = criterion(task)

    def draws(rank, seed, world=2, micro_batches=1):
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda: rank)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: world)
        torch.manual_seed(seed)  # what fairseq's trainer does before each update
        nce._update_seed = None  # a new update (in training the seed changes every update)
        return [
            torch.rand(5, generator=nce._generator(torch.device("cpu")))
            for _ in range(micro_batches)
        ]

    assert torch.equal(draws(0, 7)[0], draws(0, 7)[0])
    assert not torch.equal(draws(0, 7)[0], draws(1, 7)[0])
    assert not torch.equal(draws(0, 7)[0], draws(0, 8)[0])
    one_process = draws(0, 7, world=1, micro_batches=2)  # --update-freq 2 on one rank
    assert not torch.equal(one_process[0], one_process[1])
    assert torch.equal(one_process[0], draws(0, 7)[0])
    assert torch.equal(one_process[1], draws(1, 7)[0])
    two_ranks = draws(1, 7, world=2, micro_batches=2)  # rank 1 of 2, --update-freq 2
    assert torch.equal(two_ranks[1], draws(0, 7, world=1, micro_batches=4)[3])


def test_bad_options(setup):
    _, task, _ = setup
    with pytest.raises(QEUserError, match="contradict"):
        criterion(task, avoid_dominant=True, no_avoid_dominant=True)
    with pytest.raises(QEUserError, match="negative-sampler"):
        criterion(task, "softmax+bogus")
    with pytest.raises(QEUserError, match="temperature"):
        criterion(task, sampling_temperature=0.0)


def test_positive_weight_and_ranking_term_by_hand(setup):
    dictionary, task, model = setup
    pairs = [([4, 5, 6], [7, 8])]
    sample = batch(dictionary, pairs)
    everything = dict(negatives=len(dictionary) - 2, no_avoid_dominant=True)
    plain = criterion(task, "random", **everything)(model, sample)[0]
    weighted = criterion(task, "random", positive_weight=3.0, **everything)(model, sample)[0]
    features, logits = model.frozen_forward(**sample["net_input"])
    z = model.qe_head(features[0])
    references = sample["target"][0]
    positive = -F.logsigmoid(z[torch.arange(len(references)), references]).sum()
    torch.testing.assert_close(weighted - plain, 2.0 * positive, rtol=1e-5, atol=1e-5)

    from fairseq_sigmoid_qe.core.dominant import dominant_sets

    ids, mask = dominant_sets(torch.log_softmax(logits[0].float(), -1), epsilon=0.001, p_jump=0.01)
    ranked = criterion(
        task,
        "random",
        ranking_loss_weight=0.5,
        ranking_margin=1.0,
        dominant_epsilon=0.001,
        dominant_p_jump=0.01,
        **everything,
    )
    rivals = {
        p: [t for t, m in zip(ids[p].tolist(), mask[p].tolist()) if m and t != int(r)]
        for p, r in enumerate(references)
    }
    assert sum(map(len, rivals.values())) >= 2
    expected = sum(
        F.relu(z[p, t] - z[p, references[p]] + 1.0) for p, ts in rivals.items() for t in ts
    )
    assert float(expected) > 0
    loss, _, log = ranked(model, sample)
    torch.testing.assert_close(
        loss - plain, 0.5 * torch.as_tensor(expected, dtype=loss.dtype), rtol=1e-5, atol=1e-5
    )
    assert float(log["ranking"]) == pytest.approx(float(expected), rel=1e-5)


def test_negative_dedup_counts_a_token_drawn_twice_once(setup):
    """Same draws with and without --negative-dedup: the difference of the losses is exactly
    the repeated (position, token) terms, and the logged count is the distinct draws."""
    dictionary, task, model = setup
    sample = batch(dictionary, [([4, 5, 6], [7, 8, 9, 10])])
    plain = criterion(task, "random+token_freq", negatives=8)
    drawn = []
    draw = plain._negatives
    plain._negatives = lambda *args: drawn.append(draw(*args)) or drawn[-1]
    torch.manual_seed(11)
    loss_plain, _, log_plain = plain(model, sample)
    torch.manual_seed(11)
    loss_dedup, _, log_dedup = criterion(
        task, "random+token_freq", negatives=8, negative_dedup=True
    )(model, sample)
    negatives, valid = drawn[0]
    features, _ = model.frozen_forward(**sample["net_input"])
    z = model.qe_head(features[0])
    repeated, distinct = 0.0, 0
    for position in range(negatives.size(0)):
        seen = set()
        for token, ok in zip(negatives[position].tolist(), valid[position].tolist()):
            if not ok:
                continue
            if token in seen:
                repeated = repeated - F.logsigmoid(-z[position, token])
            seen.add(token)
        distinct += len(seen)
    assert int(log_plain["negatives"]) > distinct == int(log_dedup["negatives"])
    torch.testing.assert_close(loss_plain - loss_dedup, repeated, rtol=1e-5, atol=1e-5)


def test_bad_weights(setup):
    _, task, _ = setup
    with pytest.raises(QEUserError, match="--positive-weight 0.0 is out of range"):
        criterion(task, positive_weight=0.0)
    with pytest.raises(QEUserError, match="--ranking-loss-weight -1.0 is out of range"):
        criterion(task, ranking_loss_weight=-1.0)


def test_training_logits_buffer_holds_the_output_layer_numbers(setup):
    dictionary, _, model = setup
    for pairs in ([([4, 5, 6], [7, 8, 9])], [([4], [5]), ([6, 7], [8, 9, 10, 11])]):
        net_input = batch(dictionary, pairs)["net_input"]
        features, logits = model.frozen_forward(**net_input)
        assert torch.equal(logits, model.decoder.output_layer(features))
    assert model._logits_buffer is not None and logits.data_ptr() == model._logits_buffer.data_ptr()
    model.eval()
    try:
        _, fresh = model.frozen_forward(**net_input)
        assert fresh.data_ptr() != model._logits_buffer.data_ptr()
    finally:
        model.train()


def test_one_positions_by_vocabulary_tensor_per_update():
    """The frozen forward's logits buffer is the update's only [positions x V] allocation: the
    dominant sets and the softmax sampler's weights work in it (first update, nothing cached;
    P x V = 40 x 40,004, above the few-row working buffers, which are at most 4 MiB)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    torch.manual_seed(0)
    dictionary, task, model = tiny_setup(40_000)
    sample = batch(
        dictionary, [(list(range(4, 24)), list(range(100, 119))), ([5, 6], list(range(200, 219)))]
    )
    positions, vocab = sample["target"].numel(), len(dictionary)
    assert positions * vocab * 4 > 4 * 2**20

    class LargeAllocations(TorchDispatchMode):
        found = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            inputs = {
                a.untyped_storage().data_ptr()
                for a in list(args) + list((kwargs or {}).values())
                if isinstance(a, torch.Tensor)
            }
            for tensor in out if isinstance(out, (tuple, list)) else [out]:
                if (
                    isinstance(tensor, torch.Tensor)
                    and tensor.numel() >= positions * vocab
                    and tensor.untyped_storage().data_ptr() not in inputs
                ):
                    self.found.append(func.overloadpacket.__name__)
            return out

    samplers = ("token_freq+softmax", "softmax", "token_freq")
    for first, sampler in zip((True, False, False), samplers):
        LargeAllocations.found = []
        with LargeAllocations():
            criterion(task, sampler, negatives=4, no_avoid_dominant=False, ranking_loss_weight=0.5)(
                model, sample
            )
        assert LargeAllocations.found == (["new_empty"] if first else []), sampler


def test_token_freq_counts_the_target_side_of_a_joined_dictionary(tmp_path):
    from conftest import binarize
    from fairseq.tasks.translation import TranslationConfig, TranslationTask

    (tmp_path / "train.en").write_text("open the file\nthe file\nclose the window\n")
    (tmp_path / "train.de").write_text("datei öffnen\ndie datei\nfenster schließen\n")
    data = tmp_path / "bin"
    binarize(tmp_path, data, ("train",), "--joined-dictionary")
    task = TranslationTask.setup_task(
        TranslationConfig(data=str(data), source_lang="en", target_lang="de")
    )
    dictionary = task.target_dictionary
    assert dictionary.count[dictionary.index("the")] == 3  # the joined counts hold English too
    probs = criterion(task, "token_freq", negatives=2).frequency_probs
    assert float(probs[dictionary.index("the")]) == 0.0
    assert float(probs[dictionary.index("datei")]) == pytest.approx(2 / 6)
    assert float(probs[dictionary.index("schließen")]) == pytest.approx(1 / 6)
    assert float(probs[dictionary.eos()]) == 0.0


@pytest.mark.parametrize(
    "option, value, fragment",
    [
        ("num_negatives", 0, "--num-negatives 0 is out of range: it must be at least 1"),
        ("sampling_temperature", 0.0, "--sampling-temperature 0.0 is out of range"),
        ("sampling_temperature", float("nan"), "--sampling-temperature nan is out of range"),
        ("sampling_temperature", float("inf"), "--sampling-temperature inf is out of range"),
        ("dominant_epsilon", 2.0, "--dominant-epsilon 2.0 is out of range: it must be (0, 1)"),
        ("dominant_epsilon", 0.0, "--dominant-epsilon 0.0 is out of range"),
        ("dominant_p_jump", -1.0, "--dominant-p-jump -1.0 is out of range: it must be (0, 1)"),
        ("dominant_p_jump", 1.0, "--dominant-p-jump 1.0 is out of range"),
    ],
)
def test_numeric_options_out_of_range(setup, option, value, fragment):
    _, task, _ = setup
    options = {"negatives": value} if option == "num_negatives" else {option: value}
    with pytest.raises(QEUserError) as error:
        criterion(task, **options)
    assert str(error.value).startswith(fragment) and "\n" not in str(error.value)


def test_numeric_options_at_their_bounds_are_accepted(setup):
    _, task, _ = setup
    criterion(
        task, negatives=1, sampling_temperature=1e-3, dominant_epsilon=0.999, dominant_p_jump=1e-6
    )


def test_num_negatives_that_cannot_be_drawn(setup):
    dictionary, task, _ = setup
    # 12 symbols: random draws from the 11 that are not padding, token_freq from the 8 words;
    # the reference is never a negative.
    criterion(task, "random", negatives=10)
    criterion(task, "token_freq", negatives=7)
    criterion(task, "token_freq+random", negatives=14)  # 7 + 7
    with pytest.raises(
        QEUserError,
        match=r"--num-negatives 11 does not fit: the random "
        r"sampler's share is 11 negatives per position but it can draw only "
        r"10 .* use --num-negatives 10 or less",
    ):
        criterion(task, "random", negatives=11)
    with pytest.raises(
        QEUserError,
        match=r"token_freq sampler's share is 8 .* only 7 .* "
        r"--num-negatives 14 or less",
    ):
        criterion(task, "token_freq+random", negatives=16)  # 15 would give token_freq 8
    with pytest.raises(QEUserError, match=r"--num-negatives 15 or less"):
        criterion(task, "random+token_freq", negatives=16)  # 15 = random 8 + token_freq 7
