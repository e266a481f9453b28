"""Tiny local stand-ins of the paper's downloads, for the recipes' ``--smoke`` runs and tests.

    python examples/common/smoke_downloads.py OUT [--corpus L10N_DIR] [--deltalm DIR]

writes, in the layouts of the real files, from a small en-de corpus (the l10n slice when
there, else synthetic text):

- ``paracrawl.txt.gz``: ``en<TAB>de`` lines, with exact duplicates, an empty side, a line
  without a tab and an overlong pair (the filters must drop them);
- ``wmt22.tar.gz``: ``wmt22-news-systems-1.1/xml/wmttest2022.en-de.all.xml`` as WMT22
  publishes it (documents of source, references A and B, three system outputs), read by
  sacrebleu's own WMT22 reader;
- ``mt-metrics-eval-v2.tgz``: ``mt-metrics-eval-v2/wmt22/{sources,system-outputs,
  human-scores}`` with MQM-like segment scores (``None`` where unrated) that fall with the
  words a system changed;
- ``sources.json``: ``file://`` URLs of these (and of ``--deltalm``'s files), md5 for the
  WMT22 archive as for the real one, none for the rest (recorded on first use, as for the
  real ones), for ``paper_data.py --sources``.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

TRAIN_PAIRS, WMT22_SEGMENTS = 2400, 40
SYSTEMS = ("SysCopy", "SysDrop", "SysReverse")
WMT22_XML = "wmt22-news-systems-1.1/xml/wmttest2022.en-de.all.xml"


def corpus_pairs(corpus_dir, split, limit):
    """(en, de) pairs of the l10n corpus when there, else of the synthetic corpus."""
    if corpus_dir and os.path.isfile(os.path.join(corpus_dir, f"{split}.en")):
        from fairseq_sigmoid_qe.demo.l10n_data import read_pairs

        return read_pairs(corpus_dir, split, limit=limit)
    import tempfile

    from fairseq_sigmoid_qe.demo.synthetic import SyntheticConfig, write_corpus

    config = SyntheticConfig(train_size=TRAIN_PAIRS, valid_size=10, test_size=WMT22_SEGMENTS)
    with tempfile.TemporaryDirectory() as scratch:
        paths = write_corpus(scratch, config)
        with open(paths[f"{split}.src"], encoding="utf-8") as src:
            with open(paths[f"{split}.tgt"], encoding="utf-8") as tgt:
                return [(s.strip(), t.strip()) for s, t in zip(src, tgt)][:limit]


def system_output(system, reference, index):
    """A stand-in MT output and its number of changed words."""
    words = reference.split()
    if system == "SysCopy":
        return reference, 0
    if system == "SysDrop":
        kept = [w for i, w in enumerate(words) if (i + index) % 3]
        return " ".join(kept or words), len(words) - len(kept)
    return " ".join(reversed(words)), len(words) - (len(words) % 2)


def mqm_like(changed, index):
    """A stand-in segment score (higher = better, <= 0 like negated MQM); None: unrated."""
    return None if index % 7 == 3 else -float(changed) - 0.1 * (index % 2)


def write_paracrawl(path, pairs):
    lines = [f"{en}\t{de}" for en, de in pairs]
    lines += lines[:50]  # exact duplicates
    lines += [f"{pairs[0][0]}\t ", "no tab on this line", " ".join(["lang"] * 300) + "\tzu lang"]
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(line + "\n" for line in lines)


def tar_add(archive, name, text):
    data = text.encode("utf-8")
    member = tarfile.TarInfo(name)
    member.size = len(data)
    archive.addfile(member, io.BytesIO(data))


def wmt22_xml(pairs):
    def segs(texts):
        return "".join(f'<seg id="{i + 1}">{escape(t)}</seg>' for i, t in enumerate(texts))

    docs = []
    half = len(pairs) // 2
    for doc, chunk in enumerate((pairs[:half], pairs[half:])):
        sources, references = [p[0] for p in chunk], [p[1] for p in chunk]
        second = [" ".join(r.split()[1:] + r.split()[:1]) for r in references]
        offset = doc * half
        hyps = "".join(
            f'<hyp system="{system}" language="de"><p>'
            + segs([system_output(system, r, offset + i)[0] for i, r in enumerate(references)])
            + "</p></hyp>"
            for system in SYSTEMS
        )
        docs.append(
            f'<doc id="smoke-{doc}" origlang="en"><src lang="en"><p>{segs(sources)}</p></src>'
            f'<ref lang="de" translator="A"><p>{segs(references)}</p></ref>'
            f'<ref lang="de" translator="B"><p>{segs(second)}</p></ref>{hyps}</doc>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<dataset id="wmttest2022">'
        f'<collection id="general">{"".join(docs)}</collection></dataset>\n'
    )


def write_mt_metrics_eval(path, pairs):
    root = "mt-metrics-eval-v2/wmt22"
    sources, references = [p[0] for p in pairs], [p[1] for p in pairs]
    score_lines = []
    with tarfile.open(path, "w:gz") as archive:
        tar_add(archive, f"{root}/sources/en-de.txt", "".join(s + "\n" for s in sources))
        tar_add(archive, f"{root}/references/en-de.refA.txt", "".join(r + "\n" for r in references))
        tar_add(
            archive,
            f"{root}/system-outputs/en-de/refA.txt",
            "".join(r + "\n" for r in references),
        )
        for system in SYSTEMS:
            outputs = [system_output(system, r, i) for i, r in enumerate(references)]
            tar_add(
                archive,
                f"{root}/system-outputs/en-de/{system}.txt",
                "".join(text + "\n" for text, _ in outputs),
            )
            for i, (_, changed) in enumerate(outputs):
                score_lines.append(f"{system}\t{mqm_like(changed, i)}")
        score_lines += [f"refA\t{mqm_like(0, i)}" for i in range(len(references))]
        tar_add(archive, f"{root}/human-scores/en-de.mqm.seg.score", "\n".join(score_lines) + "\n")
        tar_add(archive, f"{root}/metric-scores/en-de/chrF-refA.seg.score", "unused\n")


def md5_of(path):
    with open(path, "rb") as stream:
        return hashlib.md5(stream.read()).hexdigest()


def build(out_dir, corpus_dir=None, deltalm_dir=None):
    """Write the stand-ins and ``sources.json`` into ``out_dir``; returns the sources."""
    os.makedirs(out_dir, exist_ok=True)
    train = corpus_pairs(corpus_dir, "train", TRAIN_PAIRS)
    test = corpus_pairs(corpus_dir, "test", WMT22_SEGMENTS)
    paths = {
        "paracrawl": os.path.join(out_dir, "paracrawl.txt.gz"),
        "wmt22": os.path.join(out_dir, "wmt22.tar.gz"),
        "mt_metrics_eval": os.path.join(out_dir, "mt-metrics-eval-v2.tgz"),
    }
    write_paracrawl(paths["paracrawl"], train)
    with tarfile.open(paths["wmt22"], "w:gz") as archive:
        tar_add(archive, "wmt22-news-systems-1.1/README.md", "stand-in\n")
        tar_add(archive, WMT22_XML, wmt22_xml(test))
    write_mt_metrics_eval(paths["mt_metrics_eval"], test)
    sources = {name: {"url": "file://" + os.path.abspath(path)} for name, path in paths.items()}
    sources["wmt22"]["md5"] = md5_of(paths["wmt22"])
    for name, file in (
        ("deltalm_base", "deltalm-base.pt"),
        ("deltalm_dict", "dict.txt"),
        ("deltalm_spm", "spm.model"),
    ):
        if deltalm_dir:
            sources[name] = {"url": "file://" + os.path.abspath(os.path.join(deltalm_dir, file))}
    from paper_data import SOURCES

    for name, entry in sources.items():
        entry["file"] = SOURCES[name]["file"]
    with open(os.path.join(out_dir, "sources.json"), "w", encoding="utf-8") as out:
        json.dump(sources, out, indent=2)
    return sources


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--corpus", help="an en-de corpus folder ({train,test}.{en,de})")
    parser.add_argument("--deltalm", help="stand-in DeltaLM release files to serve")
    args = parser.parse_args(argv)
    sys.path.insert(0, HERE)
    build(args.out, args.corpus, args.deltalm)
    print(f"stand-in downloads in {args.out} (sources.json)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.exit(main())
