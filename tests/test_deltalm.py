"""DeltaLM: official-layout loading, interleaved decoder, incremental decoding, the CLI recipe."""

import json
import os
import re
import subprocess
import sys
from argparse import Namespace

import pytest
import torch
from conftest import REPO

from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.models import deltalm
from fairseq_sigmoid_qe.models.deltalm_checkpoint import official_state_dict
from fairseq_sigmoid_qe.testing.deltalm_fixtures import TINY_OPTIONS, randomize_

pytestmark = pytest.mark.integration

VOCAB = 40
DIM, FFN, LAYERS = TINY_OPTIONS["encoder_embed_dim"], TINY_OPTIONS["encoder_ffn_embed_dim"], 1
POSITIONS = 512 + 2  # fairseq's learned positions: max positions + padding_idx + 1, as released


def official_layout(
    rows, enc_layers=LAYERS, dec_layers=LAYERS, dim=DIM, ffn=FFN, embedding_norm=True
):
    """Names and shapes of the released deltalm-*.pt ``weights``, written out independently
    from the official code's modules (microsoft/unilm deltalm/models/deltalm.py: fairseq's
    encoder, the interleaved decoder layer, the names its loader maps); the large architecture
    turns the embedding layer norm off, so deltalm-large.pt has no ``emb_layer_norm``."""
    layout = {}
    for side in ("src_embedding", "tgt_embedding"):
        layout[f"{side}.embed_tokens.weight"] = (rows, dim)
        layout[f"{side}.embed_positions.weight"] = (POSITIONS, dim)
        if embedding_norm:
            layout[f"{side}.emb_layer_norm.weight"] = (dim,)
            layout[f"{side}.emb_layer_norm.bias"] = (dim,)

    def linear(prefix, n_in, n_out):
        layout[f"{prefix}.weight"], layout[f"{prefix}.bias"] = (n_out, n_in), (n_out,)

    def norm(prefix):
        layout[f"{prefix}.weight"] = layout[f"{prefix}.bias"] = (dim,)

    for side, count, attentions, ffns, norms in (
        (
            "encoder",
            enc_layers,
            ["self_attn"],
            ["ffn"],
            ["self_attn_layer_norm", "final_layer_norm"],
        ),
        (
            "decoder",
            dec_layers,
            ["self_attn", "encoder_attn"],
            ["ffn_1", "ffn_2"],
            [
                "self_attn_layer_norm",
                "encoder_attn_layer_norm",
                "ffn_layer_norm",
                "final_layer_norm",
            ],
        ),
    ):
        for i in range(count):
            for attention in attentions:
                for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    linear(f"{side}.layers.{i}.{attention}.{proj}", dim, dim)
            for ffn_name in ffns:
                linear(f"{side}.layers.{i}.{ffn_name}.fc1", dim, ffn)
                linear(f"{side}.layers.{i}.{ffn_name}.fc2", ffn, dim)
            for norm_name in norms:
                norm(f"{side}.layers.{i}.{norm_name}")
    return layout


def dictionary(size=VOCAB):
    return deltalm.placeholder_dictionary(size)


def tiny_model(vocab=VOCAB, arch="deltalm_base", **options):
    model = deltalm.build_deltalm(dictionary(vocab), arch, **{**TINY_OPTIONS, **options})
    return model.eval()


def batch(vocab=VOCAB, seed=0):
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, vocab, (3, 7), generator=generator)
    src[0, :2] = 1  # left padding, as fairseq's translation task does
    lengths = (src != 1).sum(1)
    prev = torch.randint(4, vocab, (3, 5), generator=generator)
    prev[:, 0] = 2
    return src, lengths, prev


def logits(model, vocab=VOCAB):
    src, lengths, prev = batch(vocab)
    with torch.no_grad():
        return model(src, lengths, prev)[0]


@pytest.fixture
def reference(tmp_path):
    """A random tiny DeltaLM, and its weights saved like the release (103 extra rows)."""
    model = randomize_(tiny_model(), seed=3)
    weights = official_state_dict(model)
    for key in ("src_embedding.embed_tokens.weight", "tgt_embedding.embed_tokens.weight"):
        weights[key] = torch.cat([weights[key], torch.randn(103, DIM)])
    path = tmp_path / "deltalm-tiny.pt"
    torch.save({"weights": weights}, path)
    return model, weights, path


def load_pretrained(path, vocab=VOCAB, arch="deltalm_base"):
    args = Namespace(pretrained_deltalm_checkpoint=str(path), arch=arch, **TINY_OPTIONS)
    task = Namespace(source_dictionary=dictionary(vocab), target_dictionary=dictionary(vocab))
    model = deltalm.DeltaLMModel.build_model(args, task)
    return model.eval(), args


def test_official_layout_loads_to_the_same_model(reference):
    model, weights, path = reference
    assert {k: tuple(v.shape) for k, v in weights.items()} == official_layout(VOCAB + 103)
    loaded, args = load_pretrained(path)
    torch.testing.assert_close(logits(loaded), logits(model), rtol=0, atol=0)
    assert args.pretrained_deltalm_checkpoint is None  # the saved config forgets the file
    layer = loaded.decoder.layers[0]
    for module, name in [  # the first FFN (after self-attention) is ffn_1 -> fc3/fc4
        (layer.fc3, "decoder.layers.0.ffn_1.fc1"),
        (layer.fc4, "decoder.layers.0.ffn_1.fc2"),
        (layer.fc1, "decoder.layers.0.ffn_2.fc1"),
        (layer.fc2, "decoder.layers.0.ffn_2.fc2"),
        (loaded.encoder.layers[0].fc1, "encoder.layers.0.ffn.fc1"),
        (loaded.encoder.layernorm_embedding, "src_embedding.emb_layer_norm"),
    ]:
        assert torch.equal(module.weight, weights[name + ".weight"])
        assert torch.equal(module.bias, weights[name + ".bias"])
    decoder = loaded.decoder
    assert decoder.output_projection.weight is decoder.embed_tokens.weight
    assert loaded.encoder.embed_tokens.weight is decoder.embed_tokens.weight


@pytest.mark.parametrize(
    "arch, sizes, embedding_norm",
    [
        ("deltalm_base", (768, 3072, 12, 12, 6), True),
        ("deltalm_large", (1024, 4096, 24, 16, 12), False),
    ],
)
def test_official_settings_per_size(arch, sizes, embedding_norm):
    """As the official architecture functions set them (microsoft/unilm, deltalm.py)."""
    args = Namespace()
    deltalm.ARCHITECTURES[arch](args)
    dim, ffn, encoder_layers, heads, decoder_layers = sizes
    assert (
        args.encoder_embed_dim,
        args.encoder_ffn_embed_dim,
        args.encoder_layers,
        args.encoder_attention_heads,
    ) == (dim, ffn, encoder_layers, heads)
    assert (
        args.decoder_embed_dim,
        args.decoder_ffn_embed_dim,
        args.decoder_layers,
        args.decoder_attention_heads,
    ) == (dim, ffn, decoder_layers, heads)
    assert args.layernorm_embedding is embedding_norm
    assert not args.encoder_normalize_before and not args.decoder_normalize_before
    assert args.encoder_learned_pos and args.decoder_learned_pos and args.no_scale_embedding
    assert args.activation_fn == "gelu"
    assert args.max_source_positions == args.max_target_positions == 512


def test_official_large_layout_loads_to_the_same_model(tmp_path):
    """A large-architecture file built from the official key list (no emb_layer_norm)."""
    model = randomize_(tiny_model(arch="deltalm_large", decoder_layers=2), seed=7).eval()
    weights = official_state_dict(model)
    assert {k: tuple(v.shape) for k, v in weights.items()} == official_layout(
        VOCAB, dec_layers=2, embedding_norm=False
    )
    path = tmp_path / "deltalm-large-tiny.pt"
    torch.save({"weights": weights}, path)
    args = Namespace(
        pretrained_deltalm_checkpoint=str(path),
        arch="deltalm_large",
        **{**TINY_OPTIONS, "decoder_layers": 2},
    )
    task = Namespace(source_dictionary=dictionary(), target_dictionary=dictionary())
    loaded = deltalm.DeltaLMModel.build_model(args, task).eval()
    assert loaded.encoder.layernorm_embedding is None
    torch.testing.assert_close(logits(loaded), logits(model), rtol=0, atol=0)


def test_base_and_large_files_do_not_cross(reference, tmp_path):
    _, weights, path = reference
    with pytest.raises(QEUserError, match=r"unexpected weights src_embedding\.emb_layer_norm"):
        load_pretrained(path, arch="deltalm_large")
    no_norm = rewrite(
        tmp_path / "large.pt",
        weights,
        **{
            f"{side}.emb_layer_norm.{param}": None
            for side in ("src_embedding", "tgt_embedding")
            for param in ("weight", "bias")
        },
    )
    with pytest.raises(QEUserError, match=r"missing weights src_embedding\.emb_layer_norm"):
        load_pretrained(no_norm)


def test_fresh_model_differs_from_pretrained(reference):
    model, _, _ = reference
    assert not torch.allclose(logits(tiny_model()), logits(model))


def test_smaller_file_vocabulary_copies_overlapping_rows(tmp_path, reference):
    _, weights, _ = reference
    path = tmp_path / "short.pt"
    short = {k: (v[:30] if "embed_tokens" in k else v) for k, v in weights.items()}
    torch.save({"weights": short}, path)
    table = load_pretrained(path)[0].decoder.embed_tokens.weight
    assert table.shape[0] == VOCAB
    torch.testing.assert_close(table[:30], short["tgt_embedding.embed_tokens.weight"])
    assert not torch.allclose(table[30:], weights["tgt_embedding.embed_tokens.weight"][30:VOCAB])


def rewrite(path, weights, **changes):
    weights = dict(weights)
    for key, value in changes.items():
        if value is None:
            del weights[key]
        else:
            weights[key] = value
    torch.save({"weights": weights}, path)
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_file", "not found"),
        ("no_weights", "no 'weights'"),
        ("unexpected", "unexpected weights decoder.layers.0.ffn_3.fc1.weight"),
        ("missing", "missing weights decoder.layers.0.ffn_1.fc2.bias"),
        ("shape", "decoder.layers.0.ffn_2.fc1.weight: [65, 32] vs [64, 32]"),
    ],
)
def test_clear_errors(tmp_path, reference, case, message):
    _, weights, _ = reference
    path = tmp_path / "bad.pt"
    if case == "no_weights":
        torch.save({"model": weights}, path)
    elif case == "unexpected":
        rewrite(path, weights, **{"decoder.layers.0.ffn_3.fc1.weight": torch.zeros(1)})
    elif case == "missing":
        rewrite(path, weights, **{"decoder.layers.0.ffn_1.fc2.bias": None})
    elif case == "shape":
        rewrite(path, weights, **{"decoder.layers.0.ffn_2.fc1.weight": torch.zeros(65, DIM)})
    with pytest.raises(QEUserError, match=re.escape(message)):
        load_pretrained(path)


def test_decoder_layer_is_interleaved():
    model = tiny_model(decoder_layers=2)
    calls = []
    for layer in model.decoder.layers:
        names = ("self_attn", "fc3", "fc4", "encoder_attn", "fc1", "fc2")
        for name in names:
            getattr(layer, name).register_forward_hook(
                lambda module, inputs, output, name=name: calls.append(name)
            )
        assert layer.fc1 is not layer.fc3 and layer.ffn_layer_norm is not layer.final_layer_norm
    logits(model)
    order = ["self_attn", "fc3", "fc4", "encoder_attn", "fc1", "fc2"]
    assert calls == order * 2


def test_incremental_decoding_and_reordering_match_full_forward():
    """Beam-search style: two hypotheses per source, reordered (within a source) mid-way."""
    model = randomize_(tiny_model(decoder_layers=2), seed=5, scale=0.1).eval()
    src, lengths, _ = batch()
    beams = torch.tensor([0, 0, 1, 1, 2, 2])
    src, lengths = src[beams], lengths[beams]
    prev = torch.randint(4, VOCAB, (6, 5), generator=torch.Generator().manual_seed(1))
    prev[:, 0] = 2
    order = torch.tensor([1, 1, 2, 3, 5, 4])  # drops, duplicates and swaps hypotheses
    with torch.no_grad():
        encoder_out = model.encoder(src, src_lengths=lengths)
        reordered = torch.cat([prev[order, :2], prev[:, 2:]], 1)
        full = model.decoder(reordered, encoder_out=encoder_out)[0]
        state, steps = {}, []
        for t in range(prev.size(1)):
            if t == 2:
                model.decoder.reorder_incremental_state_scripting(state, order)
                encoder_out = model.encoder.reorder_encoder_out(encoder_out, order)
            tokens = prev[:, : t + 1] if t < 2 else reordered[:, : t + 1]
            steps.append(model.decoder(tokens, encoder_out=encoder_out, incremental_state=state)[0])
    torch.testing.assert_close(torch.cat(steps[2:], 1), full[:, 2:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat(steps[:2], 1)[order], full[:, :2], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(torch.cat(steps[:2], 1), full[:, :2])  # the reorder mattered


def test_parameter_counts_match_the_formula():
    vocab, d, f = deltalm.DELTALM_DICTIONARY_SIZE, 768, 3072
    attention, ffn, norm = 4 * (d * d + d), 2 * d * f + f + d, 2 * d
    encoder_layer = attention + ffn + 2 * norm
    decoder_layer = 2 * attention + 2 * ffn + 4 * norm
    embeddings = vocab * d + 2 * (514 * d + norm)  # one shared token table
    expected = 12 * encoder_layer + 6 * decoder_layer + embeddings
    assert deltalm.parameter_counts("deltalm_base") == (expected, vocab * d)
    assert expected == 362_902_272
    d, f = 1024, 4096  # large: 24 / 12 layers, no embedding layer norm
    attention, ffn, norm = 4 * (d * d + d), 2 * d * f + f + d, 2 * d
    large = (
        24 * (attention + ffn + 2 * norm)
        + 12 * (2 * attention + 2 * ffn + 4 * norm)
        + vocab * d
        + 2 * 514 * d
    )
    assert deltalm.parameter_counts("deltalm_large") == (large, vocab * d)


def test_smoke_recipe_end_to_end(tmp_path):
    """run.sh --smoke: the data and a tiny official-layout release through the fetcher (local
    stand-in downloads), the release checked, spm, preprocess, fine-tune, delete the release
    file, train the sigmoid head on the fine-tuned checkpoint, both decodings and Eval Other
    with --print-qe, the stand-in comet-score's gold, the paper's table."""
    work = tmp_path / "work"
    env = {**os.environ, "WORK": str(work), "PYTHON": sys.executable}
    env.pop("COMET_SCORE", None)
    script = os.path.join(REPO, "examples", "deltalm_paracrawl", "run.sh")
    result = subprocess.run(
        ["bash", script, "--smoke"], capture_output=True, text=True, env=env, timeout=900
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert f"checked {work / 'deltalm'}: deltalm_base" in log
    assert "loaded DeltaLM weights" in log
    assert (work / "deltalm" / "dict.txt").exists()  # fetched from the stand-in release
    assert not (work / "deltalm" / "deltalm-base.pt").exists()
    lock = json.loads((work / "deltalm" / "sha256.lock.json").read_text())
    assert sorted(os.path.basename(url) for url in lock) == [
        "deltalm-base.pt",
        "dict.txt",
        "spm.model",
    ]
    saved = torch.load(work / "deltalm_ft" / "checkpoint_best.pt", weights_only=False)
    assert saved["cfg"]["model"].arch == "deltalm_base"
    assert saved["cfg"]["model"].pretrained_deltalm_checkpoint is None
    assert saved["cfg"]["checkpoint"]["best_checkpoint_metric"] == "bleu"  # as DeltaLM's recipe
    assert re.search(r"valid on 'valid' subset .*\| bleu [0-9.]+", log)
    assert "decoder.layers.0.fc4.weight" in saved["model"]
    lines = (work / "qe" / "wmt22-beam.generate.txt").read_text(encoding="utf-8").splitlines()
    hypotheses = [line for line in lines if line.startswith("H-")]
    qe = {prefix: [line for line in lines if line.startswith(prefix)] for prefix in ("Q-", "QT-")}
    assert hypotheses and len(qe["Q-"]) == len(qe["QT-"]) == len(hypotheses)
    test_sentences = (work / "spm" / "wmt22.en").read_text(encoding="utf-8").splitlines()
    assert len(hypotheses) == len(test_sentences)  # no batch silently dropped
    for name in ("test-beam", "test-sampling", "wmt22-sampling", "other_best-reference"):
        records = [json.loads(line) for line in open(work / "qe" / f"{name}.jsonl")]
        assert records and all(
            0.0 <= s <= 1.0 for r in records for s in r["token_scores"]["sigmoid"]
        )
    table = (work / "results.md").read_text()
    for number in (".131", ".218", ".403", ".537", ".165", ".291", ".515", ".634"):
        assert number in table
    evaluation = json.loads((work / "eval" / "test-sampling.json").read_text())
    assert evaluation["gold"] == "json"
    assert "cometkiwi" in {row["method"] for row in evaluation["methods"]}
