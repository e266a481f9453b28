"""The QE methods, and token and sentence QE of given translations from a sigmoid-head model.

:data:`METHODS` is the one registry of QE methods (``--qe-methods`` picks some, in order). Each
output token ``y`` with final decoder hidden state ``h`` is scored by the methods read off one
pass of the frozen model:
- sigmoid head: ``σ(h · W_qe[y])``;
- softmax probability ``p(y)``;
- BoostedProb: the dominant set's summed mass if ``y`` is dominant, else ``p(y)``;
- entropy: ``exp(-H_t)``, ``H_t`` the entropy of the frozen softmax distribution at the position.
The Monte-Carlo methods (``mc_dropout``, ``mc_seq_entropy``) need more passes: :mod:`.monte_carlo`.
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

SENTENCE_AGGREGATIONS = ("prod", "mean_log", "min")


@dataclass(frozen=True)
class QEMethod:
    """A QE method: its name (the ``Q-`` column, the JSONL key), how its sentence score is
    made (``tokens``: from its token scores by ``--qe-sentence-agg``; ``mean_log``: ``exp`` of
    the mean log token score, whatever ``--qe-sentence-agg``; ``own``: by the method itself),
    whether it needs Monte-Carlo passes (``--qe-mc-samples``; :mod:`.monte_carlo`), and the
    further ``sentence_scores`` keys it writes. docs/inference.md's methods table says what
    each costs."""

    name: str
    sentence: str = "tokens"
    monte_carlo: bool = False
    extra_keys: tuple = ()


METHODS = {
    method.name: method
    for method in (
        QEMethod("sigmoid"),
        QEMethod("softmax"),
        QEMethod("boostedprob"),
        QEMethod("entropy", sentence="mean_log"),
        QEMethod("mc_dropout", sentence="own", monte_carlo=True, extra_keys=("mc_dropout_var",)),
        QEMethod("mc_seq_entropy", sentence="own", monte_carlo=True),  # no token scores
    )
}
DEFAULT_METHODS = ("sigmoid", "softmax", "boostedprob")


def parse_methods(text):
    """The methods of a ``--qe-methods`` comma list, in its order (``ValueError`` with the
    reason for an unknown, repeated or missing name)."""
    names = tuple(name.strip() for name in str(text).split(","))
    for name in names:
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}" if name else "an empty method name")
        if names.count(name) > 1:
            raise ValueError(f"{name} is given twice")
    return names


def token_entropy(log_probs):
    """``H = -Σ_v p_v log p_v`` (nats) of each row of log-probabilities [..., V] (finite, as
    from finite logits: no ``0 · log 0`` term)."""
    log_probs = log_probs.float()
    return -(log_probs.exp() * log_probs).sum(dim=-1)


@dataclass
class TokenScores:
    """Per-token scores [B, T] by method (keys of ``METHODS``), the mask of real
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
def score_tokens(
    model,
    src_tokens,
    src_lengths,
    hyp_tokens,
    pad,
    eos,
    p_jump=0.3,
    epsilon=0.005,
    cut="last",
    encoder_out=None,
    methods=DEFAULT_METHODS,
):
    """Scores of each hypothesis token (right-padded ``hyp_tokens`` ending in EOS) by the
    token-level ``methods`` that one pass gives."""
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
    if "entropy" in methods:
        found["entropy"] = torch.exp(-token_entropy(log_probs))
    return TokenScores(
        {m: torch.where(mask, found[m], zero) for m in methods if m in found},
        mask,
        argmax=log_probs.argmax(dim=-1).eq(hyp_tokens) & mask,
        dominant=is_dominant(hyp_tokens, *summary[:2]) & mask,
    )


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


def hypothesis_qe(
    token_scores,
    tokens,
    dictionary,
    include_eos=False,
    sentence_agg="prod",
    word_agg="min",
    word_level=True,
    methods=None,
    own=None,
):
    """One hypothesis' QE from its token scores by method (lists of floats aligned with
    ``tokens``, a list of ids): subword pieces, per-token, per-word (or None) and sentence
    scores of ``methods`` (default: those with token scores), and the log of each sentence
    score (for ``tokens`` methods the log of the token scores' product, whatever
    ``sentence_agg``). The final EOS is left out unless ``include_eos``. ``own``: the log
    sentence score of each ``own`` method and its ``extra_keys`` values."""
    methods = tuple(token_scores) if methods is None else methods
    own = own or {}
    length = len(tokens)
    if not include_eos and tokens and tokens[-1] == dictionary.eos():
        length -= 1
    pieces = [dictionary[t] for t in tokens[:length]]
    per_token = {m: token_scores[m][:length] for m in methods if m in token_scores}
    per_word = None
    if word_level:
        ids = word_ids(pieces)
        per_word = {m: aggregate_words(v, ids, word_agg) for m, v in per_token.items()}
    sentence, log_scores = {}, {}
    for name in methods:
        rule = METHODS[name].sentence
        if rule == "tokens":
            log_scores[name] = log_product(per_token[name])
            sentence[name] = sentence_score(per_token[name], sentence_agg, log_scores[name])
        else:
            log_scores[name] = mean_log(per_token[name]) if rule == "mean_log" else own[name]
            sentence[name] = math.exp(log_scores[name])
        for key in METHODS[name].extra_keys:
            sentence[key] = own[key]
    return {
        "tokens": pieces,
        "token_scores": per_token,
        "word_scores": per_word,
        "sentence_scores": sentence,
        "sentence_log_scores": log_scores,
    }


def mean_log(token_scores):
    """Mean ``log s_t`` (nan without tokens; -inf if a score is 0)."""
    if not token_scores:
        return float("nan")
    return log_product(token_scores) / len(token_scores)


def records_from_scores(scores, hypotheses, dictionary, methods=None, own=None, **options):
    """QE records of hypotheses from their token scores {method: [N, T]} (row ``i`` for
    hypothesis ``i``) and, for ``own`` methods, ``own[i]`` (see :func:`hypothesis_qe`);
    ``methods``: those to report, in order (default: the keys of ``scores``); ``options`` go
    to :func:`hypothesis_qe`."""
    lists = {m: v.cpu().tolist() for m, v in scores.items()}
    records = []
    for row, tokens in enumerate(hypotheses):
        ids = tokens.tolist()
        records.append(
            hypothesis_qe(
                {m: v[row][: len(ids)] for m, v in lists.items()},
                ids,
                dictionary,
                methods=methods,
                own=own[row] if own else None,
                **options,
            )
        )
    return records
