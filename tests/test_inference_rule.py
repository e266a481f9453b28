"""--qe-dominant-* at inference: a non-default dominant rule reaches BoostedProb on both
scoring paths (read off the search, force-decoded)."""

import pytest

from fairseq_sigmoid_qe.core.dominant import DominantRule
from fairseq_sigmoid_qe.core.qe_options import QEOptions

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def head_model(real_data_bin, trained_head):
    from fairseq_sigmoid_qe.api import load_head_model

    return load_head_model(str(trained_head[0] / "checkpoint_last.pt"), real_data_bin)


@pytest.mark.parametrize("dominant_at", ["step", "used_rows"])
def test_an_inference_rule_reaches_both_paths(head_model, dominant_at):
    """Under a non-default rule BoostedProb read off the search equals force-decoding under
    that rule and differs from the default rule's."""
    import torch

    from fairseq_sigmoid_qe.core.dominant import boosted_prob
    from fairseq_sigmoid_qe.core.qe_methods import shift_right
    from fairseq_sigmoid_qe.decoding.recording import (
        RecordingSequenceGenerator,
        hypothesis_records,
    )

    model, task = head_model
    dictionary = task.target_dictionary
    rule = DominantRule(p_jump=0.05, epsilon=0.001, cut="first")
    options = QEOptions(methods=("boostedprob",), dominant=rule, dominant_at=dominant_at)
    generator = RecordingSequenceGenerator(
        [model], dictionary, beam_size=3, max_len_b=40, qe_options=options
    )
    task.load_dataset("test")
    sample = next(
        iter(
            task.get_batch_iterator(dataset=task.dataset("test"), max_sentences=8).next_epoch_itr(
                shuffle=False
            )
        )
    )
    with torch.no_grad():
        hypos = generator.generate([model], sample)
    rows = list(range(len(hypos)))
    tokens = [beams[0]["tokens"] for beams in hypos]
    positional = [beams[0]["positional_scores"] for beams in hypos]
    read = hypothesis_records(
        model, sample, rows, tokens, dictionary, generator.search_record, positional, options
    )
    forced = hypothesis_records(model, sample, rows, tokens, dictionary, options=options)
    default = hypothesis_records(
        model, sample, rows, tokens, dictionary, options=QEOptions(methods=("boostedprob",))
    )
    padded = torch.nn.utils.rnn.pad_sequence(
        tokens, batch_first=True, padding_value=dictionary.pad()
    )
    with torch.no_grad():
        _, logits = model.frozen_forward(
            sample["net_input"]["src_tokens"],
            sample["net_input"]["src_lengths"],
            shift_right(padded, dictionary.eos(), dictionary.pad()),
        )
    direct = boosted_prob(torch.log_softmax(logits.float(), -1), padded, *rule)
    differs = False
    for row, (a, b, c) in enumerate(zip(read, forced, default)):
        n = len(a["token_scores"]["boostedprob"])
        expected = direct[row, :n].tolist()
        assert a["token_scores"]["boostedprob"] == pytest.approx(expected, rel=1e-3, abs=2e-4)
        assert b["token_scores"]["boostedprob"] == pytest.approx(expected, rel=1e-4, abs=1e-6)
        differs |= any(
            abs(x - y) > 1e-4
            for x, y in zip(b["token_scores"]["boostedprob"], c["token_scores"]["boostedprob"])
        )
    assert differs, "the rule changed no BoostedProb score: the test shows nothing"
