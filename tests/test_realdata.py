"""Multi-reference preparation: parity split, length filter, encoded and raw files aligned."""

import pytest

from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.demo.l10n_data import prepare_multiref, read_multiref, train_sentencepiece

pytestmark = pytest.mark.unit

ENTRIES = [
    ("Move the file down", ["Datei nach unten verschieben", "Die Datei runter schieben"]),
    ("yes", ["Ja", "ja", "Jawohl"]),
    ("Open the file now please", ["Datei jetzt öffnen", "Öffne die Datei jetzt bitte"]),
    ("Cancel", ["Abbrechen", "Verwerfen"]),
    ("Save all open documents now", ["Alle offenen Dokumente speichern", "Speichere alles"]),
]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def test_multiref_split_and_files(tmp_path):
    tsv = tmp_path / "dev.tsv"
    tsv.write_text(
        "".join(src + "\t" + "\t".join(refs) + "\n" for src, refs in ENTRIES), encoding="utf-8"
    )
    texts = [s for src, refs in ENTRIES for s in [src, *refs]] * 20
    train_sentencepiece(texts, str(tmp_path / "spm"), vocab_size=60)
    out = tmp_path / "out"
    counts = prepare_multiref(str(tsv), str(out), str(tmp_path / "spm.model"), min_source_words=4)
    # even lines (0, 2, 4) -> mrdev; odd lines (1, 3) -> mrtest
    assert counts == {"mrdev": (3, 3, 6), "mrtest": (0, 2, 5)}
    assert read(out / "mrdev.raw.en") == [ENTRIES[0][0], ENTRIES[2][0], ENTRIES[4][0]]
    assert read(out / "mrdev.refs.tsv") == ["\t".join(ENTRIES[i][1]) for i in (0, 2, 4)]
    encoded = read(out / "mrdev.en")
    assert len(encoded) == 3 and all("\u2581" in line for line in encoded)
    assert len(read(out / "mrdev.de")) == 3
    assert read(out / "mrtest-refs.raw.de") == ["Ja", "ja", "Jawohl", "Abbrechen", "Verwerfen"]
    assert read(out / "mrtest-refs.group") == ["0", "0", "0", "1", "1"]
    sources = read(out / "mrtest-refs.en")
    assert sources[0] == sources[2] != sources[3]
    assert len(read(out / "mrtest-refs.de")) == 5


def test_multiref_bad_lines(tmp_path):
    tsv = tmp_path / "bad.tsv"
    tsv.write_text("only a source\n", encoding="utf-8")
    with pytest.raises(QEUserError, match="line 1: need a source and a reference"):
        read_multiref(str(tsv))
    with pytest.raises(QEUserError, match="cannot read multi-reference file"):
        read_multiref(str(tmp_path / "missing.tsv"))


def test_hold_out_is_disjoint_same_sized_and_seeded():
    from fairseq_sigmoid_qe.demo.l10n_data import hold_out

    pairs = [(f"s{i}", f"t{i}") for i in range(100)]
    kept, heldout, own = hold_out(pairs, 20)
    assert len(heldout) == len(own) == 20 and len(kept) == 80
    assert not set(heldout) & set(kept) and set(own) <= set(kept)
    assert sorted(kept + heldout) == sorted(pairs)
    assert kept == [pair for pair in pairs if pair not in set(heldout)]  # corpus order kept
    assert hold_out(pairs, 20) == (kept, heldout, own)
    assert hold_out(pairs, 20, seed=2)[1] != heldout
    with pytest.raises(QEUserError, match="--heldout-pairs 51"):
        hold_out(pairs, 51)
