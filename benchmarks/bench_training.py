"""Time of one sigmoid-head training update / one base-training update, same batch, one run.

Target: <= 0.40. Usage: python benchmarks/bench_training.py [--quick]
"""

import argparse
import statistics
import time
from argparse import Namespace

import torch
from common import transformer_and_batch
from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion

import fairseq_sigmoid_qe  # noqa: F401
from fairseq_sigmoid_qe.core.dominant import DEFAULT_RULE
from fairseq_sigmoid_qe.criterions.nce_dominant import NceDominantCriterion
from fairseq_sigmoid_qe.models.qe_heads import build_qe_head
from fairseq_sigmoid_qe.models.sigmoid_head_transformer import SigmoidHeadTransformerModel


def time_updates(model, criterion, sample, repeats, before_update=None):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    times = []
    for step in range(repeats + 1):
        if before_update is not None:
            before_update()
        start = time.perf_counter()
        optimizer.zero_grad()
        loss, _, _ = criterion(model, sample)
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small model and batch")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    torch.manual_seed(0)
    vocab, dim, layers, sentences, length = (
        (4000, 128, 2, 64, 20) if options.quick else (32000, 512, 6, 128, 32)
    )
    dictionary, task, base, sample = transformer_and_batch(vocab, dim, layers, sentences, length)
    base_criterion = LabelSmoothedCrossEntropyCriterion(task, False, 0.1)
    base.train()
    base_time = time_updates(base, base_criterion, sample, options.repeats)

    head = SigmoidHeadTransformerModel(
        Namespace(qe_head_bias=False),
        base.encoder,
        base.decoder,
        build_qe_head(base.decoder.output_projection),
    )
    head.train()
    results = {}
    for sampler in ("token_freq+softmax", "token_freq", "random"):
        criterion = NceDominantCriterion(task, 10, sampler, 2.0, False, False, *DEFAULT_RULE)
        results[sampler] = time_updates(head, criterion, sample, options.repeats)
    criterion = NceDominantCriterion(
        task, 10, "token_freq+softmax", 2.0, False, False, *DEFAULT_RULE
    )
    fresh = time_updates(
        head,
        criterion,
        sample,
        options.repeats,
        before_update=lambda: setattr(head, "_logits_buffer", None),
    )
    print(
        f"batch: {sentences} x {length} target tokens, vocab {vocab}, dim {dim}, "
        f"{layers}+{layers} layers, median of {options.repeats} updates"
    )
    print(f"base update (label-smoothed CE):        {base_time * 1000:8.1f} ms")
    for sampler, seconds in results.items():
        print(
            f"head update ({sampler:<18}, avoid-dominant): {seconds * 1000:8.1f} ms   "
            f"ratio {seconds / base_time:.3f} (target <= 0.40)"
        )
    best = results["token_freq+softmax"]
    print(
        f"head update (token_freq+softmax), logits in a new tensor each update: "
        f"{fresh * 1000:8.1f} ms   reused buffer / new tensor {best / fresh:.3f}"
    )


if __name__ == "__main__":
    main()
