"""A synthetic translation task with real lexical ambiguity and exactly known quality.

Every source word has one to ``max_synonyms`` valid target words; a reference picks one of
them with skewed probabilities ``p_j ∝ decay^j`` (decay 0.5: 1 -> 1.0; 2 -> .67/.33;
3 -> .57/.29/.14; 4 -> .53/.27/.13/.07). Source words follow a Zipf law, so rare words give a
small model real errors; test sentences draw their words uniformly (by default), so rare and
unseen words are common there. Translation is monotone, word by word, so the quality of any
output is computable: a word is right iff it is a valid translation of the aligned source word.
"""
import json
import os
from dataclasses import asdict, dataclass

import numpy as np

SYLLABLES_SOURCE = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
SYLLABLES_TARGET = [c + v for c in "bcdghjklmnpqrstwxy" for v in "aeiouy"]


@dataclass
class SyntheticConfig:
    seed: int = 1
    num_source_words: int = 3000
    max_synonyms: int = 4
    synonym_decay: float = 0.5
    zipf_exponent: float = 1.0
    min_length: int = 3
    max_length: int = 10
    train_size: int = 30000
    valid_size: int = 500
    test_size: int = 500
    uniform_test_words: bool = True


def _pseudo_words(rng, syllables, count, taken=()):
    words, seen = [], set(taken)
    while len(words) < count:
        word = "".join(rng.choice(syllables, size=rng.integers(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class SyntheticLanguage:
    """The lexicon: source word -> valid target synonyms and their probabilities."""

    def __init__(self, lexicon, source_frequencies):
        self.lexicon = lexicon
        self.source_words = list(lexicon)
        self.source_frequencies = np.asarray(source_frequencies, dtype=float)

    @classmethod
    def build(cls, config):
        rng = np.random.default_rng(config.seed)
        sources = _pseudo_words(rng, SYLLABLES_SOURCE, config.num_source_words)
        counts = rng.integers(1, config.max_synonyms + 1, size=len(sources))
        targets = iter(_pseudo_words(rng, SYLLABLES_TARGET, int(counts.sum()), sources))
        lexicon = {}
        for word, count in zip(sources, counts):
            weights = config.synonym_decay ** np.arange(count)
            lexicon[word] = {next(targets): float(w) for w in weights / weights.sum()}
        ranks = np.arange(1, len(sources) + 1, dtype=float)
        frequencies = ranks ** -config.zipf_exponent
        return cls(lexicon, frequencies / frequencies.sum())

    def sample_pair(self, rng, min_length, max_length, uniform_words=False):
        length = rng.integers(min_length, max_length + 1)
        frequencies = None if uniform_words else self.source_frequencies
        source = rng.choice(len(self.source_words), size=length, p=frequencies)
        src_words = [self.source_words[i] for i in source]
        tgt_words = []
        for word in src_words:
            synonyms = list(self.lexicon[word])
            tgt_words.append(synonyms[rng.choice(len(synonyms), p=list(self.lexicon[word].values()))])
        return src_words, tgt_words

    def token_labels(self, src_words, hyp_words):
        """1 where the hypothesis word is a valid translation of the aligned source word."""
        return [int(i < len(src_words) and word in self.lexicon.get(src_words[i], {}))
                for i, word in enumerate(hyp_words)]

    def sentence_quality(self, src_words, hyp_words):
        """Correct aligned words / max(source length, hypothesis length); 1.0 if both empty."""
        longest = max(len(src_words), len(hyp_words))
        return 1.0 if longest == 0 else sum(self.token_labels(src_words, hyp_words)) / longest

    def to_json(self):
        return {"lexicon": self.lexicon, "source_frequencies": self.source_frequencies.tolist()}


def load_language(lexicon_path):
    with open(lexicon_path, encoding="utf-8") as f:
        stored = json.load(f)
    return SyntheticLanguage(stored["lexicon"], stored["source_frequencies"])


def write_corpus(out_dir, config=None):
    """Write ``{train,valid,test}.{src,tgt}`` and ``lexicon.json``; identical for a config."""
    config = config or SyntheticConfig()
    language = SyntheticLanguage.build(config)
    rng = np.random.default_rng(config.seed + 1)
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for split, size in (("train", config.train_size), ("valid", config.valid_size),
                        ("test", config.test_size)):
        uniform = config.uniform_test_words and split == "test"
        pairs = [language.sample_pair(rng, config.min_length, config.max_length, uniform)
                 for _ in range(size)]
        for side, index in (("src", 0), ("tgt", 1)):
            path = os.path.join(out_dir, f"{split}.{side}")
            with open(path, "w", encoding="utf-8") as out:
                out.write("".join(" ".join(pair[index]) + "\n" for pair in pairs))
            paths[f"{split}.{side}"] = path
    paths["lexicon"] = os.path.join(out_dir, "lexicon.json")
    with open(paths["lexicon"], "w", encoding="utf-8") as out:
        json.dump({**language.to_json(), "config": asdict(config)}, out, indent=1)
    return paths
