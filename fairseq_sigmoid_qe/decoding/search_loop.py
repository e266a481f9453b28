"""The one loop of search + QE over a dataset (beam search or sampling, or
``--score-reference`` scoring of given translations), used by the raw-text API and the
quickstart."""

from argparse import Namespace

from fairseq import utils

from ..core.qe_methods.records import build_record, decoding_info
from ..core.words import detokenize


def max_positions(task, model):
    """The (source, target) lengths in tokens that both the task and the model accept."""
    return utils.resolve_max_positions(task.max_positions(), model.max_positions())


def generate_with_qe(task, model, dataset, generation, max_tokens=4000, max_sentences=None):
    """(sample, hypotheses) of each batch of ``dataset`` (at most ``max_tokens`` tokens and
    ``max_sentences`` sentences) in order, searched by the task's generator (``generation``:
    fairseq's generation options, e.g. ``Namespace(beam=5)``, or
    ``Namespace(score_reference=True)`` to score the dataset's targets), the QE of each
    sentence's best (``nbest``) hypotheses in ``hypo["qe"]``; batches go to the model's
    device."""
    generator = task.build_generator([model], generation)
    iterator = task.get_batch_iterator(
        dataset=dataset,
        max_tokens=max_tokens,
        max_sentences=max_sentences,
        max_positions=max_positions(task, model),
        ignore_invalid_inputs=False,
        disable_iterator_cache=True,  # the task would keep every dataset it is given
    ).next_epoch_itr(shuffle=False)
    device = next(model.parameters()).device
    for sample in iterator:
        if device.type != "cpu":
            sample = utils.move_to_cuda(sample, device)
        yield sample, task.inference_step(generator, [model], sample)


def decoding_of(generation, seed=None):
    """The QE record's ``decoding`` field of fairseq generation options (a Namespace or
    fairseq's generation config): forced (``--score-reference``), sampling or beam search."""
    if getattr(generation, "score_reference", False):
        return decoding_info("forced")
    if getattr(generation, "sampling", False):
        top_p = getattr(generation, "sampling_topp", -1.0)
        top_k = getattr(generation, "sampling_topk", -1)
        return decoding_info(
            "sampling",
            samples=getattr(generation, "beam", 5),
            top_p=top_p if top_p > 0 else None,
            top_k=top_k if top_k > 0 else None,
            temperature=getattr(generation, "temperature", 1.0),
            seed=seed,
        )
    return decoding_info("beam", beam=getattr(generation, "beam", 5))


def translate_and_score(
    model, task, subset, beam=5, max_tokens=4000, sampling=False, top_p=None, seed=1
):
    """Beam-search the subset with the unchanged softmax model (``sampling``: sample one
    translation per source, nucleus ``top_p`` if given, torch seeded with ``seed`` first); the
    QE record of each best hypothesis (its source and reference as subword pieces; no word
    scores), in sample-id order."""
    task.load_dataset(subset)
    src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
    generation = Namespace(beam=beam, max_len_b=200)
    if sampling:
        import torch

        torch.manual_seed(seed)
        generation = Namespace(
            beam=1, nbest=1, max_len_b=200, sampling=True, sampling_topp=top_p or -1.0
        )
    results = []
    for sample, hypos in generate_with_qe(
        task, model, task.dataset(subset), generation, max_tokens
    ):
        for i, beams in enumerate(hypos):
            qe = dict(beams[0]["qe"], word_scores=None)
            results.append(
                build_record(
                    qe,
                    id=int(sample["id"][i]),
                    source=src_dict.string(
                        utils.strip_pad(sample["net_input"]["src_tokens"][i], src_dict.pad())
                    ),
                    translation=detokenize(qe["tokens"]),
                    decoding=decoding_of(generation, seed if sampling else None),
                    reference=tgt_dict.string(utils.strip_pad(sample["target"][i], tgt_dict.pad())),
                )
            )
    results.sort(key=lambda r: r["id"])
    return results
