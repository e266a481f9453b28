"""Token groups: the truth table and the per-group means."""

import math

import pytest

from fairseq_sigmoid_qe.demo.token_groups import GROUPS, format_group_table, group_of, group_table

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "valid,argmax,dominant,expected",
    [
        (1, True, True, "valid_argmax"),
        (1, True, False, "valid_argmax"),
        (1, False, True, "valid_other"),
        (1, False, False, "valid_other"),
        (0, True, True, "wrong_dominant"),
        (0, False, True, "wrong_dominant"),
        (0, True, False, "wrong_other"),
        (0, False, False, "wrong_other"),
    ],
)
def test_group_of(valid, argmax, dominant, expected):
    assert group_of(valid, argmax, dominant) == expected


def test_group_table_counts_and_means():
    tokens = [
        ("valid_other", {"a": 0.2, "b": 1.0}),
        ("valid_other", {"a": 0.4, "b": 0.0}),
        ("wrong_dominant", {"a": 0.9, "b": 0.5}),
    ]
    rows = {row["group"]: row for row in group_table(tokens, ["a", "b"])}
    assert list(rows) == list(GROUPS)
    assert rows["valid_other"]["count"] == 2
    assert rows["valid_other"]["a"] == pytest.approx(0.3) and rows["valid_other"]["b"] == 0.5
    assert rows["wrong_dominant"]["a"] == pytest.approx(0.9)
    assert rows["valid_other"]["a_neglog"] == pytest.approx(-(math.log(0.2) + math.log(0.4)) / 2)
    assert rows["valid_other"]["b_neglog"] == pytest.approx(-math.log(1e-12) / 2)
    assert rows["valid_argmax"]["count"] == 0 and rows["valid_argmax"]["a"] is None
    text = format_group_table(list(rows.values()), ["a", "b"], "title")
    assert text.splitlines()[0] == "title" and "valid_other" in text and " - " in text
    assert text.splitlines()[1].split() == ["group", "count", "a", "-log", "b", "-log"]
