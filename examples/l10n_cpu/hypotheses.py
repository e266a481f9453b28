"""A decoding's hypotheses as a parallel split to force-decode: ``OUT/hyp.en`` (the sources)
and ``OUT/hyp.de`` (the H- lines' pieces, in sample-id order).

Usage: python examples/l10n_cpu/hypotheses.py GENERATE.txt SOURCES.en OUT_DIR
"""

import os
import sys


def hypotheses(generate_lines):
    """{sample id: pieces} of the first H- line of each sample."""
    found = {}
    for line in generate_lines:
        if line.startswith("H-"):
            sample_id, _, pieces = line.rstrip("\n").split("\t")
            found.setdefault(int(sample_id[2:]), pieces)
    return found


def main(generate, sources, out):
    with open(generate, encoding="utf-8") as f:
        found = hypotheses(f)
    with open(sources, encoding="utf-8") as f:
        source_lines = f.read().splitlines()
    if sorted(found) != list(range(len(source_lines))):
        raise SystemExit(f"{generate}: {len(found)} hypotheses for {len(source_lines)} sources")
    for name, lines in (
        ("hyp.en", source_lines),
        ("hyp.de", [found[i] for i in range(len(found))]),
    ):
        path = os.path.join(out, name)
        with open(path + ".part", "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(path + ".part", path)


if __name__ == "__main__":
    main(*sys.argv[1:])
