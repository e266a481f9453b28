"""The GPU path, checked on a machine with a CUDA GPU in a few minutes, with nothing to download.

One small model with random weights (seeded; ``--shape``, by default the l10n recipe's
shape, d = 256, V = 8000; ``tiny`` for a smoke run) and synthetic batches
(``benchmarks/common.py``), built on the CPU and copied to the GPU. Each check prints one line,
its measured value beside its tolerance, and ``ok`` or ``FAILED``:

- head training steps (the paper's best sampler, ``--updates`` updates, dense ``adam`` and
  ``sparse_adam``) in fp32 on CUDA against the CPU: the same negatives (the CPU's draws are
  replayed: a CUDA generator draws other numbers from the same seed), the losses within
  ``FP32_LOSS_RTOL``, the same head rows moved, the head within ``FP32_STEP_FRACTION`` of one
  Adam step (``lr``);
- QE (``translation_qe``'s recording beam search, ``--beam``) in fp32 on CUDA against the CPU:
  at least ``SAME_TRANSLATIONS`` of the translations the same (a near-tie may break either
  way), their token scores within ``FP32_QE_ATOL``;
- mixed precision against fp32 on CUDA: training losses under ``--amp`` (fairseq's: float16
  autocast, a gradient scaler from 128) within ``AMP_LOSS_RTOL``, under bfloat16 autocast
  within ``BF16_LOSS_RTOL``; QE of the model in float16 (``fairseq-generate --fp16``) and in
  bfloat16 within ``HALF_QE_ATOL`` / ``BF16_QE_ATOL`` of fp32 on the translations that are
  the same (how many are, printed);
- translations unchanged by QE on CUDA: fairseq's own generator and the recording one give the
  same tokens and scores;
- throughput, CPU beside CUDA: head updates (target tokens/s) and beam search with QE
  (sentences/s, wall clock, CUDA synchronized).

Exit status: 0 when every check passed, 1 when one failed; without a CUDA GPU it says so in one
line and exits 0, having checked nothing. Usage:

    python benchmarks/gpu_check.py [--shape l10n|tiny] [--updates 3] [--beam 5] [--repeats 5]
"""

import argparse
import contextlib
import copy
import os
import sys
import time
from argparse import Namespace

import torch

NO_GPU = "gpu_check: no CUDA GPU here (torch.cuda.is_available() is False): nothing was checked"

LR = 1e-3
FP32_LOSS_RTOL = 1e-4  # CUDA against CPU kernels, TF32 off: float32 rounding only
FP32_STEP_FRACTION = 0.05  # of one Adam step: m / sqrt(v) magnifies rounding where gradients cancel
FP32_QE_ATOL = 1e-4  # token scores are probabilities in [0, 1]
SAME_TRANSLATIONS = 0.9  # CUDA and CPU may break a near-tie of the beam search differently
AMP_LOSS_RTOL = 1e-2  # float16 autocast: 11-bit mantissa through the frozen forward
BF16_LOSS_RTOL = 3e-2  # bfloat16: 8-bit mantissa
HALF_QE_ATOL = 1e-2
BF16_QE_ATOL = 5e-2


class Report:
    """The checks' lines and whether all passed."""

    def __init__(self):
        self.failed = []

    def check(self, name, value, tolerance, passed=None):
        passed = value <= tolerance if passed is None else passed
        print(f"{'ok    ' if passed else 'FAILED'} {name}: {value:.3g} (tolerance {tolerance:.3g})")
        if not passed:
            self.failed.append(name)

    def fact(self, name, passed, detail=""):
        print(f"{'ok    ' if passed else 'FAILED'} {name}{': ' + detail if detail else ''}")
        if not passed:
            self.failed.append(name)


def replayed_negatives(criterion, tape, replay):
    """The criterion's negatives drawn as usual and kept in ``tape`` (``replay`` False), or
    taken from ``tape`` in order (``replay`` True), on the reference's device."""
    draw = criterion._negatives

    def negatives(reference, softmax_probs, dominant, generator):
        if replay:
            tokens, valid = tape.pop(0)
            return tokens.to(reference.device), valid.to(reference.device)
        tokens, valid = draw(reference, softmax_probs, dominant, generator)
        tape.append((tokens.cpu(), valid.cpu()))
        return tokens, valid

    criterion._negatives = negatives
    return criterion


def to_device(sample, device):
    from fairseq import utils

    return utils.move_to_cuda(sample, device) if device.type == "cuda" else sample


def train(base, task, samples, device, optimizer, tape, replay, precision="fp32"):
    """(losses of each update, the head's weight after them) of a fresh head on a copy of
    ``base`` on ``device``, one update per sample."""
    from common import best_sampler_criterion, head_model

    from fairseq_sigmoid_qe.optim.sparse_adam import SPARSE_GRAD_ATTRIBUTE, LazyAdam

    model = head_model(copy.deepcopy(base)).to(device)
    model.train()
    criterion = replayed_negatives(best_sampler_criterion(task).to(device), tape, replay)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sparse_adam":
        for param in params:
            setattr(param, SPARSE_GRAD_ATTRIBUTE, True)
        step = LazyAdam(params, lr=LR)
    else:
        step = torch.optim.Adam(params, lr=LR)
    dtype = {"amp": torch.float16, "bf16": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, init_scale=128.0) if precision == "amp" else None
    losses = []
    for sample in samples:
        sample = to_device(sample, device)
        autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            loss, _, _ = criterion(model, sample)
        losses.append(float(loss.detach()))
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(step)
            scaler.update()
        else:
            loss.backward()
            step.step()
        step.zero_grad()
    return losses, model.qe_head.weight.detach().float().cpu()


def relative(a, b):
    return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b))


def training_checks(report, base, task, samples, device, updates):
    where = device.type.upper()
    for optimizer in ("adam", "sparse_adam"):
        tape = []
        cpu_losses, cpu_head = train(
            base, task, samples, torch.device("cpu"), optimizer, tape, False
        )
        replay = list(tape)
        gpu_losses, gpu_head = train(base, task, samples, device, optimizer, list(replay), True)
        start = base.decoder.output_projection.weight.detach().float()
        report.check(
            f"{optimizer}: fp32 losses of {updates} updates, {where} vs CPU "
            "(max relative difference)",
            relative(gpu_losses, cpu_losses),
            FP32_LOSS_RTOL,
        )
        same_rows = torch.equal(cpu_head.ne(start).any(1), gpu_head.ne(start).any(1))
        report.fact(f"{optimizer}: the same head rows moved on {where} and CPU", same_rows)
        report.check(
            f"{optimizer}: head after {updates} updates, {where} vs CPU (max difference / lr)",
            float((gpu_head - cpu_head).abs().max()) / LR,
            FP32_STEP_FRACTION,
        )
        for precision, tolerance in (("amp", AMP_LOSS_RTOL), ("bf16", BF16_LOSS_RTOL)):
            losses, _ = train(base, task, samples, device, optimizer, list(replay), True, precision)
            report.check(
                f"{optimizer}: {precision} losses vs fp32 on {where} (max relative difference)",
                relative(losses, gpu_losses),
                tolerance,
            )


def translate(task, model, sample, beam, qe):
    """[(tokens, positional scores, token sigmoid scores or None)] of each sentence's best
    hypothesis, by the recording generator with QE (``qe``) or fairseq's own."""
    from bench_generate import plain_generator
    from fairseq.tasks.translation import TranslationTask

    generation = Namespace(beam=beam, max_len_a=0, max_len_b=sample["target"].size(1))
    device = next(model.parameters()).device
    sample = to_device(sample, device)
    with torch.no_grad():
        if qe:
            hypos = task.inference_step(task.build_generator([model], generation), [model], sample)
        else:
            generator = plain_generator(task, model, generation)
            hypos = TranslationTask.inference_step(task, generator, [model], sample)
    out = []
    for beams in hypos:
        best = beams[0]
        scores = best["qe"]["token_scores"]["sigmoid"] if qe else None
        out.append((best["tokens"].tolist(), best["positional_scores"].float().cpu(), scores))
    return out


def qe_gap(first, second):
    """(max token-score difference, sentences compared) over the sentences whose translations
    are the same."""
    gaps = [
        max(abs(x - y) for x, y in zip(a[2], b[2]))
        for a, b in zip(first, second)
        if a[0] == b[0] and a[2]
    ]
    return (max(gaps) if gaps else float("nan")), len(gaps)


def qe_checks(report, model, task, sample, device, beam):
    where = device.type.upper()
    cpu_model = copy.deepcopy(model).eval()
    gpu_model = copy.deepcopy(model).to(device).eval()
    cpu = translate(task, cpu_model, sample, beam, qe=True)
    gpu = translate(task, gpu_model, sample, beam, qe=True)
    same = sum(a[0] == b[0] for a, b in zip(cpu, gpu))
    report.fact(
        f"fp32 translations with QE, {where} vs CPU (at least {SAME_TRANSLATIONS:.0%} the same)",
        same >= SAME_TRANSLATIONS * len(cpu),
        f"{same} of {len(cpu)} the same",
    )
    gap, compared = qe_gap(gpu, cpu)
    report.check(
        f"fp32 QE token scores, {where} vs CPU ({compared} sentences)",
        gap,
        FP32_QE_ATOL,
        gap == gap,
    )
    plain = translate(task, gpu_model, sample, beam, qe=False)
    unchanged = all(a[0] == b[0] and torch.equal(a[1], b[1]) for a, b in zip(plain, gpu))
    report.fact(f"translations and their scores unchanged by QE on {where}", unchanged)
    for name, dtype, tolerance in (
        ("float16", torch.float16, HALF_QE_ATOL),
        ("bfloat16", torch.bfloat16, BF16_QE_ATOL),
    ):
        half = translate(task, copy.deepcopy(gpu_model).to(dtype), sample, beam, qe=True)
        gap, compared = qe_gap(half, gpu)
        report.check(
            f"{name} model: QE token scores vs fp32 on {where} "
            f"({compared} of {len(gpu)} translations the same)",
            gap,
            tolerance,
            gap == gap and gap <= tolerance,
        )


def seconds(function, repeats, device):
    """Median wall seconds of ``function`` after one warm-up (CUDA synchronized)."""
    times = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def throughput(base, model, task, sample, generate_sample, device, beam, repeats):
    from common import best_sampler_criterion, head_model, update_step

    for where in (torch.device("cpu"), device):
        name = where.type
        head = head_model(copy.deepcopy(base)).to(where)
        head.train()
        step = update_step(head, best_sampler_criterion(task).to(where), to_device(sample, where))
        update = seconds(step, repeats, where)
        qe_model = copy.deepcopy(model).to(where).eval()
        search = seconds(
            lambda qe_model=qe_model: translate(task, qe_model, generate_sample, beam, True),
            repeats,
            where,
        )
        print(
            f"       throughput {name:>4}: head update {sample['ntokens'] / update:9.0f} target "
            f"tokens/s ({update * 1000:.1f} ms for {sample['ntokens']}); beam {beam} with QE "
            f"{len(generate_sample['id']) / search:7.1f} sentences/s ({search * 1000:.1f} ms for "
            f"{len(generate_sample['id'])})"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="l10n", choices=("l10n", "tiny"), help="model shape")
    parser.add_argument("--updates", type=int, default=3, help="training updates per check")
    parser.add_argument("--beam", type=int, default=5, help="beam of the QE checks")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median)")
    parser.add_argument(
        "--device",
        default="cuda",
        choices=("cuda", "cpu"),
        help="the device checked against the CPU (cpu: the script's own test, CPU against CPU)",
    )
    options = parser.parse_args(argv)
    if options.device == "cuda" and not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import Task, build_base, head_model, make_batch
    from run_all import SIZES, generation_task

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(options.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU only"
    print(
        f"gpu_check: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {name}; "
        f"torch {torch.__version__}, CUDA {torch.version.cuda}; shape {options.shape}; "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"
    )
    base, dictionary = build_base(options.shape)
    base.eval()
    task = Task(dictionary)
    sentences, length = SIZES[options.shape]["train"]
    samples = [
        make_batch(dictionary, sentences, length, torch.Generator().manual_seed(10 + i))
        for i in range(options.updates)
    ]
    report = Report()
    training_checks(report, base, task, samples, device, options.updates)
    generate_sentences, source, output = SIZES[options.shape]["generate"]
    generate_sample = make_batch(
        dictionary, generate_sentences, source, torch.Generator().manual_seed(3)
    )
    generate_sample["target"] = generate_sample["target"][:, :output]
    model = head_model(copy.deepcopy(base))
    qe_task = generation_task(dictionary)
    qe_checks(report, model, qe_task, generate_sample, device, options.beam)
    throughput(
        base, model, qe_task, samples[0], generate_sample, device, options.beam, options.repeats
    )
    if report.failed:
        print(f"gpu_check: {len(report.failed)} check(s) FAILED: {'; '.join(report.failed)}")
        return 1
    print("gpu_check: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
