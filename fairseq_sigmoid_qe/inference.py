"""Translate binarized data with the frozen model and score every hypothesis with QE (read off
the search)."""
from argparse import Namespace

from fairseq import checkpoint_utils, utils

from . import register_fairseq_components
from .errors import QEUserError
from .search_capture import SearchCapture, hypothesis_records

register_fairseq_components()  # loading a head checkpoint needs the registered architecture


def load_head_model(path, data_dir=None):
    """A trained sigmoid-head checkpoint and its task (dictionaries from ``data_dir``)."""
    overrides = {"data": data_dir} if data_dir else None
    try:
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [path], arg_overrides=overrides)
    except OSError as exc:  # fairseq raises IOError("Model file not found: ...")
        raise QEUserError(f"cannot load checkpoint {path}: {exc}") from exc
    model = models[0]
    if not hasattr(model, "qe_logits"):
        raise QEUserError(f"{path} has no sigmoid head (train one with --arch sigmoid_head_transformer)")
    model.eval()
    return model, task


def translate_and_score(model, task, subset, beam=5, max_tokens=4000, include_eos=False):
    """Beam-search the subset with the unchanged softmax model; QE for each best hypothesis."""
    task.load_dataset(subset)
    dataset = task.dataset(subset)
    generator = task.build_generator([model], Namespace(beam=beam, max_len_b=200))
    iterator = task.get_batch_iterator(
        dataset=dataset, max_tokens=max_tokens,
        max_positions=utils.resolve_max_positions(task.max_positions(), model.max_positions()),
    ).next_epoch_itr(shuffle=False)
    src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
    results = []
    for sample in iterator:
        with SearchCapture(model) as capture:
            hypos = task.inference_step(generator, [model], sample)
        best = [h[0]["tokens"] for h in hypos]
        records = hypothesis_records(model, sample, range(len(best)), best, tgt_dict, capture,
                                     [h[0]["positional_scores"] for h in hypos],
                                     include_eos=include_eos, word_level=False)
        for i, record in enumerate(records):
            record.pop("word_scores")
            sample_id = int(sample["id"][i])
            record["id"] = sample_id
            record["source"] = src_dict.string(utils.strip_pad(sample["net_input"]["src_tokens"][i], src_dict.pad()))
            record["reference"] = tgt_dict.string(utils.strip_pad(sample["target"][i], tgt_dict.pad()))
            record["hypothesis"] = tgt_dict.string(best[i])
            results.append(record)
    results.sort(key=lambda r: r["id"])
    return results
