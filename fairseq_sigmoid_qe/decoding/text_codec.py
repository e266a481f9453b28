"""Raw text <-> the model's subword pieces, for the raw-text command and the API: a
sentencepiece model of the data (the default), or any of fairseq's registered tokenizers and
BPEs (``--tokenizer moses|space|nltk``, ``--bpe subword_nmt|fastbpe|sentencepiece|gpt2|...``,
each with its own options), built through fairseq's encoder registry as fairseq-interactive
builds them; and which word of the detokenized text each piece belongs to, so that word-level
scores are those of the text the user reads."""

import copy
from argparse import Namespace

from fairseq.data import encoders

from ..core.words import EOS, align_words, detokenize, word_ids


class SentencepieceText:
    """A sentencepiece model (or none: the text is taken as pieces) and the one detokenizer."""

    def __init__(self, processor=None):
        self.processor = processor

    def encode(self, text, side="source"):
        if self.processor is None:
            return text
        return " ".join(self.processor.encode(text, out_type=str))

    def decode(self, pieces):
        return detokenize(pieces)

    def word_ids(self, pieces, text):
        """None: the records' word scores (grouped by ``▁`` / ``@@``) already follow the
        detokenized words."""
        return None


class FairseqText:
    """fairseq's tokenizer and BPE of ``options`` (a Namespace with ``tokenizer``, ``bpe``
    and their options, ``source_lang``/``target_lang`` among them): the source encoded as
    fairseq-interactive encodes it, a translation to score with the tokenizer of the target
    language, hypotheses decoded as fairseq-interactive's ``D-`` lines."""

    def __init__(self, options):
        self.tokenizer = encoders.build_tokenizer(options)
        target = copy.copy(options)
        if hasattr(target, "source_lang"):  # e.g. Moses: tokenize a translation as target text
            target.source_lang = getattr(options, "target_lang", options.source_lang)
        self.target_tokenizer = encoders.build_tokenizer(target)
        self.bpe = encoders.build_bpe(options)

    def encode(self, text, side="source"):
        tokenizer = self.tokenizer if side == "source" else self.target_tokenizer
        if tokenizer is not None:
            text = tokenizer.encode(text)
        return self.bpe.encode(text) if self.bpe is not None else text

    def _unbpe(self, pieces):
        text = " ".join(p for p in pieces if p != EOS)
        return self.bpe.decode(text) if self.bpe is not None else text

    def decode(self, pieces):
        text = self._unbpe(pieces)
        return self.tokenizer.decode(text) if self.tokenizer is not None else text

    def word_ids(self, pieces, text):
        """Index of the word of ``text`` (the detokenized hypothesis) of each piece (an EOS
        piece: the last word), or None where the pieces' words cannot be matched to the
        text's (e.g. byte-level BPE, whose pieces are not words)."""
        words = [p for p in pieces if p != EOS]
        if not words:
            return None
        groups = word_ids(words)
        tokenized = self._unbpe(words).split()
        if len(tokenized) != groups[-1] + 1:
            return None
        aligned = align_words(tokenized, text)
        if aligned is None:
            return None
        ids = iter(aligned[g] for g in groups)
        return [next(ids) if p != EOS else aligned[-1] for p in pieces]


def encoder_configs(kind):
    """{name: config dataclass} of fairseq's registered ``kind`` (``tokenizer`` or ``bpe``)."""
    from fairseq.registry import REGISTRIES

    entry = REGISTRIES[kind]
    return {name: entry["dataclass_registry"].get(name) for name in sorted(entry["registry"])}


def fairseq_text_options(tokenizer=None, bpe=None, **options):
    """The Namespace fairseq's encoder registry builds ``tokenizer`` and ``bpe`` from (their
    configs' defaults fill in what ``options`` leaves out)."""
    given = {name: value for name, value in options.items() if value is not None}
    return Namespace(tokenizer=tokenizer, bpe=bpe, **given)
