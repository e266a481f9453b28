"""A head checkpoint's untrained twin: ``W_qe`` set back to its initialisation, a copy of the
softmax output projection (the learning curves' 0-update point).

Usage: python examples/l10n_cpu/init_head.py HEAD_CHECKPOINT OUT   (OUT must not exist)
"""

import os
import sys

import torch


def main(source, out):
    if os.path.exists(out):
        raise SystemExit(f"{out} exists; nothing is overwritten")
    state = torch.load(source, map_location="cpu", weights_only=False)
    weights = state["model"]
    weights["qe_head.weight"] = weights["decoder.output_projection.weight"].clone()
    if "qe_head.bias" in weights:
        weights["qe_head.bias"].zero_()
    torch.save(state, out + ".part")
    os.replace(out + ".part", out)


if __name__ == "__main__":
    main(*sys.argv[1:])
