"""What the benchmarks share: model shapes with random weights, synthetic batches, and timing
of several variants side by side (interleaved repeats, medians)."""

import os
import statistics
import sys
import time
from argparse import Namespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

# name: (what it stands for, vocabulary, how to build it)
SHAPES = {
    "l10n": (
        "l10n recipe's base: transformer 3+3 layers, d=256, FFN 1024, pre-norm",
        8000,
        dict(
            encoder_layers=3,
            decoder_layers=3,
            encoder_embed_dim=256,
            decoder_embed_dim=256,
            encoder_ffn_embed_dim=1024,
            decoder_ffn_embed_dim=1024,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_normalize_before=True,
            decoder_normalize_before=True,
            share_all_embeddings=True,
        ),
    ),
    "transformer_base": (
        "Transformer Base: 6+6 layers, d=512, FFN 2048, post-norm",
        32000,
        dict(
            encoder_layers=6,
            decoder_layers=6,
            encoder_embed_dim=512,
            decoder_embed_dim=512,
            share_all_embeddings=True,
        ),
    ),
    "deltalm_base": ("DeltaLM base: 12+6 interleaved layers, d=768, FFN 3072", 250001, None),
    "tiny": (
        "tiny smoke-test model: 1+1 layers, d=32",
        300,
        dict(
            encoder_layers=1,
            decoder_layers=1,
            encoder_embed_dim=32,
            decoder_embed_dim=32,
            encoder_ffn_embed_dim=64,
            decoder_ffn_embed_dim=64,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            share_all_embeddings=True,
        ),
    ),
}
TOP_PROBABILITY = 0.6  # mean top-1 softmax probability the random logits are scaled to (the
# l10n recipe's trained base gives 0.61 on a batch of its training data, dominant sets of 3.3)


class Task:
    def __init__(self, dictionary):
        self.source_dictionary = self.target_dictionary = dictionary


def make_dictionary(size):
    """A dictionary of ``size`` symbols with decreasing counts (for the token-freq sampler)."""
    from fairseq.data import Dictionary

    dictionary = Dictionary()
    for i in range(size - len(dictionary)):
        dictionary.add_symbol(f"w{i}", n=size - i)
    return dictionary


def make_batch(dictionary, sentences, length, generator):
    """Random source and target sentences of ``length`` tokens (target ends in EOS)."""
    vocab = len(dictionary)
    src = torch.randint(dictionary.nspecial, vocab, (sentences, length), generator=generator)
    tgt = torch.randint(dictionary.nspecial, vocab, (sentences, length), generator=generator)
    tgt[:, -1] = dictionary.eos()
    prev = torch.cat([torch.full((sentences, 1), dictionary.eos()), tgt[:, :-1]], dim=1)
    return {
        "net_input": {
            "src_tokens": src,
            "src_lengths": torch.full((sentences,), length),
            "prev_output_tokens": prev,
        },
        "target": tgt,
        "ntokens": tgt.numel(),
        "nsentences": sentences,
        "id": torch.arange(sentences),
    }


def build_transformer(task, dim, layers):
    """fairseq's base Transformer with ``layers`` + ``layers`` layers of width ``dim``."""
    from fairseq.models.transformer import TransformerModel, base_architecture

    args = Namespace(
        arch="transformer",
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_embed_dim=dim,
        decoder_embed_dim=dim,
        dropout=0.1,
        share_decoder_input_output_embed=True,
    )
    base_architecture(args)
    return TransformerModel.build_model(args, task)


def transformer_and_batch(vocab, dim, layers, sentences, length):
    """A dictionary of ``vocab`` symbols, its task, :func:`build_transformer` and one batch."""
    dictionary = make_dictionary(vocab)
    task = Task(dictionary)
    base = build_transformer(task, dim, layers)
    sample = make_batch(dictionary, sentences, length, torch.Generator().manual_seed(1))
    return dictionary, task, base, sample


def _calibrate(model, dictionary, top_probability):
    """Scale the decoder's last layer norm (the one that makes ``h``, so the logits scale with
    it; embeddings untouched) so that the softmax of random weights has a trained model's mean
    top-1 probability on random input, found by bisection on the scale."""
    sample = make_batch(dictionary, 4, 16, torch.Generator().manual_seed(99))
    model.eval()
    with torch.no_grad():
        logits = model(**sample["net_input"])[0].float().reshape(-1, len(dictionary))
    low, high = 1e-2, 1e2
    for _ in range(40):
        scale = (low * high) ** 0.5
        if torch.softmax(logits * scale, dim=-1).amax(dim=-1).mean() < top_probability:
            low = scale
        else:
            high = scale
    decoder = model.decoder
    norm = getattr(decoder, "layer_norm", None) or decoder.layers[-1].final_layer_norm
    with torch.no_grad():
        norm.weight.mul_(scale)
        norm.bias.mul_(scale)


def build_base(shape, seed=0):
    """(base model with random weights, its dictionary) of one of ``SHAPES``."""
    from fairseq.models.transformer import TransformerModel, base_architecture

    _, vocab, options = SHAPES[shape]
    torch.manual_seed(seed)
    if options is None:
        from fairseq_sigmoid_qe.models.deltalm import build_deltalm, placeholder_dictionary

        dictionary = placeholder_dictionary(vocab)
        model = build_deltalm(dictionary, "deltalm_base")
    else:
        dictionary = make_dictionary(vocab)
        args = Namespace(arch="transformer", dropout=0.1, **options)
        base_architecture(args)
        model = TransformerModel.build_model(args, Task(dictionary))
    _calibrate(model, dictionary, TOP_PROBABILITY)
    return model, dictionary


def head_model(base):
    """The sigmoid-head model over ``base`` (head initialised from its output projection)."""
    from fairseq_sigmoid_qe.models.qe_heads import build_qe_head
    from fairseq_sigmoid_qe.models.sigmoid_head_transformer import SigmoidHeadTransformerModel

    model = SigmoidHeadTransformerModel(
        Namespace(qe_head_bias=False),
        base.encoder,
        base.decoder,
        build_qe_head(base.decoder.output_projection),
    )
    for param in base.parameters():
        param.requires_grad_(False)
    return model


def best_sampler_criterion(task, **changes):
    """``nce_dominant`` with the paper's best sampler (token_freq+softmax, T=2, avoid-dominant,
    K=10)."""
    from fairseq_sigmoid_qe.core.dominant import DEFAULT_RULE
    from fairseq_sigmoid_qe.criterions.nce_dominant import NceDominantCriterion

    settings = dict(
        num_negatives=10,
        negative_sampler="token_freq+softmax",
        sampling_temperature=2.0,
        avoid_dominant=False,
        no_avoid_dominant=False,
        dominant_p_jump=DEFAULT_RULE.p_jump,
        dominant_epsilon=DEFAULT_RULE.epsilon,
        dominant_cut=DEFAULT_RULE.cut,
    )
    settings.update(changes)
    return NceDominantCriterion(task, **settings)


def update_step(model, criterion, sample, optimizer="adam"):
    """One training update over the model's trainable parameters as a function: dense Adam
    (torch's), or the plugin's ``sparse_adam`` (the authors' regime: the head's gradient is
    sparse and only its scored rows move)."""
    from fairseq_sigmoid_qe.optim.sparse_adam import SPARSE_GRAD_ATTRIBUTE, LazyAdam

    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sparse_adam":
        for param in params:
            setattr(param, SPARSE_GRAD_ATTRIBUTE, True)
        optimizer = LazyAdam(params, lr=1e-4)
    else:
        optimizer = torch.optim.Adam(params, lr=1e-4)

    def step():
        loss, _, _ = criterion(model, sample)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()  # gradients freed at once: variants timed side by side coexist

    return step


def interleaved_medians(functions, repeats, clock=time.perf_counter):
    """Median seconds of each of ``functions`` ({name: callable}) over ``repeats`` rounds,
    after one untimed warm-up each; the order alternates every round (A B C, C B A, ...) so
    that drift on a shared machine hits every variant alike."""
    names = list(functions)
    for name in names:
        functions[name]()
    times = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = clock()
            functions[name]()
            times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}
