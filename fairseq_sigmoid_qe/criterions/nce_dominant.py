"""``nce_dominant``: train the sigmoid head with sampled negatives, avoiding dominant tokens.

Per target position with reference ``y`` and negatives ``N``:
``L = -log σ(z_y) - Σ_{n∈N} log(1 - σ(z_n))``, logits only for ``y`` and ``N``.
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from ..dominant import dominant_sets
from ..errors import QEUserError, check_range
from ..sampling import (
    largest_split,
    negatives_capacity,
    parse_sampler_spec,
    sample_negatives,
    softmax_weights,
    token_frequency_distribution,
    uniform_distribution,
)


@dataclass
class NceDominantConfig(FairseqDataclass):
    num_negatives: int = field(
        default=10,
        metadata={"help": "negatives sampled per target position (k >= 1, and no more than "
                  "the samplers can draw: see README)"},
    )
    negative_sampler: str = field(
        default="token_freq+softmax",
        metadata={
            "help": "random | token_freq | softmax, or a '+'-joined combination whose "
            "samplers split the negatives evenly (independent draws), e.g. token_freq+softmax"
        },
    )
    sampling_temperature: float = field(
        default=2.0, metadata={"help": "temperature T of the softmax sampler (T > 0)"}
    )
    avoid_dominant: bool = field(
        default=False,
        metadata={"help": "never sample dominant tokens as negatives (already the default)"},
    )
    no_avoid_dominant: bool = field(
        default=False,
        metadata={"help": "allow dominant tokens of the frozen softmax as negatives"},
    )
    dominant_p_jump: float = field(
        default=0.3,
        metadata={"help": "a drop d_i = p_i - p_(i+1) is significant if d_i > p_jump * p_i "
                  "(0 < p_jump < 1)"},
    )
    dominant_epsilon: float = field(
        default=0.005, metadata={"help": "... and d_i > epsilon (0 < epsilon < 1)"}
    )
    dominant_cut: ChoiceEnum(["last", "first"]) = field(
        default="last",
        metadata={"help": "cut the sorted distribution at the last or the first significant drop"},
    )


@register_criterion("nce_dominant", dataclass=NceDominantConfig)
class NceDominantCriterion(FairseqCriterion):
    def __init__(self, task, num_negatives, negative_sampler, sampling_temperature,
                 avoid_dominant, no_avoid_dominant, dominant_p_jump, dominant_epsilon,
                 dominant_cut):
        super().__init__(task)
        if avoid_dominant and no_avoid_dominant:
            raise QEUserError("--avoid-dominant and --no-avoid-dominant contradict each other")
        check_range("--num-negatives", num_negatives, low=1)
        check_range("--sampling-temperature", sampling_temperature, low=0, low_open=True,
                    high_open=True)
        check_range("--dominant-p-jump", dominant_p_jump, 0, 1, low_open=True, high_open=True,
                    meaning="outside it no drop, or every drop, is significant")
        check_range("--dominant-epsilon", dominant_epsilon, 0, 1, low_open=True, high_open=True,
                    meaning="from 1 on no drop is significant")
        try:
            self.samplers = parse_sampler_spec(negative_sampler, num_negatives)
        except ValueError as exc:
            raise QEUserError(f"--negative-sampler: {exc}") from exc
        self.temperature = sampling_temperature
        self.avoid_dominant = not no_avoid_dominant
        self._buffer = None
        self.needs_softmax = self.avoid_dominant or any(n == "softmax" for n, _ in self.samplers)
        self.dominant_options = dict(p_jump=dominant_p_jump, epsilon=dominant_epsilon,
                                     cut=str(dominant_cut))
        dictionary = task.target_dictionary
        self.padding_idx = dictionary.pad()
        self.special_ids = sorted({dictionary.bos(), dictionary.pad(), dictionary.eos(),
                                   dictionary.unk()})
        self.register_buffer(
            "uniform_probs", uniform_distribution(len(dictionary), [dictionary.pad()]),
            persistent=False)
        self.register_buffer(
            "frequency_probs",
            token_frequency_distribution(dictionary.count, self.special_ids), persistent=False)
        self._check_negatives_fit(num_negatives)

    def _check_negatives_fit(self, num_negatives):
        """Refuse a k that some sampler cannot draw at any position (it would otherwise fill
        its share with every token it has, after a slow search)."""
        capacity = {"random": negatives_capacity(self.uniform_probs),
                    "softmax": negatives_capacity(self.uniform_probs),  # every token but padding
                    "token_freq": negatives_capacity(self.frequency_probs)}
        shares = [(name, count, capacity[name]) for name, count in self.samplers]
        for name, count, most in shares:
            if count > most:
                largest = largest_split([most for _, _, most in shares])
                raise QEUserError(
                    f"--num-negatives {num_negatives} does not fit: the {name} sampler's share "
                    f"is {count} negatives per position but it can draw only {most} (tokens "
                    f"it gives a non-zero probability, less the reference); use "
                    f"--num-negatives {largest} or less")

    def _workspace(self, logits):
        """A float [positions x V] buffer kept across updates (grown when a batch needs more)."""
        needed = logits.numel()
        if self._buffer is None or self._buffer.numel() < needed or self._buffer.device != logits.device:
            self._buffer = torch.empty(needed, dtype=torch.float, device=logits.device)
        return self._buffer[:needed].view(logits.shape)

    def _generator(self, device):
        """Per-worker generator, reproducible on resume: seeded from fairseq's per-update
        seed (the global RNG) mixed with the data-parallel rank."""
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        generator = torch.Generator(device=device)
        generator.manual_seed(seed * 65537 + rank)
        return generator

    def _negatives(self, reference, softmax_probs, dominant, generator):
        distributions = {"random": self.uniform_probs, "token_freq": self.frequency_probs,
                         "softmax": softmax_probs}
        parts, masks = [], []
        for name, count in self.samplers:
            tokens, valid = sample_negatives(count, reference, distributions[name], dominant,
                                             generator)
            parts.append(tokens)
            masks.append(valid)
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1)

    def forward(self, model, sample, reduce=True):
        """Dense work runs on all positions as they lie (no [positions x V] copy); padding
        positions are dropped from the loss afterwards."""
        if not hasattr(model, "qe_logits"):
            raise QEUserError("criterion nce_dominant needs --arch sigmoid_head_transformer")
        features, logits = model.frozen_forward(**sample["net_input"])
        target = sample["target"].reshape(-1)
        logits = logits.view(target.numel(), -1)
        keep = target.ne(self.padding_idx)
        with torch.no_grad():
            softmax_probs, dominant = None, None
            if self.needs_softmax:
                softmax_probs, log_partition = softmax_weights(
                    logits, self.temperature, [self.padding_idx], out=self._workspace(logits))
            if self.avoid_dominant:
                dominant = dominant_sets(logits, **self.dominant_options,
                                         log_partition=log_partition)
            negatives, valid = self._negatives(
                target, softmax_probs, dominant, self._generator(target.device))
            reference, negatives, valid = target[keep], negatives[keep], valid[keep]
            dominant_count = dominant[1][keep].sum() if dominant is not None else 0
        hidden = features.reshape(target.numel(), -1)[keep]
        candidates = torch.cat([reference.unsqueeze(1), negatives], dim=1)
        z = model.qe_logits(hidden, candidates).float()
        loss = -F.logsigmoid(z[:, 0]).sum() - (F.logsigmoid(-z[:, 1:]) * valid).sum()
        sample_size = reference.numel()
        with torch.no_grad():
            sig = torch.sigmoid(z)
            logging_output = {
                "loss": loss.data,
                "ntokens": sample["ntokens"],
                "nsentences": sample["target"].size(0),
                "sample_size": sample_size,
                "positive_sigmoid": sig[:, 0].sum().data,
                "negative_sigmoid": (sig[:, 1:] * valid).sum().data,
                "negatives": valid.sum().data,
                "dominant_tokens": dominant_count,
            }
        return loss, sample_size, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        sample_size = total("sample_size")
        positions = max(sample_size, 1)
        metrics.log_scalar("loss", total("loss") / positions, sample_size, round=4)
        metrics.log_scalar("sigmoid_pos", total("positive_sigmoid") / positions, sample_size,
                           round=4)
        metrics.log_scalar("sigmoid_neg", total("negative_sigmoid") / max(total("negatives"), 1),
                           sample_size, round=4)
        metrics.log_scalar("dominant_size", total("dominant_tokens") / positions, sample_size,
                           round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
