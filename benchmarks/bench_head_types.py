"""Head types side by side in one run: size, training update time and QE scoring time.

For every ``--qe-head-type`` (``full``, ``logit_affine``, ``hidden_transform``, ``lowrank`` at
each ``--ranks``), on one frozen Transformer and one batch: trainable head parameters and their
share of the base; the time of one head-training update (nce_dominant, the paper's best
sampler, Adam); the time of QE scoring by force-decoding (``core.qe_methods.score_tokens``: frozen
forward, softmax, BoostedProb and the head's ``σ(h · W_qe[y])``) and of the head's part alone
(``logits_for`` on the output tokens). The types take turns each repeat, so drift hits all
alike; medians, in CPU seconds of this process. Ratios are to the ``full`` head. The parameter
overheads of the real models (Transformer Base, DeltaLM) are printed too (closed forms, checked
against built modules in tests/test_qe_heads.py).

Usage: python benchmarks/bench_head_types.py [--quick] [--repeats 5] [--ranks 16 64 256]
"""

import argparse
import os
import statistics
import sys
import time
from argparse import Namespace

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import transformer_and_batch  # noqa: E402

from fairseq_sigmoid_qe.core.dominant import DEFAULT_RULE  # noqa: E402
from fairseq_sigmoid_qe.core.qe_methods import score_tokens  # noqa: E402
from fairseq_sigmoid_qe.criterions.nce_dominant import NceDominantCriterion  # noqa: E402
from fairseq_sigmoid_qe.models.qe_heads import build_qe_head, describe  # noqa: E402
from fairseq_sigmoid_qe.models.sigmoid_head_transformer import SigmoidHeadTransformerModel


def cpu_seconds(work):
    start = time.process_time()
    work()
    return time.process_time() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small model and batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ranks", type=int, nargs="+", default=[16, 64, 256])
    options = parser.parse_args()
    torch.manual_seed(0)
    vocab, dim, layers, sentences, length = (
        (4000, 128, 2, 32, 20) if options.quick else (32000, 512, 6, 64, 32)
    )
    dictionary, task, base, sample = transformer_and_batch(vocab, dim, layers, sentences, length)
    n_base = sum(p.numel() for p in base.parameters())
    net_input, target = sample["net_input"], sample["target"]
    criterion = NceDominantCriterion(
        task, 10, "token_freq+softmax", 2.0, True, False, *DEFAULT_RULE
    )
    types = [("full", None), ("logit_affine", None), ("hidden_transform", None)] + [
        ("lowrank", r) for r in options.ranks if r <= dim
    ]
    models, optimizers = {}, {}
    for head_type, rank in types:
        head = build_qe_head(base.decoder.output_projection, head_type, rank)
        model = SigmoidHeadTransformerModel(
            Namespace(qe_head_bias=False), base.encoder, base.decoder, head
        )
        models[head_type, rank] = model
        optimizers[head_type, rank] = torch.optim.Adam(head.parameters(), lr=1e-4)

    def update(key):
        model, optimizer = models[key], optimizers[key]
        model.train()
        optimizer.zero_grad()
        loss, _, _ = criterion(model, sample)
        loss.backward()
        optimizer.step()

    def scoring(key):
        model = models[key].eval()
        score_tokens(
            model,
            net_input["src_tokens"],
            net_input["src_lengths"],
            target,
            dictionary.pad(),
            dictionary.eos(),
        )

    features = torch.randn(sentences, length, dim)

    def head_only(key):
        with torch.no_grad():
            models[key].qe_logits(features, target.unsqueeze(-1))

    times = {name: {key: [] for key in models} for name in ("update", "scoring", "head")}
    for step in range(options.repeats + 1):
        for key in models:
            for name, work in (("update", update), ("scoring", scoring), ("head", head_only)):
                seconds = cpu_seconds(lambda work=work, key=key: work(key))
                if step:  # the first round warms up
                    times[name][key].append(seconds)
    median = {
        name: {key: statistics.median(v) for key, v in per.items()} for name, per in times.items()
    }
    full = ("full", None)
    print(
        f"batch: {sentences} x {length} target tokens, vocab {vocab}, dim {dim}, "
        f"{layers}+{layers} layers (base {n_base:,} parameters), median of "
        f"{options.repeats}, CPU seconds, {torch.get_num_threads()} threads"
    )
    print(
        f"{'head':<14} {'parameters':>12} {'overhead':>9} {'update ms':>10} {'ratio':>6} "
        f"{'scoring ms':>11} {'ratio':>6} {'head part ms':>13}"
    )
    for key, model in models.items():
        n_head = sum(p.numel() for p in model.qe_head.parameters())
        print(
            f"{describe(*key):<14} {n_head:>12,} {100 * n_head / n_base:>8.2f}% "
            f"{1000 * median['update'][key]:>10.1f} "
            f"{median['update'][key] / median['update'][full]:>6.3f} "
            f"{1000 * median['scoring'][key]:>11.1f} "
            f"{median['scoring'][key] / median['scoring'][full]:>6.3f} "
            f"{1000 * median['head'][key]:>13.2f}"
        )
    from fairseq_sigmoid_qe.models.deltalm import overhead_report

    print("\nDeltaLM (250,001-symbol vocabulary), counted from the built modules:")
    print(overhead_report())


if __name__ == "__main__":
    main()
