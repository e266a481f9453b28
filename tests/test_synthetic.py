"""The synthetic ambiguous language: deterministic, valid, skewed as configured."""
import hashlib
import json
from collections import Counter

from scipy.stats import chisquare

from fairseq_sigmoid_qe.synthetic import (
    SyntheticConfig,
    SyntheticLanguage,
    load_language,
    write_corpus,
)

SMALL = dict(num_source_words=60, train_size=3000, valid_size=20, test_size=20)


def digest(paths):
    return {name: hashlib.sha1(open(path, "rb").read()).hexdigest()
            for name, path in paths.items()}


def test_deterministic_and_seeded(tmp_path):
    a = digest(write_corpus(tmp_path / "a", SyntheticConfig(**SMALL)))
    b = digest(write_corpus(tmp_path / "b", SyntheticConfig(**SMALL)))
    c = digest(write_corpus(tmp_path / "c", SyntheticConfig(seed=2, **SMALL)))
    assert a == b
    assert a["train.src"] != c["train.src"]


def read_pairs(paths, split):
    with open(paths[f"{split}.src"]) as fs, open(paths[f"{split}.tgt"]) as ft:
        return [(s.split(), t.split()) for s, t in zip(fs, ft)]


def test_every_target_word_is_valid_and_vocabularies_disjoint(tmp_path):
    paths = write_corpus(tmp_path, SyntheticConfig(**SMALL))
    language = load_language(paths["lexicon"])
    targets = {t for synonyms in language.lexicon.values() for t in synonyms}
    assert not targets & set(language.lexicon)
    assert sum(len(s) for s in language.lexicon.values()) == len(targets)
    assert {len(s) for s in language.lexicon.values()} == {1, 2, 3, 4}
    for src, tgt in read_pairs(paths, "train"):
        assert len(src) == len(tgt) and 3 <= len(src) <= 10
        assert language.sentence_quality(src, tgt) == 1.0


def test_synonym_frequencies_match_configuration(tmp_path):
    paths = write_corpus(tmp_path, SyntheticConfig(**SMALL))
    language = load_language(paths["lexicon"])
    uses = {word: Counter() for word in language.lexicon}
    for src, tgt in read_pairs(paths, "train"):
        for s, t in zip(src, tgt):
            uses[s][t] += 1
    tested = 0
    for word, synonyms in language.lexicon.items():
        total = sum(uses[word].values())
        if len(synonyms) < 2 or total < 200:
            continue
        observed = [uses[word][t] for t in synonyms]
        expected = [p * total for p in synonyms.values()]
        assert chisquare(observed, expected).pvalue > 1e-4, word
        tested += 1
    assert tested >= 3
    four = next(s for s in language.lexicon.values() if len(s) == 4)
    assert [round(p, 3) for p in sorted(four.values(), reverse=True)] == [0.533, 0.267, 0.133, 0.067]


def test_quality_and_labels():
    language = SyntheticLanguage({"a": {"x": 0.7, "y": 0.3}, "b": {"z": 1.0}}, [0.5, 0.5])
    assert language.token_labels(["a", "b"], ["y", "z"]) == [1, 1]
    assert language.sentence_quality(["a", "b"], ["y", "z"]) == 1.0
    assert language.sentence_quality(["a", "b"], ["z", "z"]) == 0.5
    assert language.sentence_quality(["a", "b"], ["x", "z", "z"]) == 2 / 3
    assert language.token_labels(["a", "b"], ["x", "z", "z"]) == [1, 1, 0]
    assert language.sentence_quality(["a", "b"], ["x"]) == 0.5
    assert language.sentence_quality(["a", "b"], []) == 0.0
    assert language.sentence_quality([], []) == 1.0


def test_lexicon_round_trip(tmp_path):
    config = SyntheticConfig(**SMALL)
    paths = write_corpus(tmp_path, config)
    loaded = load_language(paths["lexicon"])
    built = SyntheticLanguage.build(config)
    assert loaded.lexicon == built.lexicon
    stored = json.load(open(paths["lexicon"]))
    assert stored["config"]["seed"] == config.seed
