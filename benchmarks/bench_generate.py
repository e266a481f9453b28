"""fairseq-generate with --print-qe / without, same model and data, timed side by side.

Target (beam 5): ratio <= 1.03. Also times the force-decoding path (--score-reference).
Usage: python benchmarks/bench_generate.py DATA_BIN HEAD_CHECKPOINT [--repeats 3]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "fairseq_sigmoid_qe")


def seconds(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data_bin")
    parser.add_argument("checkpoint")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beam", type=int, default=5)
    options = parser.parse_args()
    base = [sys.executable, "-m", "fairseq_cli.generate", options.data_bin, "--user-dir",
            PACKAGE_DIR, "--path", options.checkpoint, "--cpu", "--max-tokens", "4000"]
    modes = {"beam": ["--beam", str(options.beam)], "score-reference": ["--score-reference"]}
    for name, extra in modes.items():
        plain, with_qe = [], []
        for _ in range(options.repeats):  # interleaved, so drift hits both alike
            plain.append(seconds(base + extra))
            with_qe.append(seconds(base + extra + ["--print-qe"]))
        a, b = statistics.median(plain), statistics.median(with_qe)
        print(f"{name:<16} without QE {a:7.2f} s   with --print-qe {b:7.2f} s   "
              f"ratio {b / a:.3f}" + ("  (target <= 1.03)" if name == "beam" else ""))


if __name__ == "__main__":
    main()
