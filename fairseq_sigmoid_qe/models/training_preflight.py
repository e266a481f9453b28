"""What head training can see coming before fairseq's trainer starts, said in one line.

fairseq itself fails later with tracebacks, or trains what the head must not be: ``--fp16``
(fairseq casts the whole model, the frozen base too, to float16), a ``--ddp-backend`` that
would not average the head's gradients over processes, ``--bf16`` without torch_xla
(``--bf16`` implies ``--tpu``), a valid sentence longer than ``--max-tokens-valid``
(``--max-tokens``), which no batch can hold whatever ``--skip-invalid-size-inputs-valid-test``
says, a ``--max-tokens`` below every training sentence (all skipped, then an IndexError), and
a ``--train-subset`` or ``--valid-subset`` the data folder does not have (``Dataset not
found``).
"""

import importlib.util
import os

import numpy as np

from ..core.errors import QEUserError


def check_precision(args):
    """``--bf16`` (fairseq makes it imply ``--tpu``) needs a TPU; ``--fp16`` is refused (the
    base must stay float32): ``--amp`` is the mixed precision that keeps it."""
    if getattr(args, "tpu", False) or getattr(args, "bf16", False):
        if importlib.util.find_spec("torch_xla") is None:
            flag = "--bf16" if getattr(args, "bf16", False) else "--tpu"
            raise QEUserError(
                f"{flag} needs a TPU (in fairseq --bf16 implies --tpu) and "
                "torch_xla is not installed; train without it (or with --amp "
                "on a CUDA GPU)"
            )
    for flag in ("memory_efficient_fp16", "fp16"):  # fairseq sets fp16 with the first
        if getattr(args, flag, False):
            raise QEUserError(
                f"--{flag.replace('_', '-')} casts the whole model, the frozen base too, to "
                "float16, so the head checkpoint would not hold the base bit for bit; use "
                "--amp (mixed precision on a CUDA GPU, the weights stay float32)"
            )


DATA_PARALLEL_BACKENDS = ("legacy_ddp", "no_c10d")


def check_distributed(args):
    """Over several processes only fairseq's legacy DDP averages the head's gradients: it
    all-reduces every gradient after the backward pass, where PyTorch's DDP (``c10d``,
    ``pytorch_ddp``) averages those of a forward run through its wrapper, and the criterion
    runs the frozen model and the head through their own methods."""
    world = getattr(args, "distributed_world_size", 1) or 1
    backend = str(getattr(args, "ddp_backend", "pytorch_ddp"))
    if world > 1 and backend not in DATA_PARALLEL_BACKENDS:
        raise QEUserError(
            f"--ddp-backend {backend} with --distributed-world-size {world}: the criterion runs "
            "the head outside the model's forward, so this backend would not average its "
            "gradients; use --ddp-backend legacy_ddp"
        )


def split_sizes(task, split, combine):
    """Tokens per sample of a data split as fairseq batches them (the larger of source and
    target), or None if the split does not exist. Only the split's index is read, and the
    task is left as found: fairseq loads the split itself afterwards."""
    datasets = task.datasets
    previous = datasets.get(split)
    try:
        task.load_dataset(split, combine=combine, epoch=1)
    except FileNotFoundError:
        return None
    dataset = datasets.pop(split)
    if previous is not None:
        datasets[split] = previous
    return dataset.num_tokens_vec(np.arange(len(dataset)))


def check_batch_limits(args, task):
    """Every valid sentence must fit in ``--max-tokens-valid`` (fairseq cannot batch it), and
    some training sentence in ``--max-tokens`` (fairseq skips the longer ones)."""

    def limit(option):  # argparse leaves --max-tokens-valid a string (an interpolated default)
        value = getattr(args, option, None)
        return int(value) if value not in (None, "") else None

    max_tokens = limit("max_tokens")
    valid_limit = limit("max_tokens_valid") or max_tokens
    valid_option = "--max-tokens-valid" if valid_limit != max_tokens else "--max-tokens"
    if valid_limit and not getattr(args, "disable_validation", False):
        for split in str(getattr(args, "valid_subset", "valid")).split(","):
            sizes = split_sizes(task, split, combine=False)
            if sizes is not None and len(sizes) and sizes.max() > valid_limit:
                raise QEUserError(
                    f"{valid_option} {valid_limit} is below the longest sentence of the {split} "
                    f"set ({sizes.max()} tokens), which fairseq cannot batch; raise "
                    f"{valid_option} to at least {sizes.max()}"
                )
    if max_tokens:
        sizes = split_sizes(task, getattr(args, "train_subset", "train"), combine=True)
        if sizes is not None and len(sizes) and sizes.min() > max_tokens:
            raise QEUserError(
                f"--max-tokens {max_tokens} is below the shortest training sentence "
                f"({sizes.min()} tokens): fairseq would skip every one; raise --max-tokens"
            )


def check_splits(args, task):
    """``--train-subset`` and every ``--valid-subset`` must be splits of the data folder
    (fairseq raises ``Dataset not found`` once the model is built)."""
    wanted = [("--train-subset", getattr(args, "train_subset", "train"), True)]
    if not getattr(args, "disable_validation", False):
        subsets = str(getattr(args, "valid_subset", "valid")).split(",")
        wanted += [("--valid-subset", split, False) for split in subsets]
    for option, split, combine in wanted:
        if split_sizes(task, split, combine) is None:
            folder = str(args.data).split(os.pathsep)[0]
            raise QEUserError(
                f"{option} {split}: data folder {folder} has no {split} split (no "
                f"{split}.SRC-TGT.LANG.idx file); give one it has"
                + ("" if combine else ", or --disable-validation")
            )


def check_training_setup(args, task):
    """Refuse, in one line, what would make fairseq's trainer fail with a traceback."""
    check_precision(args)
    check_distributed(args)
    check_splits(args, task)
    check_batch_limits(args, task)
