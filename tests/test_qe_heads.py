"""--qe-head-type: parameter counts (closed forms), the starting logits, what training moves,
checkpoints that round-trip through fairseq-generate, and bad options refused in one line."""

import json
import re
from argparse import Namespace

import pytest
import torch
from conftest import PACKAGE_DIR, fairseq, head_args, one_error_line
from fairseq.data import Dictionary
from fairseq.models.transformer import TransformerModel, base_architecture
from test_criterion import batch

from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.criterions.nce_dominant import NceDominantCriterion
from fairseq_sigmoid_qe.models import deltalm
from fairseq_sigmoid_qe.models.qe_heads import build_qe_head, check_head_options, parameter_count
from fairseq_sigmoid_qe.models.sigmoid_head_transformer import SigmoidHeadTransformerModel
from fairseq_sigmoid_qe.optim.sparse_adam import FairseqSparseAdam

pytestmark = pytest.mark.integration

TYPES = [("full", None), ("logit_affine", None), ("hidden_transform", None), ("lowrank", 4)]
HEAD_KEYS = {
    "full": {"weight"},
    "logit_affine": {"scale", "shift"},
    "hidden_transform": {"hidden_map"},
    "lowrank": {"up", "down"},
}
DIM = 16


class Task:
    def __init__(self, dictionary):
        self.source_dictionary = self.target_dictionary = dictionary


def tiny(head_type, rank, bias=False, share=True):
    """A tiny Transformer wrapped with a head of ``head_type``: (model, dictionary, task)."""
    torch.manual_seed(0)
    dictionary = Dictionary()
    for i in range(20):
        dictionary.add_symbol(f"w{i}", n=10 + i)
    args = Namespace(
        arch="transformer",
        encoder_layers=1,
        decoder_layers=1,
        encoder_embed_dim=DIM,
        decoder_embed_dim=DIM,
        encoder_ffn_embed_dim=32,
        decoder_ffn_embed_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        share_all_embeddings=share,
    )
    base_architecture(args)
    task = Task(dictionary)
    base = TransformerModel.build_model(args, task)
    head = build_qe_head(base.decoder.output_projection, head_type, rank, bias)
    model = SigmoidHeadTransformerModel(
        Namespace(qe_head_bias=bias), base.encoder, base.decoder, head
    )
    return model, dictionary, task


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("head_type,rank", TYPES)
def test_parameters_equal_the_closed_form_and_the_projection_is_not_copied(head_type, rank, bias):
    model, dictionary, _ = tiny(head_type, rank, bias)
    vocab = len(dictionary)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    expected = {
        "full": lambda: vocab * DIM,
        "logit_affine": lambda: 2,
        "hidden_transform": lambda: DIM * DIM,
        "lowrank": lambda: rank * (vocab + DIM),
    }[head_type]() + (vocab if bias else 0)
    assert trainable == expected == parameter_count(head_type, vocab, DIM, rank, bias)
    head_keys = {k[len("qe_head.") :] for k in model.state_dict() if k.startswith("qe_head.")}
    assert head_keys == HEAD_KEYS[head_type] | ({"bias"} if bias else set())


@pytest.mark.parametrize("arch", ["deltalm_base", "deltalm_large"])
@pytest.mark.parametrize(
    "head_type,rank",
    [("full", None), ("logit_affine", None), ("hidden_transform", None), ("lowrank", 16)],
)
def test_deltalm_head_sizes_are_the_closed_form(arch, head_type, rank):
    """Counted on the real modules (meta device), on DeltaLM's 250k vocabulary."""
    n_base, n_head = deltalm.parameter_counts(arch, head_type=head_type, rank=rank)
    dim = {"deltalm_base": 768, "deltalm_large": 1024}[arch]
    assert n_head == parameter_count(head_type, deltalm.DELTALM_DICTIONARY_SIZE, dim, rank)
    assert n_base > 10 * parameter_count("hidden_transform", 0, dim)


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("head_type,rank", TYPES)
def test_initial_logits_are_the_softmax_projections(head_type, rank, bias, share):
    model, dictionary, _ = tiny(head_type, rank, bias, share)
    features = torch.randn(3, 5, DIM)
    expected = model.decoder.output_layer(features)
    torch.testing.assert_close(model.qe_head(features), expected, rtol=1e-5, atol=1e-5)
    tokens = torch.randint(len(dictionary), (3, 5, 7))
    torch.testing.assert_close(
        model.qe_logits(features, tokens), expected.gather(-1, tokens), rtol=1e-5, atol=1e-5
    )


def adam(params):
    return torch.optim.Adam(params, lr=0.01)


def sparse_adam(params):
    return FairseqSparseAdam(Namespace(lr=[0.01], adam_betas="(0.9, 0.98)", adam_eps=1e-8), params)


@pytest.mark.parametrize("make_optimizer", [adam, sparse_adam])
@pytest.mark.parametrize("head_type,rank", TYPES)
def test_training_moves_only_the_head(head_type, rank, make_optimizer):
    model, dictionary, task = tiny(head_type, rank)
    model.train()
    before = {name: p.detach().clone() for name, p in model.state_dict().items()}
    criterion = NceDominantCriterion(
        task, 5, "token_freq+softmax", 2.0, True, False, 0.3, 0.005, "last"
    )
    sample = batch(dictionary, [([4, 5, 6], [7, 8, 9, 10]), ([11, 12], [13, 14, 15])])
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad])
    for _ in range(2):  # the low-rank head's A first moves once B has left zero
        optimizer.zero_grad()
        loss, _, _ = criterion(model, sample)
        loss.backward()
        optimizer.step()
    after = model.state_dict()
    for name, tensor in before.items():
        if name.startswith("qe_head."):
            assert not torch.equal(after[name], tensor), name
        else:
            assert torch.equal(after[name], tensor), name


def test_logit_affine_head_is_an_affine_map_of_the_frozen_logit():
    """sigma(a z_out + c): after moving a and c, every logit is a z_out + c, token by token."""
    model, dictionary, _ = tiny("logit_affine", None)
    with torch.no_grad():
        model.qe_head.scale.fill_(0.5)
        model.qe_head.shift.fill_(-2.0)
    features = torch.randn(2, 3, DIM)
    frozen = model.decoder.output_layer(features)
    torch.testing.assert_close(model.qe_head(features), 0.5 * frozen - 2.0, rtol=1e-5, atol=1e-5)


def test_former_type_name_and_keys_still_load():
    """A head saved as 'rescaling' (its d x d map under the key 'rescale') loads as
    hidden_transform with the same logits."""
    model, _, _ = tiny("rescaling", None)
    assert type(model.qe_head).__name__ == "HiddenTransformHead"
    torch.manual_seed(3)
    old = {"rescale": torch.randn(DIM, DIM)}
    model.qe_head.upgrade_state_dict_named(old, "")
    model.qe_head.load_state_dict(old)
    torch.testing.assert_close(model.qe_head.hidden_map, old["hidden_map"])
    assert parameter_count("rescaling", 20, DIM) == parameter_count("hidden_transform", 20, DIM)


# ----------------------------------------------------------------- real fairseq CLI


@pytest.fixture(scope="module", params=["logit_affine", "lowrank"])
def compact_head(request, tmp_path_factory, real_data_bin, base_checkpoint):
    """A compact head trained 6 updates, then resumed to 10: (type, save_dir, outputs)."""
    save_dir = tmp_path_factory.mktemp(request.param)
    options = ["--qe-head-type", request.param, "--seed", "5"]
    if request.param == "lowrank":
        options += ["--qe-head-rank", "8"]
    first = fairseq(
        "train", *head_args(real_data_bin, base_checkpoint, save_dir, "--max-update", "6", *options)
    )
    second = fairseq(
        "train",
        *head_args(real_data_bin, base_checkpoint, save_dir, "--max-update", "10", *options),
    )
    return request.param, save_dir, first.stdout + first.stderr, second.stdout + second.stderr


def test_compact_head_trains_resumes_and_reports_its_size(compact_head, base_checkpoint):
    head_type, save_dir, first, second = compact_head
    assert f"sigmoid head ({head_type}" in first and "trainable (+" in first
    assert "Loaded checkpoint" in second
    base = torch.load(base_checkpoint, map_location="cpu", weights_only=True)["model"]
    state = torch.load(save_dir / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 10
    head = state["model"]
    assert set(head) == set(base) | {f"qe_head.{key}" for key in HEAD_KEYS[head_type]}
    for key, tensor in base.items():
        assert torch.equal(head[key], tensor), key


def test_compact_head_round_trips_through_generate(compact_head, real_data_bin, tmp_path):
    """Beam search and --score-reference with --print-qe, and the raw-text API, from the
    checkpoint alone; force-decoding gives the search's own sigmoid scores."""
    from fairseq_sigmoid_qe.api import QEModel

    head_type, save_dir, _, _ = compact_head
    checkpoint = str(save_dir / "checkpoint_last.pt")
    common = [
        real_data_bin,
        "--user-dir",
        PACKAGE_DIR,
        "--path",
        checkpoint,
        "--cpu",
        "--batch-size",
        "16",
        "--max-len-b",
        "40",
        "--print-qe",
    ]
    searched = fairseq("generate", *common, "--beam", "4", "--qe-output", tmp_path / "beam.jsonl")
    plain = fairseq("generate", *common[:-1], "--beam", "4")
    hypotheses = [line for line in searched.stdout.splitlines() if line.startswith("H-")]
    assert hypotheses and hypotheses == [
        line for line in plain.stdout.splitlines() if line.startswith("H-")
    ]
    records = [json.loads(line) for line in open(tmp_path / "beam.jsonl", encoding="utf-8")]
    assert len(records) == len(hypotheses)
    sigmoid = [s for r in records for s in r["token_scores"]["sigmoid"]]
    assert sigmoid and all(0 < s < 1 for s in sigmoid)
    fairseq("generate", *common, "--score-reference", "--qe-output", tmp_path / "ref.jsonl")
    assert sum(1 for _ in open(tmp_path / "ref.jsonl", encoding="utf-8")) > 50
    text = __import__("pathlib").Path(real_data_bin).parent / "text"
    qe = QEModel.from_checkpoint(checkpoint, real_data_bin, str(text / "spm.model"))
    sources = (text / "test.raw.en").read_text().splitlines()[:5]
    translated = qe.translate(sources)
    rescored = qe.score(sources, [r["translation"] for r in translated])
    for searched_record, forced in zip(translated, rescored):
        if searched_record["tokens"] == forced["tokens"]:
            assert searched_record["token_scores"]["sigmoid"] == pytest.approx(
                forced["token_scores"]["sigmoid"], rel=1e-3, abs=2e-4
            )


def test_head_of_another_type_is_not_resumed(compact_head, real_data_bin, base_checkpoint):
    head_type, save_dir, _, _ = compact_head
    other = ["--qe-head-type", "lowrank", "--qe-head-rank", "2"] if head_type != "lowrank" else []
    result = fairseq(
        "train",
        *head_args(real_data_bin, base_checkpoint, save_dir, "--max-update", "12", *other),
        check=False,
    )
    assert "a sigmoid head of another type" in one_error_line(result)


HEAD_OPTION_ERRORS = [
    ((None, 8), "--qe-head-rank is only for --qe-head-type lowrank"),
    (("hidden_transform", 8), "--qe-head-rank is only for"),
    (("logit_affine", 8), "--qe-head-rank is only for"),
    (("lowrank", None), "--qe-head-type lowrank needs --qe-head-rank"),
    (("lowrank", 0), "--qe-head-rank 0 is out of range"),
    (("lowrank", -3), "--qe-head-rank -3 is out of range"),
    (("lowrank", DIM + 1), f"it must be at most the model dimension {DIM}"),
]


@pytest.mark.parametrize("options,message", HEAD_OPTION_ERRORS)
def test_bad_head_options_are_refused(options, message):
    head_type, rank = options
    with pytest.raises(QEUserError, match=re.escape(message)):
        check_head_options(head_type or "full", rank, DIM)


@pytest.mark.parametrize("options,message", [HEAD_OPTION_ERRORS[0], HEAD_OPTION_ERRORS[4]])
def test_bad_head_options_give_one_line(options, message, tmp_path, real_data_bin, base_checkpoint):
    """Through fairseq-train: one error line, before any checkpoint is written."""
    head_type, rank = options
    flags = (["--qe-head-type", head_type] if head_type else []) + ["--qe-head-rank", str(rank)]
    result = fairseq(
        "train",
        *head_args(real_data_bin, base_checkpoint, tmp_path / "head", "--max-update", "1", *flags),
        check=False,
    )
    assert message in one_error_line(result)
    assert not (tmp_path / "head").exists() or not list((tmp_path / "head").glob("*.pt"))


@pytest.mark.parametrize("head_type,rank", TYPES)
def test_deltalm_heads_start_at_its_shared_projection(head_type, rank):
    dictionary = deltalm.placeholder_dictionary(40)
    model = deltalm.build_deltalm(
        dictionary,
        "deltalm_base",
        encoder_layers=1,
        decoder_layers=1,
        encoder_embed_dim=DIM,
        decoder_embed_dim=DIM,
        encoder_ffn_embed_dim=32,
        decoder_ffn_embed_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
    )
    projection = model.decoder.output_projection
    assert projection.weight is model.decoder.embed_tokens.weight
    head = build_qe_head(projection, head_type, rank)
    features = torch.randn(2, 3, DIM)
    torch.testing.assert_close(head(features), projection(features), rtol=1e-5, atol=1e-5)
    assert all(p is not projection.weight for p in head.parameters())
