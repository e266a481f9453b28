"""A synthetic translation task with real lexical ambiguity and exactly known quality.

Source and target words are distinct pronounceable pseudo-words. Every source word has
``n`` valid target synonyms (``n`` in 1..``max_synonyms``, mixed by ``synonym_count_weights``,
evenly by default); a reference picks synonym ``j`` (j = 0..n-1) with probability
``p_j = decay**j / sum_k decay**k`` (default decay 0.8: n=2 -> .556/.444, n=3 ->
.410/.328/.262, n=4 -> .339/.271/.217/.173; 0.5 is more skewed: n=4 ->
.533/.267/.133/.067). Source word of frequency rank ``r`` (1-based, lexicon order) is
drawn with probability ``∝ r**-zipf_exponent``, so rare words give a small model real
errors; test sentences draw their words uniformly among the words of the training split
(``uniform_test_words``), so rare words are common there. The ``headtrain`` split is a second
sample the base never sees, drawn like the test split (``uniform_head_words``): a tiny base
memorises its own training data, and the sigmoid head needs contexts where the base can be
wrong. The ``dev`` split is drawn like the test split too, for choosing settings without
looking at the test split. Translation is monotone and word by word (target length ==
source length), so the quality of any output is exact: a hypothesis word is right iff it is
a valid translation of the source word at the same position.
"""

import json
import os
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

SOURCE_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
TARGET_SYLLABLES = [c + v for c in "bcdghjklmnpqrstwxy" for v in "aeiouy"]
SPLITS = ("train", "valid", "test", "headtrain", "dev")
LEXICON_STREAM = 0


# Binarized subsets of the quickstart's splits of this task: the head trains on ``headtrain``
# (valid1), settings are chosen on ``dev`` (valid2), results are reported on ``test``.
SUBSETS = {"headtrain": "valid1", "dev": "valid2", "test": "test"}


@dataclass
class SyntheticConfig:
    """Everything that determines the language and the corpus."""

    seed: int = 1
    num_source_words: int = 2000
    max_synonyms: int = 4
    synonym_count_weights: Optional[Sequence[float]] = None
    synonym_decay: float = 0.8
    zipf_exponent: float = 1.0
    min_length: int = 3
    max_length: int = 10
    train_size: int = 30000
    valid_size: int = 500
    test_size: int = 500
    head_train_size: int = 10000
    dev_size: int = 500
    uniform_test_words: bool = True
    uniform_head_words: bool = True

    def __post_init__(self):
        if self.synonym_count_weights is not None:
            self.synonym_count_weights = tuple(float(w) for w in self.synonym_count_weights)
        problems = []
        if self.seed < 0:
            problems.append("seed must be >= 0")
        if self.num_source_words < 1:
            problems.append("num_source_words must be >= 1")
        if self.max_synonyms < 1:
            problems.append("max_synonyms must be >= 1")
        weights = self.count_weights()
        if len(weights) != self.max_synonyms or min(weights) < 0 or sum(weights) <= 0:
            problems.append("synonym_count_weights needs max_synonyms non-negative weights")
        if not 0 < self.synonym_decay <= 1:
            problems.append("synonym_decay must be in (0, 1]")
        if self.zipf_exponent < 0:
            problems.append("zipf_exponent must be >= 0")
        if not 1 <= self.min_length <= self.max_length:
            problems.append("need 1 <= min_length <= max_length")
        if (
            min(
                self.train_size,
                self.valid_size,
                self.test_size,
                self.head_train_size,
                self.dev_size,
            )
            < 0
        ):
            problems.append("split sizes must be >= 0")
        if problems:
            raise ValueError("invalid SyntheticConfig: " + "; ".join(problems))

    def count_weights(self):
        """Relative share of source words with 1, 2, ..., max_synonyms synonyms."""
        if self.synonym_count_weights is None:
            return (1.0,) * max(self.max_synonyms, 0)
        return self.synonym_count_weights

    def split_size(self, split):
        return {
            "train": self.train_size,
            "valid": self.valid_size,
            "test": self.test_size,
            "headtrain": self.head_train_size,
            "dev": self.dev_size,
        }[split]


def synonym_probabilities(count, decay):
    """``p_j = decay**j / sum_k decay**k`` for j = 0..count-1."""
    weights = decay ** np.arange(count, dtype=float)
    return weights / weights.sum()


def zipf_frequencies(count, exponent):
    """``p_r ∝ r**-exponent`` for ranks r = 1..count."""
    weights = np.arange(1, count + 1, dtype=float) ** -exponent
    return weights / weights.sum()


def exact_synonym_counts(rng, num_words, weights):
    """Synonym count per word: shares exactly as weighted (largest remainder), shuffled."""
    shares = np.asarray(weights, dtype=float) / np.sum(weights) * num_words
    per_count = np.floor(shares).astype(int)
    leftover = num_words - per_count.sum()
    per_count[np.argsort(-(shares - per_count), kind="stable")[:leftover]] += 1
    counts = np.repeat(np.arange(1, len(weights) + 1), per_count)
    return rng.permutation(counts)


def pseudo_words(rng, syllables, count, taken=()):
    """``count`` distinct words of 2-3 syllables, none of them in ``taken``."""
    words, seen = [], set(taken)
    while len(words) < count:
        word = "".join(rng.choice(syllables, size=int(rng.integers(2, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class SyntheticLanguage:
    """The lexicon (source word -> {target synonym: probability}) and source frequencies."""

    def __init__(self, lexicon, source_frequencies, min_length=3, max_length=10):
        self.lexicon = {src: dict(synonyms) for src, synonyms in lexicon.items()}
        self.source_words = list(self.lexicon)
        self.source_frequencies = np.asarray(source_frequencies, dtype=float)
        if len(self.source_frequencies) != len(self.source_words):
            raise ValueError("one source frequency per lexicon entry is needed")
        self.min_length, self.max_length = int(min_length), int(max_length)
        self._build_sampling_tables()

    def _build_sampling_tables(self):
        widest = max((len(s) for s in self.lexicon.values()), default=1)
        self._source_array = np.array(self.source_words, dtype=object)
        self._target_array = np.array(
            [t for synonyms in self.lexicon.values() for t in synonyms], dtype=object
        )
        counts = np.array([len(s) for s in self.lexicon.values()], dtype=int)
        self._target_offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)
        self._synonym_thresholds = np.full((len(self.source_words), max(widest - 1, 1)), np.inf)
        for row, synonyms in enumerate(self.lexicon.values()):
            cumulative = np.cumsum(list(synonyms.values()))[:-1]
            self._synonym_thresholds[row, : len(cumulative)] = cumulative
        cumulative = np.cumsum(self.source_frequencies)
        self._source_cdf = cumulative / cumulative[-1] if len(cumulative) else cumulative

    @classmethod
    def build(cls, config):
        """The language of ``config`` (deterministic in ``config.seed``)."""
        rng = np.random.default_rng([config.seed, LEXICON_STREAM])
        sources = pseudo_words(rng, SOURCE_SYLLABLES, config.num_source_words)
        counts = exact_synonym_counts(rng, len(sources), config.count_weights())
        targets = iter(pseudo_words(rng, TARGET_SYLLABLES, int(counts.sum()), sources))
        lexicon = {}
        for word, count in zip(sources, counts):
            probabilities = synonym_probabilities(int(count), config.synonym_decay)
            lexicon[word] = {next(targets): float(p) for p in probabilities}
        frequencies = zipf_frequencies(len(sources), config.zipf_exponent)
        return cls(lexicon, frequencies, config.min_length, config.max_length)

    def sample_pairs(self, rng, count, uniform_words=False, uniform_over=None):
        """``count`` (src_words, tgt_words) pairs; words by Zipf frequency, or uniformly (among
        the source-word ids ``uniform_over`` if given)."""
        lengths = rng.integers(self.min_length, self.max_length + 1, size=count)
        total = int(lengths.sum())
        if uniform_words:
            pool = np.arange(len(self.source_words)) if uniform_over is None else uniform_over
            source_ids = rng.choice(np.asarray(pool), size=total)
        else:
            source_ids = np.searchsorted(self._source_cdf, rng.random(total), side="right")
            source_ids = np.minimum(source_ids, len(self.source_words) - 1)
        draws = rng.random(total)
        synonym_ids = (draws[:, None] >= self._synonym_thresholds[source_ids]).sum(axis=1)
        src_tokens = self._source_array[source_ids].tolist()
        tgt_tokens = self._target_array[self._target_offsets[source_ids] + synonym_ids].tolist()
        ends = np.cumsum(lengths).tolist()
        starts = [0] + ends[:-1]
        return [(src_tokens[a:b], tgt_tokens[a:b]) for a, b in zip(starts, ends)]

    def sample_pair(self, rng, uniform_words=False):
        """One (src_words, tgt_words) pair, each source word translated by a drawn synonym."""
        return self.sample_pairs(rng, 1, uniform_words)[0]

    def is_valid(self, src_word, tgt_word):
        return tgt_word in self.lexicon.get(src_word, ())

    def token_labels(self, src_words, hyp_words):
        """1 where hyp word i is a valid translation of src word i; words past the source: 0."""
        return [
            int(i < len(src_words) and self.is_valid(src_words[i], word))
            for i, word in enumerate(hyp_words)
        ]

    def sentence_quality(self, src_words, hyp_words):
        """Correct aligned words / max(len(src), len(hyp)); 0.0 if hyp is empty, 1.0 if both are."""
        longest = max(len(src_words), len(hyp_words))
        return 1.0 if longest == 0 else sum(self.token_labels(src_words, hyp_words)) / longest

    def to_json(self):
        return {
            "lexicon": self.lexicon,
            "source_frequencies": self.source_frequencies.tolist(),
            "min_length": self.min_length,
            "max_length": self.max_length,
        }


def load_language(lexicon_path):
    """Rebuild the language from a ``lexicon.json`` written by :func:`write_corpus`."""
    with open(lexicon_path, encoding="utf-8") as f:
        stored = json.load(f)
    config = stored.get("config", {})
    return SyntheticLanguage(
        stored["lexicon"],
        stored["source_frequencies"],
        stored.get("min_length", config.get("min_length", 3)),
        stored.get("max_length", config.get("max_length", 10)),
    )


def write_corpus(out_dir, config=None):
    """Write ``{train,valid,test,headtrain,dev}.{src,tgt}`` and ``lexicon.json``; byte-identical
    per config.

    Each split has its own random stream, so e.g. the test set does not depend on train_size.
    Returns paths keyed ``"train.src"``, ..., ``"dev.tgt"`` and ``"lexicon"``.
    """
    config = config or SyntheticConfig()
    language = SyntheticLanguage.build(config)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths, seen = {}, None
    for stream, split in enumerate(SPLITS, start=LEXICON_STREAM + 1):
        rng = np.random.default_rng([config.seed, stream])
        uniform = (split in ("test", "dev") and config.uniform_test_words) or (
            split == "headtrain" and config.uniform_head_words
        )
        pairs = language.sample_pairs(rng, config.split_size(split), uniform, seen)
        if split == "train":
            index = {word: i for i, word in enumerate(language.source_words)}
            seen = sorted({index[w] for src, _ in pairs for w in src}) or None
        for side, index in (("src", 0), ("tgt", 1)):
            paths[f"{split}.{side}"] = path = os.path.join(out_dir, f"{split}.{side}")
            with open(path, "w", encoding="utf-8", newline="\n") as out:
                out.write("".join(" ".join(pair[index]) + "\n" for pair in pairs))
    paths["lexicon"] = os.path.join(out_dir, "lexicon.json")
    with open(paths["lexicon"], "w", encoding="utf-8", newline="\n") as out:
        json.dump({**language.to_json(), "config": asdict(config)}, out, indent=1)
        out.write("\n")
    return paths
