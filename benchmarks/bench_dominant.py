"""Our dominant-set computation vs `boostedprob.find_dominant`, same inputs, one run.

Target: >= 5x faster with identical sets. Also times the negative samplers for information.
Usage: python benchmarks/bench_dominant.py [--quick]
"""
import argparse
import statistics
import time

import boostedprob
import torch

from fairseq_sigmoid_qe.dominant import dominant_sets
from fairseq_sigmoid_qe.sampling import sample_negatives, softmax_weights, token_frequency_distribution


def median_time(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def same_sets(log_probs, cut):
    indices, mask = dominant_sets(log_probs, cut=cut)
    theirs = boostedprob.find_dominant(log_probs.clone(), cut_point_mode=cut)
    ours = [set(i[m].tolist()) for i, m in zip(indices, mask)]
    return ours == [set(row[row != -1].tolist()) for row in theirs]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="[512, 8000] instead of [4096, 32000]")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    positions, vocab = (512, 8000) if options.quick else (4096, 32000)
    generator = torch.Generator().manual_seed(0)
    # realistic: a trained model's peaked distributions, some flatter rows
    scale = torch.rand(positions, 1, generator=generator) * 6 + 1
    log_probs = torch.log_softmax(torch.randn(positions, vocab, generator=generator) * scale, -1)

    ours = median_time(lambda: dominant_sets(log_probs), options.repeats)
    theirs = median_time(lambda: boostedprob.find_dominant(log_probs.clone()), options.repeats)
    clone = median_time(lambda: log_probs.clone(), options.repeats)
    print(f"log-probs [{positions}, {vocab}], median of {options.repeats}")
    print(f"dominant_sets (ours):          {ours * 1000:9.1f} ms")
    print(f"boostedprob.find_dominant:     {(theirs - clone) * 1000:9.1f} ms  (input clone excluded)")
    print(f"speed-up: {(theirs - clone) / ours:.1f}x (target >= 5x)")
    print(f"identical sets, cut=last:  {same_sets(log_probs, 'last')}")
    print(f"identical sets, cut=first: {same_sets(log_probs, 'first')}")

    reference = torch.randint(4, vocab, (positions,), generator=generator)
    dominant = dominant_sets(log_probs)
    frequencies = token_frequency_distribution(torch.rand(vocab) * 1000, [0, 1, 2, 3])
    weights, _ = softmax_weights(log_probs, 2.0, [1])
    for name, probs in (("token_freq", frequencies), ("softmax T2", weights)):
        seconds = median_time(
            lambda: sample_negatives(5, reference, probs, dominant, generator), options.repeats)
        print(f"sample_negatives k=5 {name:<11} with dominant exclusion: {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
