"""fairseq-sigmoid-qe: sigmoid-head quality estimation for Fairseq (Dinh & Niehues, 2026).

Used as ``--user-dir fairseq_sigmoid_qe``: importing the package registers the
``sigmoid_head_transformer`` architecture, the ``nce_dominant`` criterion and the
``translation_qe`` task (whose ``score_qe`` hook is behind ``fairseq-generate --print-qe``).
The pure math modules (``dominant``, ``sampling``, ``words``) import without fairseq.
"""
import argparse

from .errors import QEUserError, install_excepthook

__version__ = "0.1.0"


def _register_fairseq_components():
    try:
        import fairseq  # noqa: F401
    except ImportError:
        return
    import torch

    # fairseq checkpoints pickle their argparse config; torch >= 2.6 loads with weights_only.
    torch.serialization.add_safe_globals([argparse.Namespace])
    install_excepthook()
    from . import criterions, models, tasks  # noqa: F401
    from .generate_hook import install

    install()


_register_fairseq_components()
