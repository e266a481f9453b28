"""The console commands that need fairseq: without it installed, one error line naming the
``fairseq`` extra and how to install it, instead of an ImportError traceback."""

import importlib.util
import sys

from ..core.errors import PROGRAM

FAIRSEQ_MISSING = (
    "needs fairseq, which is not installed: install this package's 'fairseq' "
    "extra as setup.sh does (bash setup.sh; fairseq-fixed must be built with "
    "--no-build-isolation --no-deps)"
)


def require_fairseq(program):
    if importlib.util.find_spec("fairseq") is None:
        sys.stderr.write(f"{PROGRAM}: error: {program} {FAIRSEQ_MISSING}\n")
        sys.exit(1)


def quickstart():
    """``fairseq-sigmoid-qe-quickstart``."""
    require_fairseq("fairseq-sigmoid-qe-quickstart")
    from .quickstart import main

    return main()


def raw_text():
    """``fairseq-sigmoid-qe``: the raw-text API's translate / score command, and
    ``calibrate`` and ``merge`` (which need no fairseq)."""
    if sys.argv[1:2] == ["calibrate"]:
        from .calibrate import main

        return main(sys.argv[2:])
    if sys.argv[1:2] == ["merge"]:
        from .merge import main

        return main(sys.argv[2:])
    require_fairseq("fairseq-sigmoid-qe")
    from .raw_text import main

    return main()
