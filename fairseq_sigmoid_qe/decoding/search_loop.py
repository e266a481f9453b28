"""The one loop of search + QE over a dataset (beam search or sampling, or
``--score-reference`` scoring of given translations), used by the raw-text API and the
quickstart."""

from argparse import Namespace

from fairseq import utils


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


def translate_and_score(model, task, subset, beam=5, max_tokens=4000):
    """Beam-search the subset with the unchanged softmax model; QE of each best hypothesis,
    with its source, reference and hypothesis (subword pieces), in sample-id order."""
    task.load_dataset(subset)
    src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
    results = []
    for sample, hypos in generate_with_qe(
        task, model, task.dataset(subset), Namespace(beam=beam, max_len_b=200), max_tokens
    ):
        for i, beams in enumerate(hypos):
            record = {k: v for k, v in beams[0]["qe"].items() if k != "word_scores"}
            record["id"] = int(sample["id"][i])
            record["source"] = src_dict.string(
                utils.strip_pad(sample["net_input"]["src_tokens"][i], src_dict.pad())
            )
            record["reference"] = tgt_dict.string(
                utils.strip_pad(sample["target"][i], tgt_dict.pad())
            )
            record["hypothesis"] = tgt_dict.string(beams[0]["tokens"])
            results.append(record)
    results.sort(key=lambda r: r["id"])
    return results
