"""Our dominant sets vs `boostedprob.find_dominant`, same inputs, side by side in one run.

Target: ours >= 5x faster with identical sets. Also times the negative samplers (k=10,
dominant tokens excluded), for information, and beside them a small vocabulary's samplers at
k = 10 and at k = V - 2 (every allowed token: rows finished by one dense draw).
Usage: python benchmarks/bench_dominant.py [--quick] [--repeats 5] [--threads N]
"""

import argparse
import statistics
import time

import boostedprob
import torch

from fairseq_sigmoid_qe.core.dominant import dominant_sets
from fairseq_sigmoid_qe.core.negative_samplers import (
    sample_negatives,
    softmax_weights,
    token_frequency_distribution,
)


def median_seconds(function, repeats, prepare=lambda: None):
    """Median wall time of ``function`` over ``repeats`` runs after one warm-up;
    ``prepare`` runs untimed before each."""
    prepare()
    function()
    times = []
    for _ in range(repeats):
        prepare()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def same_sets(log_probs, cut):
    indices, mask = dominant_sets(log_probs, cut=cut)
    theirs = boostedprob.find_dominant(log_probs.clone(), cut_point_mode=cut)
    ours = [set(i[m].tolist()) for i, m in zip(indices, mask)]
    return ours == [set(row[row != -1].tolist()) for row in theirs]


def compare_dominant(name, log_probs, repeats):
    """find_dominant works in place (exp_, then log_): it gets a fresh copy, refilled
    outside the timed region."""
    scratch = torch.empty_like(log_probs)
    ours = median_seconds(lambda: dominant_sets(log_probs), repeats)
    theirs = median_seconds(
        lambda: boostedprob.find_dominant(scratch),
        repeats,
        prepare=lambda: scratch.copy_(log_probs),
    )
    _, mask = dominant_sets(log_probs)
    sizes = mask.sum(-1).float()
    print(f"[{name}] mean dominant-set size {sizes.mean():.2f}, max {int(sizes.max())}")
    print(f"  dominant_sets (ours):       {ours * 1000:9.1f} ms")
    print(f"  boostedprob.find_dominant:  {theirs * 1000:9.1f} ms")
    print(f"  speed-up: {theirs / ours:.1f}x (target >= 5x)")
    print(f"  identical sets, cut=last:  {same_sets(log_probs, 'last')}")
    print(f"  identical sets, cut=first: {same_sets(log_probs, 'first')}")


def time_samplers(log_probs, repeats, generator, negatives=10):
    positions, vocab = log_probs.shape
    reference = torch.randint(4, vocab, (positions,), generator=generator)
    dominant = dominant_sets(log_probs)
    frequencies = token_frequency_distribution(
        torch.randint(1, 10**6, (vocab,), generator=generator), [0, 1, 2, 3]
    )
    buffer = torch.empty_like(log_probs)
    seconds = median_seconds(lambda: softmax_weights(log_probs, 2.0, [1], out=buffer), repeats)
    print(f"softmax_weights T=2 (per-row sampler's [N, V] weights): {seconds * 1000:8.1f} ms")
    weights, _ = softmax_weights(log_probs, 2.0, [1])
    for name, probs in (("token_freq [V]", frequencies), ("softmax T=2 [N, V]", weights)):
        seconds = median_seconds(
            lambda probs=probs: sample_negatives(negatives, reference, probs, dominant, generator),
            repeats,
        )
        print(
            f"sample_negatives k={negatives} {name:<19} dominant excluded: {seconds * 1000:8.1f} ms"
        )


def time_near_capacity(positions, repeats, generator, vocab=208):
    """k = V - 2 (every token but padding and the reference, dominant ones excluded) against
    k = 10, on a vocabulary of ``vocab`` (the size where a silently clamped k was 300x slower)."""
    log_probs = torch.log_softmax(torch.randn(positions, vocab, generator=generator) * 3, -1)
    reference = torch.randint(4, vocab, (positions,), generator=generator)
    dominant = dominant_sets(log_probs)
    weights, _ = softmax_weights(log_probs, 2.0, [1])
    times = {
        k: median_seconds(
            lambda k=k: sample_negatives(k, reference, weights, dominant, generator), repeats
        )
        for k in (10, vocab - 2)
    }
    print(
        f"[V={vocab}, {positions} positions, softmax T=2, dominant excluded] sample_negatives "
        f"k=10: {times[10] * 1000:.1f} ms, k={vocab - 2}: {times[vocab - 2] * 1000:.1f} ms "
        f"({times[vocab - 2] / times[10]:.1f}x for {(vocab - 2) / 10:.1f}x the negatives)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="[512, 8000] instead of [4096, 32000]")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    positions, vocab = (512, 8000) if options.quick else (4096, 32000)
    generator = torch.Generator().manual_seed(0)
    print(
        f"log-probs [{positions}, {vocab}] float32, median of {options.repeats}, "
        f"{torch.get_num_threads()} torch threads"
    )
    gaussian = torch.randn(positions, vocab, generator=generator)
    compare_dominant(
        "log_softmax(gaussian * 3)", torch.log_softmax(gaussian * 3, -1), options.repeats
    )
    scales = torch.rand(positions, 1, generator=generator) * 6 + 1
    mixed = torch.log_softmax(gaussian * scales, -1)
    compare_dominant("log_softmax(gaussian * U[1, 7] per row)", mixed, options.repeats)
    time_samplers(mixed, options.repeats, generator)
    time_near_capacity(positions, options.repeats, generator)


if __name__ == "__main__":
    main()
