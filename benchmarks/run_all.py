"""Every performance target in one table, each ratio measured side by side in one run.

For each model shape (random weights, seeded: the l10n recipe's base, Transformer Base,
DeltaLM base):
- training: head update (the paper's best sampler, token_freq+softmax T=2, avoid-dominant)
  ÷ base update (label-smoothed CE) at the same batch, and ÷ the frozen forward alone (the
  floor); the three timed interleaved, medians;
- peak RSS of head vs base training (2 updates each, separate subprocesses), and the largest
  tensors an update allocates (the head's reused logits buffer counted);
- dominant sets over the frozen logits [positions × V] ÷ one log_softmax of them (the floor:
  one pass over V), ÷ boostedprob.find_dominant, and whether the sets are identical;
- beam search with QE ÷ without at each beam, and --score-reference with ÷ without: end to
  end (the task's inference step and the Q-/QT- lines) and the QE work alone (timed apart).

Times are CPU seconds of this process (time.process_time) on --threads torch threads (1 by
default), so other jobs on a shared machine change them little; each ratio is a median over
--repeats rounds whose order alternates. Usage:
    python benchmarks/run_all.py [--shapes l10n transformer_base deltalm_base]
        [--beams 1 5 10] [--repeats 3] [--threads 1]
"""

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from argparse import Namespace

import torch
from common import (
    SHAPES,
    TOP_PROBABILITY,
    Task,
    best_sampler_criterion,
    build_base,
    head_model,
    interleaved_medians,
    make_batch,
    update_step,
)

# batch sizes per shape: training (sentences, length), dominant-set positions, generation
# (sentences, source length, output length)
SIZES = {
    "l10n": dict(train=(32, 32), positions=2048, generate=(16, 20, 20)),
    "transformer_base": dict(train=(16, 32), positions=1024, generate=(4, 20, 20)),
    "deltalm_base": dict(train=(8, 32), positions=256, generate=(2, 20, 10)),
    "tiny": dict(train=(4, 8), positions=64, generate=(2, 6, 6)),
}
CLOCK = time.process_time


def base_criterion(task):
    from fairseq.criterions.label_smoothed_cross_entropy import (
        LabelSmoothedCrossEntropyCriterion,
    )

    return LabelSmoothedCrossEntropyCriterion(task, False, 0.1)


# --------------------------------------------------------------------------- training


def time_training(shape, repeats):
    """Median CPU seconds of a base update, a head update and the head model's frozen forward,
    interleaved, on one batch."""
    base, dictionary = build_base(shape)
    task = Task(dictionary)
    sentences, length = SIZES[shape]["train"]
    sample = make_batch(dictionary, sentences, length, torch.Generator().manual_seed(1))
    base.train()
    base_update = update_step(base, base_criterion(task), sample)
    base_update()  # the base's Adam state exists before the head model freezes its weights
    for param in base.parameters():
        param.requires_grad_(True)
    model, sparse_model = head_model(base), head_model(base)
    model.train()
    criterion = best_sampler_criterion(task)
    head_update = update_step(model, criterion, sample)
    sparse_update = update_step(sparse_model, criterion, sample, "sparse_adam")

    def base_step():
        for param in base.parameters():
            param.requires_grad_(True)
        base.train()
        base_update()

    def head_step():
        for param in base.parameters():
            param.requires_grad_(False)
        model.train()
        head_update()

    def sparse_head_step():
        for param in base.parameters():
            param.requires_grad_(False)
        sparse_model.train()
        sparse_update()

    def frozen_forward():
        model.train()
        model.frozen_forward(**sample["net_input"])

    times = interleaved_medians(
        {
            "base": base_step,
            "head": head_step,
            "sparse head": sparse_head_step,
            "forward": frozen_forward,
        },
        repeats,
        CLOCK,
    )
    return times, sample["ntokens"]


# --------------------------------------------------------------------------- memory


def largest_new_tensors(function):
    """Run ``function``; (bytes, shape, op) of every tensor an operator allocated (not a view,
    not written into a given ``out``), largest first."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    def storage(tensor):
        try:
            return tensor.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):  # sparse gradients: no storage
            return None

    class Recorder(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.tensors = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            given = {
                storage(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)
            }
            for tensor in tree_flatten(out)[0]:
                if isinstance(tensor, torch.Tensor) and storage(tensor) not in given:
                    self.tensors.append(
                        (
                            tensor.numel() * tensor.element_size(),
                            tuple(tensor.shape),
                            func.overloadpacket.__name__,
                        )
                    )
            return out

    with Recorder() as recorder:
        function()
    return sorted(recorder.tensors, reverse=True)


def reset_peak_rss():
    """Reset this process's peak RSS (Linux: VmHWM, via /proc/self/clear_refs); False where
    that cannot be done (then the peak counts the model's building too)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_kib(since_reset):
    """Peak RSS in KiB: VmHWM after a reset, else the process's maximum."""
    if since_reset:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(shape, mode, updates=2):
    """In a fresh process: ``updates`` training updates of the base (``mode`` "base") or the
    head, then its peak RSS; then one more update whose allocations are listed (the head's
    logits buffer dropped first, so that it is allocated again and counted). JSON on stdout."""
    base, dictionary = build_base(shape)
    task = Task(dictionary)
    sentences, length = SIZES[shape]["train"]
    sample = make_batch(dictionary, sentences, length, torch.Generator().manual_seed(1))
    if mode == "base":
        model, criterion = base, base_criterion(task)
    else:
        model, criterion = head_model(base), best_sampler_criterion(task)
    model.train()
    step = update_step(model, criterion, sample)
    gc.collect()
    since_build = reset_peak_rss()  # building a model can peak higher than training it
    for _ in range(updates):
        step()
    peak_kib = peak_rss_kib(since_build)
    if hasattr(model, "_logits_buffer"):
        model._logits_buffer = None
    tensors = largest_new_tensors(step)
    positions, vocab = sample["ntokens"], len(dictionary)
    big = [
        size
        for _, size, _ in tensors
        if size
        and (len(size) == 1 or size[-1] == vocab)
        and torch.Size(size).numel() >= positions * vocab
    ]
    print(
        json.dumps(
            {
                "peak_mib": peak_kib / 1024,
                "tensors": tensors[:4],
                "big": len(big),
                "since_build": since_build,
            }
        )
    )


def measure_memory(shape, threads):
    results = {}
    for mode in ("base", "head"):
        done = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--memory-child",
                shape,
                mode,
                "--threads",
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


# --------------------------------------------------------------------------- dominant sets


def time_dominant(shape, repeats):
    """Our dominant sets vs one log_softmax vs boostedprob on the frozen logits of the shape's
    model (random weights, sharpened) for ``positions`` target positions."""
    import boostedprob

    from fairseq_sigmoid_qe.core.dominant import dominant_sets

    base, dictionary = build_base(shape)
    base.eval()
    positions = SIZES[shape]["positions"]
    length = 32 if positions >= 32 else positions
    sample = make_batch(dictionary, positions // length, length, torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = base(**sample["net_input"])[0].reshape(positions, -1).float()
    del base
    gc.collect()
    log_probs = torch.log_softmax(logits, dim=-1)
    out, scratch = torch.empty_like(logits), torch.empty_like(logits)

    def theirs():
        scratch.copy_(log_probs)  # find_dominant works in place; the copy is timed apart
        boostedprob.find_dominant(scratch)

    times = interleaved_medians(
        {
            "log_softmax": lambda: torch.log_softmax(logits, dim=-1, out=out),
            "ours": lambda: dominant_sets(log_probs),
            "copy": lambda: scratch.copy_(log_probs),
            "boostedprob": theirs,
        },
        repeats,
        CLOCK,
    )
    times["boostedprob"] -= times["copy"]
    identical = {}
    for cut in ("last", "first"):
        ids, mask = dominant_sets(log_probs, cut=cut)
        ours = [set(i[m].tolist()) for i, m in zip(ids, mask)]
        reference = boostedprob.find_dominant(log_probs.clone(), cut_point_mode=cut)
        identical[cut] = ours == [set(row[row != -1].tolist()) for row in reference]
    _, mask = dominant_sets(log_probs)
    return times, identical, float(mask.sum(-1).float().mean()), positions


# --------------------------------------------------------------------------- generation


def generation_task(dictionary, dominant_at="auto"):
    from fairseq_sigmoid_qe.tasks.translation_qe import TranslationQEConfig, TranslationQETask

    cfg = TranslationQEConfig(print_qe=True, qe_dominant_at=dominant_at)
    return TranslationQETask(cfg, dictionary, dictionary).keep_qe_in_hypotheses()


def time_generation(shape, beams, repeats, dominant_at="auto"):
    """{mode: (seconds without QE, with QE, QE work alone)} for beam search at each beam and
    --score-reference, one batch of random sources."""
    from bench_generate import one_batch, plain_generator, qe_work

    base, dictionary = build_base(shape)
    model = head_model(base)
    model.eval()
    task = generation_task(dictionary, dominant_at)
    sentences, source, output = SIZES[shape]["generate"]
    sample = make_batch(dictionary, sentences, source, torch.Generator().manual_seed(3))
    sample["target"] = sample["target"][:, :output]
    modes = [
        (f"beam {beam}", Namespace(beam=beam, max_len_a=0, max_len_b=output)) for beam in beams
    ]
    modes.append(("score-reference", Namespace(score_reference=True)))
    results = {}
    with torch.no_grad():
        for name, generation in modes:
            generators = {
                False: plain_generator(task, model, generation),
                True: task.build_generator([model], generation),
            }
            times = interleaved_medians(
                {
                    qe: (
                        lambda qe=qe, generators=generators: one_batch(
                            task, generators[qe], model, sample, qe
                        )
                    )
                    for qe in (False, True)
                },
                repeats,
                CLOCK,
            )
            work = qe_work(task, generators[True], model, sample, repeats)
            results[name] = (times[False], times[True], work)
    return results


# --------------------------------------------------------------------------- the report


def describe():
    load = os.getloadavg()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(os.path.abspath(__file__)),
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit}; "
        f"torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}; load average at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def ratio(a, b):
    return a / b if b else float("nan")


def run(options):
    print(f"# benchmarks/run_all.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"# {describe()}")
    print(
        f"# CPU seconds (process_time), median of {options.repeats} interleaved rounds "
        "after a warm-up; random weights, seeded; the final hidden state scaled "
        f"so that the mean top-1 probability is {TOP_PROBABILITY} (a trained model's)"
    )
    scaling = {}
    for shape in options.shapes:
        label, vocab, _ = SHAPES[shape]
        sizes = SIZES[shape]
        print(f"\n## {shape}: {label}, V={vocab}")
        start = time.time()

        times, tokens = time_training(shape, options.repeats)
        gc.collect()
        head_base = ratio(times["head"], times["base"])
        head_forward = ratio(times["head"], times["forward"])
        sparse = times["sparse head"]
        print(
            f"training, batch {sizes['train'][0]} x {sizes['train'][1]} = {tokens} target "
            f"tokens; head: token_freq+softmax T=2, avoid-dominant, K=10:"
        )
        print(
            f"  base update (Adam) {times['base']:.3f} s | head update: Adam "
            f"{times['head']:.3f} s, sparse_adam {sparse:.3f} s | frozen forward "
            f"{times['forward']:.3f} s (/ base update "
            f"{ratio(times['forward'], times['base']):.3f})"
        )
        print(
            f"  head / base update: Adam {head_base:.3f}, sparse_adam "
            f"{ratio(sparse, times['base']):.3f} (target <= 0.36) | head update / frozen "
            f"forward: Adam {head_forward:.3f}, sparse_adam "
            f"{ratio(sparse, times['forward']):.3f} (floor 1)"
        )

        memory = measure_memory(shape, options.threads)
        when = (
            "during 2 updates, the built model included"
            if memory["head"]["since_build"]
            else "2 updates, building the model included"
        )
        print(
            f"  peak RSS ({when}; own process): base training "
            f"{memory['base']['peak_mib']:.0f} MiB | head training "
            f"{memory['head']['peak_mib']:.0f} MiB | head / base "
            f"{ratio(memory['head']['peak_mib'], memory['base']['peak_mib']):.3f} "
            f"(target <= 1)"
        )
        for mode in ("base", "head"):
            listed = ", ".join(
                f"{op} {list(size)} {nbytes / 2**20:.0f} MiB"
                for nbytes, size, op in memory[mode]["tensors"][:3]
            )
            print(
                f"  largest tensors allocated by a {mode} update: {listed}; [positions x V] "
                f"tensors (or larger): {memory[mode]['big']}"
            )

        dominant, identical, mean_size, positions = time_dominant(shape, options.repeats)
        gc.collect()
        print(
            f"dominant sets over the frozen logits [{positions} x {vocab}] (mean set size "
            f"{mean_size:.2f}):"
        )
        print(
            f"  ours {dominant['ours'] * 1000:.1f} ms | log_softmax "
            f"{dominant['log_softmax'] * 1000:.1f} ms | boostedprob "
            f"{dominant['boostedprob'] * 1000:.1f} ms"
        )
        print(
            f"  ours / log_softmax {ratio(dominant['ours'], dominant['log_softmax']):.3f} "
            f"(target <= 1.0) | boostedprob / ours "
            f"{ratio(dominant['boostedprob'], dominant['ours']):.1f}x | identical sets "
            f"(cut last, first): {identical['last']}, {identical['first']}"
        )

        generation = time_generation(shape, options.beams, options.repeats)
        gc.collect()
        sentences, source, output = sizes["generate"]
        print(
            f"generation, {sentences} sentences of {source} tokens, {output} output tokens "
            f"(max_len_b), QE with / without:"
        )
        for mode, (plain, with_qe, work) in generation.items():
            target = " (target <= 1.01)" if mode in ("beam 5", "score-reference") else ""
            print(
                f"  {mode:<15} without {plain:.3f} s | with {with_qe:.3f} s | end to end "
                f"{ratio(with_qe, plain):.3f}{target} | QE work alone {work:.3f} s: 1 + "
                f"work / without {1 + ratio(work, plain):.3f}"
            )
        scaling[shape] = (vocab, head_base, ratio(sparse, times["base"]), generation)
        print(f"  ({time.time() - start:.0f} s wall for this shape)")

    print("\n## scaling: cost against V (the shapes above) and beam")
    beams = [f"beam {b}" for b in options.beams] + ["score-reference"]
    print(
        "| V | d | head/base update: Adam | sparse_adam | "
        + " | ".join(f"QE {b}: end to end · work alone" for b in beams)
        + " |"
    )
    print("|---" * (4 + len(beams)) + "|")
    for shape, (vocab, head_base, sparse_base, generation) in scaling.items():
        dim = build_dim(shape)
        cells = " | ".join(
            f"{ratio(generation[b][1], generation[b][0]):.3f} · "
            f"{1 + ratio(generation[b][2], generation[b][0]):.3f}"
            for b in beams
        )
        print(f"| {vocab} | {dim} | {head_base:.3f} | {sparse_base:.3f} | {cells} |")


def build_dim(shape):
    options = SHAPES[shape][2]
    return 768 if options is None else options["decoder_embed_dim"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--shapes",
        nargs="+",
        default=["l10n", "transformer_base", "deltalm_base"],
        choices=list(SHAPES),
    )
    parser.add_argument("--beams", nargs="+", type=int, default=[1, 5, 10])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("SHAPE", "MODE"), help=argparse.SUPPRESS
    )
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    if options.memory_child:
        memory_child(*options.memory_child)
    else:
        run(options)


if __name__ == "__main__":
    main()
