"""Raw text <-> the model's pieces through fairseq's encoder registry (decoding/text_codec.py):
encoded as fairseq-interactive encodes, decoded as its D- lines, and each piece's word of the
detokenized text (the words that word scores belong to)."""

import pytest

pytestmark = pytest.mark.unit

pytest.importorskip("fairseq")


def codec(tokenizer=None, bpe=None, **options):
    from fairseq_sigmoid_qe.decoding.text_codec import FairseqText, fairseq_text_options

    return FairseqText(fairseq_text_options(tokenizer, bpe, **options))


def test_characters_bpe_pieces_map_to_the_words_of_the_text():
    text = codec(bpe="characters")
    pieces = text.encode("ab cd").split()
    assert text.decode(pieces) == "ab cd"
    assert text.word_ids(pieces, "ab cd") == [0, 0, 1, 1, 1]  # the space piece opens word 1
    assert text.word_ids([*pieces, "</s>"], "ab cd")[-1] == 1  # EOS: the last word


def test_moses_words_map_to_the_detokenized_words():
    pytest.importorskip("sacremoses")
    # fairseq's moses: tokenized by the source language's rules, detokenized by the target's
    text = codec(tokenizer="moses", source_lang="en", target_lang="en")
    pieces = text.encode("Open the file, A & B's.").split()
    assert pieces[-1] == "." and "&amp;" in pieces  # Moses splits and escapes
    translation = text.decode(pieces)
    assert translation == "Open the file, A & B's."
    # "file," and "B's." are one word each of the text the user reads
    assert text.word_ids(pieces, translation) == [0, 1, 2, 2, 3, 4, 5, 5, 5]
    assert text.word_ids(pieces, "something else") is None  # not these words: no mapping


def test_target_text_is_tokenized_as_the_target_language():
    pytest.importorskip("sacremoses")
    text = codec(tokenizer="moses", source_lang="en", target_lang="fr")
    # French Moses rules split the elided article; English ones would not
    assert text.encode("l'homme", "target") != text.encode("l'homme", "source")


def test_gpt2_bytes_round_trip_and_have_no_word_mapping(tmp_path):
    """GPT-2's byte-level BPE from encoder files made here (every byte a token, one merge):
    text in, the same text out; its pieces are ids, not words, so no word mapping (the
    records' word_scores are then null)."""
    import json

    pytest.importorskip("regex")
    from fairseq.data.encoders.gpt2_bpe_utils import bytes_to_unicode

    symbols = bytes_to_unicode()
    encoder = {symbols[b]: b for b in range(256)}
    encoder["ab"] = 256
    (tmp_path / "encoder.json").write_text(json.dumps(encoder), encoding="utf-8")
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\na b\n", encoding="utf-8")
    text = codec(
        bpe="gpt2",
        gpt2_encoder_json=str(tmp_path / "encoder.json"),
        gpt2_vocab_bpe=str(tmp_path / "vocab.bpe"),
    )
    pieces = text.encode("ab cd").split()
    assert pieces[0] == "256" and all(p.isdigit() for p in pieces)
    assert text.decode(pieces) == "ab cd"
    assert text.word_ids(pieces, "ab cd") is None


def test_a_released_model_folder_gives_the_bpe_codes(tmp_path):
    """--bpe subword_nmt|fastbpe without --bpe-codes: the folder's bpecodes, as Fairseq
    releases its models; none there is one error line naming the option."""
    from argparse import Namespace

    from fairseq_sigmoid_qe.cli.raw_text import text_choice
    from fairseq_sigmoid_qe.core.errors import QEUserError

    args = Namespace(
        tokenizer="moses",
        bpe="subword_nmt",
        spm_model=None,
        data_dir=str(tmp_path),
        text_option_names=["bpe_codes", "source_lang"],
        bpe_codes="???",
        source_lang=None,
    )
    with pytest.raises(QEUserError, match="--bpe subword_nmt needs --bpe-codes"):
        text_choice(args)
    (tmp_path / "bpecodes").write_text("#version: 0.2\n", encoding="utf-8")
    chosen = text_choice(args)
    assert chosen["text_options"] == {"bpe_codes": str(tmp_path / "bpecodes")}  # no None
    assert (chosen["tokenizer"], chosen["bpe"]) == ("moses", "subword_nmt")
