"""The one reader of the user's text files."""

import io

import pytest

from fairseq_sigmoid_qe.core.errors import QEUserError
from fairseq_sigmoid_qe.core.textfiles import iter_lines, read_lines

pytestmark = pytest.mark.unit


def test_lines_without_line_ends(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_text("Öffne\n\nzwei Wörter\n", encoding="utf-8")
    assert read_lines(str(path), "sources") == ["Öffne", "", "zwei Wörter"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"x\r\ny\n")))
    assert read_lines("-", "sources") == ["x", "y"]


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "cannot read sources .*missing"),
        (b"", "sources .* is empty"),
        (b"ok\n\xff\xfe\n", "sources .* is not UTF-8 text: line 2 has the byte 0xff"),
    ],
)
def test_bad_files_are_one_user_error(tmp_path, content, message):
    path = tmp_path / "missing"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(QEUserError, match=message):
        read_lines(str(path), "sources")


def test_iter_lines_streams(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("".join(f"{i}\n" for i in range(1000)))
    lines = iter_lines(str(path), "corpus file")
    assert [next(lines) for _ in range(3)] == ["0", "1", "2"]
