"""The QE settings of one run, in one object (the task builds it from its ``--qe-*`` options,
the API from its arguments): which methods, how their scores are aggregated, the Monte-Carlo
passes and the dominant rule."""

from dataclasses import dataclass, field

from .dominant import DEFAULT_RULE, DominantRule
from .qe_methods import DEFAULT_METHODS
from .qe_methods.sentence import SENTENCE_AGGREGATIONS
from .words import WORD_AGGREGATIONS

DEFAULT_MC_SAMPLES = 10
DOMINANT_AT = ("auto", "step", "used_rows")


@dataclass(frozen=True)
class QEOptions:
    """``methods``: QE method names in output order; ``include_eos``: the final EOS in token
    and sentence QE; ``sentence_agg``/``word_agg``: sentence QE from token QE and word QE from
    subword QE; ``word_level``: word scores at all; ``mc_samples``/``seed``: the Monte-Carlo
    passes; ``dominant``: the dominant rule (BoostedProb); ``dominant_at``: where beam search
    takes the dominant sets (:func:`..decoding.recording.dominant_each_step`)."""

    methods: tuple = DEFAULT_METHODS
    include_eos: bool = False
    sentence_agg: str = "prod"
    word_agg: str = "min"
    word_level: bool = True
    mc_samples: int = DEFAULT_MC_SAMPLES
    seed: int = 1
    dominant: DominantRule = field(default=DEFAULT_RULE)
    dominant_at: str = "auto"

    def __post_init__(self):
        if self.sentence_agg not in SENTENCE_AGGREGATIONS:
            raise ValueError(f"unknown sentence aggregation {self.sentence_agg!r}")
        if self.word_agg not in WORD_AGGREGATIONS:
            raise ValueError(f"unknown word aggregation {self.word_agg!r}")
        if self.dominant_at not in DOMINANT_AT:
            raise ValueError(f"dominant_at must be one of {DOMINANT_AT}, got {self.dominant_at!r}")
        object.__setattr__(self, "methods", tuple(self.methods))

    def record_options(self):
        """The keyword options of :func:`.qe_methods.hypothesis_qe`."""
        return dict(
            include_eos=self.include_eos,
            sentence_agg=self.sentence_agg,
            word_agg=self.word_agg,
            word_level=self.word_level,
        )
