"""``score_qe``: token, word and sentence QE lines in ``fairseq-generate --print-qe``.

fairseq-generate has no plugin hook, so this module wraps (never copies) three of its calls,
and only when ``--print-qe`` is given:
- ``options.add_generation_args`` gains the QE options;
- the task's ``inference_step`` scores every returned hypothesis (beam search, sampling or
  ``--score-reference`` force-decoding alike) with :mod:`scoring`;
- the output stream gets ``Q-``, ``QT-`` and ``QW-`` lines after each hypothesis' ``P-`` line.
Everything fairseq prints itself stays byte-identical.
"""
import json
import os
import sys
from collections import defaultdict, deque

from fairseq import options, tasks
from fairseq.utils import strip_pad

from .errors import QEUserError
from .scoring import METHODS, SENTENCE_AGGREGATIONS
from .search_capture import DOMINANT_AT, SearchCapture, hypothesis_records

WORD_AGGREGATIONS = ("min", "prod", "mean")


def add_qe_args(parser):
    group = parser.add_argument_group("sigmoid-head QE (fairseq-sigmoid-qe)")
    group.add_argument("--print-qe", action="store_true",
                       help="print Q- (sentence QE: sigmoid, softmax, BoostedProb), QT- (sigmoid "
                       "per subword) and QW- (sigmoid per word) lines for every hypothesis")
    group.add_argument("--qe-include-eos", action="store_true",
                       help="include the end-of-sentence token in token and sentence QE")
    group.add_argument("--qe-sentence-agg", choices=SENTENCE_AGGREGATIONS, default="prod",
                       help="sentence QE from token QE: product (the paper), mean log, or min")
    group.add_argument("--qe-word-agg", choices=WORD_AGGREGATIONS, default="min",
                       help="word QE from its subwords' QE")
    group.add_argument("--qe-output", metavar="FILE.jsonl", default=None,
                       help="also write one JSON object per hypothesis to this file (must not "
                       "exist)")
    group.add_argument("--qe-dominant-at", choices=DOMINANT_AT, default="auto",
                       help="beam search: BoostedProb's dominant sets from every step's rows "
                       "(step) or from the used rows' recomputed logits (used_rows); the same "
                       "scores, only speed differs; auto: step from a decoder width of 512")
    return group


class QEOptions:
    def __init__(self, args):
        self.include_eos = args.qe_include_eos
        self.sentence_agg = args.qe_sentence_agg
        self.word_agg = args.qe_word_agg
        self.output = args.qe_output
        self.dominant_at = getattr(args, "qe_dominant_at", "auto")
        self.nbest = getattr(args, "nbest", 1)
        self.word_level = bool(getattr(args, "post_process", None) or getattr(args, "bpe", None))


class HypothesisQE:
    """Scores of one hypothesis, produced at inference time and printed after its P- line."""

    def __init__(self, sample_id, rank, qe):
        self.sample_id, self.rank, self.qe = sample_id, rank, qe

    def lines(self):
        sentence = "\t".join(f"{self.qe['sentence_scores'][m]:.6g}" for m in METHODS)
        lines = [f"Q-{self.sample_id}\t{sentence}",
                 f"QT-{self.sample_id}\t" + " ".join(
                     f"{s:.4f}" for s in self.qe["token_scores"]["sigmoid"])]
        if self.qe["word_scores"] is not None:
            lines.append(f"QW-{self.sample_id}\t" + " ".join(
                f"{s:.4f}" for s in self.qe["word_scores"]["sigmoid"]))
        return lines

    def record(self):
        return {"id": self.sample_id, "rank": self.rank, **self.qe}


class QEState:
    """Per-run state: options, the QE of hypotheses waiting for their P- line, JSONL output."""

    def __init__(self, options):
        self.options = options
        self.pending = defaultdict(deque)
        self.jsonl = None
        self.source_dictionary, self.post_process, self.decode = None, None, lambda text: text
        if options.output and os.path.exists(options.output):
            raise QEUserError(f"--qe-output {options.output} exists; nothing is overwritten")

    def attach(self, task, cfg):
        """Dictionaries and fairseq-generate's own text post-processing, for the JSONL text."""
        self.source_dictionary = task.source_dictionary
        self.post_process = cfg.common_eval.post_process
        tokenizer, bpe = task.build_tokenizer(cfg.tokenizer), task.build_bpe(cfg.bpe)

        def decode(text):
            text = bpe.decode(text) if bpe is not None else text
            return tokenizer.decode(text) if tokenizer is not None else text

        self.decode = decode

    def score(self, models, sample, hypos, dictionary, capture=None):
        """QE of the ``--nbest`` hypotheses of each sentence: read off the search when
        ``capture`` (a :class:`SearchCapture`) holds every step, else force-decoded (reusing
        the search's encoder output if captured)."""
        model = models[0]
        if not hasattr(model, "qe_logits"):
            raise QEUserError("--print-qe needs a checkpoint with a sigmoid head (train one with "
                              "--arch sigmoid_head_transformer); this model has none")
        hypos = [beams[: self.options.nbest] for beams in hypos]
        pairs = [(i, rank, hypo) for i, beams in enumerate(hypos) for rank, hypo in enumerate(beams)]
        if not pairs:
            return
        options = dict(include_eos=self.options.include_eos,
                       sentence_agg=self.options.sentence_agg, word_agg=self.options.word_agg,
                       word_level=self.options.word_level)
        records = hypothesis_records(
            model, sample, [i for i, _, _ in pairs], [hypo["tokens"] for _, _, hypo in pairs],
            dictionary, capture, [hypo["positional_scores"] for _, _, hypo in pairs], **options)
        net_input = sample["net_input"]
        ids = sample["id"].tolist()
        for (i, rank, hypo), record in zip(pairs, records):
            qe = HypothesisQE(ids[i], rank, record)
            self.pending[ids[i]].append(qe)
            if self.options.output:
                if self.jsonl is None:  # opened only once scoring works: no empty file left
                    self.jsonl = open(self.options.output, "x", encoding="utf-8")
                text = self.texts(net_input["src_tokens"][i], hypo["tokens"], dictionary)
                self.jsonl.write(json.dumps({**text, **qe.record()}, ensure_ascii=False) + "\n")

    def texts(self, src_tokens, hyp_tokens, dictionary):
        """Source, hypothesis and detokenized hypothesis as fairseq's S-, H- and D- lines."""
        source = self.source_dictionary
        hypothesis = dictionary.string(hyp_tokens, self.post_process)
        return {"source": source.string(strip_pad(src_tokens, source.pad()), self.post_process),
                "hypothesis": hypothesis, "detokenized": self.decode(hypothesis)}

    def lines_after_positional_scores(self, sample_id):
        queue = self.pending.get(sample_id)
        return queue.popleft().lines() if queue else []

    def close(self):
        if self.jsonl is not None:
            self.jsonl.close()


class QEStream:
    """Passes every line through unchanged; after a ``P-<id>`` line adds that hypothesis' QE."""

    def __init__(self, stream, state):
        self.stream, self.state, self.buffer = stream, state, ""

    def write(self, text):
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            self.stream.write(line + "\n")
            if line.startswith("P-"):
                sample_id = int(line[2:].split("\t", 1)[0])
                for extra in self.state.lines_after_positional_scores(sample_id):
                    self.stream.write(extra + "\n")
        return len(text)

    def flush(self):
        if self.buffer:
            self.stream.write(self.buffer)
            self.buffer = ""
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def step_with_qe(inference_step, state, dictionary, generator, models, sample, *args, **kwargs):
    """One ``task.inference_step`` with the search captured, then QE of its hypotheses."""
    if len(models) != 1 or not hasattr(models[0], "qe_logits"):
        hypos = inference_step(generator, models, sample, *args, **kwargs)
        state.score(models, sample, hypos, dictionary)
        return hypos
    with SearchCapture(models[0], temperature=getattr(generator, "temperature", 1.0),
                       dominant_at=state.options.dominant_at) as capture:
        hypos = inference_step(generator, models, sample, *args, **kwargs)
    state.score(models, sample, hypos, dictionary, capture)
    return hypos


def _wrap_inference_step(task, state):
    original = task.inference_step

    def inference_step(generator, models, sample, *args, **kwargs):
        return step_with_qe(original, state, task.target_dictionary, generator, models, sample,
                            *args, **kwargs)

    task.inference_step = inference_step


def _wrap_generate_main(module, state):
    """Wrap fairseq-generate's ``_main(cfg, output_file)``."""
    original_main = module._main

    def _main(cfg, output_file):
        original_setup = tasks.setup_task

        def setup_task(*args, **kwargs):
            task = original_setup(*args, **kwargs)
            state.attach(task, cfg)
            _wrap_inference_step(task, state)
            return task

        tasks.setup_task = setup_task
        stream = QEStream(output_file, state)
        try:
            return original_main(cfg, stream)
        finally:
            tasks.setup_task = original_setup
            stream.flush()
            state.close()

    module._main = _main


def _generate_modules():
    import fairseq_cli.generate as installed

    found = [installed]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == "fairseq_cli.generate" and main is not installed:
        found.append(main)
    return found


def _running_generate():
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return (spec is not None and spec.name == "fairseq_cli.generate") or (
        os.path.basename(sys.argv[0]) == "fairseq-generate")


def install():
    """Add the QE options to fairseq's generation parser; activate when --print-qe is parsed."""
    if getattr(options, "_sigmoid_qe_installed", False):
        return
    add_generation_args = options.add_generation_args
    parse_args_and_arch = options.parse_args_and_arch

    def add_generation_args_with_qe(parser, *args, **kwargs):
        group = add_generation_args(parser, *args, **kwargs)
        if _running_generate():
            add_qe_args(parser)
        return group

    def parse_args_and_arch_with_qe(*args, **kwargs):
        parsed = parse_args_and_arch(*args, **kwargs)
        if getattr(parsed, "print_qe", False):
            state = QEState(QEOptions(parsed))
            for module in _generate_modules():
                _wrap_generate_main(module, state)
        elif getattr(parsed, "qe_output", None):
            raise QEUserError("--qe-output needs --print-qe")
        return parsed

    options.add_generation_args = add_generation_args_with_qe
    options.parse_args_and_arch = parse_args_and_arch_with_qe
    options._sigmoid_qe_installed = True
