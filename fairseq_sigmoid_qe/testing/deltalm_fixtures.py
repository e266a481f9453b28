"""Tiny DeltaLM models with random weights, and release files in the official layout made
from them: for the tests and for the DeltaLM recipe's ``--smoke`` run, where such a file
stands in for the real release."""

import torch

from ..models.deltalm import build_deltalm, placeholder_dictionary
from ..models.deltalm_checkpoint import official_state_dict

TINY_OPTIONS = dict(
    encoder_layers=1,
    decoder_layers=1,
    encoder_embed_dim=32,
    decoder_embed_dim=32,
    encoder_ffn_embed_dim=64,
    decoder_ffn_embed_dim=64,
    encoder_attention_heads=2,
    decoder_attention_heads=2,
    max_source_positions=512,
    max_target_positions=512,
)


def randomize_(model, seed=0, scale=0.2):
    """Give every weight a random value (layer-norm gains around 1), for layout tests."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * scale
            param.copy_(noise + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return model


def write_random_official_checkpoint(path, num_rows, seed=0, arch="deltalm_base", **options):
    """Write ``{"weights": ...}`` with the official layout and random values: ``num_rows``
    embedding rows (the release has 250,104), dims from ``options`` (TINY_OPTIONS by default)."""
    model = build_deltalm(placeholder_dictionary(num_rows), arch, **(options or TINY_OPTIONS))
    weights = official_state_dict(randomize_(model, seed))
    torch.save({"weights": weights}, path)
    return weights
