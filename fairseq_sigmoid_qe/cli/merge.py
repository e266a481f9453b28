"""``fairseq-sigmoid-qe merge``: the QE files of a sharded test set as one, in input order.

    fairseq-generate DATA_BIN ... --print-qe --num-shards 2 --shard-id 0 --qe-output qe.0.jsonl
    fairseq-generate DATA_BIN ... --print-qe --num-shards 2 --shard-id 1 --qe-output qe.1.jsonl
    fairseq-sigmoid-qe merge --qe qe.0.jsonl qe.1.jsonl --output qe.jsonl

The output holds every record of the inputs, each line as written, sorted by sample ``id`` and
``rank`` (the input's order; one unsharded ``--qe-output`` file is in fairseq's batch order).
It is a new file, never overwritten, and complete or absent.
"""

import argparse
import sys

from ..core.errors import PROGRAM, install_excepthook, program, set_command
from ..core.textfiles import StreamedOutput, refuse_existing
from ..evaluation.records import merged_lines
from .help_format import DefaultsHelpFormatter


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=f"{PROGRAM} merge",
        formatter_class=DefaultsHelpFormatter,
        description="Merge the --qe-output files of fairseq-generate's shards (--num-shards, "
        "--shard-id) into one, sorted by sample id and rank.",
    )
    parser.add_argument(
        "--qe",
        nargs="+",
        required=True,
        metavar="FILE.jsonl",
        help="the shards' QE records (fairseq-generate --qe-output)",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="FILE.jsonl",
        help="the merged records (a new file, never overwritten; - for stdout)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    set_command("merge")
    install_excepthook()
    args = parse_args(argv)
    if args.output != "-":
        refuse_existing(args.output, "--output")
    lines = merged_lines(args.qe)
    output = StreamedOutput(args.output, "--output")
    try:
        output.write("".join(line + "\n" for line in lines))
    except BaseException:
        output.discard()
        raise
    output.commit()
    sys.stderr.write(f"{program()}: {len(lines)} records from {len(args.qe)} files\n")
