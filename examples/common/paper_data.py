"""The paper's data for the reproduction recipes, fetched when online, read from RAW_DIR when not.

    python examples/common/paper_data.py prepare --out RAW [--raw-dir RAW_DIR] [--pairs N] ...
    python examples/common/paper_data.py deltalm --out DELTALM_DIR
    python examples/common/paper_data.py spm RAW PREFIX --vocab N [--sample N]
    python examples/common/paper_data.py encode SPM_MODEL RAW OUT SPLIT [SPLIT ...]

``prepare`` writes plain text to RAW, three parts (each taken from ``--raw-dir`` when its files
are there, else built from downloads kept in ``--downloads``):

- ``paracrawl``: ``{train,valid,test}.{en,de}``: ParaCrawl release 9 en-de (already filtered by
  the release with Bicleaner AI), exact duplicate pairs removed, pairs of more than
  ``--max-words`` words on a side dropped, then ``--pairs`` training pairs plus the valid and
  test pairs drawn without replacement by a seeded hash of each pair (one pass to choose, one
  to write; nothing holds the corpus in memory);
- ``wmt22``: ``wmt22.{en,de}`` (+ ``wmt22.refB.de``): the WMT22 en-de general test set through
  sacrebleu's own reader (``sacrebleu -t wmt22 -l en-de --echo src ref``), its archive fetched
  into sacrebleu's cache (``$SACREBLEU``, here ``DOWNLOADS/sacrebleu``) by our resumable fetcher;
- ``human`` (Eval Other): ``other_{best,worst}.{en,de,human}``: the WMT22 en-de system outputs
  with the highest and the lowest mean segment-level human score (MQM by default) of
  Google's mt-metrics-eval data, only their rated segments; ``other.json`` names them.

Every download is resumable and checksummed (``fetch.py``); ``--sources FILE.json`` replaces
the URLs and checksums below (the smoke runs use local files so).
"""

import argparse
import gzip
import hashlib
import heapq
import json
import os
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from fetch import fetch  # noqa: E402

from fairseq_sigmoid_qe.core.errors import QEUserError, install_excepthook  # noqa: E402

# URLs as documented by their publishers; md5 where one is published (sacrebleu's for WMT22),
# else sha256 recorded on first download (the lock file) and required afterwards.
SOURCES = {
    "paracrawl": {
        "url": "https://web-language-models.s3.amazonaws.com/paracrawl/release9/en-de/en-de.txt.gz",
        "file": "paracrawl-release9-en-de.txt.gz",
    },
    "wmt22": {
        "url": "https://github.com/wmt-conference/wmt22-news-systems/archive/refs/tags/v1.1.tar.gz",
        "md5": "0840978b9b50b9ac3b2b081e37d620b9",
        "file": "sacrebleu/wmt22/raw/wmt22.v1.1.tar.gz",  # where sacrebleu looks for it
    },
    "mt_metrics_eval": {
        "url": "https://data.statmt.org/wmt26/mt-metrics-eval-v2.tgz",
        "file": "mt-metrics-eval-v2.tgz",
    },
    "deltalm_base": {
        "url": "https://deltalm.blob.core.windows.net/deltalm/deltalm-base.pt",
        "file": "deltalm-base.pt",
    },
    "deltalm_dict": {
        "url": "https://deltalm.blob.core.windows.net/deltalm/dict.txt",
        "file": "dict.txt",
    },
    "deltalm_spm": {
        "url": "https://deltalm.blob.core.windows.net/deltalm/spm.model",
        "file": "spm.model",
    },
}
LANGS = ("en", "de")
PARTS = {
    "paracrawl": [f"{split}.{lang}" for split in ("train", "valid", "test") for lang in LANGS],
    "wmt22": ["wmt22.en", "wmt22.de"],
    "human": [
        f"other_{which}.{ext}" for which in ("best", "worst") for ext in ("en", "de", "human")
    ],
}
OPTIONAL = {"paracrawl": [], "wmt22": ["wmt22.refB.de"], "human": ["other.json"]}
WMT22_XML = "wmt22-news-systems-1.1/xml/wmttest2022.en-de.all.xml"
OFFLINE_HINT = (
    " (offline? put the file into {downloads}, or the part's text files ({files}) into RAW_DIR)"
)


def load_sources(path=None):
    """The built-in SOURCES, with the entries of a JSON file (same layout) replacing them."""
    sources = {name: dict(entry) for name, entry in SOURCES.items()}
    if path:
        try:
            with open(path, encoding="utf-8") as stream:
                sources.update(json.load(stream))
        except (OSError, ValueError) as exc:
            raise QEUserError(f"cannot read --sources {path}: {exc}") from None
    return sources


def fetch_source(sources, name, downloads, part_files=()):
    entry = sources[name]
    hint = OFFLINE_HINT.format(
        downloads=os.path.join(downloads, entry["file"]), files=", ".join(part_files) or "-"
    )
    return fetch(
        entry["url"],
        os.path.join(downloads, entry["file"]),
        md5=entry.get("md5"),
        sha256=entry.get("sha256"),
        lock_path=os.path.join(downloads, "sha256.lock.json"),
        hint=hint,
    )


def write_lines(path, lines):
    """Write ``lines`` to ``path`` through ``path.part`` (never a half-written file)."""
    part = path + ".part"
    with open(part, "w", encoding="utf-8") as out:
        out.writelines(line + "\n" for line in lines)
    os.replace(part, path)


def read_text_lines(path):
    with open(path, encoding="utf-8", newline="\n") as stream:
        return [line.rstrip("\n").rstrip("\r") for line in stream]


# ----------------------------------------------------------------------------- ParaCrawl


def pair_key(en, de, seed):
    """A seeded 64-bit hash of a pair: equal pairs get equal keys (exact deduplication), and
    the smallest keys are a uniform random sample of the distinct pairs."""
    digest = hashlib.blake2b(
        f"{en}\t{de}".encode("utf-8"), digest_size=8, key=seed.to_bytes(8, "little")
    )
    return int.from_bytes(digest.digest(), "big")


def corpus_pairs(path, max_words):
    """(en, de) of each ``en<TAB>de`` line of a (gzipped) corpus with both sides non-empty and
    at most ``max_words`` words each."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="\n") as stream:
        for line in stream:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2:
                continue
            en, de = " ".join(fields[0].split()), " ".join(fields[1].split())
            if en and de and len(en.split()) <= max_words and len(de.split()) <= max_words:
                yield en, de


def smallest_keys(path, count, seed, max_words):
    """The ``count`` smallest distinct pair keys of the corpus, ascending."""
    heap, kept = [], set()  # heap of negated keys: its top is the largest kept key
    for en, de in corpus_pairs(path, max_words):
        key = pair_key(en, de, seed)
        if key in kept:
            continue
        if len(heap) < count:
            heapq.heappush(heap, -key)
            kept.add(key)
        elif key < -heap[0]:
            kept.discard(-heapq.heapreplace(heap, -key))
            kept.add(key)
    return sorted(kept)


def sample_paracrawl(corpus, out_dir, pairs, valid, test, seed=1, max_words=200):
    """Write ``{test,valid,train}.{en,de}`` of ``out_dir``: the pairs with the ``test``
    smallest keys, the next ``valid`` and the next ``pairs`` (corpus order within a split)."""
    keys = smallest_keys(corpus, pairs + valid + test, seed, max_words)
    if len(keys) < valid + test + 1:
        raise QEUserError(
            f"{corpus} has {len(keys)} usable distinct pairs, fewer than valid + test + 1"
        )
    split_of = {key: "test" for key in keys[:test]}
    split_of.update({key: "valid" for key in keys[test : test + valid]})
    split_of.update({key: "train" for key in keys[test + valid :]})
    streams = {
        (split, lang): open(os.path.join(out_dir, f"{split}.{lang}.part"), "w", encoding="utf-8")
        for split in ("train", "valid", "test")
        for lang in LANGS
    }
    counts = dict.fromkeys(("train", "valid", "test"), 0)
    try:
        for en, de in corpus_pairs(corpus, max_words):
            split = split_of.pop(pair_key(en, de, seed), None)  # pop: a duplicate finds none
            if split:
                streams[split, "en"].write(en + "\n")
                streams[split, "de"].write(de + "\n")
                counts[split] += 1
    finally:
        for stream in streams.values():
            stream.close()
    for split, lang in streams:
        name = os.path.join(out_dir, f"{split}.{lang}")
        os.replace(name + ".part", name)
    return counts


# ----------------------------------------------------------------------------- WMT22


def safe_extract(tarball, wanted, dest):
    """Extract the regular members for which ``wanted(name)`` gives a relative path (no
    ``..``) into ``dest``, streaming the archive once; returns {relative path: file}."""
    written = {}
    with tarfile.open(tarball, "r|*") as archive:
        for member in archive:
            relative = wanted(member.name) if member.isfile() else None
            if not relative or os.path.isabs(relative) or ".." in relative.split("/"):
                continue
            target = os.path.join(dest, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.extractfile(member) as source, open(target + ".part", "wb") as out:
                shutil.copyfileobj(source, out)
            os.replace(target + ".part", target)
            written[relative] = target
    return written


def sacrebleu_echo(sacrebleu_dir, fields):
    """The lines of ``sacrebleu -t wmt22 -l en-de --echo FIELDS`` (tab-separated)."""
    result = subprocess.run(
        [sys.executable, "-m", "sacrebleu", "-t", "wmt22", "-l", "en-de", "--echo", *fields],
        capture_output=True,
        text=True,
        env={**os.environ, "SACREBLEU": sacrebleu_dir},
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise QEUserError(f"sacrebleu -t wmt22 -l en-de --echo {' '.join(fields)}: {last}")
    return [line.split("\t") for line in result.stdout.splitlines()]


def prepare_wmt22(sources, downloads, out_dir):
    """``wmt22.en`` (source), ``wmt22.de`` (reference A) and, when the set has it,
    ``wmt22.refB.de``."""
    tarball = fetch_source(sources, "wmt22", downloads, PARTS["wmt22"])
    raw = os.path.dirname(tarball)
    if not os.path.isfile(os.path.join(raw, WMT22_XML)):
        safe_extract(tarball, lambda name: name if name == WMT22_XML else None, raw)
    sacrebleu_dir = os.path.dirname(os.path.dirname(raw))
    rows = sacrebleu_echo(sacrebleu_dir, ["src", "ref"])
    if any(len(row) != 2 for row in rows):
        raise QEUserError("sacrebleu wmt22 en-de: a segment without source or reference")
    try:
        second = [row[0] for row in sacrebleu_echo(sacrebleu_dir, ["ref:B"])]
    except QEUserError:
        second = None
    write_lines(os.path.join(out_dir, "wmt22.en"), [row[0] for row in rows])
    write_lines(os.path.join(out_dir, "wmt22.de"), [row[1] for row in rows])
    if second and len(second) == len(rows):
        write_lines(os.path.join(out_dir, "wmt22.refB.de"), second)
    return len(rows)


# ----------------------------------------------------------------------------- human scores


def read_score_file(path, segments):
    """{system: [score or None per segment]} of an mt-metrics-eval ``*.seg.score`` file
    (``SYSTEM SCORE`` lines, a block of ``segments`` lines per system, ``None``: unrated)."""
    scores = {}
    for number, line in enumerate(read_text_lines(path), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise QEUserError(f"{path} line {number}: expected 'SYSTEM SCORE', got {line!r}")
        system, value = fields
        try:
            scores.setdefault(system, []).append(None if value == "None" else float(value))
        except ValueError:
            raise QEUserError(f"{path} line {number}: {value!r} is not a score") from None
    wrong = [s for s, values in scores.items() if len(values) != segments]
    if wrong:
        raise QEUserError(f"{path}: system {wrong[0]} has not one score per source segment")
    return scores


def choose_systems(scores, outputs):
    """(best, worst) MT systems by mean human score over their rated, non-empty segments
    (human references, ``ref*``, left out); each (name, mean, rated segment indices)."""
    ranked = []
    for system, values in sorted(scores.items()):
        if system.startswith("ref") or system not in outputs:
            continue
        rated = [i for i, v in enumerate(values) if v is not None and outputs[system][i].strip()]
        if rated:
            ranked.append((sum(values[i] for i in rated) / len(rated), system, rated))
    if len(ranked) < 2:
        raise QEUserError("the human scores rate fewer than two MT systems")
    ranked.sort()
    (low, worst, worst_rated), (high, best, best_rated) = ranked[0], ranked[-1]
    return (best, high, best_rated), (worst, low, worst_rated)


def prepare_human(sources, downloads, out_dir, gold="mqm", year="wmt22", pair="en-de"):
    """``other_{best,worst}.{en,de,human}`` and ``other.json`` (see the module docstring)."""
    tarball = fetch_source(sources, "mt_metrics_eval", downloads, PARTS["human"])
    base = os.path.join(downloads, "mt-metrics-eval", year)
    scores_name = f"human-scores/{pair}.{gold}.seg.score"
    if not os.path.isfile(os.path.join(base, scores_name)):

        def wanted(name):
            parts = name.split("/", 2)  # mt-metrics-eval-v2/wmt22/...
            if len(parts) < 3 or parts[1] != year:
                return None
            rest = parts[2]
            keep = rest in (f"sources/{pair}.txt", scores_name) or (
                rest.startswith(f"system-outputs/{pair}/") and rest.endswith(".txt")
            )
            return rest if keep else None

        safe_extract(tarball, wanted, base)
    for needed in (f"sources/{pair}.txt", scores_name):
        if not os.path.isfile(os.path.join(base, needed)):
            raise QEUserError(f"{tarball} has no {year}/{needed}")
    source = read_text_lines(os.path.join(base, f"sources/{pair}.txt"))
    scores = read_score_file(os.path.join(base, scores_name), len(source))
    folder = os.path.join(base, "system-outputs", pair)
    outputs = {
        name[: -len(".txt")]: read_text_lines(os.path.join(folder, name))
        for name in sorted(os.listdir(folder))
        if name.endswith(".txt")
    }
    outputs = {name: lines for name, lines in outputs.items() if len(lines) == len(source)}
    info = {"gold": gold, "year": year, "pair": pair}
    for which, (system, mean, rated) in zip(("best", "worst"), choose_systems(scores, outputs)):
        prefix = os.path.join(out_dir, f"other_{which}")
        write_lines(prefix + ".en", [source[i] for i in rated])
        write_lines(prefix + ".de", [" ".join(outputs[system][i].split()) for i in rated])
        write_lines(prefix + ".human", [repr(scores[system][i]) for i in rated])
        info[which] = {"system": system, "mean_human_score": mean, "segments": len(rated)}
    with open(os.path.join(out_dir, "other.json.part"), "w", encoding="utf-8") as out:
        json.dump(info, out, indent=2)
    os.replace(os.path.join(out_dir, "other.json.part"), os.path.join(out_dir, "other.json"))
    return info


# ----------------------------------------------------------------------------- steps


def take_from(raw_dir, out_dir, part):
    """Copy ``part``'s files from ``raw_dir`` when all are there (True), else False."""
    files = PARTS[part]
    if not raw_dir or not all(os.path.isfile(os.path.join(raw_dir, f)) for f in files):
        return False
    for name in files + OPTIONAL[part]:
        if os.path.isfile(os.path.join(raw_dir, name)):
            shutil.copyfile(os.path.join(raw_dir, name), os.path.join(out_dir, name + ".part"))
            os.replace(os.path.join(out_dir, name + ".part"), os.path.join(out_dir, name))
    print(f"paper_data: {part}: taken from {raw_dir}")
    return True


def prepare(args):
    os.makedirs(args.out, exist_ok=True)
    sources = load_sources(args.sources)
    parts = ["paracrawl", "wmt22"] + (["human"] if args.eval_other else [])
    for part in parts:
        done = os.path.join(args.out, f".{part}.done")
        if os.path.exists(done) or take_from(args.raw_dir, args.out, part):
            open(done, "w").close()
            continue
        if part == "paracrawl":
            corpus = fetch_source(sources, "paracrawl", args.downloads, PARTS["paracrawl"])
            counts = sample_paracrawl(
                corpus,
                args.out,
                args.pairs,
                args.valid_pairs,
                args.test_pairs,
                args.seed,
                args.max_words,
            )
            print(f"paper_data: ParaCrawl pairs written: {counts}")
        elif part == "wmt22":
            count = prepare_wmt22(sources, args.downloads, args.out)
            print(f"paper_data: WMT22 en-de: {count} segments")
        else:
            try:
                info = prepare_human(sources, args.downloads, args.out, args.human_gold)
            except QEUserError as exc:
                raise QEUserError(f"{exc} (EVAL_OTHER=0 skips Eval Other)") from None
            print(f"paper_data: Eval Other ({args.human_gold}): {info}")
        open(done, "w").close()


def fetch_deltalm(args):
    """spm.model, dict.txt and deltalm-base.pt of the official release into ``args.out``."""
    sources = load_sources(args.sources)
    os.makedirs(args.out, exist_ok=True)
    for name in ("deltalm_spm", "deltalm_dict", "deltalm_base"):
        entry = sources[name]
        target = os.path.join(args.out, os.path.basename(entry["file"]))
        if os.path.exists(target):
            continue
        fetch(
            entry["url"],
            target,
            md5=entry.get("md5"),
            sha256=entry.get("sha256"),
            lock_path=os.path.join(args.out, "sha256.lock.json"),
            hint=f" (put the official {os.path.basename(target)} into {args.out} by hand)",
        )


def stream_lines(path):
    with open(path, encoding="utf-8", newline="\n") as stream:
        for line in stream:
            yield line.rstrip("\n").rstrip("\r").strip()


def train_joint_sentencepiece(raw_dir, prefix, vocab_size, sample_size=0):
    """The joint unigram model of both sides of ``raw_dir/train`` (the plugin's settings,
    :func:`~fairseq_sigmoid_qe.demo.l10n_data.train_sentencepiece`), streamed from the files
    and trained on a random ``sample_size`` sentences when > 0."""
    from fairseq_sigmoid_qe.demo.l10n_data import train_sentencepiece

    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    texts = (
        line for lang in LANGS for line in stream_lines(os.path.join(raw_dir, f"train.{lang}"))
    )
    train_sentencepiece(texts, prefix, vocab_size, sample_size)


def encode(spm_model, raw_dir, out_dir, splits, chunk=10_000):
    """Write ``out_dir/{split}.{en,de}`` as space-separated sentencepiece pieces (streamed,
    ``chunk`` lines at a time)."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=spm_model)
    os.makedirs(out_dir, exist_ok=True)
    for split in splits:
        for lang in LANGS:
            target = os.path.join(out_dir, f"{split}.{lang}")
            with open(target + ".part", "w", encoding="utf-8") as out:
                batch = []
                for line in stream_lines(os.path.join(raw_dir, f"{split}.{lang}")):
                    batch.append(line)
                    if len(batch) == chunk:
                        out.writelines(
                            " ".join(p) + "\n" for p in processor.encode(batch, out_type=str)
                        )
                        batch = []
                out.writelines(" ".join(p) + "\n" for p in processor.encode(batch, out_type=str))
            os.replace(target + ".part", target)


def main(argv=None):
    install_excepthook()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="ParaCrawl, WMT22 and Eval Other text")
    prep.add_argument("--out", required=True, help="the recipe's raw text folder")
    prep.add_argument("--raw-dir", help="take a part's files from here when all are present")
    prep.add_argument("--downloads", required=True, help="where downloads are kept")
    prep.add_argument("--sources", help="JSON replacing URLs/checksums (smoke runs)")
    prep.add_argument("--pairs", type=int, default=5_000_000, help="ParaCrawl training pairs")
    prep.add_argument("--valid-pairs", type=int, default=2000)
    prep.add_argument("--test-pairs", type=int, default=2000, help="the ParaCrawl test set")
    prep.add_argument("--max-words", type=int, default=200, help="longest side kept (words)")
    prep.add_argument("--seed", type=int, default=1)
    prep.add_argument("--human-gold", default="mqm", help="mt-metrics-eval gold (mqm, ...)")
    prep.add_argument(
        "--no-eval-other", dest="eval_other", action="store_false", help="skip human scores"
    )
    delta = commands.add_parser("deltalm", help="the official DeltaLM-base release files")
    delta.add_argument("--out", required=True)
    delta.add_argument("--sources")
    joint = commands.add_parser("spm", help="a joint sentencepiece model of RAW/train.{en,de}")
    joint.add_argument("raw_dir")
    joint.add_argument("prefix", help="writes PREFIX.model and PREFIX.vocab")
    joint.add_argument("--vocab", type=int, required=True)
    joint.add_argument("--sample", type=int, default=0, help="sentences to train on (0: all)")
    enc = commands.add_parser("encode", help="sentencepiece-encode {split}.{en,de}")
    enc.add_argument("spm_model")
    enc.add_argument("raw_dir")
    enc.add_argument("out_dir")
    enc.add_argument("splits", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args)
    elif args.command == "deltalm":
        fetch_deltalm(args)
    elif args.command == "spm":
        train_joint_sentencepiece(args.raw_dir, args.prefix, args.vocab, args.sample)
    else:
        encode(args.spm_model, args.raw_dir, args.out_dir, args.splits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
