"""The paper's gold and its supervised baseline through ``comet-score`` (unbabel-comet).

    python examples/common/comet_gold.py which
    python examples/common/comet_gold.py run --qe QE.jsonl --sources SRC [--references REF] \
        --out DIR
    python examples/common/comet_gold.py merge --qe QE.jsonl --scores DIR/cometkiwi.json --out OUT

``run`` writes the hypotheses of a QE file (by sample id) with their sources and references as
``DIR/{src,hyp,ref}.txt``, calls ``comet-score`` for the gold (with references:
``Unbabel/XCOMET-XL``, ``DIR/xcomet.json``, read by ``fairseq-sigmoid-qe evaluate
--gold-json``) and for the supervised QE baseline (``Unbabel/wmt22-cometkiwi-da``, source and
translation only, ``DIR/cometkiwi.json``), and writes ``DIR/qe.jsonl``: the records with
CometKiwi's score as one more sentence-level method, ``cometkiwi``, so that the evaluator rates
it beside the head. ``merge`` adds a kept CometKiwi file to other records of the same
hypotheses (checked: every ``mt`` must be its record's hypothesis).

``comet-score`` is the one of ``COMET_SCORE=/path/to/comet-score``, else the one on PATH;
unbabel-comet needs numpy<2, so it lives in its own virtual environment (README).
``COMET_ARGS`` adds options to every call (default ``--gpus 1 --batch_size 16``).
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from fairseq_sigmoid_qe.core.errors import QEUserError, install_excepthook  # noqa: E402
from fairseq_sigmoid_qe.core.textfiles import read_lines  # noqa: E402
from fairseq_sigmoid_qe.evaluation.gold import load_comet_json  # noqa: E402
from fairseq_sigmoid_qe.evaluation.records import hypothesis_text, load_records  # noqa: E402

GOLD_MODEL = "Unbabel/XCOMET-XL"
KIWI_MODEL = "Unbabel/wmt22-cometkiwi-da"
KIWI_METHOD = "cometkiwi"
DEFAULT_COMET_ARGS = "--gpus 1 --batch_size 16"


def find_comet_score():
    """The comet-score to run, or None."""
    given = os.environ.get("COMET_SCORE")
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise QEUserError(f"COMET_SCORE={given} is not an executable file")
        return given
    return shutil.which("comet-score")


def write_inputs(qe_path, sources_path, references_path, out_dir):
    """``out_dir/{src,hyp,ref}.txt`` in sample-id order; returns the records."""
    records = load_records(qe_path)
    sources = read_lines(sources_path, "sources")
    if [r["id"] for r in records] != list(range(len(sources))):
        raise QEUserError(
            f"{qe_path} has {len(records)} records, not one per line of {sources_path} "
            f"({len(sources)} lines)"
        )
    columns = {"src.txt": sources, "hyp.txt": [hypothesis_text(r) for r in records]}
    if references_path:
        columns["ref.txt"] = read_lines(references_path, "references")
        if len(columns["ref.txt"]) != len(sources):
            raise QEUserError(f"{references_path} and {sources_path} differ in length")
    os.makedirs(out_dir, exist_ok=True)
    for name, lines in columns.items():
        text = "".join(" ".join(line.split()) + "\n" for line in lines)
        with open(os.path.join(out_dir, name + ".part"), "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(os.path.join(out_dir, name + ".part"), os.path.join(out_dir, name))
    return records


def comet_command(executable, model, out_dir, json_path, references=True):
    command = [executable, "-s", os.path.join(out_dir, "src.txt")]
    command += ["-t", os.path.join(out_dir, "hyp.txt")]
    if references:
        command += ["-r", os.path.join(out_dir, "ref.txt")]
    command += ["--model", model, "--to_json", json_path]
    return command + shlex.split(os.environ.get("COMET_ARGS", DEFAULT_COMET_ARGS))


def score(executable, model, out_dir, json_path, references=True):
    """Run comet-score once (kept when ``json_path`` exists); the JSON is written under a
    ``.part`` name and renamed when the run succeeded."""
    if os.path.exists(json_path):
        return json_path
    part = json_path + ".part"
    command = comet_command(executable, model, out_dir, part, references)
    print("comet_gold:", " ".join(shlex.quote(c) for c in command), flush=True)
    # stdout: a line per segment (read from the JSON instead); stderr (progress) stays visible
    result = subprocess.run(command, stdout=subprocess.DEVNULL)
    if result.returncode != 0 or not os.path.exists(part):
        raise QEUserError(
            f"comet-score --model {model} failed (exit {result.returncode}; its messages are "
            'above; "not supported by COMET" usually means the model could not be downloaded: '
            "offline, or a gated model without a Hugging Face login)"
        )
    os.replace(part, json_path)
    return json_path


def merge(records, scores_path, out_path, name=KIWI_METHOD):
    """Write ``records`` with ``scores_path``'s COMET scores as method ``name``; every
    segment's ``mt`` must be its record's hypothesis."""
    scores = load_comet_json(scores_path)
    with open(scores_path, encoding="utf-8") as stream:
        (segments,) = json.load(stream).values()
    if len(scores) != len(records):
        raise QEUserError(f"{scores_path} has {len(scores)} segments, {len(records)} records")
    lines = []
    for record, segment, value in zip(records, segments, scores):
        if " ".join(hypothesis_text(record).split()) != segment.get("mt"):
            raise QEUserError(
                f"{scores_path}: segment {record['id']} scored another translation than the "
                "record's hypothesis"
            )
        record = dict(record)
        record["sentence_scores"] = {**record.get("sentence_scores", {}), name: value}
        lines.append(json.dumps(record, ensure_ascii=False))
    with open(out_path + ".part", "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(out_path + ".part", out_path)


def run(args):
    executable = find_comet_score()
    if executable is None:
        raise QEUserError(
            "no comet-score: set COMET_SCORE=/path/to/comet-score or put it on PATH "
            "(unbabel-comet in its own venv, see the recipe's README)"
        )
    records = write_inputs(args.qe, args.sources, args.references, args.out)
    if args.references:
        score(executable, args.gold_model, args.out, os.path.join(args.out, "xcomet.json"))
    kiwi = score(
        executable, args.kiwi_model, args.out, os.path.join(args.out, "cometkiwi.json"), False
    )
    merge(records, kiwi, os.path.join(args.out, "qe.jsonl"))


def main(argv=None):
    install_excepthook()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("which", help="print the comet-score used (exit 1: none)")
    go = commands.add_parser("run", help="gold (with references) and CometKiwi for a QE file")
    go.add_argument("--qe", required=True)
    go.add_argument("--sources", required=True, help="raw source text, line i = sample id i")
    go.add_argument("--references", help="raw references: also the XCOMET-XL gold")
    go.add_argument("--out", required=True)
    go.add_argument("--gold-model", default=GOLD_MODEL)
    go.add_argument("--kiwi-model", default=KIWI_MODEL)
    add = commands.add_parser("merge", help="add a kept CometKiwi file to QE records")
    add.add_argument("--qe", required=True)
    add.add_argument("--scores", required=True)
    add.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.command == "which":
        found = find_comet_score()
        print(found or "none")
        return 0 if found else 1
    if args.command == "run":
        run(args)
    else:
        merge(load_records(args.qe), args.scores, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
