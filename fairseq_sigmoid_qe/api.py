"""The Python API: a sigmoid-head checkpoint on raw text, translations with QE or QE of
given translations (the command is :mod:`.cli.raw_text`).

    qe = QEModel.from_checkpoint("head/checkpoint_last.pt", "data-bin", "spm.model")
    qe.translate(["Open the file."])                      # beam search + QE
    qe.translate(["Open the file."], sampling=True, top_p=0.9, seed=3)  # a sample + QE
    qe.score(["Open the file."], ["Öffne die Datei."])    # QE of given translations

A model released with Moses + subword-nmt (or fastBPE, GPT-2 bytes, ...), through fairseq's
encoder registry, with the options fairseq-interactive takes for it::

    QEModel.from_checkpoint("model.pt", "data-bin", tokenizer="moses", bpe="subword_nmt",
                            text_options={"bpe_codes": "bpecodes"})
"""

import glob
import os
from argparse import Namespace

from fairseq import checkpoint_utils
from fairseq.data import LanguagePairDataset

from . import register_fairseq_components
from .core.errors import QEUserError, check_range
from .core.qe_methods import DEFAULT_METHODS
from .core.qe_methods.records import build_record
from .core.words import aggregate_words
from .decoding.search_loop import decoding_of, generate_with_qe, max_positions
from .decoding.text_codec import FairseqText, SentencepieceText, fairseq_text_options
from .evaluation.calibration import calibrate_record
from .models import checkpoint_files, data_folder
from .models.language_pair import checkpoint_language_pair
from .tasks.translation_qe import TASK_NAME

register_fairseq_components()  # loading a head checkpoint needs the registered architecture

CHUNK_SENTENCES = 1000


class QEModel:
    """A sigmoid-head checkpoint (as a ``translation_qe`` task) with its dictionaries and
    (optionally) sentencepiece model. Sentences go through the model in chunks of
    ``chunk_sentences`` (each sorted by length into batches of at most ``max_tokens`` tokens
    and ``batch_size`` sentences), so that records come out in input order as chunks finish."""

    def __init__(
        self,
        model,
        task,
        text=None,
        beam=5,
        max_tokens=4000,
        batch_size=None,
        chunk_sentences=CHUNK_SENTENCES,
        word_agg="min",
    ):
        self.model, self.task = model, task
        self.text = text if text is not None else SentencepieceText()
        self.beam, self.max_tokens, self.batch_size = beam, max_tokens, batch_size
        self.chunk_sentences, self.word_agg = chunk_sentences, word_agg
        self.src_dict, self.tgt_dict = task.source_dictionary, task.target_dictionary

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint,
        data_dir,
        spm_model=None,
        beam=5,
        max_tokens=4000,
        include_eos=False,
        sentence_agg="prod",
        word_agg="min",
        batch_size=None,
        device=None,
        methods=DEFAULT_METHODS,
        mc_samples=None,
        seed=1,
        calibration=None,
        tokenizer=None,
        bpe=None,
        text_options=None,
    ):
        """``spm_model``: the data's sentencepiece model (read directly); or ``tokenizer``
        and ``bpe``: fairseq's registered ones (``moses``, ``subword_nmt``, ...), with
        ``text_options`` their options as fairseq names them (``bpe_codes``,
        ``moses_no_escape``...; Moses' languages default to the data's). ``methods``: QE
        methods (names of ``scoring.METHODS``, a tuple or comma list);
        ``mc_samples``, ``seed``: of the Monte-Carlo methods; ``calibration``: a calibration
        file (``fairseq-sigmoid-qe calibrate``) whose calibrated scores, tags and error spans
        every record also gets. ``device``: as the command's ``--device`` (a name or a
        torch device; default: the GPU when there is one, else the CPU, as the command)."""
        device = choose_device(device)
        if not isinstance(methods, str):
            methods = ",".join(methods)
        model, task = load_head_model(
            checkpoint,
            data_dir,
            qe_include_eos=include_eos,
            qe_sentence_agg=sentence_agg,
            qe_word_agg=word_agg,
            qe_methods=methods,
            qe_mc_samples=mc_samples,
            seed=seed,
            qe_calibration=calibration,
        )
        model.to(device)
        if tokenizer is not None or bpe is not None:
            if spm_model:
                raise QEUserError("give --spm-model or --tokenizer/--bpe, not both")
            options = {
                "source_lang": task.cfg.source_lang,
                "target_lang": task.cfg.target_lang,
                **(text_options or {}),
            }
            try:
                text = FairseqText(fairseq_text_options(tokenizer, bpe, **options))
            except (ImportError, OSError, ValueError, KeyError) as exc:
                raise QEUserError(
                    f"cannot build --tokenizer {tokenizer} / --bpe {bpe}: {exc}"
                ) from exc
            return cls(model, task, text, beam, max_tokens, batch_size, word_agg=word_agg)
        processor = None
        if spm_model:
            import sentencepiece

            try:
                processor = sentencepiece.SentencePieceProcessor(model_file=spm_model)
            except (OSError, RuntimeError) as exc:
                raise QEUserError(f"cannot load sentencepiece model {spm_model}: {exc}") from exc
        return cls(model, task, SentencepieceText(processor), beam, max_tokens, batch_size)

    def _encode(self, lines, dictionary, kind, limit, first_number=1):
        encoded = []
        for number, line in enumerate(lines, first_number):
            if not line.strip():
                raise QEUserError(f"{kind} line {number} is empty")
            side = "source" if dictionary is self.src_dict else "target"
            pieces = self.text.encode(line.strip(), side)
            special = special_symbol(pieces, dictionary)
            if special is not None:
                raise QEUserError(
                    f"{kind} line {number} holds {special}, a special symbol of the "
                    "dictionary, which would not be scored as the text it is"
                )
            tokens = dictionary.encode_line(pieces, add_if_not_exist=False, append_eos=True).long()
            if tokens.numel() > limit:
                raise QEUserError(
                    f"{kind} line {number} has {tokens.numel()} tokens; the "
                    f"model takes at most {limit}"
                )
            if tokens.numel() > self.max_tokens:
                raise QEUserError(
                    f"{kind} line {number} has {tokens.numel()} tokens, more "
                    f"than --max-tokens {self.max_tokens} lets into a batch"
                )
            encoded.append(tokens)
        return encoded

    def _dataset(self, sources, targets=None, first_number=1):
        src_limit, tgt_limit = max_positions(self.task, self.model)
        src = self._encode(sources, self.src_dict, "source", src_limit, first_number)
        tgt = (
            self._encode(targets, self.tgt_dict, "translation", tgt_limit, first_number)
            if targets is not None
            else None
        )
        return LanguagePairDataset(
            src,
            [t.numel() for t in src],
            self.src_dict,
            tgt,
            [t.numel() for t in tgt] if tgt else None,
            self.tgt_dict,
        )

    def _check_lines(self, sources, targets):
        """Every line checked (empty, too long) before any is searched, a chunk at a time."""
        src_limit, tgt_limit = max_positions(self.task, self.model)
        for start in range(0, len(sources), self.chunk_sentences):
            stop = start + self.chunk_sentences
            self._encode(sources[start:stop], self.src_dict, "source", src_limit, start + 1)
            if targets is not None:
                self._encode(
                    targets[start:stop], self.tgt_dict, "translation", tgt_limit, start + 1
                )

    def records(
        self,
        sources,
        translations=None,
        nbest=None,
        on_batch=None,
        sampling=False,
        top_p=None,
        temperature=None,
        seed=None,
    ):
        """(sentence index, QE record) of each sentence in input order, chunk by chunk: with
        ``translations`` the QE of each (read off fairseq's force-decoding scorer), else of
        the beam search's best hypothesis, or of its ``nbest`` best (``rank`` 0, 1, ...);
        ``on_batch(n)`` is called as each batch of ``n`` sentences is done. Each record is
        the schema of :mod:`.core.qe_methods.records` (``id``: the sentence index).
        ``sampling``: in place of the beam search, ``nbest`` (default 1) translations sampled
        per sentence (fairseq's sampling; ``top_p``: nucleus sampling, ``temperature``,
        ``seed``: torch's seed before the first batch, default 1)."""
        if translations is not None and len(sources) != len(translations):
            raise QEUserError(f"{len(sources)} sources but {len(translations)} translations")
        generation = self._generation(translations, nbest, sampling, top_p, temperature)
        self._check_lines(sources, translations)
        if sampling:
            import torch

            seed = 1 if seed is None else seed
            torch.manual_seed(seed)
        decoding = decoding_of(generation, seed if sampling else None)
        for start in range(0, len(sources), self.chunk_sentences):
            stop = start + self.chunk_sentences
            dataset = self._dataset(
                sources[start:stop],
                None if translations is None else translations[start:stop],
                start + 1,
            )
            chunk = [None] * len(dataset)
            for sample, hypos in generate_with_qe(
                self.task, self.model, dataset, generation, self.max_tokens, self.batch_size
            ):
                for row, beams in enumerate(hypos):
                    index = start + int(sample["id"][row])
                    chunk[int(sample["id"][row])] = [
                        self._record(hypo["qe"], index, rank, sources[index], decoding)
                        for rank, hypo in enumerate(beams[: nbest or 1])
                    ]
                if on_batch is not None:
                    on_batch(len(hypos))
            for index, sentence in enumerate(chunk, start):
                for record in sentence:
                    yield index, record

    def _generation(self, translations, nbest, sampling, top_p, temperature):
        """fairseq's generation options of a call, checked."""
        if translations is not None:
            if sampling or top_p is not None or temperature is not None:
                raise QEUserError("sampling options are for translate (score scores given text)")
            return Namespace(score_reference=True)
        if not sampling:
            if top_p is not None or temperature is not None:
                raise QEUserError("--top-p and --temperature need --sampling")
            return Namespace(beam=self.beam, nbest=nbest or 1)
        if top_p is not None:
            check_range("--top-p", top_p, low=0, high=1, low_open=True)
        if temperature is not None:
            check_range("--temperature", temperature, low=0, low_open=True)
        samples = nbest or 1
        return Namespace(
            beam=samples,
            nbest=samples,
            sampling=True,
            sampling_topp=-1.0 if top_p is None else top_p,
            temperature=1.0 if temperature is None else temperature,
        )

    def _record(self, qe, index, rank, source, decoding):
        """The QE record of one hypothesis, its text decoded as the model's text is, its word
        scores (and, with a calibration, tags and error spans) those of that text's words."""
        translation = self.text.decode(qe["tokens"])
        ids = self.text.word_ids(qe["tokens"], translation)
        if not isinstance(self.text, SentencepieceText):
            qe = dict(qe)
            qe["word_scores"] = (
                None
                if ids is None
                else {
                    m: aggregate_words(v, ids, self.word_agg) for m, v in qe["token_scores"].items()
                }
            )
            calibration = getattr(self.task, "qe_calibration", None)
            if calibration is not None:  # calibrated again: these words, spans on this text
                qe.pop("errors", None)
                calibrate_record(qe, calibration, text=translation)
        return build_record(
            qe, id=index, rank=rank, source=source, translation=translation, decoding=decoding
        )

    def translate(
        self, sources, nbest=None, sampling=False, top_p=None, temperature=None, seed=None
    ):
        """Beam-search translations of raw source sentences, each with its QE (read off the
        search); with ``nbest``, that many per sentence, each with its ``rank``; with
        ``sampling``, sampled translations in place of the beam search (:meth:`records`)."""
        return [
            record
            for _, record in self.records(
                sources,
                nbest=nbest,
                sampling=sampling,
                top_p=top_p,
                temperature=temperature,
                seed=seed,
            )
        ]

    def score(self, sources, translations):
        """QE of given translations (read off fairseq's force-decoding scorer)."""
        return [record for _, record in self.records(sources, translations)]


def find_spm_model(data_dir):
    """The one ``*.model`` file in ``data_dir``, its parent, or a folder beside it (as in
    ``text/spm.model`` beside ``data-bin``); None if there is none."""
    parent = os.path.dirname(os.path.abspath(data_dir))
    found = sorted(
        {
            os.path.abspath(p)
            for pattern in (
                os.path.join(data_dir, "*.model"),
                os.path.join(parent, "*.model"),
                os.path.join(parent, "*", "*.model"),
            )
            for p in glob.glob(pattern)
            if os.path.isfile(p)
        }
    )
    if len(found) > 1:
        raise QEUserError(
            f"--spm-model not given and {len(found)} sentencepiece models found "
            f"near --data-dir ({', '.join(found)}): choose one with --spm-model"
        )
    return found[0] if found else None


def special_symbol(pieces, dictionary):
    """The first of ``pieces`` (a space-separated line) that is one of the dictionary's
    special symbols (``<s>``, ``<pad>``, ``</s>``, ``<unk>``, ...), or None: fairseq would drop
    a ``<pad>`` from the record and score a ``</s>`` as the end of the sentence."""
    specials = set(dictionary.symbols[: dictionary.nspecial])
    return next((piece for piece in pieces.split() if piece in specials), None)


def device_of(args):
    """The torch device of the command's ``--cpu``/``--device`` (:func:`choose_device`)."""
    return choose_device(args.device, args.cpu)


def choose_device(device=None, cpu=False):
    """The torch device of a name (``cpu``, ``cuda``, ``cuda:N``) or torch device, the one
    rule of the command and the API: default the GPU when there is one, else the CPU;
    ``cpu``: the command's ``--cpu``."""
    import torch

    name = None if device is None else str(device)
    if cpu and name not in (None, "cpu"):
        raise QEUserError(f"--cpu and --device {name} contradict each other")
    name = "cpu" if cpu else name
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(name)
    except RuntimeError:
        raise QEUserError(f"--device {name} is not a device (cpu, cuda, cuda:N)") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise QEUserError(f"--device {name}: no CUDA GPU is available")
    if chosen.type not in ("cpu", "cuda"):
        raise QEUserError(f"--device {name} is not a device (cpu, cuda, cuda:N)")
    return chosen


def load_head_model(path, data_dir=None, **qe_options):
    """A trained sigmoid-head checkpoint and its task: ``translation_qe`` with QE on
    (``qe_options``: its other QE options, e.g. ``qe_include_eos=True``), dictionaries from
    ``data_dir``."""
    task = {"_name": TASK_NAME, "print_qe": True, **qe_options}
    overrides = {"task": task}
    if data_dir:
        data_folder.check_folder(data_dir)  # before anything reads it
    state = checkpoint_files.check_loadable(path)
    if data_dir:
        overrides["data"] = task["data"] = data_dir
        task["source_lang"], task["target_lang"] = checkpoint_language_pair(state, data_dir)
    del state
    try:
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [path], arg_overrides=overrides
        )
    except QEUserError:
        raise
    except Exception as exc:  # a file that loads but holds no model fairseq can build
        raise QEUserError(
            f"cannot load checkpoint {path}: {checkpoint_files.load_problem(path, exc)}"
        ) from exc
    model = models[0]
    if not hasattr(model, "qe_logits"):
        raise QEUserError(
            f"{path} has no sigmoid head (train one with --arch sigmoid_head_transformer)"
        )
    model.eval()
    task.keep_qe_in_hypotheses()  # the API's callers read hypo["qe"]
    return model, task
