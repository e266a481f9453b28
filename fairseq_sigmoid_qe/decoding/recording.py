"""Token QE read off fairseq's own decoding, so QE costs almost nothing.

A QE run's generators record what the search computes, through fairseq's and PyTorch's
extension points (no fairseq method is replaced):
- beam search or sampling: :class:`RecordingSequenceGenerator`, fairseq's ``SequenceGenerator``
  (the task passes it as ``seq_gen_cls``) over a :class:`RecordingEnsembleModel`. At every
  decoder step, for every live beam row, it keeps the final hidden state ``h`` (a forward hook
  on the decoder's output projection) and, with ``dominant_at="step"``, the dominant summary
  of the row's softmax distribution. A finished hypothesis ``y`` took its token ``y_t`` from
  the row whose decoder input was ``<eos> y_<t`` in the same sentence; rows are found by a hash
  of (sentence, decoder input). From the ``h`` of the rows a hypothesis used come
  the statistics the QE methods need (the sigmoid head's logit, the dominant-set membership
  and mass, the entropy: from the step's summary, or from the frozen output projection
  re-applied to the used rows only), and the methods' own objects make the token scores;
- ``--score-reference``: :class:`RecordingSequenceScorer`, fairseq's ``SequenceScorer`` whose one
  forward pass leaves ``h`` and the logits of every position.

The softmax probability of ``y_t`` is fairseq's own positional score. When some token's
position is not on record, :func:`hypothesis_records` says why once on stderr and
force-decodes instead.
"""

import torch
from fairseq.sequence_generator import EnsembleModel, SequenceGenerator
from fairseq.sequence_scorer import SequenceScorer

from ..core.dominant import DEFAULT_RULE, dominant_summary, is_dominant, row_log_partition
from ..core.errors import warn_once
from ..core.qe_methods import (
    DEFAULT_METHODS,
    counted_mask,
    method_sentence_values,
    method_token_scores,
    monte_carlo_methods,
    needs_of,
    one_pass_methods,
    pass_statistics,
    records_from_scores,
    shift_right,
    token_entropy,
)
from ..core.qe_methods.base import DOMINANT, ENTROPY, HEAD_LOGIT, TOKEN_LOG_PROB
from ..core.qe_options import DOMINANT_AT, QEOptions
from .monte_carlo import monte_carlo_statistics

SENTENCE_KEY = "sigmoid_qe_sentence"
HASH_BASE = 0x9E3779B97F4A7C15 - (1 << 64)  # an odd 64-bit multiplier, as signed int64
ELEMENTS_PER_CHUNK = 1 << 24  # logits recomputed at a time for BoostedProb (64 MiB of float)
STEP_SUMMARY_MIN_DIM = 512  # from this decoder width on, dominant sets are taken at every step


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


def dominant_each_step(width, dominant_at="auto"):
    """Whether beam search summarises every row's dominant set at every step (a pass over V
    per row) rather than re-applying the output projection to the used rows afterwards
    (``V·d`` multiply-adds per row, 1/beam of the rows). ``auto``: per step from a decoder
    width of ``STEP_SUMMARY_MIN_DIM`` (on CPU at beam 5, ``used_rows`` cost less QE work for
    d = 128 and d = 256; per step cost less for large ``V·d``)."""
    if dominant_at not in DOMINANT_AT:
        raise ValueError(f"dominant_at must be one of {DOMINANT_AT}, got {dominant_at!r}")
    return dominant_at == "step" or (dominant_at == "auto" and width >= STEP_SUMMARY_MIN_DIM)


def output_projection(model):
    """The decoder's softmax output projection module, or None."""
    projection = getattr(getattr(model, "decoder", None), "output_projection", None)
    return projection if isinstance(projection, torch.nn.Module) else None


class ProjectionTap:
    """While active, a PyTorch forward hook on the model's output projection keeps the
    features ``h`` it was applied to and the logits it returned, one pair per call."""

    def __init__(self, model):
        self.projection, self.calls, self._handle = output_projection(model), [], None

    def __enter__(self):
        if self.projection is not None:
            self._handle = self.projection.register_forward_hook(self._hook)
        return self

    def _hook(self, module, inputs, output):
        self.calls.append((inputs[0], output))

    def __exit__(self, *exc):
        if self._handle is not None:
            self._handle.remove()
        return False

    def single_call(self):
        """(features, logits) of the one projection call, or None if there was not one."""
        return self.calls[0] if len(self.calls) == 1 else None


class StepRecord:
    """What one decoder position leaves for QE, per row: its key, ``h`` and, if taken, its
    dominant summary (ids, mask, mass) and the entropy of its distribution."""

    def __init__(self, keys, features, dominant=None, entropy=None):
        self.keys, self.features, self.dominant, self.entropy = keys, features, dominant, entropy


class SearchRecord:
    """What one batch's search (or scorer pass) computed, for QE of its hypotheses by
    ``methods`` (only what they need is kept)."""

    def __init__(
        self,
        model,
        each_step=True,
        temperature=1.0,
        rule=DEFAULT_RULE,
        rows_per_chunk=None,
        methods=DEFAULT_METHODS,
    ):
        self.model, self.each_step, self.temperature = model, each_step, temperature
        self.rule, self.rows_per_chunk = rule, rows_per_chunk
        self.methods = one_pass_methods(methods)
        self.needs = needs_of(self.methods)
        self.boosted, self.entropy = DOMINANT in self.needs, ENTROPY in self.needs
        self.encoder_output, self.steps, self.unreadable = None, {}, None

    def add_step(self, prev_tokens, sentences, projected, log_probs):
        """One incremental search step: decoder inputs [N, t+1], each row's sentence, the
        projection's (features, logits) and the step's log-probabilities [N, V]."""
        if projected is None or sentences is None:
            self.unreadable = "a decoder step did not go through one output projection call"
            return
        step = prev_tokens.size(1) - 1
        keys = row_keys(last_prefix_hash(prev_tokens), sentences)
        dominant = (
            dominant_summary(log_probs, *self.rule) if self.each_step and self.boosted else None
        )
        entropy = token_entropy(log_probs) if self.each_step and self.entropy else None
        self.steps[step] = StepRecord(keys, projected[0][:, -1, :], dominant, entropy)

    def add_forced(self, prev_tokens, projected):
        """One force-decoding pass over every position: decoder inputs [N, T] (row ``i`` is
        sentence ``i``) and the projection's (features, logits)."""
        if projected is None:
            self.unreadable = "the scorer's pass did not go through one output projection call"
            return
        features, logits = projected
        sentences = torch.arange(prev_tokens.size(0), device=prev_tokens.device)
        keys = row_keys(prefix_hashes(prev_tokens), sentences.unsqueeze(1))
        logits = logits.float()
        log_partition = row_log_partition(logits.reshape(-1, logits.size(-1)))[1].view(
            logits.shape[:-1]
        )
        dominant = (
            dominant_summary(logits, *self.rule, log_partition=log_partition)
            if self.boosted
            else None
        )
        entropy = token_entropy(logits - log_partition.unsqueeze(-1)) if self.entropy else None
        self.steps = {
            t: StepRecord(
                keys[:, t],
                features[:, t, :],
                None if dominant is None else tuple(d[:, t] for d in dominant),
                None if entropy is None else entropy[:, t],
            )
            for t in range(features.size(1))
        }

    @torch.no_grad()
    def statistics(self, sentences, hypotheses, positional_scores, pad, eos):
        """The one-pass statistics the record's methods need, of hypotheses (1-D token
        tensors ending in EOS; ``sentences`` their row in the sample), or None if any token's
        position is not on record."""
        if self.unreadable or not self.steps or not hypotheses:
            return None
        tokens = torch.nn.utils.rnn.pad_sequence(hypotheses, batch_first=True, padding_value=pad)
        keys = row_keys(prefix_hashes(shift_right(tokens, eos, pad)), sentences.unsqueeze(1))
        mask = tokens.ne(pad)
        log_probs = torch.nn.utils.rnn.pad_sequence(
            [s.float() for s in positional_scores], batch_first=True
        )
        member, mass = torch.zeros_like(mask), torch.zeros_like(log_probs)
        entropy = torch.zeros_like(log_probs)
        recompute = torch.zeros_like(mask)
        features = None
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
            rows = order[where]
            if features is None:
                features = record.features.new_zeros(tokens.shape + record.features.shape[1:])
            features[live, step] = record.features[rows]
            if self.boosted and record.dominant is not None:
                ids, in_set, set_mass = (part[rows] for part in record.dominant)
                member[live, step] = is_dominant(tokens[live, step], ids, in_set)
                mass[live, step] = set_mass.float()
            if self.entropy and record.entropy is not None:
                entropy[live, step] = record.entropy[rows]
            if (self.boosted and record.dominant is None) or (
                self.entropy and record.entropy is None
            ):
                recompute[live, step] = True
        if recompute.any():
            member[recompute], mass[recompute], entropy[recompute] = self.from_features(
                features[recompute], tokens[recompute]
            )
        stats = {"tokens": tokens, "mask": mask, TOKEN_LOG_PROB: log_probs}
        if self.boosted:
            stats[DOMINANT] = (member, mass)
        if self.entropy:
            stats[ENTROPY] = entropy
        if HEAD_LOGIT in self.needs:
            stats[HEAD_LOGIT] = self.model.qe_logits(features, tokens.unsqueeze(-1)).squeeze(-1)
        return stats

    def token_scores(self, sentences, hypotheses, positional_scores, pad, eos):
        """Per-token scores of hypotheses (as :meth:`statistics`) as {method: [N, T]} (the
        record's one-pass methods) with the pad mask, or None if any token's position is not
        on record."""
        stats = self.statistics(sentences, hypotheses, positional_scores, pad, eos)
        if stats is None:
            return None
        return method_token_scores(self.methods, stats), stats["mask"]

    def from_features(self, features, tokens):
        """Dominant-set membership and mass, and entropy, of tokens [M] from their rows' ``h``
        [M, d] (each only if wanted; else zeros): the frozen logits (at the search's
        temperature) recomputed a chunk of rows at a time."""
        vocab = self.model.decoder.output_projection.out_features
        chunk = self.rows_per_chunk or max(1, ELEMENTS_PER_CHUNK // vocab)
        member = torch.zeros(tokens.shape, dtype=torch.bool, device=tokens.device)
        mass = torch.zeros(tokens.shape, dtype=torch.float, device=tokens.device)
        entropy = torch.zeros_like(mass)
        for start in range(0, tokens.numel(), chunk):
            part = slice(start, start + chunk)
            logits = self.model.decoder.output_layer(features[part]).float()
            if self.temperature != 1:
                logits = logits / self.temperature
            log_partition = row_log_partition(logits)[1]
            if self.boosted:
                ids, in_set, set_mass = dominant_summary(
                    logits, *self.rule, log_partition=log_partition
                )
                member[part] = is_dominant(tokens[part], ids, in_set)
                mass[part] = set_mass
            if self.entropy:
                entropy[part] = token_entropy(logits - log_partition.unsqueeze(-1))
        return member, mass, entropy


class RecordingEnsembleModel(EnsembleModel):
    """fairseq's ``EnsembleModel`` of one model that records each search in ``record``: the
    encoder output, each row's sentence (carried in the encoder output through every
    reordering) and, per decoder step, what :meth:`SearchRecord.add_step` keeps."""

    def __init__(self, models, options=None, rows_per_chunk=None):
        super().__init__(models)
        if self.models_size != 1:
            raise ValueError("a recording ensemble holds exactly one model")
        self.options = options or QEOptions()
        projection = output_projection(self.single_model)
        width = getattr(projection, "in_features", STEP_SUMMARY_MIN_DIM)
        self.each_step = dominant_each_step(width, self.options.dominant_at)
        self.rows_per_chunk, self.record = rows_per_chunk, None

    def forward_encoder(self, net_input):
        encoder_outs = super().forward_encoder(net_input)
        self.record = SearchRecord(
            self.single_model,
            self.each_step,
            rule=self.options.dominant,
            rows_per_chunk=self.rows_per_chunk,
            methods=self.options.methods,
        )
        out = encoder_outs[0] if encoder_outs else None
        if isinstance(out, dict) and out.get("encoder_out"):
            self.record.encoder_output = out
            rows = out["encoder_out"][0].size(1)
            out[SENTENCE_KEY] = [torch.arange(rows, device=out["encoder_out"][0].device)]
        return encoder_outs

    def reorder_encoder_out(self, encoder_outs, new_order):
        reordered = super().reorder_encoder_out(encoder_outs, new_order)
        if encoder_outs and SENTENCE_KEY in encoder_outs[0]:
            sentences = encoder_outs[0][SENTENCE_KEY][0]
            reordered[0][SENTENCE_KEY] = [sentences.index_select(0, new_order)]
        return reordered

    def forward_decoder(self, tokens, encoder_outs, incremental_states, temperature=1.0):
        with ProjectionTap(self.single_model) as tap:
            log_probs, attn = super().forward_decoder(
                tokens, encoder_outs, incremental_states, temperature
            )
        if self.record is not None:
            self.record.temperature = temperature
            sentences = encoder_outs[0].get(SENTENCE_KEY) if encoder_outs else None
            self.record.add_step(
                tokens, sentences[0] if sentences else None, tap.single_call(), log_probs
            )
        return log_probs, attn


class RecordingSequenceGenerator(SequenceGenerator):
    """fairseq's beam search (or sampling) over one model, recording each search for QE
    (``search_record``) for the QE of ``qe_options`` (a :class:`..core.qe_options.QEOptions`;
    its ``dominant_at``: see :func:`dominant_each_step`); ``qe_rows_per_chunk``: rows whose
    logits are recomputed at a time (tests)."""

    def __init__(self, models, tgt_dict, qe_options=None, qe_rows_per_chunk=None, **kwargs):
        super().__init__(
            RecordingEnsembleModel(models, qe_options, qe_rows_per_chunk), tgt_dict, **kwargs
        )

    @property
    def search_record(self):
        return self.model.record


class RecordingSequenceScorer(SequenceScorer):
    """fairseq's ``--score-reference`` scorer, recording its one forward pass of a single
    model for QE (``search_record``)."""

    search_record = None

    def __init__(self, tgt_dict, qe_options=None, **kwargs):
        super().__init__(tgt_dict, **kwargs)
        self.qe_options = qe_options or QEOptions()

    def generate(self, models, sample, **kwargs):
        if len(models) != 1:
            self.search_record = None
            return super().generate(models, sample, **kwargs)
        with ProjectionTap(models[0]) as tap:
            hypos = super().generate(models, sample, **kwargs)
        self.search_record = SearchRecord(
            models[0], rule=self.qe_options.dominant, methods=self.qe_options.methods
        )
        self.search_record.add_forced(sample["net_input"]["prev_output_tokens"], tap.single_call())
        return hypos


@torch.no_grad()
def hypothesis_statistics(
    model,
    sample,
    rows,
    tokens,
    dictionary,
    record=None,
    positional_scores=None,
    options=None,
):
    """The one-pass statistics of the methods of ``options`` (a
    :class:`..core.qe_options.QEOptions`) for hypotheses (1-D token tensors;
    ``tokens[i]`` translates row ``rows[i]`` of ``sample``): read off ``record`` (a
    :class:`SearchRecord`) when it holds every position, else force-decoded in one pass that
    reuses the recorded encoder output."""
    options = options or QEOptions()
    net_input = sample["net_input"]
    index = torch.as_tensor(rows, device=net_input["src_tokens"].device)
    if record is not None:
        searched = record.statistics(
            index, tokens, positional_scores, dictionary.pad(), dictionary.eos()
        )
        if searched is not None:
            return searched
        warn_once(
            "QE could not be read off the search ("
            + (record.unreadable or "a hypothesis position was not recorded")
            + "); such hypotheses are force-decoded once more"
        )
    encoder_out = record.encoder_output if record is not None else None
    if encoder_out is not None:
        encoder_out = model.encoder.reorder_encoder_out(encoder_out, index)
    padded = torch.nn.utils.rnn.pad_sequence(
        tokens, batch_first=True, padding_value=dictionary.pad()
    )
    return pass_statistics(
        model,
        net_input["src_tokens"][index],
        net_input["src_lengths"][index],
        padded,
        dictionary.pad(),
        dictionary.eos(),
        needs_of(one_pass_methods(options.methods)),
        options.dominant,
        encoder_out,
    )[0]


@torch.no_grad()
def hypothesis_records(
    model,
    sample,
    rows,
    tokens,
    dictionary,
    record=None,
    positional_scores=None,
    options=None,
    temperature=1.0,
    sampler=None,
):
    """QE records of hypotheses (as :func:`hypothesis_statistics`) by the methods of
    ``options`` (a :class:`..core.qe_options.QEOptions`), in their order: the one-pass
    statistics read off ``record`` (else force-decoded), the Monte-Carlo ones from
    ``options.mc_samples`` seeded passes (:mod:`.monte_carlo`; ``temperature``: the search's,
    ``sampler``: the translation sampler of ``mc_translation_samples``); every method's
    scores from its own object."""
    options = options or QEOptions()
    methods = options.methods
    stats = hypothesis_statistics(
        model, sample, rows, tokens, dictionary, record, positional_scores, options
    )
    if monte_carlo_methods(methods):
        stats.update(
            monte_carlo_statistics(
                model,
                sample,
                rows,
                stats["tokens"],
                dictionary,
                needs_of(monte_carlo_methods(methods)),
                options.mc_samples,
                options.seed,
                temperature,
                sampler,
            )
        )
    stats["counted"] = counted_mask(
        stats["tokens"], dictionary.pad(), dictionary.eos(), options.include_eos
    )
    scores = method_token_scores(methods, stats)
    own = method_sentence_values(methods, stats)
    return records_from_scores(
        scores, tokens, dictionary, methods=methods, own=own, **options.record_options()
    )
