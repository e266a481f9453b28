"""A checkpoint's language pair from a folder holding only its dictionaries (a model folder
as models are shipped): fairseq records no inferred pair and finds none without binarized
files."""

import pytest
import torch

from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.models.language_pair import checkpoint_language_pair, fitting_pairs

pytestmark = pytest.mark.unit


def test_fitting_pairs_match_sizes_to_embedding_rows():
    assert fitting_pairs({"de": 12, "en": 9}, 9, 12) == [("en", "de")]
    assert fitting_pairs({"de": 12, "en": 9}, 12, 9) == [("de", "en")]
    assert fitting_pairs({"de": 12, "en": 12}, 12, 12) == [("de", "en"), ("en", "de")]
    assert fitting_pairs({"de": 12, "en": 9}, 9, 9) == []


def write_dictionary(folder, lang, words):
    (folder / f"dict.{lang}.txt").write_text("".join(f"{w} 1\n" for w in words))


def state_with(source_rows, target_rows, task=None):
    return {
        "cfg": {"task": task or {"source_lang": None, "target_lang": None}},
        "model": {
            "encoder.embed_tokens.weight": torch.zeros(source_rows, 2),
            "decoder.embed_tokens.weight": torch.zeros(target_rows, 2),
        },
    }


def test_the_pair_is_the_recorded_one_else_the_dictionary_sizes(tmp_path):
    write_dictionary(tmp_path, "en", ["a", "b"])  # + 4 special symbols
    write_dictionary(tmp_path, "de", ["x", "y", "z"])
    assert checkpoint_language_pair(state_with(6, 7), str(tmp_path)) == ("en", "de")
    assert checkpoint_language_pair(state_with(7, 6), str(tmp_path)) == ("de", "en")
    recorded = {"source_lang": "fr", "target_lang": "it"}
    assert checkpoint_language_pair(state_with(6, 7, recorded), str(tmp_path)) == ("fr", "it")


def test_binarized_file_names_name_the_pair(tmp_path):
    write_dictionary(tmp_path, "en", ["a"])
    write_dictionary(tmp_path, "de", ["a"])
    (tmp_path / "train.de-en.de.idx").write_bytes(b"")
    assert checkpoint_language_pair(state_with(5, 5), str(tmp_path)) == ("de", "en")


def test_same_size_dictionaries_are_one_pair_only_when_identical(tmp_path):
    write_dictionary(tmp_path, "en", ["a", "b"])
    write_dictionary(tmp_path, "de", ["a", "b"])
    assert checkpoint_language_pair(state_with(6, 6), str(tmp_path)) == ("de", "en")
    write_dictionary(tmp_path, "de", ["b", "a"])
    with pytest.raises(QEUserError, match=r"cannot tell the language pair .*dict\.de\.txt"):
        checkpoint_language_pair(state_with(6, 6), str(tmp_path))


def test_no_fitting_dictionaries_is_one_line(tmp_path):
    with pytest.raises(QEUserError, match="no dict"):
        checkpoint_language_pair(state_with(6, 7), str(tmp_path))
    write_dictionary(tmp_path, "en", ["a"])
    with pytest.raises(QEUserError, match=r"\(dict\.en\.txt\)"):
        checkpoint_language_pair(state_with(6, 7), str(tmp_path))
