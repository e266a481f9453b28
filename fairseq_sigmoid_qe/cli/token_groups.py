"""``fairseq-sigmoid-qe token-groups``: the token-group tables of a synthetic
quickstart workdir."""

import argparse
import os
import sys

from ..demo.token_groups import print_group_tables, synthetic_group_tables


def main(argv=None):
    from ..core.errors import QEUserError, install_excepthook, set_command
    from .help_format import DefaultsHelpFormatter

    set_command("token-groups")
    install_excepthook()
    parser = argparse.ArgumentParser(
        prog="fairseq-sigmoid-qe token-groups",
        formatter_class=DefaultsHelpFormatter,
        description="Mean token score of each QE method per token group (valid/wrong x argmax/"
        "dominant) on a split of a synthetic quickstart workdir.",
    )
    parser.add_argument("--workdir", required=True, help="a synthetic quickstart workdir")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="head checkpoint (default: WORKDIR/head/checkpoint_last.pt)",
    )
    parser.add_argument(
        "--split",
        default="dev",
        choices=["dev", "test"],
        help="dev (for tuning) or test (report once)",
    )
    parser.add_argument("--beam", type=int, default=5)
    args = parser.parse_args(argv)
    from ..api import load_head_model
    from ..decoding.search_loop import translate_and_score
    from ..demo.synthetic import SUBSETS, load_language

    lexicon = os.path.join(args.workdir, "text", "lexicon.json")
    if not os.path.isfile(lexicon):
        raise QEUserError(f"{args.workdir} is not a synthetic quickstart workdir (no {lexicon})")
    checkpoint = args.checkpoint or os.path.join(args.workdir, "head", "checkpoint_last.pt")
    model, task = load_head_model(checkpoint, os.path.join(args.workdir, "data-bin"))
    records = translate_and_score(model, task, SUBSETS[args.split], beam=args.beam)
    print_group_tables(synthetic_group_tables(model, task, load_language(lexicon), records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
