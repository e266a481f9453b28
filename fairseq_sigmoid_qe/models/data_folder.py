"""A binarized data folder (``fairseq-preprocess --destdir``) as fairseq's translation task
reads it, checked before any work: fairseq's own ``setup_task`` ends in a traceback when the
folder is missing, holds no binarized split to tell the language pair from, or lacks a
``dict.LANG.txt``.
"""

import os

from ..core.errors import QEUserError


def language_pair(folder):
    """(source, target) from the first ``SPLIT.SRC-TGT.*`` file name in ``folder``, as
    fairseq infers it, or (None, None)."""
    for name in sorted(os.listdir(folder)):
        parts = name.split(".")
        if len(parts) >= 3 and len(parts[1].split("-")) == 2:
            source, target = parts[1].split("-")
            return source, target
    return None, None


def check_folder(data):
    """The first of ``data``'s ``:``-separated folders (the one holding the dictionaries),
    refused in one line unless it is a folder."""
    folder = str(data).split(os.pathsep)[0]
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.lexists(folder) else "does not exist"
        raise QEUserError(
            f"data folder {folder} {what}: give the folder fairseq-preprocess wrote (--destdir)"
        )
    return folder


def check_data_folder(data, source_lang=None, target_lang=None):
    """Refuse, in one line, a data folder fairseq cannot set its task up from."""
    if not data:
        return
    folder = check_folder(data)
    if source_lang is None or target_lang is None:
        source_lang, target_lang = language_pair(folder)
        if source_lang is None:
            raise QEUserError(
                f"data folder {folder} holds no binarized split (SPLIT.SRC-TGT.SRC.idx) to "
                "tell the language pair from: give --source-lang and --target-lang, or the "
                "folder fairseq-preprocess wrote (--destdir)"
            )
    for lang in (source_lang, target_lang):
        dictionary = os.path.join(folder, f"dict.{lang}.txt")
        if not os.path.isfile(dictionary):
            raise QEUserError(
                f"data folder {folder} has no dict.{lang}.txt (the {lang} dictionary "
                "fairseq-preprocess writes): give the folder of the binarized data"
            )
