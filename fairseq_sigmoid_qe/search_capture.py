"""Token QE read off fairseq's own decoding, so ``--print-qe`` costs almost nothing.

Beam search (incremental): each decoder step leaves, for every live beam row, the final
hidden state ``h`` and either the dominant summary of its softmax distribution or the
log-partition of its logits (see :class:`SearchCapture`). A finished hypothesis ``y`` took its
token ``y_t`` from the row whose decoder input was ``<eos> y_<t`` in the same sentence; rows
are found by a hash of (sentence, decoder input). From the ``h`` of the rows a hypothesis used
come ``σ(h · W_qe[y])`` and BoostedProb (from the step's summary, or from the frozen output
projection re-applied to the used rows only).

Force-decoding (``--score-reference``): the scorer's one forward pass leaves ``h`` and the
log-probabilities of every position; the dominant sets are taken from those directly.

The softmax probability of ``y_t`` is fairseq's own positional score. When some token's
position is not on record (an ensemble, another generator), :meth:`SearchCapture.token_scores`
returns None and the caller force-decodes instead.
"""
import torch

from .dominant import boost, dominant_summary
from .scoring import qe_records, records_from_scores, shift_right

SENTENCE_KEY = "sigmoid_qe_sentence"
HASH_BASE = 0x9E3779B97F4A7C15 - (1 << 64)  # an odd 64-bit multiplier, as signed int64
ELEMENTS_PER_CHUNK = 1 << 24  # logits recomputed at a time for BoostedProb (64 MiB of float)
STEP_SUMMARY_MIN_DIM = 512  # from this decoder width on, dominant sets are taken at every step
DOMINANT_AT = ("auto", "step", "used_rows")


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


def log_partition_of(logits, log_probs):
    """Each row's ``logsumexp`` of ``logits`` [N, V], read off their normalisation
    ``log_probs`` at one token (``z_0 - log p_0``); computed where that is not finite."""
    values = logits[:, 0].float() - log_probs[:, 0].float()
    broken = ~torch.isfinite(values)
    if broken.any():
        values[broken] = torch.logsumexp(logits[broken].float(), dim=-1)
    return values


class StepRecord:
    """What one decoder position leaves for QE, per row: its key, ``h``, and either its
    dominant summary (ids, mask, mass) or the log-partition of its logits."""

    def __init__(self, keys, features):
        self.keys, self.features = keys, features
        self.log_partition = self.dominant = None


class SearchCapture:
    """Context manager around one ``task.inference_step`` of a single sigmoid-head model
    (``temperature``: the generator's, which divides the logits the search normalises).

    BoostedProb needs the dominant set of each row a hypothesis used. ``dominant_at="step"``
    summarises every beam row at every step (a pass over V per row); ``"used_rows"`` keeps
    each row's log-partition and later re-applies the output projection to the used rows only
    (``V·d`` multiply-adds per row, 1/beam of the rows). ``"auto"``: per step from a decoder
    width of ``STEP_SUMMARY_MIN_DIM`` (on CPU at beam 5, ``used_rows`` cost less QE work for
    d = 128 and d = 256; per step cost less for large ``V·d``)."""

    def __init__(self, model, p_jump=0.3, epsilon=0.005, cut="last", temperature=1.0,
                 rows_per_chunk=None, dominant_at="auto"):
        if dominant_at not in DOMINANT_AT:
            raise ValueError(f"dominant_at must be one of {DOMINANT_AT}, got {dominant_at!r}")
        self.model, self.rule, self.temperature = model, (p_jump, epsilon, cut), temperature
        self.rows_per_chunk = rows_per_chunk
        projection = getattr(model.decoder, "output_projection", None)
        width = getattr(projection, "in_features", STEP_SUMMARY_MIN_DIM)
        self.dominant_each_step = dominant_at == "step" or (
            dominant_at == "auto" and width >= STEP_SUMMARY_MIN_DIM)
        self.encoder_output, self.steps, self.pending = None, {}, None
        self._patched = []

    def _patch(self, owner, name, wrapper):
        setattr(owner, name, wrapper(getattr(owner, name)))
        self._patched.append((owner, name))

    def __enter__(self):
        encoder, decoder = self.model.encoder, self.model.decoder
        self._patch(encoder, "forward", self._wrap_encoder_forward)
        self._patch(encoder, "reorder_encoder_out", self._wrap_reorder)
        self._patch(decoder, "extract_features", self._wrap_extract_features)
        self._patch(self.model, "get_normalized_probs", self._wrap_normalized_probs)
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
            self.pending = None
            if encoder_out and SENTENCE_KEY in encoder_out:
                sentences = encoder_out[SENTENCE_KEY][0]
                if incremental_state is not None:  # one search step: its last position
                    step = prev_output_tokens.size(1) - 1
                    keys = row_keys(last_prefix_hash(prev_output_tokens), sentences)
                    self.steps[step] = StepRecord(keys, x[:, -1, :])
                    self.pending = ("step", [self.steps[step]])
                elif not self.steps:  # force-decoding: every position at once
                    keys = row_keys(prefix_hashes(prev_output_tokens), sentences.unsqueeze(1))
                    records = [StepRecord(keys[:, t], x[:, t, :]) for t in range(x.size(1))]
                    self.steps = dict(enumerate(records))
                    self.pending = ("forced", records)
            return x, extra
        return capturing_extract_features

    def _wrap_normalized_probs(self, get_normalized_probs):
        def capturing_normalized_probs(net_output, log_probs, sample=None):
            probs = get_normalized_probs(net_output, log_probs, sample)
            pending, self.pending = self.pending, None
            if pending is None or not log_probs:
                return probs
            kind, records = pending
            if tuple(probs.shape[:2]) != (records[0].keys.size(0), len(records)):
                return probs  # not the call we recorded (e.g. a split softmax batch)
            if kind == "step" and self.dominant_each_step:
                records[0].dominant = dominant_summary(probs[:, -1, :], *self.rule)
            elif kind == "step":
                records[0].log_partition = log_partition_of(net_output[0][:, -1, :],
                                                            probs[:, -1, :])
            else:
                ids, mask, mass = dominant_summary(probs, *self.rule)
                for t, record in enumerate(records):
                    record.dominant = (ids[:, t], mask[:, t], mass[:, t])
            return probs
        return capturing_normalized_probs

    @torch.no_grad()
    def token_scores(self, sentences, hypotheses, positional_scores, pad, eos):
        """Per-token scores of hypotheses (1-D token tensors ending in EOS; ``sentences``
        their row in the sample) as {method: [N, T]} with the pad mask, or None if any token's
        position is not on record."""
        if not self.steps or not hypotheses:
            return None
        tokens = torch.nn.utils.rnn.pad_sequence(hypotheses, batch_first=True, padding_value=pad)
        keys = row_keys(prefix_hashes(shift_right(tokens, eos, pad)), sentences.unsqueeze(1))
        mask = tokens.ne(pad)
        softmax = torch.nn.utils.rnn.pad_sequence(
            [s.float().exp() for s in positional_scores], batch_first=True)
        boosted = softmax.clone()
        log_partition = torch.zeros_like(softmax)
        recompute = torch.zeros_like(mask)
        features = None
        for step in range(tokens.size(1)):
            live = mask[:, step]
            record = self.steps.get(step)
            if record is None or (record.dominant is None and record.log_partition is None):
                return None
            order = torch.argsort(record.keys)
            sorted_keys = record.keys[order]
            where = torch.searchsorted(sorted_keys, keys[live, step]).clamp(max=len(order) - 1)
            if not torch.equal(sorted_keys[where], keys[live, step]):
                return None
            rows = order[where]
            if features is None:
                features = record.features.new_zeros(tokens.shape + record.features.shape[1:])
            features[live, step] = record.features[rows]
            if record.dominant is not None:
                boosted[live, step] = boost(softmax[live, step], tokens[live, step],
                                            *(part[rows] for part in record.dominant))
            else:
                log_partition[live, step] = record.log_partition[rows]
                recompute[live, step] = True
        if recompute.any():
            boosted[recompute] = self.boosted_from_features(
                features[recompute], tokens[recompute], softmax[recompute],
                log_partition[recompute])
        logits = self.model.qe_logits(features, tokens.unsqueeze(-1)).squeeze(-1)
        zero = torch.zeros((), dtype=torch.float)
        return {
            "sigmoid": torch.where(mask, torch.sigmoid(logits.float()), zero),
            "softmax": torch.where(mask, softmax, zero),
            "boostedprob": torch.where(mask, boosted, zero),
        }, mask

    def boosted_from_features(self, features, tokens, softmax, log_partition):
        """BoostedProb of tokens [M] from their rows' ``h`` [M, d]: the frozen logits
        recomputed a chunk of rows at a time, normalised by the search's log-partition."""
        vocab = self.model.decoder.output_projection.out_features
        chunk = self.rows_per_chunk or max(1, ELEMENTS_PER_CHUNK // vocab)
        scores = torch.empty_like(softmax)
        for start in range(0, tokens.numel(), chunk):
            part = slice(start, start + chunk)
            logits = self.model.decoder.output_layer(features[part]).float()
            if self.temperature != 1:
                logits = logits / self.temperature
            summary = dominant_summary(logits, *self.rule, log_partition=log_partition[part])
            scores[part] = boost(softmax[part], tokens[part], *summary)
        return scores


@torch.no_grad()
def hypothesis_records(model, sample, rows, tokens, dictionary, capture=None,
                       positional_scores=None, **options):
    """QE records of hypotheses (1-D token tensors; ``tokens[i]`` translates row ``rows[i]``
    of ``sample``): read off ``capture`` when it holds every position (and fairseq's
    ``positional_scores`` are given), else force-decoded in one pass that reuses the captured
    encoder output. ``options`` go to :func:`scoring.hypothesis_qe`."""
    net_input = sample["net_input"]
    index = torch.as_tensor(rows, device=net_input["src_tokens"].device)
    if capture is not None and positional_scores is not None:
        searched = capture.token_scores(index, tokens, positional_scores, dictionary.pad(),
                                        dictionary.eos())
        if searched is not None:
            return records_from_scores(searched[0], tokens, dictionary, **options)
    encoder_out = capture.encoder_output if capture is not None else None
    if encoder_out is not None:
        encoder_out = model.encoder.reorder_encoder_out(encoder_out, index)
    return qe_records(model, net_input["src_tokens"][index], net_input["src_lengths"][index],
                      tokens, dictionary, encoder_out=encoder_out, **options)
