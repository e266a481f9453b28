"""``translation_qe``: fairseq's ``translation`` task with sigmoid-head QE of its hypotheses.

With ``--print-qe`` its generators record what the search computes
(:mod:`..decoding.recording`), and its inference step runs :meth:`TranslationQETask.score_qe`,
the ``score_qe`` hook: token, word and sentence QE of each sentence's ``--nbest`` hypotheses,
stored in ``hypo["qe"]`` and handed to fairseq-generate's QE lines when they are printed.
Without ``--print-qe`` it is fairseq's ``translation``. Every QE user goes through it:
``fairseq-generate --print-qe``, the raw-text API and the quickstart.
"""

from dataclasses import dataclass, field
from typing import Optional

from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask
from omegaconf import II

from ..core.dominant import (
    CUT_MODES,
    DEFAULT_CUT,
    DEFAULT_EPSILON,
    DEFAULT_P_JUMP,
    DominantRule,
    check_rule,
)
from ..core.errors import QEUserError, check_range, warn_once
from ..core.qe_methods import (
    DEFAULT_METHODS,
    METHODS,
    SENTENCE_AGGREGATIONS,
    monte_carlo_methods,
    needs_of,
    parse_methods,
)
from ..core.qe_methods.base import MC_TRANSLATION_SAMPLES
from ..core.qe_options import DEFAULT_MC_SAMPLES, DOMINANT_AT, QEOptions
from ..core.words import WORD_AGGREGATIONS
from ..decoding.generate_output import active_printer
from ..decoding.monte_carlo import check_dropout, translation_sampler
from ..decoding.recording import (
    RecordingSequenceGenerator,
    RecordingSequenceScorer,
    hypothesis_records,
    output_projection,
)
from ..evaluation.calibration import calibrate_record, load_calibration
from ..models.data_folder import check_data_folder

TASK_NAME = "translation_qe"


@dataclass
class TranslationQEConfig(TranslationConfig):
    print_qe: bool = field(
        default=False,
        metadata={
            "help": "QE of every hypothesis: print Q- (sentence QE of each --qe-methods method), "
            "QT- (the first token-level method per subword) and QW- (per word) lines"
        },
    )
    qe_methods: str = field(
        default=",".join(DEFAULT_METHODS),
        metadata={
            "help": "comma list of QE methods, in the order of the Q- columns: "
            + ", ".join(METHODS)
        },
    )
    qe_mc_samples: Optional[int] = field(
        default=None,
        metadata={
            "help": "samples of the Monte-Carlo methods ("
            + ", ".join(monte_carlo_methods(METHODS))
            + "; default 10)"
        },
    )
    seed: int = II("common.seed")
    num_shards: int = II("dataset.num_shards")
    shard_id: int = II("dataset.shard_id")
    qe_include_eos: bool = field(
        default=False,
        metadata={"help": "include the end-of-sentence token in token and sentence QE"},
    )
    qe_sentence_agg: ChoiceEnum(SENTENCE_AGGREGATIONS) = field(
        default="prod",
        metadata={
            "help": "sentence QE in [0, 1] from token QE: product (the paper), geometric mean "
            "(mean_log: exp of the mean log), or min"
        },
    )
    qe_word_agg: ChoiceEnum(WORD_AGGREGATIONS) = field(
        default="min", metadata={"help": "word QE from its subwords' QE"}
    )
    qe_dominant_at: ChoiceEnum(DOMINANT_AT) = field(
        default="auto",
        metadata={
            "help": "beam search: BoostedProb's dominant sets from every step's rows (step) or "
            "from the used rows' recomputed logits (used_rows); the same scores, only speed "
            "differs; auto: step from a decoder width of 512"
        },
    )
    qe_dominant_p_jump: float = field(
        default=DEFAULT_P_JUMP,
        metadata={
            "help": "BoostedProb's dominant rule at inference: a drop d_i = p_i - p_(i+1) is "
            "significant if d_i > p_jump * p_i (0 < p_jump < 1; training's --dominant-p-jump)"
        },
    )
    qe_dominant_epsilon: float = field(
        default=DEFAULT_EPSILON,
        metadata={"help": "... and d_i > epsilon (0 < epsilon < 1; --dominant-epsilon)"},
    )
    qe_dominant_cut: ChoiceEnum(CUT_MODES) = field(
        default=DEFAULT_CUT,
        metadata={"help": "the dominant set ends at the last or the first significant drop"},
    )
    qe_output: Optional[str] = field(
        default=None,
        metadata={
            "help": "also write one JSON object per hypothesis to this file (must not exist)"
        },
    )
    qe_calibration: Optional[str] = field(
        default=None,
        metadata={
            "help": "a calibration file (fairseq-sigmoid-qe calibrate): each QE record also gets "
            "its method's calibrated sentence and word scores, OK/BAD tags and error spans"
        },
    )


def options_of(cfg):
    """The run's :class:`..core.qe_options.QEOptions` from the task's ``--qe-*`` options,
    checked (one error line for a bad one)."""
    try:
        methods = parse_methods(cfg.qe_methods)
    except ValueError as exc:
        raise QEUserError(
            f"--qe-methods {cfg.qe_methods}: {exc} (methods: {', '.join(METHODS)})"
        ) from None
    if cfg.qe_mc_samples is not None:
        if not monte_carlo_methods(methods):
            raise QEUserError(
                "--qe-mc-samples needs a Monte-Carlo method in --qe-methods "
                f"({', '.join(monte_carlo_methods(METHODS))})"
            )
        check_range("--qe-mc-samples", cfg.qe_mc_samples, low=1)
    check_rule(cfg.qe_dominant_p_jump, cfg.qe_dominant_epsilon, "--qe-dominant-")
    return QEOptions(
        methods=methods,
        include_eos=cfg.qe_include_eos,
        sentence_agg=str(cfg.qe_sentence_agg),
        word_agg=str(cfg.qe_word_agg),
        mc_samples=cfg.qe_mc_samples or DEFAULT_MC_SAMPLES,
        seed=cfg.seed,
        dominant=DominantRule(
            cfg.qe_dominant_p_jump, cfg.qe_dominant_epsilon, str(cfg.qe_dominant_cut)
        ),
        dominant_at=str(cfg.qe_dominant_at),
    )


def generation_shard(num_shards, shard_id, given_shards=1, given_id=0):
    """(shards, this shard) of fairseq-generate's batch iterator with ``--print-qe``: fairseq
    0.12's generate shards only over its distributed processes (``given_*``, from
    ``--distributed-world-size``) and leaves ``--num-shards``/``--shard-id`` unread; here they
    take every ``num_shards``-th batch from the ``shard_id``-th on, as fairseq's
    ``ShardedIterator`` does."""
    check_range("--num-shards", num_shards, low=1)
    check_range(
        "--shard-id", shard_id, 0, num_shards - 1, meaning=f"one of the {num_shards} shards"
    )
    if num_shards == 1:
        return given_shards, given_id
    if given_shards > 1:
        raise QEUserError(
            f"--num-shards {num_shards} with --distributed-world-size {given_shards}: "
            "fairseq-generate already shards over its processes; give one of the two"
        )
    return num_shards, shard_id


def configured_shards(cfg):
    """(``--num-shards``, ``--shard-id``) of a task config; (1, 0) for a config made outside
    fairseq's (its interpolations unresolved)."""
    num_shards, shard_id = getattr(cfg, "num_shards", 1), getattr(cfg, "shard_id", 0)
    if isinstance(num_shards, int) and isinstance(shard_id, int):
        return num_shards, shard_id
    return 1, 0


def why_not_recorded(models, args, seq_gen_cls):
    """Why QE cannot be read off this generator's search (None if it can)."""
    if len(models) != 1:
        return "an ensemble: QE comes from the first model"
    if seq_gen_cls is not None:
        return f"the caller's generator {seq_gen_cls.__name__}"
    if getattr(args, "print_alignment", False) and not getattr(args, "score_reference", False):
        return "--print-alignment uses fairseq's aligning generator"
    if output_projection(models[0]) is None:
        return "the decoder has no output projection module"
    return None


@register_task(TASK_NAME, dataclass=TranslationQEConfig)
class TranslationQETask(TranslationTask):
    """fairseq's translation task; with ``--print-qe`` every hypothesis also gets its QE."""

    cfg: TranslationQEConfig

    def __init__(self, cfg, src_dict, tgt_dict):
        super().__init__(cfg, src_dict, tgt_dict)
        if cfg.qe_output and not cfg.print_qe:
            raise QEUserError("--qe-output needs --print-qe")
        self.qe_options = options_of(cfg)
        self.qe_nbest, self.qe_temperature, self.qe_sampler = 1, 1.0, None
        self.qe_calibration, self.qe_in_hypotheses = None, False
        if cfg.qe_calibration:
            if not cfg.print_qe:
                raise QEUserError("--qe-calibration needs --print-qe")
            self.qe_calibration = load_calibration(cfg.qe_calibration, self.qe_options.methods)
        if cfg.print_qe:
            generation_shard(*configured_shards(cfg))  # refused before any model loads

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        """fairseq's setup (the dictionaries of ``DATA``), once the data folder is checked:
        fairseq's own ends in a traceback for a folder without them."""
        check_data_folder(cfg.data, cfg.source_lang, cfg.target_lang)
        return super().setup_task(cfg, **kwargs)

    def get_batch_iterator(self, dataset, *args, num_shards=1, shard_id=0, **kwargs):
        """fairseq's batches; with ``--print-qe`` sharded by ``--num-shards``/``--shard-id``
        too (:func:`generation_shard`), so that K fairseq-generate runs split a test set."""
        if self.cfg.print_qe:
            num_shards, shard_id = generation_shard(
                *configured_shards(self.cfg), num_shards, shard_id
            )
        return super().get_batch_iterator(
            dataset, *args, num_shards=num_shards, shard_id=shard_id, **kwargs
        )

    def keep_qe_in_hypotheses(self):
        """For callers that read ``hypo["qe"]`` themselves (the raw-text API, the quickstart,
        the benchmarks): QE with no fairseq command printing it. Without this (or a
        fairseq-generate / fairseq-interactive run printing it) ``--print-qe`` is refused."""
        self.qe_in_hypotheses = True
        return self

    def build_generator(
        self,
        models,
        args,
        seq_gen_cls=None,
        extra_gen_cls_kwargs=None,
        prefix_allowed_tokens_fn=None,
    ):
        """fairseq's generator; with ``--print-qe`` one that records its search (beam search,
        sampling or ``--score-reference``) when it can, else (said once on stderr) fairseq's
        own, and QE force-decodes the hypotheses."""
        if self.cfg.print_qe:
            if active_printer() is None and not self.qe_in_hypotheses:
                raise QEUserError(
                    "--print-qe: this entry point would compute QE and write none of it; QE is "
                    "written by the fairseq-generate and fairseq-interactive commands (their "
                    "console scripts or python -m fairseq_cli.generate|interactive), the "
                    "raw-text command and the Python API"
                )
            if not hasattr(models[0], "qe_logits"):
                raise QEUserError(
                    "--print-qe needs a checkpoint with a sigmoid head (train one "
                    "with --arch sigmoid_head_transformer); this model has none"
                )
            options = self.qe_options
            refusal = check_dropout(models[0], options.methods)
            if refusal is not None:
                raise QEUserError(refusal)
            self.qe_nbest = getattr(args, "nbest", 1)
            self.qe_temperature = getattr(args, "temperature", 1.0)
            if MC_TRANSLATION_SAMPLES in needs_of(options.methods):
                self.qe_sampler = translation_sampler(
                    models[0],
                    self.target_dictionary,
                    options.mc_samples,
                    {
                        "max_len_a": getattr(args, "max_len_a", 0),
                        "max_len_b": getattr(args, "max_len_b", 200),
                        "temperature": self.qe_temperature,
                    },
                )
            reason = why_not_recorded(models, args, seq_gen_cls)
            if reason is not None:
                warn_once(
                    f"QE cannot be read off this search ({reason}); every hypothesis "
                    "is force-decoded once more"
                )
            elif getattr(args, "score_reference", False):
                return RecordingSequenceScorer(
                    self.target_dictionary,
                    qe_options=options,
                    compute_alignment=getattr(args, "print_alignment", False),
                )
            else:
                seq_gen_cls = RecordingSequenceGenerator
                extra_gen_cls_kwargs = {
                    **(extra_gen_cls_kwargs or {}),
                    "qe_options": options,
                }
        return super().build_generator(
            models, args, seq_gen_cls, extra_gen_cls_kwargs, prefix_allowed_tokens_fn
        )

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        hypos = super().inference_step(
            generator, models, sample, prefix_tokens=prefix_tokens, constraints=constraints
        )
        if self.cfg.print_qe:
            self.score_qe(generator, models, sample, hypos)
        return hypos

    def score_qe(self, generator, models, sample, hypos):
        """The ``score_qe`` hook, run after each inference step: the QE record (tokens,
        token, word and sentence scores of each ``--qe-methods`` method) of each sentence's
        first ``--nbest`` hypotheses in ``hypo["qe"]``, read off the generator's search record, else
        force-decoded; then fairseq-generate's QE lines, if it is printing them."""
        pairs = [(i, hypo) for i, beams in enumerate(hypos) for hypo in beams[: self.qe_nbest]]
        if not pairs:
            return
        records = hypothesis_records(
            models[0],
            sample,
            [i for i, _ in pairs],
            [hypo["tokens"] for _, hypo in pairs],
            self.target_dictionary,
            getattr(generator, "search_record", None),
            [hypo["positional_scores"] for _, hypo in pairs],
            self.qe_options,
            temperature=self.qe_temperature,
            sampler=self.qe_sampler,
        )
        for (_, hypo), record in zip(pairs, records):
            hypo["qe"] = (
                record
                if self.qe_calibration is None
                else calibrate_record(record, self.qe_calibration)
            )
        printer = active_printer()
        if printer is not None:
            printer.add(self, sample, hypos)
