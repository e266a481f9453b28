"""Token and sentence QE of given translations from a sigmoid-head model.

Each output token ``y`` with final decoder hidden state ``h`` is scored three ways:
- sigmoid head: ``σ(h · W_qe[y])``;
- softmax probability ``p(y)``;
- BoostedProb: the dominant set's summed mass if ``y`` is dominant, else ``p(y)``.
Here by force-decoding the hypotheses through the frozen model (:func:`score_tokens`), and
token scores become word and sentence QE records (:func:`records_from_scores`). Callers go
through :func:`search_capture.hypothesis_records`, which reads the same scores off fairseq's
own decoding when it can.
"""
import math
from dataclasses import dataclass

import torch

from .dominant import boost, dominant_summary, is_dominant
from .words import aggregate_words, word_ids

METHODS = ("sigmoid", "softmax", "boostedprob")
SENTENCE_AGGREGATIONS = ("prod", "mean_log", "min")


@dataclass
class TokenScores:
    """Per-token scores [B, T] by method (the keys of ``METHODS``), the mask of real
    (non-pad) tokens, and whether each token is the frozen softmax's argmax and in its
    dominant set (where the scores come from force-decoding)."""

    scores: dict
    mask: torch.Tensor
    argmax: torch.Tensor = None
    dominant: torch.Tensor = None

    def method(self, name):
        return self.scores[name]


def shift_right(tokens, eos, pad):
    """Decoder input for teacher forcing: ``<eos> y_1 ... y_{T-1}`` (fairseq's convention)."""
    prev = tokens.new_full(tokens.shape, pad)
    prev[:, 0] = eos
    prev[:, 1:] = tokens[:, :-1]
    prev[:, 1:].masked_fill_(tokens[:, :-1].eq(pad), pad)
    return prev


@torch.no_grad()
def score_tokens(model, src_tokens, src_lengths, hyp_tokens, pad, eos, p_jump=0.3,
                 epsilon=0.005, cut="last", encoder_out=None):
    """Scores of each hypothesis token (right-padded ``hyp_tokens`` ending in EOS)."""
    prev = shift_right(hyp_tokens, eos, pad)
    features, logits = model.frozen_forward(src_tokens, src_lengths, prev, encoder_out=encoder_out)
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    mask = hyp_tokens.ne(pad)
    sigmoid = torch.sigmoid(model.qe_logits(features, hyp_tokens.unsqueeze(-1)).squeeze(-1).float())
    softmax = log_probs.gather(-1, hyp_tokens.unsqueeze(-1)).squeeze(-1).exp()
    summary = dominant_summary(log_probs, p_jump=p_jump, epsilon=epsilon, cut=cut)
    boosted = boost(softmax, hyp_tokens, *summary)
    zero = torch.zeros((), dtype=sigmoid.dtype, device=sigmoid.device)
    found = {"sigmoid": sigmoid, "softmax": softmax, "boostedprob": boosted.float()}
    return TokenScores({m: torch.where(mask, found[m], zero) for m in METHODS}, mask,
                       argmax=log_probs.argmax(dim=-1).eq(hyp_tokens) & mask,
                       dominant=is_dominant(hyp_tokens, *summary[:2]) & mask)


def log_product(token_scores):
    """``log Π s_t = Σ log s_t`` of a hypothesis' token scores (-inf if one is 0, nan if
    there is none): the paper's sentence score on a scale that never underflows."""
    if not token_scores:
        return float("nan")
    return math.fsum(math.log(s) if s > 0 else -math.inf for s in token_scores)


def sentence_score(token_scores, aggregation="prod", log_prod=None):
    """Sentence QE from a hypothesis' token scores (floats): product (the paper; from
    :func:`log_product`, 0.0 only below e^-745, or from ``log_prod`` when the caller has it),
    mean log, or min."""
    if aggregation not in SENTENCE_AGGREGATIONS:
        raise ValueError(f"unknown sentence aggregation {aggregation!r}: prod, mean_log or min")
    if not token_scores:
        return float("nan")
    if aggregation == "prod":
        return math.exp(log_product(token_scores) if log_prod is None else log_prod)
    if aggregation == "mean_log":
        return sum(math.log(max(s, 1e-300)) for s in token_scores) / len(token_scores)
    return min(token_scores)


def hypothesis_qe(token_scores, tokens, dictionary, include_eos=False, sentence_agg="prod",
                  word_agg="min", word_level=True):
    """One hypothesis' QE from its token scores by method (lists of floats aligned with
    ``tokens``, a list of ids): subword pieces, per-token, per-word (or None) and sentence
    scores, and the log of the token scores' product (whatever ``sentence_agg``). The final
    EOS is left out unless ``include_eos``."""
    length = len(tokens)
    if not include_eos and tokens and tokens[-1] == dictionary.eos():
        length -= 1
    pieces = [dictionary[t] for t in tokens[:length]]
    per_token = {m: v[:length] for m, v in token_scores.items()}
    per_word = None
    if word_level:
        ids = word_ids(pieces)
        per_word = {m: aggregate_words(v, ids, word_agg) for m, v in per_token.items()}
    log_scores = {m: log_product(v) for m, v in per_token.items()}
    return {"tokens": pieces, "token_scores": per_token, "word_scores": per_word,
            "sentence_scores": {m: sentence_score(v, sentence_agg, log_scores[m])
                                for m, v in per_token.items()},
            "sentence_log_scores": log_scores}


def qe_records(model, src_tokens, src_lengths, hypotheses, dictionary, encoder_out=None,
               **options):
    """QE of a batch of hypotheses (1-D token tensors, row ``i`` translating source row ``i``,
    whose encoder output may be given) in one force-decoded pass; ``options`` go to
    :func:`hypothesis_qe`."""
    padded = torch.nn.utils.rnn.pad_sequence(hypotheses, batch_first=True,
                                             padding_value=dictionary.pad())
    scores = score_tokens(model, src_tokens, src_lengths, padded, dictionary.pad(),
                          dictionary.eos(), encoder_out=encoder_out)
    return records_from_scores(scores.scores, hypotheses, dictionary, **options)


def records_from_scores(scores, hypotheses, dictionary, **options):
    """QE records of hypotheses from their token scores {method: [N, T]} (row ``i`` for
    hypothesis ``i``); ``options`` go to :func:`hypothesis_qe`."""
    lists = {m: scores[m].cpu().tolist() for m in METHODS}
    records = []
    for row, tokens in enumerate(hypotheses):
        ids = tokens.tolist()
        records.append(hypothesis_qe({m: lists[m][row][: len(ids)] for m in METHODS}, ids,
                                     dictionary, **options))
    return records
