"""Head training throughput on 1 and 2 processes (fairseq's legacy DDP, gloo, CPU), the same
effective batch: target tokens per second of fairseq-train itself.

It writes a synthetic corpus (``fairseq_sigmoid_qe.testing.corpora``, nothing downloaded),
binarizes it, trains a base of the l10n recipe's shape (3+3 layers, d = 256, FFN 1024) for one
update (random weights serve: only the cost is measured), then trains the head ``--updates``
updates three ways, each on one torch thread per process: 1 process with ``--update-freq 2``,
1 process with 2 threads and ``--update-freq 2``, and 2 processes (``--update-freq 1``). The
throughput is the sum of the updates' target tokens over the sum of their durations (fairseq's
per-update ``wpb`` / ``wps`` at ``--log-interval 1``), the first ``--warmup`` updates left out.

    python benchmarks/bench_data_parallel.py [--workdir DIR] [--updates 12] [--max-tokens 1024]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "fairseq_sigmoid_qe")
BASE_SHAPE = [
    "--arch",
    "transformer",
    "--encoder-layers",
    "3",
    "--decoder-layers",
    "3",
    "--encoder-embed-dim",
    "256",
    "--decoder-embed-dim",
    "256",
    "--encoder-ffn-embed-dim",
    "1024",
    "--decoder-ffn-embed-dim",
    "1024",
    "--encoder-attention-heads",
    "4",
    "--decoder-attention-heads",
    "4",
    "--share-decoder-input-output-embed",
]


def fairseq(tool, *arguments, threads=1):
    command = [sys.executable, "-m", f"fairseq_cli.{tool}", *map(str, arguments)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finished(processes):
    outputs = []
    for process in processes:
        out, _ = process.communicate()
        text = out.decode("utf-8", "replace")
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(process.args)} failed:\n{text[-3000:]}")
        outputs.append(text)
    return outputs


def prepare(workdir, pairs, vocab):
    from fairseq_sigmoid_qe.demo.l10n_data import prepare_l10n
    from fairseq_sigmoid_qe.testing.corpora import synthetic_l10n_corpus

    corpus = synthetic_l10n_corpus(os.path.join(workdir, "corpus"))
    text = os.path.join(workdir, "text")
    prepare_l10n(corpus, text, train_pairs=pairs, test_pairs=50, vocab_size=vocab, valid_pairs=50)
    data = os.path.join(workdir, "data-bin")
    finished(
        [
            fairseq(
                "preprocess",
                "--source-lang",
                "en",
                "--target-lang",
                "de",
                "--trainpref",
                f"{text}/train",
                "--validpref",
                f"{text}/valid",
                "--destdir",
                data,
                "--workers",
                "1",
            )
        ]
    )
    base = os.path.join(workdir, "base")
    finished(
        [
            fairseq(
                "train",
                data,
                *BASE_SHAPE,
                "--optimizer",
                "adam",
                "--lr",
                "0.001",
                "--max-tokens",
                "2048",
                "--max-update",
                "1",
                "--cpu",
                "--save-dir",
                base,
                "--disable-validation",
                "--no-epoch-checkpoints",
                "--num-workers",
                "0",
            )
        ]
    )
    return data, os.path.join(base, "checkpoint_last.pt")


def head_run(data, base, save_dir, options, world, threads):
    arguments = [
        data,
        "--user-dir",
        PACKAGE,
        "--arch",
        "sigmoid_head_transformer",
        "--base-checkpoint",
        base,
        "--criterion",
        "nce_dominant",
        "--negative-sampler",
        "token_freq+softmax",
        "--sampling-temperature",
        "2",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--max-tokens",
        options.max_tokens,
        "--max-update",
        options.updates,
        "--update-freq",
        2 // world,
        "--cpu",
        "--disable-validation",
        "--no-save",
        "--log-format",
        "json",
        "--log-interval",
        "1",
        "--num-workers",
        "0",
        "--seed",
        "1",
        "--save-dir",
        save_dir,
    ]
    if world == 1:
        return finished([fairseq("train", *arguments, threads=threads)])[0]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ranks = [
        "--ddp-backend",
        "legacy_ddp",
        "--distributed-backend",
        "gloo",
        "--distributed-world-size",
        world,
        "--distributed-init-method",
        f"tcp://127.0.0.1:{port}",
        "--distributed-no-spawn",
    ]
    processes = [
        fairseq("train", *arguments, *ranks, "--distributed-rank", rank, threads=threads)
        for rank in range(world)
    ]
    return finished(processes)[0]


def tokens_per_second(log, warmup):
    """(target tokens/s, updates counted, tokens per update) from fairseq's per-update json
    log lines (``train_inner``), the first ``warmup`` left out."""
    updates = []
    for line in log.splitlines():
        if "train_inner" in line and "{" in line:
            entry = json.loads(line[line.index("{") :])
            updates.append((float(entry["wpb"]), float(entry["wps"])))
    counted = updates[warmup:]
    tokens = sum(wpb for wpb, _ in counted)
    return tokens / sum(wpb / wps for wpb, wps in counted), len(counted), tokens / len(counted)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="where the data and runs go (default: a temporary one)")
    parser.add_argument("--updates", type=int, default=12, help="head updates per run")
    parser.add_argument("--warmup", type=int, default=2, help="first updates not counted")
    parser.add_argument("--max-tokens", type=int, default=1024, help="per process and batch")
    parser.add_argument("--pairs", type=int, default=2000, help="synthetic training pairs")
    parser.add_argument("--vocab", type=int, default=1000, help="sentencepiece vocabulary")
    options = parser.parse_args()
    workdir = options.workdir or tempfile.mkdtemp(prefix="bench-data-parallel-")
    started = time.time()
    data, base = prepare(workdir, options.pairs, options.vocab)
    print(
        f"bench_data_parallel: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; base 3+3 layers d=256; "
        f"{options.updates} updates of 2 x --max-tokens {options.max_tokens}, "
        f"first {options.warmup} not counted; data and base in {time.time() - started:.0f} s"
    )
    results = {}
    for name, world, threads in (
        ("1 process, 1 thread, --update-freq 2", 1, 1),
        ("1 process, 2 threads, --update-freq 2", 1, 2),
        ("2 processes (legacy_ddp, gloo), 1 thread each", 2, 1),
    ):
        log = head_run(
            data, base, os.path.join(workdir, f"head{world}{threads}"), options, world, threads
        )
        rate, counted, per_update = tokens_per_second(log, options.warmup)
        results[name] = rate
        print(
            f"| {name} | {rate:8.0f} target tokens/s | {1e6 / rate:7.1f} µs/token | "
            f"{per_update:6.0f} tokens/update | {counted} updates |"
        )
    one = results["1 process, 1 thread, --update-freq 2"]
    two = results["2 processes (legacy_ddp, gloo), 1 thread each"]
    seconds = time.time() - started
    print(f"2 processes / 1 process (1 thread each): {two / one:.2f}x; total {seconds:.0f} s")


if __name__ == "__main__":
    main()
