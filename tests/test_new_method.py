"""Adding a QE method is one module with a ``@register_method`` class (docs/architecture.md,
"Add a method"): a toy method registered here is taken by --qe-methods' parser and shows up,
with the numbers its formula gives, in the records of both scoring paths (read off the search
and force-decoded)."""

import math
from argparse import Namespace
from dataclasses import replace

import pytest

from fairseq_sigmoid_qe.core.qe_methods import METHODS, QEMethod, parse_methods, register_method
from fairseq_sigmoid_qe.core.qe_methods.base import TOKEN_LOG_PROB
from fairseq_sigmoid_qe.core.qe_options import QEOptions

pytestmark = pytest.mark.integration
TOY = "toy_squared_softmax"


@pytest.fixture
def toy_method():
    """A toy method, p(y_t)² (higher is better, in [0, 1]), registered for one test."""

    @register_method
    class SquaredSoftmax(QEMethod):
        name = TOY
        needs = (TOKEN_LOG_PROB,)

        def token_scores(self, stats):
            return (2 * stats[TOKEN_LOG_PROB]).exp()

    try:
        yield METHODS[TOY]
    finally:
        METHODS.pop(TOY, None)


def test_registering_checks_name_and_statistics(toy_method):
    assert parse_methods(f"softmax,{TOY}") == ("softmax", TOY)
    assert not toy_method.monte_carlo and toy_method.higher_is_better
    assert toy_method.score_range == (0.0, 1.0)
    with pytest.raises(ValueError, match="needs a new name"):
        register_method(type("Again", (QEMethod,), {"name": TOY}))
    with pytest.raises(ValueError, match="unknown statistics"):
        register_method(type("Odd", (QEMethod,), {"name": "odd", "needs": ("logits_of_mars",)}))
    assert "odd" not in METHODS


def test_the_docs_example_method_registers_and_computes():
    """The example class of docs/architecture.md ("Add a method"), run as written (its
    relative imports made absolute), on hand-made statistics."""
    import os
    import re

    import torch
    from conftest import REPO

    from fairseq_sigmoid_qe.core.qe_methods import method_token_scores
    from fairseq_sigmoid_qe.core.qe_methods.base import DOMINANT

    page = open(os.path.join(REPO, "docs", "architecture.md"), encoding="utf-8").read()
    section = page[page.index("## Add a method") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace("from .base import", "from fairseq_sigmoid_qe.core.qe_methods.base import")
    try:
        exec(compile(code, "docs/architecture.md", "exec"), {})
        method = METHODS["dominant_margin"]
        assert method.needs == (TOKEN_LOG_PROB, DOMINANT) and method.higher_is_better
        p = torch.tensor([[0.5, 0.2, 0.9]])
        stats = {
            "mask": torch.tensor([[True, True, False]]),
            TOKEN_LOG_PROB: p.log(),
            DOMINANT: (torch.tensor([[True, False, True]]), torch.tensor([[0.8, 0.8, 0.95]])),
        }
        scores = method_token_scores(("dominant_margin",), stats)["dominant_margin"]
        torch.testing.assert_close(scores, torch.tensor([[0.5 / 0.8, 0.2, 0.0]]))
    finally:
        METHODS.pop("dominant_margin", None)


@pytest.fixture(scope="module")
def head_model(real_data_bin, trained_head):
    from fairseq_sigmoid_qe.api import load_head_model

    return load_head_model(str(trained_head[0] / "checkpoint_last.pt"), real_data_bin)


def test_a_registered_method_is_in_the_records_of_both_paths(toy_method, head_model):
    from fairseq_sigmoid_qe.decoding.recording import hypothesis_records
    from fairseq_sigmoid_qe.decoding.search_loop import generate_with_qe

    model, task = head_model
    saved = task.qe_options
    task.qe_options = replace(saved, methods=("softmax", TOY))
    try:
        task.load_dataset("test")
        sample, hypos = next(
            generate_with_qe(
                task, model, task.dataset("test"), Namespace(beam=3, max_len_b=40), 300
            )
        )
    finally:
        task.qe_options = saved
    searched = [beams[0]["qe"] for beams in hypos]
    rows = list(range(len(hypos)))
    forced = hypothesis_records(
        model,
        sample,
        rows,
        [beams[0]["tokens"] for beams in hypos],
        task.target_dictionary,
        options=QEOptions(methods=("softmax", TOY)),
    )
    assert len(searched) == len(forced) > 1
    for read, again in zip(searched, forced):
        assert list(read["sentence_scores"]) == ["softmax", TOY]
        assert list(read["token_scores"]) == ["softmax", TOY]
        squared = [p * p for p in read["token_scores"]["softmax"]]
        assert read["token_scores"][TOY] == pytest.approx(squared, rel=1e-5, abs=1e-9)
        assert again["token_scores"][TOY] == pytest.approx(squared, rel=1e-3, abs=1e-6)
        log_softmax = read["sentence_log_scores"]["softmax"]
        assert read["sentence_log_scores"][TOY] == pytest.approx(2 * log_softmax, rel=1e-5)
        assert read["sentence_scores"][TOY] == pytest.approx(math.exp(2 * log_softmax))
        assert read["word_scores"][TOY] is not None
