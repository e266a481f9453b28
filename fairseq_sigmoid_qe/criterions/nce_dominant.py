"""``nce_dominant``: train the sigmoid head with sampled negatives, avoiding dominant tokens.

Per target position with reference ``y`` and negatives ``N``:
``L = -w_pos log σ(z_y) - Σ_{n∈N} log(1 - σ(z_n))``, logits only for ``y`` and ``N``
(``w_pos`` = 1, the paper's loss, unless ``--positive-weight``). Optionally, as in the authors'
code, a ranking term ``λ Σ_{d∈D, d≠y} max(0, z_d - z_y + m)`` over the position's dominant
tokens ``D``.
"""

import logging
import os
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from ..core.dominant import (
    CUT_MODES,
    DEFAULT_CUT,
    DEFAULT_EPSILON,
    DEFAULT_P_JUMP,
    check_rule,
    dominant_sets,
    row_log_partition,
)
from ..core.errors import QEUserError, check_range
from ..core.negative_samplers import (
    deduplicate_negatives,
    largest_split,
    negatives_capacity,
    parse_sampler_spec,
    sample_negatives,
    softmax_weights,
    token_frequency_distribution,
    uniform_distribution,
)

logger = logging.getLogger(__name__)


def target_side_counts(task, split="train"):
    """Token counts of the target side of the binarized ``split`` of ``task``'s data, or None
    where it is not on disk. (A dictionary's own counts cover both sides when it is joined,
    and a given ``--tgtdict``'s counts come from elsewhere.)"""
    from fairseq import utils
    from fairseq.data import data_utils

    cfg = getattr(task, "cfg", None)
    source, target = getattr(cfg, "source_lang", None), getattr(cfg, "target_lang", None)
    if not getattr(cfg, "data", None) or not source or not target:
        return None
    dictionary = task.target_dictionary
    for root in utils.split_paths(cfg.data):
        for pair in (f"{source}-{target}", f"{target}-{source}"):
            dataset = data_utils.load_indexed_dataset(
                os.path.join(root, f"{split}.{pair}.{target}"), dictionary
            )
            if dataset is None:
                continue
            counts = torch.zeros(len(dictionary), dtype=torch.long)
            for start in range(0, len(dataset), 4096):
                tokens = torch.cat(
                    [dataset[i] for i in range(start, min(start + 4096, len(dataset)))]
                )
                counts += torch.bincount(tokens.long(), minlength=len(dictionary))[
                    : len(dictionary)
                ]
            return counts
    return None


def negatives_seed(update_seed, stream):
    """The seed of one micro-batch's negatives: ``stream`` = micro-batch index in the update x
    data-parallel world size + rank (rank r's m-th micro-batch is the (m W + r)-th batch of the
    update, as in one process with W times the --update-freq)."""
    return (int(update_seed) * 65537 + int(stream)) % 2**63


@dataclass
class NceDominantConfig(FairseqDataclass):
    num_negatives: int = field(
        default=10,
        metadata={
            "help": "negatives sampled per target position (k >= 1, and no more than "
            "the samplers can draw: see docs/training.md)"
        },
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
        default=DEFAULT_P_JUMP,
        metadata={
            "help": "a drop d_i = p_i - p_(i+1) is significant if d_i > p_jump * p_i "
            "(0 < p_jump < 1)"
        },
    )
    dominant_epsilon: float = field(
        default=DEFAULT_EPSILON, metadata={"help": "... and d_i > epsilon (0 < epsilon < 1)"}
    )
    dominant_cut: ChoiceEnum(CUT_MODES) = field(
        default=DEFAULT_CUT,
        metadata={"help": "cut the sorted distribution at the last or the first significant drop"},
    )
    positive_weight: float = field(
        default=1.0,
        metadata={
            "help": "weight of the reference's term -log σ(z_y); K (= --num-negatives) "
            "balances it against the K negatives, as the authors' weight_positive=balance"
        },
    )
    ranking_loss_weight: float = field(
        default=0.0,
        metadata={
            "help": "λ of the ranking term Σ_d max(0, z_d - z_y + margin) over the "
            "position's dominant tokens d other than the reference (0: off)"
        },
    )
    ranking_margin: float = field(default=0.0, metadata={"help": "margin m of the ranking term"})
    negative_dedup: bool = field(
        default=False,
        metadata={
            "help": "count a token drawn twice at a position (by two samplers) once, as the "
            "authors' code does (default: every draw counts)"
        },
    )


@register_criterion("nce_dominant", dataclass=NceDominantConfig)
class NceDominantCriterion(FairseqCriterion):
    def __init__(
        self,
        task,
        num_negatives,
        negative_sampler,
        sampling_temperature,
        avoid_dominant,
        no_avoid_dominant,
        dominant_p_jump,
        dominant_epsilon,
        dominant_cut,
        positive_weight=1.0,
        ranking_loss_weight=0.0,
        ranking_margin=0.0,
        negative_dedup=False,
    ):
        super().__init__(task)
        if avoid_dominant and no_avoid_dominant:
            raise QEUserError("--avoid-dominant and --no-avoid-dominant contradict each other")
        check_range("--num-negatives", num_negatives, low=1)
        check_range(
            "--sampling-temperature", sampling_temperature, low=0, low_open=True, high_open=True
        )
        check_rule(dominant_p_jump, dominant_epsilon, "--dominant-")
        try:
            self.samplers = parse_sampler_spec(negative_sampler, num_negatives)
        except ValueError as exc:
            raise QEUserError(f"--negative-sampler: {exc}") from exc
        check_range("--positive-weight", positive_weight, low=0, low_open=True)
        check_range(
            "--ranking-loss-weight", ranking_loss_weight, low=0, meaning="0: no ranking term"
        )
        check_range("--ranking-margin", ranking_margin, low=0)
        self.temperature = sampling_temperature
        self.avoid_dominant = not no_avoid_dominant
        self.positive_weight = positive_weight
        self.negative_dedup = bool(negative_dedup)
        self.ranking_weight, self.ranking_margin = ranking_loss_weight, ranking_margin
        self.needs_dominant = self.avoid_dominant or ranking_loss_weight > 0
        self.needs_softmax = any(n == "softmax" for n, _ in self.samplers)
        self.dominant_options = dict(
            p_jump=dominant_p_jump, epsilon=dominant_epsilon, cut=str(dominant_cut)
        )
        dictionary = task.target_dictionary
        self.padding_idx = dictionary.pad()
        self.special_ids = sorted(
            {dictionary.bos(), dictionary.pad(), dictionary.eos(), dictionary.unk()}
        )
        self.register_buffer(
            "uniform_probs",
            uniform_distribution(len(dictionary), [dictionary.pad()]),
            persistent=False,
        )
        counts = dictionary.count
        if any(name == "token_freq" for name, _ in self.samplers):
            counts = target_side_counts(task)
            if counts is None:
                logger.warning(
                    "token_freq: no binarized train split of the target side found; "
                    "using the target dictionary's counts"
                )
                counts = dictionary.count
        self.register_buffer(
            "frequency_probs",
            token_frequency_distribution(counts, self.special_ids),
            persistent=False,
        )
        self._check_negatives_fit(num_negatives)
        self._update_seed, self._micro_batch = None, 0

    def _check_negatives_fit(self, num_negatives):
        """Refuse a k that some sampler cannot draw at any position (it would otherwise fill
        its share with every token it has, after a slow search)."""
        capacity = {
            "random": negatives_capacity(self.uniform_probs),
            "softmax": negatives_capacity(self.uniform_probs),  # every token but padding
            "token_freq": negatives_capacity(self.frequency_probs),
        }
        shares = [(name, count, capacity[name]) for name, count in self.samplers]
        for name, count, most in shares:
            if count > most:
                largest = largest_split([most for _, _, most in shares])
                raise QEUserError(
                    f"--num-negatives {num_negatives} does not fit: the {name} sampler's share "
                    f"is {count} negatives per position but it can draw only {most} (tokens "
                    f"it gives a non-zero probability, less the reference); use "
                    f"--num-negatives {largest} or less"
                )

    def _generator(self, device):
        """The negatives' generator of this micro-batch: :func:`negatives_seed` of fairseq's
        per-update seed (``--seed`` + updates done, which the trainer gives torch before each
        update) and the micro-batch's place in the update over all data-parallel ranks. So
        each rank draws other negatives, a resumed run draws what the uninterrupted one drew,
        and N ranks draw what one process with N times the ``--update-freq`` draws on the same
        batches."""
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if distributed else 0
        world = torch.distributed.get_world_size() if distributed else 1
        update_seed = torch.initial_seed()
        if update_seed != self._update_seed:
            self._update_seed, self._micro_batch = update_seed, 0
        else:
            self._micro_batch += 1
        generator = torch.Generator(device=device)
        generator.manual_seed(negatives_seed(update_seed, self._micro_batch * world + rank))
        return generator

    def _negatives(self, reference, softmax_probs, dominant, generator):
        distributions = {
            "random": self.uniform_probs,
            "token_freq": self.frequency_probs,
            "softmax": softmax_probs,
        }
        parts, masks = [], []
        for name, count in self.samplers:
            tokens, valid = sample_negatives(
                count, reference, distributions[name], dominant, generator
            )
            parts.append(tokens)
            masks.append(valid)
        negatives, valid = torch.cat(parts, dim=1), torch.cat(masks, dim=1)
        if self.negative_dedup:
            valid = deduplicate_negatives(negatives, valid)
        return negatives, valid

    def forward(self, model, sample, reduce=True):
        """Dense work runs on all positions as they lie, in the frozen forward's own
        [positions x V] logits (no other tensor of that size: the dominant sets are read off
        the logits, which then become the softmax sampler's weights in place); padding
        positions are dropped from the loss afterwards."""
        if not hasattr(model, "qe_logits"):
            raise QEUserError("criterion nce_dominant needs --arch sigmoid_head_transformer")
        features, logits = model.frozen_forward(**sample["net_input"])
        target = sample["target"].reshape(-1)
        logits = logits.view(target.numel(), -1)
        keep = target.ne(self.padding_idx)
        with torch.no_grad():
            softmax_probs, dominant, stats = None, None, None
            if self.needs_dominant or self.needs_softmax:
                stats = row_log_partition(logits)
            if self.needs_dominant:
                dominant = dominant_sets(logits, **self.dominant_options, log_partition=stats[1])
            if self.needs_softmax:
                in_place = logits if logits.dtype == torch.float else None
                softmax_probs, _ = softmax_weights(
                    logits, self.temperature, [self.padding_idx], out=in_place, stats=stats
                )
            negatives, valid = self._negatives(
                target,
                softmax_probs,
                dominant if self.avoid_dominant else None,
                self._generator(target.device),
            )
            reference, negatives, valid = target[keep], negatives[keep], valid[keep]
            dominant_count = dominant[1][keep].sum() if dominant is not None else 0
            candidates = [reference.unsqueeze(1), negatives]
            if self.ranking_weight > 0:
                rivals = dominant[0][keep]
                rival_mask = dominant[1][keep] & rivals.ne(reference.unsqueeze(1))
                candidates.append(rivals)
        hidden = features.reshape(target.numel(), -1)[keep]
        z = model.qe_logits(hidden, torch.cat(candidates, dim=1)).float()
        k = negatives.size(1)
        z_negatives = z[:, 1 : 1 + k]
        loss = (
            -self.positive_weight * F.logsigmoid(z[:, 0]).sum()
            - (F.logsigmoid(-z_negatives) * valid).sum()
        )
        ranking = 0
        if self.ranking_weight > 0:
            margins = z[:, 1 + k :] - z[:, :1] + self.ranking_margin
            ranking = (F.relu(margins) * rival_mask).sum()
            loss = loss + self.ranking_weight * ranking
        sample_size = reference.numel()
        with torch.no_grad():
            sig = torch.sigmoid(z[:, : 1 + k])
            logging_output = {
                "loss": loss.data,
                "ntokens": sample["ntokens"],
                "nsentences": sample["target"].size(0),
                "sample_size": sample_size,
                "positive_sigmoid": sig[:, 0].sum().data,
                "negative_sigmoid": (sig[:, 1:] * valid).sum().data,
                "negatives": valid.sum().data,
                "dominant_tokens": dominant_count,
                "ranking": ranking.data if torch.is_tensor(ranking) else ranking,
            }
        return loss, sample_size, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        sample_size = total("sample_size")
        positions = max(sample_size, 1)
        metrics.log_scalar("loss", total("loss") / positions, sample_size, round=4)
        metrics.log_scalar(
            "sigmoid_pos", total("positive_sigmoid") / positions, sample_size, round=4
        )
        metrics.log_scalar(
            "sigmoid_neg",
            total("negative_sigmoid") / max(total("negatives"), 1),
            sample_size,
            round=4,
        )
        metrics.log_scalar(
            "dominant_size", total("dominant_tokens") / positions, sample_size, round=3
        )
        if any(log.get("ranking", 0) for log in logging_outputs):
            metrics.log_scalar("ranking", total("ranking") / positions, sample_size, round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
