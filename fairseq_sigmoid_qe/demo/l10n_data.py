"""Real text for the pipeline: slices of a parallel corpus, a held-out slice, sentencepiece,
chrF pseudo-gold (the command is :mod:`..cli.prepare_data`)."""

import os

from ..core.errors import QEUserError
from ..core.textfiles import iter_lines, read_lines

SPLITS = ("train", "valid", "test")


def read_pairs(corpus_dir, split, src="en", tgt="de", limit=None):
    """Aligned non-empty (source, target) lines of one split, at most ``limit`` of them."""
    paths = [os.path.join(corpus_dir, f"{split}.{lang}") for lang in (src, tgt)]
    for path in paths:
        if not os.path.isfile(path):
            raise QEUserError(f"corpus file not found: {path} (see --l10n-dir)")
    pairs = []
    for source, target in zip(*(iter_lines(path, "corpus file") for path in paths)):
        source, target = source.strip(), target.strip()
        if source and target:
            pairs.append((source, target))
            if limit is not None and len(pairs) >= limit:
                break
    return pairs


def train_sentencepiece(texts, model_prefix, vocab_size, sample_size=0):
    """Unigram sentencepiece model on ``texts`` (on a random ``sample_size`` of them if > 0)."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=model_prefix,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        input_sentence_size=sample_size,
        shuffle_input_sentence=sample_size > 0,
        num_threads=2,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    return spm.SentencePieceProcessor(model_file=model_prefix + ".model")


def hold_out(pairs, count, seed=1):
    """``(kept, heldout, ownslice)``: ``count`` pairs drawn at random (seeded) out of ``pairs``,
    the rest in corpus order, and a second random draw of ``count`` pairs from the rest: a
    base trained on ``kept`` never sees ``heldout``, and ``ownslice`` is the same-sized
    slice of what it did see."""
    import random

    if not 0 < count <= len(pairs) // 2:
        raise QEUserError(
            f"--heldout-pairs {count}: must be between 1 and half of the "
            f"{len(pairs)} training pairs"
        )
    rng = random.Random(seed)
    held = set(rng.sample(range(len(pairs)), count))
    kept = [pair for index, pair in enumerate(pairs) if index not in held]
    own = sorted(rng.sample(range(len(kept)), count))
    return kept, [pairs[index] for index in sorted(held)], [kept[index] for index in own]


def prepare_l10n(
    corpus_dir,
    text_dir,
    train_pairs,
    test_pairs,
    vocab_size,
    valid_pairs=500,
    spm_sample=0,
    heldout_pairs=0,
):
    """Write sentencepiece-encoded ``{split}.en/.de`` and raw ``{split}.raw.{en,de}`` to
    text_dir, from ``corpus_dir/{train,valid,test}.{en,de}`` (None: every pair of a split).
    With ``heldout_pairs`` N > 0, N random training pairs become the split ``heldout`` (not in
    ``train``) and N random pairs of the rest of ``train`` the split ``ownslice``
    (:func:`hold_out`); sentencepiece is trained on ``train`` only."""
    limits = {"train": train_pairs, "valid": valid_pairs, "test": test_pairs}
    data = {split: read_pairs(corpus_dir, split, limit=limits[split]) for split in SPLITS}
    if heldout_pairs:
        data["train"], data["heldout"], data["ownslice"] = hold_out(data["train"], heldout_pairs)
    os.makedirs(text_dir, exist_ok=True)
    prefix = os.path.join(text_dir, "spm")
    if os.path.exists(prefix + ".model"):
        import sentencepiece as spm

        processor = spm.SentencePieceProcessor(model_file=prefix + ".model")
    else:
        texts = [side for pair in data["train"] for side in pair]
        processor = train_sentencepiece(texts, prefix, vocab_size, spm_sample)
    for split, pairs in data.items():
        for index, lang in enumerate(("en", "de")):
            lines = [pair[index] for pair in pairs]
            with open(os.path.join(text_dir, f"{split}.{lang}"), "w", encoding="utf-8") as out:
                for pieces in processor.encode(lines, out_type=str):
                    out.write(" ".join(pieces) + "\n")
            with open(os.path.join(text_dir, f"{split}.raw.{lang}"), "w", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
    return prefix + ".model"


MULTIREF_SPLITS = ("mrdev", "mrtest")


def read_multiref(path):
    """(source, [references]) of each line of a ``en<TAB>de1<TAB>de2...`` file."""
    entries = []
    for number, line in enumerate(read_lines(path, "multi-reference file"), 1):
        source, *references = line.split("\t")
        references = [r for r in references if r.strip()]
        if not source.strip() or not references:
            raise QEUserError(f"{path} line {number}: need a source and a reference")
        entries.append((source, references))
    return entries


def _write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as out:
        out.write("".join(line + "\n" for line in lines))


def prepare_multiref(tsv, out_dir, spm_model, min_source_words=4):
    """Encode a multi-reference TSV for the QE evaluations of ``examples/l10n_cpu``.

    Lines are split by parity: ``mrdev`` (even: for tuning), ``mrtest`` (odd: reported once).
    Per split, in ``out_dir``:
    - ``{split}.{en,de}`` (encoded; ``.de`` is the first reference), ``{split}.raw.en`` and
      ``{split}.refs.tsv`` (raw references, tab-separated): the sources of at least
      ``min_source_words`` words, for Pearson against multi-reference chrF;
    - ``{split}-refs.{en,de}`` (encoded), ``{split}-refs.raw.de`` and ``{split}-refs.group``
      (the source's index in the split): every source with every one of its references,
      to force-decode for the ambiguity report.
    """
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=spm_model)
    entries = read_multiref(tsv)
    os.makedirs(out_dir, exist_ok=True)

    def encode(lines):
        return [" ".join(pieces) for pieces in processor.encode(lines, out_type=str)]

    counts = {}
    for parity, split in enumerate(MULTIREF_SPLITS):
        half = entries[parity::2]
        long = [(src, refs) for src, refs in half if len(src.split()) >= min_source_words]
        prefix = os.path.join(out_dir, split)
        _write_lines(prefix + ".en", encode([src for src, _ in long]))
        _write_lines(prefix + ".de", encode([refs[0] for _, refs in long]))
        _write_lines(prefix + ".raw.en", [src for src, _ in long])
        _write_lines(prefix + ".refs.tsv", ["\t".join(refs) for _, refs in long])
        pairs = [(index, src, ref) for index, (src, refs) in enumerate(half) for ref in refs]
        _write_lines(prefix + "-refs.en", encode([src for _, src, _ in pairs]))
        _write_lines(prefix + "-refs.de", encode([ref for _, _, ref in pairs]))
        _write_lines(prefix + "-refs.raw.de", [ref for _, _, ref in pairs])
        _write_lines(prefix + "-refs.group", [str(index) for index, _, _ in pairs])
        counts[split] = (len(long), len(half), len(pairs))
    return counts


def chrf_gold(text_dir):
    """Sentence chrF (0..1) of the detokenized hypothesis against the raw reference."""
    from sacrebleu.metrics import CHRF

    references = read_lines(os.path.join(text_dir, "test.raw.de"), "references")
    chrf = CHRF()

    def gold(record):
        return chrf.sentence_score(record["translation"], [references[record["id"]]]).score / 100.0

    return gold
