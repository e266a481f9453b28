"""A stand-in for unbabel-comet's ``comet-score``, for smoke runs and tests: the same command
line and the same output (stdout lines and the ``--to_json`` file, as comet 2.2.7 writes
them), but the scores are a character-trigram F-score against the reference (with ``-r``) or
a source/translation length ratio (without), NOT a COMET model. Standard library only.

``COMET_STANDIN_LOG=FILE`` appends each call's arguments to FILE (one JSON line), so tests
can check the command line the recipes use.
"""

import argparse
import json
import os
import sys
from collections import Counter


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="comet-score")
    parser.add_argument("-s", "--sources")
    parser.add_argument("-t", "--translations", nargs="+", required=True)
    parser.add_argument("-r", "--references")
    parser.add_argument("-d", "--sacrebleu_dataset")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--only_system", action="store_true")
    parser.add_argument("--to_json", default="")
    parser.add_argument("--model", default="Unbabel/wmt22-comet-da")
    parser.add_argument("--model_storage_path")
    parser.add_argument("--num_workers", type=int)
    parser.add_argument("--disable_cache", action="store_true")
    parser.add_argument("--disable_length_batching", action="store_true")
    parser.add_argument("--enable-context", action="store_true")
    parser.add_argument("--print_cache_info", action="store_true")
    args = parser.parse_args(argv)
    if args.sacrebleu_dataset:
        parser.error("the stand-in reads files only; -d needs the real comet-score")
    if not args.sources:
        parser.error("-s/--sources is required unless -d is given")
    wants_references = not any(k in args.model.lower() for k in ("kiwi", "xcomet"))
    if wants_references and not args.references:
        parser.error(f"{args.model} requires -r/--references or -d/--sacrebleu_dataset.")
    return args


def read(path):
    with open(path, encoding="utf-8") as stream:
        return [line.strip() for line in stream]


def trigrams(text):
    text = " ".join(text.split())
    return Counter(text[i : i + 3] for i in range(max(len(text) - 2, 0)))


def trigram_f(hypothesis, reference):
    """Character-trigram F1 of a translation against its reference, in [0, 1]."""
    hyp, ref = trigrams(hypothesis), trigrams(reference)
    common = sum((hyp & ref).values())
    if not common:
        return 0.0
    precision, recall = common / sum(hyp.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def length_ratio(source, translation):
    """Reference-free stand-in: the shorter of source and translation over the longer."""
    a, b = len(source.split()), len(translation.split())
    return min(a, b) / max(a, b) if max(a, b) else 0.0


def segments(args, translations):
    sources = read(args.sources)
    references = read(args.references) if args.references else None
    if len(translations) != len(sources) or (references and len(references) != len(sources)):
        raise SystemExit("comet-score: sources, translations and references differ in length")
    out = []
    for i, (source, mt) in enumerate(zip(sources, translations)):
        entry = {"src": source, "mt": mt}
        if references is not None:
            entry["ref"] = references[i]
            entry["COMET"] = trigram_f(mt, references[i])
        else:
            entry["COMET"] = length_ratio(source, mt)
        if "xcomet" in args.model.lower() and entry["COMET"] < 0.6 and mt.split():
            word = mt.split()[0]
            entry["errors"] = [
                {"text": word, "confidence": 0.5, "severity": "minor", "start": 0, "end": len(word)}
            ]
        out.append(entry)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if os.environ.get("COMET_STANDIN_LOG"):
        with open(os.environ["COMET_STANDIN_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps({"argv": argv}) + "\n")
    args = parse_args(argv)
    data = {path: segments(args, read(path)) for path in args.translations}
    if not args.only_system:
        for i in range(len(next(iter(data.values())))):
            for path, entries in data.items():
                print(f"{path}\tSegment {i}\tscore: {entries[i]['COMET']:.4f}")
    for path, entries in data.items():
        print(f"{path}\tscore: {sum(e['COMET'] for e in entries) / len(entries):.4f}")
    if args.to_json:
        with open(args.to_json, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, indent=4)
        print(f"Predictions saved in: {args.to_json}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
