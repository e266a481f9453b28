"""Generation with and without ``--print-qe``: same model, data and batches, timed side by side.

Times only the generation work (not process start-up or model loading): for every batch the
task's ``inference_step`` (what fairseq-generate runs) without QE (fairseq's
``translation``), and with QE (``translation_qe``: the recording generator, score_qe, the
formatted ``Q-``/``QT-`` lines). Each batch runs ``--repeats`` times in each mode, the modes
alternating (ABBA) so that drift hits both alike; the fastest run of each mode counts, in CPU
seconds of this process (a shared machine's other load does not count). Ratio = sum over
batches, with QE / without. The QE work is also timed alone (the search record's per-step
helpers inside the search, and score_qe after it, repeated on one recorded search): on a noisy
machine, 1 + work / without-QE time is a steadier figure than the end-to-end ratio.
Target (beam 5): ratio <= 1.03. The force-decoding path (``--score-reference``) is timed too.

``--methods entropy mc_dropout ...`` times instead the cost of each QE method (a
``--qe-methods`` list each, ``default`` for the three of today) as a ratio to plain generation:
per batch, plain generation and every method's run alternate (forward, then backward order),
the fastest of ``--repeats`` counts, all in one run.

Usage: python benchmarks/bench_generate.py DATA_BIN HEAD_CHECKPOINT [--subset test]
       [--repeats 4] [--beam 5] [--max-tokens 4000] [--threads 1] [--max-sentences N]
       [--dominant-at auto step used_rows] [--methods default entropy mc_dropout mc_seq_entropy]
       [--mc-samples 10]
"""

import argparse
import math
import os
import sys
import time
from argparse import Namespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def batches(task, model, subset, max_tokens, max_sentences=None):
    from fairseq import utils

    task.load_dataset(subset)
    iterator = task.get_batch_iterator(
        dataset=task.dataset(subset),
        max_tokens=max_tokens,
        max_positions=utils.resolve_max_positions(task.max_positions(), model.max_positions()),
    ).next_epoch_itr(shuffle=False)
    samples = list(iterator)
    total = sum(len(sample["id"]) for sample in samples)
    if max_sentences is None or max_sentences >= total:
        return samples
    return samples[:: math.ceil(total / max_sentences)]  # every k-th: short and long batches


def plain_generator(task, model, generation):
    """fairseq's own generator for the task (its parent class, ``translation``, decides)."""
    from fairseq.tasks.translation import TranslationTask

    return TranslationTask.build_generator(task, [model], generation)


def one_batch(task, generator, model, sample, qe):
    """CPU seconds for one batch: fairseq's inference step, or (``qe``) translation_qe's,
    which records the search and runs score_qe, and the formatted QE lines."""
    from fairseq.tasks.translation import TranslationTask

    from fairseq_sigmoid_qe.decoding.generate_output import qe_lines

    start = time.process_time()
    if not qe:
        TranslationTask.inference_step(task, generator, [model], sample)
    else:
        hypos = task.inference_step(generator, [model], sample)
        for sample_id, beams in zip(sample["id"].tolist(), hypos):
            qe_lines(sample_id, beams[0]["qe"], word_level=False)
    return time.process_time() - start


class WorkTimer:
    """CPU seconds spent in the search record's own per-step work (hashing the decoder
    inputs, the dominant summary): the module's helpers wrapped with a timer while it is
    active."""

    HELPERS = ("last_prefix_hash", "row_keys", "dominant_summary")

    def __init__(self):
        import fairseq_sigmoid_qe.decoding.recording as module

        self.module, self.seconds, self.saved = module, 0.0, {}

    def __enter__(self):
        for name in self.HELPERS:
            helper = self.saved[name] = getattr(self.module, name)
            setattr(self.module, name, self._timed(helper))
        return self

    def __exit__(self, *exc):
        for name, helper in self.saved.items():
            setattr(self.module, name, helper)

    def _timed(self, helper):
        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return helper(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - start

        return timed


def qe_work(task, generator, model, sample, repeats):
    """CPU seconds of the QE work itself, each part timed alone (fastest of ``repeats``):
    the record's per-step work inside the search, and score_qe plus the lines after it."""
    from fairseq.tasks.translation import TranslationTask

    from fairseq_sigmoid_qe.decoding.generate_output import qe_lines

    with WorkTimer() as in_search:
        hypos = TranslationTask.inference_step(task, generator, [model], sample)
    times = []
    for _ in range(repeats):
        start = time.process_time()
        task.score_qe(generator, [model], sample, hypos)
        for sample_id, beams in zip(sample["id"].tolist(), hypos):
            qe_lines(sample_id, beams[0]["qe"], word_level=False)
        times.append(time.process_time() - start)
    return in_search.seconds + min(times)


def compare(task, generators, model, samples, repeats):
    """(seconds without QE, seconds with QE, seconds of the QE work alone): per batch the
    fastest of ``repeats`` runs; ``generators``: (fairseq's, translation_qe's)."""
    plain = with_qe = work = 0.0
    for sample in samples:
        one_batch(task, generators[True], model, sample, True)  # warm-up
        times = {False: [], True: []}
        for repeat in range(repeats):
            for qe in (False, True) if repeat % 2 == 0 else (True, False):
                times[qe].append(one_batch(task, generators[qe], model, sample, qe))
        plain += min(times[False])
        with_qe += min(times[True])
        work += qe_work(task, generators[True], model, sample, repeats)
    return plain, with_qe, work


def method_costs(task, model, samples, generation, variants, repeats, mc_samples):
    """{variant: CPU seconds} over ``samples`` for plain generation (``None``) and each
    ``--qe-methods`` list in ``variants`` (QE lines formatted too), the runs of one batch
    alternating, the fastest of ``repeats`` per batch and variant."""
    from dataclasses import replace

    from fairseq_sigmoid_qe.core.qe_methods import parse_methods

    generators = {None: plain_generator(task, model, generation)}
    options = {}
    for variant in variants:
        options[variant] = replace(
            task.qe_options, methods=parse_methods(variant), mc_samples=mc_samples
        )
        task.qe_options = options[variant]
        generators[variant] = task.build_generator([model], generation)
    order = [None, *variants]
    totals = dict.fromkeys(order, 0.0)
    for sample in samples:
        times = {variant: [] for variant in order}
        for repeat in range(repeats):
            for variant in order if repeat % 2 == 0 else order[::-1]:
                if variant is not None:
                    task.qe_options = options[variant]
                times[variant].append(
                    one_batch(task, generators[variant], model, sample, variant is not None)
                )
        for variant in order:
            totals[variant] += min(times[variant])
    return totals


def main():
    from dataclasses import replace

    from fairseq_sigmoid_qe.core.qe_methods import DEFAULT_METHODS
    from fairseq_sigmoid_qe.core.qe_options import DOMINANT_AT

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_bin")
    parser.add_argument("checkpoint")
    parser.add_argument("--subset", default="test")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--max-sentences",
        type=int,
        default=None,
        help="time every k-th batch, about this many sentences in all",
    )
    parser.add_argument(
        "--dominant-at",
        nargs="+",
        default=["auto"],
        choices=DOMINANT_AT,
        help="--qe-dominant-at value(s) to time, each beside the same baseline",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="time each --qe-methods list (default: the three of today) as a "
        "ratio to plain generation, instead of the comparisons above",
    )
    parser.add_argument(
        "--mc-samples", type=int, default=10, help="--qe-mc-samples of the Monte-Carlo methods"
    )
    options = parser.parse_args()

    import torch

    from fairseq_sigmoid_qe.api import load_head_model

    torch.set_num_threads(options.threads)
    model, task = load_head_model(options.checkpoint, options.data_bin)
    samples = batches(task, model, options.subset, options.max_tokens, options.max_sentences)
    sentences = sum(len(s["id"]) for s in samples)
    modes = [
        (f"beam {options.beam}", Namespace(beam=options.beam, max_len_b=200), options.dominant_at),
        ("score-reference", Namespace(score_reference=True), options.dominant_at[:1]),
    ]
    print(
        f"{sentences} sentences, {len(samples)} batches, {options.repeats} alternating "
        f"runs per batch and mode, {options.threads} threads, V={len(task.target_dictionary)}"
    )
    if options.methods:
        variants = [",".join(DEFAULT_METHODS) if m == "default" else m for m in options.methods]
        generation = Namespace(beam=options.beam, max_len_b=200)
        with torch.no_grad():
            totals = method_costs(
                task, model, samples, generation, variants, options.repeats, options.mc_samples
            )
        print(
            f"beam {options.beam}, plain generation {totals[None]:.3f} s; "
            f"--qe-mc-samples {options.mc_samples}"
        )
        for variant in variants:
            print(
                f"  --qe-methods {variant:<34} {totals[variant]:8.3f} s   "
                f"ratio {totals[variant] / totals[None]:.2f}"
            )
        return
    with torch.no_grad():
        for name, generation, variants in modes:
            for where in variants:
                task.qe_options = replace(task.qe_options, dominant_at=where)
                generators = {
                    False: plain_generator(task, model, generation),
                    True: task.build_generator([model], generation),
                }
                label = name if len(variants) == 1 else f"{name}, {where}"
                a, b, work = compare(task, generators, model, samples, options.repeats)
                target = "  (target <= 1.03)" if name.startswith("beam") else ""
                print(
                    f"{label:<22} without QE {a:7.3f} s   with QE {b:7.3f} s   "
                    f"ratio {b / a:.3f}{target}"
                )
                print(
                    f"{'':<22} QE work alone {work:7.3f} s: 1 + work / without QE = "
                    f"{1 + work / a:.3f}"
                )


if __name__ == "__main__":
    main()
