"""fairseq-sigmoid-qe: sigmoid-head quality estimation for Fairseq (Dinh & Niehues, 2026).

Used as ``--user-dir fairseq_sigmoid_qe``: fairseq imports the package after itself, which
then registers the ``sigmoid_head_transformer`` architecture, the ``nce_dominant`` criterion,
the ``sparse_adam`` optimizer and the ``translation_qe`` task (whose ``score_qe`` hook is
behind ``fairseq-generate --print-qe``). Imported without fairseq (the evaluator, the
fairseq-free ``core`` and ``evaluation``), it leaves fairseq unimported; the Python API
(``fairseq_sigmoid_qe.QEModel``, :mod:`.api`) registers on import, and other Python code calls
:func:`register_fairseq_components` (or imports fairseq first).

Layers (lowest first; each imports only its own and lower ones, ``tests/test_structure.py``):
``core/`` (fairseq-free math and files), ``evaluation/`` (fairseq-free), the fairseq plugin
(``models/ criterions/ optim/``), ``decoding/``, ``tasks/``, ``api.py``, ``demo/`` and
``testing/``, ``cli/``.
"""

import argparse
import sys

from .core.errors import QEUserError, install_excepthook  # noqa: F401  (QEUserError: public)

__version__ = "0.1.0"


def register_fairseq_components():
    """Register the plugin's architectures, criterion and generate hook with fairseq (once)."""
    import collections
    import typing

    import numpy
    import omegaconf
    import torch
    from fairseq.distributed import utils as distributed_utils

    # fairseq checkpoints pickle their argparse config, and with --eval-bleu the BLEU
    # statistics as numpy arrays; torch >= 2.6 loads with weights_only. A distributed resume
    # broadcasts rank 0's loaded checkpoint (its config an omegaconf DictConfig, its tensors
    # fairseq's placeholders), and the other ranks torch.load it with weights_only too.
    torch.serialization.add_safe_globals(
        [
            argparse.Namespace,
            collections.defaultdict,
            dict,
            int,
            list,
            typing.Any,
            omegaconf.DictConfig,
            omegaconf.ListConfig,
            omegaconf.base.ContainerMetadata,
            omegaconf.base.Metadata,
            omegaconf.nodes.AnyNode,
            omegaconf.nodes.BooleanNode,
            omegaconf.nodes.FloatNode,
            omegaconf.nodes.IntegerNode,
            omegaconf.nodes.StringNode,
            distributed_utils._TensorPlaceholder,
            numpy._core.multiarray._reconstruct,
            numpy.ndarray,
            numpy.dtype,
            numpy.dtypes.Int64DType,
            numpy.dtypes.Float64DType,
        ]
    )
    install_excepthook()
    from . import criterions, models, optim, tasks  # noqa: F401
    from .tasks.generate_hook import install

    install()


if "fairseq" in sys.modules:
    register_fairseq_components()


def __getattr__(name):
    """``fairseq_sigmoid_qe.QEModel``: the Python API (:mod:`.api`), imported when first asked
    for, so that importing the package alone does not import fairseq."""
    if name == "QEModel":
        from .api import QEModel

        return QEModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
