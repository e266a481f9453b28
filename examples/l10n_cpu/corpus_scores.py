"""Corpus sacreBLEU and chrF of fairseq-generate's hypotheses (H- lines, sentencepiece pieces).

Usage: python examples/l10n_cpu/corpus_scores.py GENERATE_OUTPUT RAW_REFERENCES
"""

import sys

import sacrebleu

from fairseq_sigmoid_qe.core.words import detokenize


def hypotheses(path):
    found = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("H-"):
                sample_id, _, pieces = line.rstrip("\n").split("\t")
                found[int(sample_id[2:])] = detokenize(pieces.split())
    return [found[i] for i in range(len(found))]


def main(generate, references):
    hyps = hypotheses(generate)
    with open(references, encoding="utf-8") as f:
        refs = f.read().splitlines()[: len(hyps)]
    print(sacrebleu.corpus_bleu(hyps, [refs]))
    print(sacrebleu.corpus_chrf(hyps, [refs]))


if __name__ == "__main__":
    main(*sys.argv[1:])
