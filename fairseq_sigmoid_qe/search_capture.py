"""Token QE read off the beam search itself, so ``--print-qe`` costs almost nothing.

While fairseq's incremental search runs, each decoder step leaves behind the final hidden
state ``h`` of every live beam row. A finished hypothesis ``y`` took its token ``y_t`` from
the row whose decoder input was ``<eos> y_<t`` in the same sentence; rows are found by a hash
of (sentence, decoder input). From the ``h`` of the rows a hypothesis used come
``σ(h · W_qe[y])`` and, through the frozen output projection, BoostedProb; so the dominant
rule runs on the used rows only, not on every row of every step. The softmax probability of
``y_t`` is the search's own positional score. When some hypothesis' rows are not found (an
ensemble, a non-incremental generator), :meth:`SearchCapture.token_scores` returns None and
the caller force-decodes instead.
"""
import torch

from .dominant import boosted_prob
from .scoring import shift_right

SENTENCE_KEY = "sigmoid_qe_sentence"
HASH_BASE = 0x9E3779B97F4A7C15 - (1 << 64)  # an odd 64-bit multiplier, as signed int64


_POWERS = torch.ones(1, dtype=torch.long)


def hash_powers(length):
    """``HASH_BASE ** i`` for i < length (int64, wrapping), cached."""
    global _POWERS
    while _POWERS.numel() < length:
        _POWERS = torch.cat([_POWERS, _POWERS * (_POWERS[-1] * HASH_BASE)])
    return _POWERS[:length]


def prefix_hashes(prev_tokens):
    """Rolling hash of every prefix of each row of ``prev_tokens`` [N, T] -> [N, T]
    (entry ``t`` hashes ``prev_tokens[:, : t + 1]``; int64 arithmetic wraps)."""
    powers = hash_powers(prev_tokens.size(1)).to(prev_tokens.device)
    return torch.cumsum((prev_tokens.long() + 1) * powers, dim=1)


def last_prefix_hash(prev_tokens):
    """The hash of each whole row of ``prev_tokens`` [N, T] -> [N]."""
    powers = hash_powers(prev_tokens.size(1)).to(prev_tokens.device)
    return ((prev_tokens.long() + 1) * powers).sum(dim=1)


def row_keys(hashes, sentences):
    """One int64 key per (decoder-input hash, sentence index)."""
    return hashes * 1_000_003 + sentences.long()


class StepRecord:
    """What one decoder step leaves for QE: per live row its key and ``h``."""

    def __init__(self, keys, features):
        self.keys, self.features = keys, features


class SearchCapture:
    """Context manager around one ``task.inference_step`` of a single sigmoid-head model."""

    def __init__(self, model, p_jump=0.3, epsilon=0.005, cut="last", rows_per_chunk=1024):
        self.model, self.rule, self.rows_per_chunk = model, (p_jump, epsilon, cut), rows_per_chunk
        self.encoder_output, self.steps = None, {}
        self._patched = []

    def _patch(self, owner, name, wrapper):
        setattr(owner, name, wrapper(getattr(owner, name)))
        self._patched.append((owner, name))

    def __enter__(self):
        encoder, decoder = self.model.encoder, self.model.decoder
        self._patch(encoder, "forward", self._wrap_encoder_forward)
        self._patch(encoder, "reorder_encoder_out", self._wrap_reorder)
        self._patch(decoder, "extract_features", self._wrap_extract_features)
        return self

    def __exit__(self, *exc):
        for owner, name in reversed(self._patched):
            delattr(owner, name)
        self._patched = []
        return False

    def _wrap_encoder_forward(self, forward):
        def capturing_forward(*args, **kwargs):
            out = forward(*args, **kwargs)
            if self.encoder_output is None and isinstance(out, dict):
                self.encoder_output = out
                rows = out["encoder_out"][0].size(1)
                out[SENTENCE_KEY] = [torch.arange(rows, device=out["encoder_out"][0].device)]
            return out
        return capturing_forward

    @staticmethod
    def _wrap_reorder(reorder):
        def reorder_with_sentences(encoder_out, new_order):
            out = reorder(encoder_out, new_order)
            if SENTENCE_KEY in encoder_out:
                out[SENTENCE_KEY] = [encoder_out[SENTENCE_KEY][0].index_select(0, new_order)]
            return out
        return reorder_with_sentences

    def _wrap_extract_features(self, extract_features):
        def capturing_extract_features(prev_output_tokens, encoder_out=None,
                                       incremental_state=None, **kwargs):
            x, extra = extract_features(prev_output_tokens, encoder_out=encoder_out,
                                        incremental_state=incremental_state, **kwargs)
            if incremental_state is not None and encoder_out and SENTENCE_KEY in encoder_out:
                step = prev_output_tokens.size(1) - 1
                hashes = last_prefix_hash(prev_output_tokens)
                keys = row_keys(hashes, encoder_out[SENTENCE_KEY][0])
                self.steps[step] = StepRecord(keys, x[:, -1, :])
            return x, extra
        return capturing_extract_features

    def token_scores(self, sentences, hypotheses, positional_scores, pad, eos):
        """Per-token scores of hypotheses (1-D token tensors ending in EOS; ``sentences``
        their row in the sample) as {method: [N, T]} with the pad mask, or None if any token's
        search step is not on record."""
        if not self.steps or not hypotheses:
            return None
        tokens = torch.nn.utils.rnn.pad_sequence(hypotheses, batch_first=True, padding_value=pad)
        keys = row_keys(prefix_hashes(shift_right(tokens, eos, pad)), sentences.unsqueeze(1))
        mask = tokens.ne(pad)
        features = None
        softmax = torch.nn.utils.rnn.pad_sequence(
            [s.float().exp() for s in positional_scores], batch_first=True)
        for step in range(tokens.size(1)):
            live = mask[:, step]
            record = self.steps.get(step)
            if record is None:
                return None
            order = torch.argsort(record.keys)
            sorted_keys = record.keys[order]
            where = torch.searchsorted(sorted_keys, keys[live, step]).clamp(max=len(order) - 1)
            if not torch.equal(sorted_keys[where], keys[live, step]):
                return None
            if features is None:
                features = record.features.new_zeros(tokens.shape + record.features.shape[1:])
            features[live, step] = record.features[order[where]]
        logits = self.model.qe_logits(features, tokens.unsqueeze(-1)).squeeze(-1)
        zero = torch.zeros((), dtype=torch.float)
        return {
            "sigmoid": torch.where(mask, torch.sigmoid(logits.float()), zero),
            "softmax": torch.where(mask, softmax, zero),
            "boostedprob": self.boosted_prob(features, tokens, mask),
        }, mask

    def boosted_prob(self, features, tokens, mask):
        """BoostedProb [N, T] of the tokens from their rows' ``h`` (0 at padding), the frozen
        softmax recomputed for the used rows only, a chunk of rows at a time."""
        used_features, used_tokens = features[mask], tokens[mask]
        scores = torch.zeros(tokens.shape, dtype=torch.float, device=tokens.device)
        used = scores.new_zeros(used_tokens.shape)
        for start in range(0, used_tokens.numel(), self.rows_per_chunk):
            chunk = slice(start, start + self.rows_per_chunk)
            logits = self.model.decoder.output_layer(used_features[chunk]).float()
            used[chunk] = boosted_prob(logits, used_tokens[chunk], *self.rule,
                                       log_partition=torch.logsumexp(logits, dim=-1))
        scores[mask] = used
        return scores
