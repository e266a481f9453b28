"""Which dictionaries of a data folder are a checkpoint's source and target.

fairseq reads the pair from ``--source-lang/--target-lang`` or from the binarized files'
names (``train.en-de.en.idx``); it does not store the inferred pair in the checkpoint. A
model folder as models are shipped holds only ``dict.*.txt``: there the pair is the one whose
dictionary sizes are the sizes of the checkpoint's encoder and decoder embeddings.
"""

import os

from ..core.errors import QEUserError
from .base_checkpoint import config_option

EMBEDDINGS = {"source": "encoder.embed_tokens.weight", "target": "decoder.embed_tokens.weight"}


def dictionary_languages(folder):
    """The languages ``X`` of the ``dict.X.txt`` files in ``folder``, sorted."""
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(
        n[len("dict.") : -len(".txt")]
        for n in names
        if n.startswith("dict.") and n.endswith(".txt")
    )


def fitting_pairs(sizes, source_rows, target_rows):
    """Every (source, target) of distinct languages whose dictionary sizes (``{lang: size}``)
    equal the embeddings' rows."""
    return [
        (source, target)
        for source in sorted(sizes)
        for target in sorted(sizes)
        if source != target and sizes[source] == source_rows and sizes[target] == target_rows
    ]


def checkpoint_language_pair(state, data_dir):
    """(source, target) for the checkpoint ``state`` read with the dictionaries of
    ``data_dir``: the recorded pair, else the binarized files' names, else the dictionary
    sizes; one line when none of them tells."""
    from fairseq.data import Dictionary
    from fairseq.data.data_utils import infer_language_pair

    task = (state.get("cfg") or {}).get("task") or state.get("args")
    recorded = tuple(config_option(task, name) for name in ("source_lang", "target_lang"))
    if all(recorded):
        return recorded
    source, target = infer_language_pair(data_dir)
    if source and target:
        return source, target
    languages = dictionary_languages(data_dir)
    weights = state.get("model", {})
    if all(key in weights for key in EMBEDDINGS.values()):
        sizes = {
            lang: len(Dictionary.load(os.path.join(data_dir, f"dict.{lang}.txt")))
            for lang in languages
        }
        rows = [weights[key].shape[0] for key in EMBEDDINGS.values()]
        pairs = fitting_pairs(sizes, *rows)
        if len(pairs) == 1 or (len(pairs) == 2 and same_files(data_dir, *pairs[0])):
            return pairs[0]
    found = ", ".join(f"dict.{lang}.txt" for lang in languages) or "no dict.*.txt"
    raise QEUserError(
        f"cannot tell the language pair of {data_dir} ({found}): the checkpoint records none "
        "and no binarized data names it; keep one source and one target dictionary there"
    )


def same_files(data_dir, first, second):
    def text(lang):
        with open(os.path.join(data_dir, f"dict.{lang}.txt"), "rb") as handle:
            return handle.read()

    return text(first) == text(second)
