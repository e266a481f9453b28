"""The synthetic ambiguous language: deterministic, valid, skewed as configured, exact quality."""

import hashlib
import json
import math
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from fairseq_sigmoid_qe.demo.synthetic import (
    SPLITS,
    SyntheticConfig,
    SyntheticLanguage,
    load_language,
    synonym_probabilities,
    write_corpus,
)

pytestmark = pytest.mark.unit

SMALL = dict(num_source_words=60, train_size=3000, valid_size=20, test_size=20)
MODULE_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "fairseq_sigmoid_qe",
    "demo",
    "synthetic.py",
)


def digest(paths):
    return {
        name: hashlib.sha256(open(path, "rb").read()).hexdigest() for name, path in paths.items()
    }


def read_pairs(paths, split):
    with (
        open(paths[f"{split}.src"], encoding="utf-8") as fs,
        open(paths[f"{split}.tgt"], encoding="utf-8") as ft,
    ):
        return [(s.split(), t.split()) for s, t in zip(fs, ft)]


def chi2_pvalue(statistic, dof):
    """Upper tail of the chi-square distribution (closed form for integer dof)."""
    half = statistic / 2
    if dof % 2 == 0:
        return math.exp(-half) * sum(half**i / math.factorial(i) for i in range(dof // 2))
    tail, term = math.erfc(math.sqrt(half)), math.sqrt(statistic) * math.sqrt(2 / math.pi)
    for i in range(1, (dof + 1) // 2):
        tail += math.exp(-half) * term
        term *= statistic / (2 * i + 1)
    return tail


def test_chi2_pvalue_known_values():
    assert chi2_pvalue(3.841459, 1) == pytest.approx(0.05, abs=1e-6)
    assert chi2_pvalue(5.991465, 2) == pytest.approx(0.05, abs=1e-6)
    assert chi2_pvalue(7.814728, 3) == pytest.approx(0.05, abs=1e-6)


def test_same_config_same_bytes_other_seed_other_corpus(tmp_path):
    a = digest(write_corpus(tmp_path / "a", SyntheticConfig(**SMALL)))
    b = digest(write_corpus(tmp_path / "b", SyntheticConfig(**SMALL)))
    c = digest(write_corpus(tmp_path / "c", SyntheticConfig(seed=2, **SMALL)))
    assert a == b
    assert set(a) == {f"{s}.{side}" for s in SPLITS for side in ("src", "tgt")} | {"lexicon"}
    assert all(a[name] != c[name] for name in a)


def test_identical_in_another_process_with_another_hash_seed(tmp_path):
    paths = write_corpus(tmp_path / "here", SyntheticConfig(**SMALL))
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('synthetic', {MODULE_PATH!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"module.write_corpus(sys.argv[1], module.SyntheticConfig(**{SMALL!r}))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "there")], check=True, env=env)
    there = {name: str(tmp_path / "there" / os.path.basename(path)) for name, path in paths.items()}
    assert digest(there) == digest(paths)


def test_test_split_does_not_depend_on_train_size(tmp_path):
    small = digest(write_corpus(tmp_path / "a", SyntheticConfig(**SMALL)))
    larger = digest(write_corpus(tmp_path / "b", SyntheticConfig(**{**SMALL, "train_size": 500})))
    assert small["test.src"] == larger["test.src"] and small["valid.tgt"] == larger["valid.tgt"]
    assert small["train.src"] != larger["train.src"]


def test_every_target_word_is_valid_and_vocabularies_disjoint(tmp_path):
    paths = write_corpus(tmp_path, SyntheticConfig(**SMALL))
    language = load_language(paths["lexicon"])
    sources = set(language.lexicon)
    targets = [t for synonyms in language.lexicon.values() for t in synonyms]
    assert len(targets) == len(set(targets))
    assert not sources & set(targets)
    assert all(w.isalpha() and w.islower() for w in sources | set(targets))
    assert Counter(len(s) for s in language.lexicon.values()) == {1: 15, 2: 15, 3: 15, 4: 15}
    for split in SPLITS:
        pairs = read_pairs(paths, split)
        assert len(pairs) == SyntheticConfig(**SMALL).split_size(split)
        for src, tgt in pairs:
            assert len(src) == len(tgt) and 3 <= len(src) <= 10
            assert language.token_labels(src, tgt) == [1] * len(src)
            assert language.sentence_quality(src, tgt) == 1.0


def test_synonym_frequencies_match_configured_probabilities(tmp_path):
    paths = write_corpus(tmp_path, SyntheticConfig(**SMALL))
    language = load_language(paths["lexicon"])
    uses = {word: Counter() for word in language.lexicon}
    for src, tgt in read_pairs(paths, "train"):
        for s, t in zip(src, tgt):
            uses[s][t] += 1
    tested = 0
    for word, synonyms in language.lexicon.items():
        total = sum(uses[word].values())
        if len(synonyms) < 2 or total < 100:
            continue
        observed = np.array([uses[word][t] for t in synonyms])
        expected = np.array(list(synonyms.values())) * total
        statistic = float(((observed - expected) ** 2 / expected).sum())
        assert chi2_pvalue(statistic, len(synonyms) - 1) > 1e-3, word
        tested += 1
    assert tested >= 10


def test_synonym_probabilities_formula(tmp_path):
    config = SyntheticConfig(**SMALL)
    language = SyntheticLanguage.build(config)
    for synonyms in language.lexicon.values():
        expected = synonym_probabilities(len(synonyms), config.synonym_decay)
        assert list(synonyms.values()) == pytest.approx(expected)
    assert synonym_probabilities(4, 0.5) == pytest.approx([8 / 15, 4 / 15, 2 / 15, 1 / 15])
    assert synonym_probabilities(1, 0.5) == pytest.approx([1.0])


@pytest.mark.parametrize("uniform_head_words", [True, False])
def test_source_words_follow_zipf_in_train_and_uniform_in_test(tmp_path, uniform_head_words):
    config = SyntheticConfig(
        **{
            **SMALL,
            "test_size": 3000,
            "head_train_size": 3000,
            "uniform_head_words": uniform_head_words,
        }
    )
    paths = write_corpus(tmp_path, config)
    language = load_language(paths["lexicon"])
    first, tenth = language.source_words[0], language.source_words[9]
    train, test, head = (
        Counter(w for src, _ in read_pairs(paths, split) for w in src)
        for split in ("train", "test", "headtrain")
    )
    assert 7 < train[first] / train[tenth] < 13
    assert 0.7 < test[first] / test[tenth] < 1.4
    if uniform_head_words:
        assert 0.7 < head[first] / head[tenth] < 1.4
        assert set(head) <= set(train)
    else:
        assert 7 < head[first] / head[tenth] < 13


def test_custom_synonym_count_weights():
    config = SyntheticConfig(num_source_words=10, max_synonyms=3, synonym_count_weights=(1, 0, 1))
    language = SyntheticLanguage.build(config)
    assert Counter(len(s) for s in language.lexicon.values()) == {1: 5, 3: 5}
    with pytest.raises(ValueError):
        SyntheticConfig(max_synonyms=3, synonym_count_weights=(1, 1))
    with pytest.raises(ValueError):
        SyntheticConfig(min_length=5, max_length=4)


def test_sample_pair_uses_the_language_length_range():
    language = SyntheticLanguage.build(
        SyntheticConfig(num_source_words=20, min_length=2, max_length=4)
    )
    rng = np.random.default_rng(0)
    for _ in range(50):
        src, tgt = language.sample_pair(rng)
        assert 2 <= len(src) == len(tgt) <= 4
        assert language.sentence_quality(src, tgt) == 1.0


def test_quality_and_labels_on_hand_made_cases():
    language = SyntheticLanguage({"a": {"x": 0.7, "y": 0.3}, "b": {"z": 1.0}}, [0.5, 0.5])
    assert language.token_labels(["a", "b"], ["y", "z"]) == [1, 1]
    assert language.sentence_quality(["a", "b"], ["x", "z"]) == 1.0
    assert language.token_labels(["a", "b"], ["z", "z"]) == [0, 1]
    assert language.sentence_quality(["a", "b"], ["z", "z"]) == 0.5
    assert language.token_labels(["a", "b"], ["x", "z", "z"]) == [1, 1, 0]
    assert language.sentence_quality(["a", "b"], ["x", "z", "z"]) == 2 / 3
    assert language.token_labels(["a", "b"], ["x"]) == [1]
    assert language.sentence_quality(["a", "b"], ["x"]) == 0.5
    assert language.token_labels(["a", "b"], ["z", "x"]) == [0, 0]
    assert language.token_labels(["a", "b"], []) == []
    assert language.sentence_quality(["a", "b"], []) == 0.0
    assert language.sentence_quality([], ["x"]) == 0.0
    assert language.sentence_quality([], []) == 1.0
    assert language.sentence_quality(["unknown"], ["x"]) == 0.0


def test_lexicon_round_trip(tmp_path):
    config = SyntheticConfig(**SMALL)
    paths = write_corpus(tmp_path, config)
    loaded, built = load_language(paths["lexicon"]), SyntheticLanguage.build(config)
    assert loaded.lexicon == built.lexicon
    assert list(loaded.lexicon) == list(built.lexicon)
    assert [list(s) for s in loaded.lexicon.values()] == [list(s) for s in built.lexicon.values()]
    assert loaded.source_frequencies.tolist() == built.source_frequencies.tolist()
    assert (loaded.min_length, loaded.max_length) == (config.min_length, config.max_length)
    assert loaded.sample_pairs(np.random.default_rng(3), 20) == built.sample_pairs(
        np.random.default_rng(3), 20
    )
    stored = json.load(open(paths["lexicon"], encoding="utf-8"))
    assert SyntheticConfig(**stored["config"]) == config


def test_thirty_thousand_pairs_are_drawn():
    """The default training split's size in one call (how fast: not a unit test's concern)."""
    language = SyntheticLanguage.build(SyntheticConfig())
    pairs = language.sample_pairs(np.random.default_rng(0), 30000)
    assert len(pairs) == 30000
    assert all(len(src) == len(tgt) for src, tgt in pairs)
