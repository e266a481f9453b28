"""The QE method interface and its registry (fairseq's ``@register_*`` idiom).

A method declares the **statistics** it needs from the pass (names below), computes its token
scores [N, T] from them, makes each hypothesis' sentence score, and states its direction and
range. Two producers fill the statistics, so every method computes the same numbers on both:
the search record (:class:`..decoding.recording.SearchRecord`, read off fairseq's decoding)
and force-decoding (:func:`.forced.pass_statistics`); the Monte-Carlo statistics come from
:mod:`..decoding.monte_carlo`. Adding a method: one module in this package with a
``@register_method`` class (docs/architecture.md, "Add a method").
"""

import math

from .sentence import log_product, sentence_score

# What a pass can give, per hypothesis token ([N, T], aligned with the right-padded tokens):
TOKEN_LOG_PROB = "token_log_prob"  # log p(y_t) under the frozen softmax (at the search's T)
HEAD_LOGIT = "head_logit"  # h_t · W_qe[y_t]: the sigmoid head's logit of the token
DOMINANT = "dominant"  # (whether y_t is in its position's dominant set, the set's mass)
ENTROPY = "entropy"  # H_t = -Σ_v p_v log p_v (nats) of the frozen distribution
# ... and the Monte-Carlo passes (:mod:`..decoding.monte_carlo`):
MC_DROPOUT_PASSES = "mc_dropout_passes"  # [S, N, T] log p_s(y_t), dropout on, S seeded passes
MC_TRANSLATION_SAMPLES = "mc_translation_samples"  # per hypothesis: sampled translations'
# token log-probabilities (lists of 1-D tensors) of its source
ONE_PASS_STATISTICS = (TOKEN_LOG_PROB, HEAD_LOGIT, DOMINANT, ENTROPY)
MONTE_CARLO_STATISTICS = (MC_DROPOUT_PASSES, MC_TRANSLATION_SAMPLES)
# Always there: "tokens" [N, T], "mask" [N, T] (real tokens) and, when sentence scores are
# made, "counted" [N, T] (the tokens sentence QE counts: the final EOS only with
# --qe-include-eos).

METHODS = {}


def register_method(cls):
    """Class decorator: one instance of ``cls`` in :data:`METHODS` under ``cls.name``
    (``--qe-methods`` then takes the name)."""
    if not cls.name or cls.name in METHODS:
        raise ValueError(f"a QE method needs a new name, got {cls.name!r}")
    unknown = set(cls.needs) - set(ONE_PASS_STATISTICS + MONTE_CARLO_STATISTICS)
    if unknown:
        raise ValueError(f"QE method {cls.name}: unknown statistics {sorted(unknown)}")
    METHODS[cls.name] = cls()
    return cls


class QEMethod:
    """One QE method. Subclasses set ``name`` (the ``Q-`` column and the record's key),
    ``needs`` (statistics), ``higher_is_better``, ``score_range`` (of the token and sentence
    scores), ``token_level`` (False: no token scores), ``extra_keys`` (further
    ``sentence_scores`` keys) and implement :meth:`token_scores` (and, for a sentence score
    not made from the token scores, :meth:`sentence_values` and :meth:`sentence`)."""

    name = None
    needs = ()
    higher_is_better = True
    score_range = (0.0, 1.0)
    token_level = True
    extra_keys = ()

    @property
    def monte_carlo(self):
        """Whether the method needs Monte-Carlo passes (``--qe-mc-samples``)."""
        return any(need in MONTE_CARLO_STATISTICS for need in self.needs)

    def token_scores(self, stats):
        """Token scores [N, T] from the statistics (pad positions are zeroed by the caller)."""
        raise NotImplementedError

    def sentence_values(self, stats):
        """Per hypothesis, the {key: value} :meth:`sentence` needs besides the token scores
        (this method's log sentence score and its ``extra_keys``), or None."""
        return None

    def sentence(self, token_scores, aggregation, own):
        """(log sentence score, sentence score) of one hypothesis from its counted token
        scores (floats) by ``--qe-sentence-agg`` ``aggregation``; ``own``: its
        :meth:`sentence_values`. Default: the product (the paper), whose log is the log of the
        product whatever the aggregation."""
        log_score = log_product(token_scores)
        return log_score, sentence_score(token_scores, aggregation, log_score)


class OwnSentenceScore(QEMethod):
    """A method whose log sentence score is one of its :meth:`sentence_values` (whatever
    ``--qe-sentence-agg``); the sentence score is its ``exp``."""

    def sentence(self, token_scores, aggregation, own):
        return own[self.name], math.exp(own[self.name])


def needs_of(methods):
    """The statistics that the methods (names) need, in a fixed order."""
    wanted = {need for name in methods for need in METHODS[name].needs}
    return tuple(n for n in ONE_PASS_STATISTICS + MONTE_CARLO_STATISTICS if n in wanted)


def one_pass_methods(methods):
    """The methods (names) that one pass of the frozen model gives (read off the search, else
    force-decoded)."""
    return tuple(m for m in methods if not METHODS[m].monte_carlo)


def monte_carlo_methods(methods):
    return tuple(m for m in methods if METHODS[m].monte_carlo)


def method_token_scores(methods, stats):
    """{method: [N, T]} of the token-level ``methods`` (names), zero at pad: the one place
    token scores are computed, for the search record and force-decoding alike."""
    mask = stats["mask"]
    scores = {}
    for name in methods:
        method = METHODS[name]
        if method.token_level:
            values = method.token_scores(stats).float()
            scores[name] = values.masked_fill(~mask, 0.0)
    return scores


def method_sentence_values(methods, stats):
    """Per hypothesis, the merged :meth:`QEMethod.sentence_values` of ``methods`` (or None if
    none has any)."""
    own = None
    for name in methods:
        values = METHODS[name].sentence_values(stats)
        if values is None:
            continue
        own = own or [{} for _ in values]
        for merged, value in zip(own, values):
            merged.update(value)
    return own
