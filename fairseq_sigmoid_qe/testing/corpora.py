"""A parallel corpus in the l10n-en-de corpus' shape (``{train,valid,test}.{en,de}``, one
sentence a line) written from the project's synthetic language, so that the integration tests
run in a clone without the real corpus (``../shared``)."""

import os

from ..demo.synthetic import SyntheticConfig, write_corpus

SPLIT_SIZES = {"train": 3000, "valid": 100, "test": 100}


def synthetic_l10n_corpus(out_dir, seed=1, num_source_words=300):
    """Write ``{train,valid,test}.{en,de}`` of a synthetic language (source side ``en``,
    target ``de``) to ``out_dir``; returns ``out_dir``. Byte-identical for a seed."""
    out_dir = os.fspath(out_dir)
    text = os.path.join(out_dir, "synthetic")
    config = SyntheticConfig(
        seed=seed,
        num_source_words=num_source_words,
        train_size=SPLIT_SIZES["train"],
        valid_size=SPLIT_SIZES["valid"],
        test_size=SPLIT_SIZES["test"],
        head_train_size=1,
        dev_size=1,
    )
    paths = write_corpus(text, config)
    for split in SPLIT_SIZES:
        for side, lang in (("src", "en"), ("tgt", "de")):
            os.replace(paths[f"{split}.{side}"], os.path.join(out_dir, f"{split}.{lang}"))
    return out_dir
