"""``translation_qe``: fairseq's ``translation`` task with sigmoid-head QE of its hypotheses.

With ``--print-qe`` its generators record what the search computes
(:mod:`..search_capture`), and its inference step runs :meth:`TranslationQETask.score_qe`,
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

from ..calibration import calibrate_record, load_calibration
from ..errors import QEUserError, warn_once
from ..qe_output import active_printer
from ..scoring import METHODS, SENTENCE_AGGREGATIONS
from ..search_capture import (
    DOMINANT_AT,
    RecordingSequenceGenerator,
    RecordingSequenceScorer,
    hypothesis_records,
    output_projection,
)
from ..words import WORD_AGGREGATIONS

TASK_NAME = "translation_qe"


@dataclass
class TranslationQEConfig(TranslationConfig):
    print_qe: bool = field(default=False, metadata={
        "help": "QE of every hypothesis: print Q- (sentence QE: sigmoid, softmax, BoostedProb), "
        "QT- (sigmoid per subword) and QW- (sigmoid per word) lines"})
    qe_include_eos: bool = field(default=False, metadata={
        "help": "include the end-of-sentence token in token and sentence QE"})
    qe_sentence_agg: ChoiceEnum(SENTENCE_AGGREGATIONS) = field(default="prod", metadata={
        "help": "sentence QE from token QE: product (the paper), mean log, or min"})
    qe_word_agg: ChoiceEnum(WORD_AGGREGATIONS) = field(default="min", metadata={
        "help": "word QE from its subwords' QE"})
    qe_dominant_at: ChoiceEnum(DOMINANT_AT) = field(default="auto", metadata={
        "help": "beam search: BoostedProb's dominant sets from every step's rows (step) or "
        "from the used rows' recomputed logits (used_rows); the same scores, only speed "
        "differs; auto: step from a decoder width of 512"})
    qe_output: Optional[str] = field(default=None, metadata={
        "help": "also write one JSON object per hypothesis to this file (must not exist)"})
    qe_calibration: Optional[str] = field(default=None, metadata={
        "help": "a calibration file (fairseq-sigmoid-qe calibrate): each QE record also gets "
        "its method's calibrated sentence and word scores, OK/BAD tags and error spans"})


def qe_options(cfg):
    """The options of :func:`scoring.hypothesis_qe` that the task's config sets."""
    return dict(include_eos=cfg.qe_include_eos, sentence_agg=str(cfg.qe_sentence_agg),
                word_agg=str(cfg.qe_word_agg))


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
        self.qe_nbest = 1
        self.qe_calibration = None
        if cfg.qe_calibration:
            if not cfg.print_qe:
                raise QEUserError("--qe-calibration needs --print-qe")
            self.qe_calibration = load_calibration(cfg.qe_calibration, METHODS)

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None,
                        prefix_allowed_tokens_fn=None):
        """fairseq's generator; with ``--print-qe`` one that records its search (beam search,
        sampling or ``--score-reference``) when it can, else (said once on stderr) fairseq's
        own, and QE force-decodes the hypotheses."""
        if self.cfg.print_qe:
            if not hasattr(models[0], "qe_logits"):
                raise QEUserError("--print-qe needs a checkpoint with a sigmoid head (train one "
                                  "with --arch sigmoid_head_transformer); this model has none")
            self.qe_nbest = getattr(args, "nbest", 1)
            reason = why_not_recorded(models, args, seq_gen_cls)
            if reason is not None:
                warn_once(f"QE cannot be read off this search ({reason}); every hypothesis "
                          "is force-decoded once more")
            elif getattr(args, "score_reference", False):
                return RecordingSequenceScorer(
                    self.target_dictionary,
                    compute_alignment=getattr(args, "print_alignment", False))
            else:
                seq_gen_cls = RecordingSequenceGenerator
                extra_gen_cls_kwargs = {**(extra_gen_cls_kwargs or {}),
                                        "qe_dominant_at": str(self.cfg.qe_dominant_at)}
        return super().build_generator(models, args, seq_gen_cls, extra_gen_cls_kwargs,
                                       prefix_allowed_tokens_fn)

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        hypos = super().inference_step(generator, models, sample, prefix_tokens=prefix_tokens,
                                       constraints=constraints)
        if self.cfg.print_qe:
            self.score_qe(generator, models, sample, hypos)
        return hypos

    def score_qe(self, generator, models, sample, hypos):
        """The ``score_qe`` hook, run after each inference step: the QE record (tokens,
        token, word and sentence scores of every method) of each sentence's first ``--nbest``
        hypotheses in ``hypo["qe"]``, read off the generator's search record, else
        force-decoded; then fairseq-generate's QE lines, if it is printing them."""
        pairs = [(i, hypo) for i, beams in enumerate(hypos) for hypo in beams[: self.qe_nbest]]
        if not pairs:
            return
        records = hypothesis_records(
            models[0], sample, [i for i, _ in pairs], [hypo["tokens"] for _, hypo in pairs],
            self.target_dictionary, getattr(generator, "search_record", None),
            [hypo["positional_scores"] for _, hypo in pairs], **qe_options(self.cfg))
        for (_, hypo), record in zip(pairs, records):
            hypo["qe"] = (record if self.qe_calibration is None
                          else calibrate_record(record, self.qe_calibration))
        printer = active_printer()
        if printer is not None:
            printer.add(self, sample, hypos)
