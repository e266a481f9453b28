"""QE records (tokens; token, word and sentence scores by method) from token scores."""

from ..words import aggregate_words, word_ids
from .base import METHODS


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
    score (each method's :meth:`~.base.QEMethod.sentence`). The final EOS is left out unless
    ``include_eos``. ``own``: the methods' :meth:`~.base.QEMethod.sentence_values`."""
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
        method = METHODS[name]
        log_scores[name], sentence[name] = method.sentence(per_token.get(name), sentence_agg, own)
        for key in method.extra_keys:
            sentence[key] = own[key]
    return {
        "tokens": pieces,
        "token_scores": per_token,
        "word_scores": per_word,
        "sentence_scores": sentence,
        "sentence_log_scores": log_scores,
    }


def records_from_scores(scores, hypotheses, dictionary, methods=None, own=None, **options):
    """QE records of hypotheses from their token scores {method: [N, T]} (row ``i`` for
    hypothesis ``i``) and ``own[i]`` (the methods' sentence values, see
    :func:`hypothesis_qe`); ``methods``: those to report, in order (default: the keys of
    ``scores``); ``options`` go to :func:`hypothesis_qe`."""
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
