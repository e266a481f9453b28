"""One QEOptions object for a run's QE settings; the dominant rule's defaults defined once
(core/dominant.py) and settable at inference (--qe-dominant-*; reaching both scoring paths:
tests/test_inference_rule.py)."""

import ast
import os

import pytest
from conftest import PACKAGE_DIR

from fairseq_sigmoid_qe.core.dominant import DEFAULT_RULE, DominantRule
from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.core.qe_options import QEOptions

pytestmark = pytest.mark.unit


def float_literals(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, float)
    }


def test_the_rule_defaults_are_written_once():
    """0.3 and 0.005 appear as literals in core/dominant.py only (training's --dominant-* and
    inference's --qe-dominant-* take them from there)."""
    holders = []
    for root, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                if {0.3, 0.005} & float_literals(path):
                    holders.append(os.path.relpath(path, PACKAGE_DIR))
    assert holders == [os.path.join("core", "dominant.py")]
    assert tuple(DEFAULT_RULE) == (0.3, 0.005, "last")


def test_task_options_become_one_qe_options():
    from fairseq_sigmoid_qe.tasks.translation_qe import TranslationQEConfig, options_of

    cfg = TranslationQEConfig(
        qe_methods="entropy,mc_dropout",
        qe_mc_samples=4,
        qe_include_eos=True,
        qe_sentence_agg="min",
        qe_dominant_p_jump=0.5,
        qe_dominant_epsilon=0.01,
        qe_dominant_cut="first",
        qe_dominant_at="step",
    )
    cfg.seed = 9
    options = options_of(cfg)
    assert options == QEOptions(
        methods=("entropy", "mc_dropout"),
        include_eos=True,
        sentence_agg="min",
        mc_samples=4,
        seed=9,
        dominant=DominantRule(0.5, 0.01, "first"),
        dominant_at="step",
    )
    assert options.record_options() == dict(
        include_eos=True, sentence_agg="min", word_agg="min", word_level=True
    )
    default = TranslationQEConfig()
    default.seed = 1
    assert options_of(default) == QEOptions()


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("qe_dominant_p_jump", 1.0, "--qe-dominant-p-jump 1.0 is out of range"),
        ("qe_dominant_p_jump", 0.0, "--qe-dominant-p-jump 0.0 is out of range"),
        ("qe_dominant_epsilon", float("nan"), "--qe-dominant-epsilon nan is out of range"),
    ],
)
def test_bad_rule_at_inference_is_refused(option, value, message):
    from fairseq_sigmoid_qe.tasks.translation_qe import TranslationQEConfig, options_of

    cfg = TranslationQEConfig(**{option: value})
    cfg.seed = 1
    with pytest.raises(QEUserError, match=message):
        options_of(cfg)


def test_qe_options_refuse_unknown_aggregations():
    with pytest.raises(ValueError, match="sentence aggregation"):
        QEOptions(sentence_agg="max")
    with pytest.raises(ValueError, match="dominant_at"):
        QEOptions(dominant_at="never")
