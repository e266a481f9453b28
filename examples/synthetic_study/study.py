"""Head-training settings compared on the synthetic task's dev split (never its test split).

    python examples/synthetic_study/study.py WORKDIR [--settings NAME ...] [--updates 300 1200]

WORKDIR is a finished synthetic quickstart run (``fairseq-sigmoid-qe quickstart``): its base,
data and ``dev`` split are reused. Each setting trains one head on the ``headtrain`` split
(checkpoints at every ``--updates`` value) into ``WORKDIR/study/NAME``; each checkpoint is
evaluated on ``dev``: Pearson / Spearman of sentence QE with the exact quality, token ROC-AUC,
and the mean token score per token group (see ``fairseq_sigmoid_qe.demo.token_groups``). ``init``
is the untrained head (a copy of the softmax projection). Results: ``WORKDIR/study/*.json``
and a summary table. A step whose output exists is skipped.
"""

import argparse
import json
import os
import sys

import torch

from fairseq_sigmoid_qe.api import load_head_model
from fairseq_sigmoid_qe.decoding.search_loop import translate_and_score
from fairseq_sigmoid_qe.demo import quickstart
from fairseq_sigmoid_qe.demo.synthetic import SUBSETS, load_language
from fairseq_sigmoid_qe.demo.token_groups import synthetic_group_tables

SAMPLER = ["--negative-sampler", "token_freq+softmax", "--sampling-temperature", "2"]
DENSE = ["--optimizer", "adam", "--lr", "0.001"]


def sparse(lr):
    return ["--optimizer", "sparse_adam", "--lr", lr, "--lr-scheduler", "cosine"]


SETTINGS = {
    "dense_adam_1e-3": SAMPLER + DENSE,
    "sparse_adam_1e-4_cosine": SAMPLER + sparse("0.0001"),
    "sparse_adam_3e-4_cosine": SAMPLER + sparse("0.0003"),
    "sparse_adam_1e-3_cosine": SAMPLER + sparse("0.001"),
    "sparse_1e-3_balance": SAMPLER + sparse("0.001") + ["--positive-weight", "10"],
    "sparse_1e-3_ranking": SAMPLER + sparse("0.001") + ["--ranking-loss-weight", "1"],
    "sparse_1e-3_cut_first": SAMPLER + sparse("0.001") + ["--dominant-cut", "first"],
    "sparse_1e-3_no_avoid": SAMPLER + sparse("0.001") + ["--no-avoid-dominant"],
    "sparse_1e-3_softmax_T2": ["--negative-sampler", "softmax", "--sampling-temperature", "2"]
    + sparse("0.001"),
    "sparse_1e-3_random": ["--negative-sampler", "random"] + sparse("0.001"),
}


def train(workdir, name, flags, updates, threads):
    save_dir = os.path.join(workdir, "study", name)
    if os.path.exists(os.path.join(save_dir, "done")):
        return save_dir
    quickstart.run_step(
        f"train {name}",
        quickstart.fairseq_command(
            "train",
            os.path.join(workdir, "data-bin"),
            "--train-subset",
            SUBSETS["headtrain"],
            "--valid-subset",
            SUBSETS["dev"],
            "--user-dir",
            quickstart.PACKAGE_DIR,
            "--arch",
            "sigmoid_head_transformer",
            "--base-checkpoint",
            os.path.join(workdir, "base", "checkpoint_last.pt"),
            "--criterion",
            "nce_dominant",
            *flags,
            "--max-tokens",
            4096,
            "--max-update",
            max(updates),
            "--save-interval-updates",
            min(updates),
            "--keep-interval-updates",
            -1,
            "--seed",
            1,
            "--save-dir",
            save_dir,
            "--no-epoch-checkpoints",
            "--cpu",
            "--log-format",
            "simple",
            "--log-interval",
            50,
            "--num-workers",
            0,
            "--ignore-unused-valid-subsets",
            "--validate-interval-updates",
            min(updates),
        ),
        os.path.join(workdir, "study", f"train-{name}.log"),
    )
    checkpoint_path(save_dir, max(updates))
    open(os.path.join(save_dir, "done"), "w").close()
    return save_dir


def checkpoint_path(save_dir, updates):
    """The checkpoint saved after ``updates`` updates (fairseq saves no interval checkpoint
    at an update that ends an epoch, hence the default update counts)."""
    for name in sorted(os.listdir(save_dir)):
        if not name.startswith("checkpoint") or name in ("checkpoint_best.pt",):
            continue
        path = os.path.join(save_dir, name)
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["optimizer_history"][-1]["num_updates"] == updates:
            return path
    raise SystemExit(f"no checkpoint after {updates} updates in {save_dir}")


def evaluate(workdir, checkpoint, language, initial=False):
    model, task = load_head_model(checkpoint, os.path.join(workdir, "data-bin"))
    if initial:
        with torch.no_grad():
            model.qe_head.weight.copy_(model.decoder.output_projection.weight)
    records = translate_and_score(model, task, SUBSETS["dev"])

    def gold(record):
        return language.sentence_quality(record["source"].split(), record["tokens"])

    def labels(record):
        return language.token_labels(record["source"].split(), record["tokens"])

    rows, _ = quickstart.correlation_table(records, gold, labels)
    return {
        "correlations": rows,
        "token_groups": synthetic_group_tables(model, task, language, records),
    }


def summary_line(name, updates, result):
    by_method = {row["method"]: row for row in result["correlations"]}
    groups = {row["group"]: row for row in result["token_groups"]["hypothesis"]}
    refs = {row["group"]: row for row in result["token_groups"]["reference"]}

    def mean(table, group, method):
        value = table[group][method]
        return "   -" if value is None else f"{value:.2f}"

    cells = [f"{by_method[m]['pearson']:.3f}" for m in ("sigmoid", "softmax", "boostedprob")]
    cells += [f"{by_method['sigmoid']['spearman']:.3f}", f"{by_method['sigmoid']['token_auc']:.3f}"]
    cells += [mean(groups, g, "sigmoid") for g in ("valid_argmax", "wrong_dominant", "wrong_other")]
    cells += [mean(refs, "valid_other", "sigmoid")]
    return f"| {name} | {updates} | " + " | ".join(cells) + " |"


HEADER = (
    "| setting | updates | Pearson sigmoid | softmax | BoostedProb | Spearman sigmoid | "
    "token AUC sigmoid | σ valid argmax | σ wrong dominant | σ wrong other | "
    "σ valid non-argmax (refs) |\n|" + "---|" * 11
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workdir", help="a finished synthetic quickstart workdir")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument(
        "--updates",
        nargs="+",
        type=int,
        default=[250],
        help="evaluate the checkpoints after these many updates (multiples of the smallest)",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if any(u % min(args.updates) for u in args.updates):
        parser.error("--updates must be multiples of the smallest")
    quickstart.use_threads(args.threads)
    workdir = args.workdir
    if not os.path.exists(os.path.join(workdir, "data-bin", "valid2.src-tgt.src.bin")):
        raise SystemExit(f"{workdir} has no binarized dev split (valid2): rerun the quickstart")
    language = load_language(os.path.join(workdir, "text", "lexicon.json"))
    os.makedirs(os.path.join(workdir, "study"), exist_ok=True)
    lines = []
    jobs = [("init", None, 0)] + [
        (name, SETTINGS[name], u) for name in args.settings for u in sorted(args.updates)
    ]
    for name, flags, updates in jobs:
        out = os.path.join(workdir, "study", f"{name}-{updates}.json")
        if not os.path.exists(out):
            if flags is None:
                first = train(
                    workdir,
                    args.settings[0],
                    SETTINGS[args.settings[0]],
                    args.updates,
                    args.threads,
                )
                checkpoint = checkpoint_path(first, min(args.updates))
            else:
                checkpoint = checkpoint_path(
                    train(workdir, name, flags, args.updates, args.threads), updates
                )
            result = evaluate(workdir, checkpoint, language, initial=flags is None)
            with open(out + ".part", "w", encoding="utf-8") as f:
                json.dump(
                    {"setting": name, "updates": updates, "flags": flags, **result}, f, indent=1
                )
            os.replace(out + ".part", out)
        with open(out, encoding="utf-8") as f:
            lines.append(summary_line(name, updates, json.load(f)))
    print(HEADER)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
