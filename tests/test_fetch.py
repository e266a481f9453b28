"""examples/common/fetch.py: resume with HTTP Range, checksums, trust on first use (a local
HTTP server in the test; nothing is downloaded from the internet)."""

import hashlib
import http.server
import json
import os
import sys
import threading

import pytest
from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "examples", "common"))

import fetch  # noqa: E402

from fairseq_sigmoid_qe.core.errors import QEUserError  # noqa: E402

pytestmark = pytest.mark.unit

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes


class Server:
    """Serves ``files`` ({path: bytes}); honours ``Range: bytes=N-`` unless ``ranges`` is
    False; the first ``drops`` responses close the connection after ``drop_after`` bytes."""

    def __init__(self):
        self.files, self.ranges, self.drops, self.drop_after = {}, True, 0, 0
        self.requests = []  # (path, Range header or None, bytes sent)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                asked = self.headers.get("Range")
                start = int(asked[len("bytes=") : -1]) if asked and server.ranges else 0
                if start >= len(body) and asked and server.ranges:
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    server.requests.append((self.path, asked, 0))
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                chunk = body[start:]
                if server.drops:
                    server.drops -= 1
                    chunk = chunk[: server.drop_after]
                server.requests.append((self.path, asked, len(chunk)))  # before the client has it
                self.wfile.write(chunk)
                self.wfile.flush()
                if len(chunk) < len(body) - start:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    serving = Server()
    serving.files["/data.bin"] = PAYLOAD
    yield serving
    serving.close()


def quiet(*args):
    pass


def get(url, dest, **options):
    return fetch.fetch(url, str(dest), log=quiet, retry_wait_s=0, **options)


MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_with_published_checksums(server, tmp_path):
    get(server.url("/data.bin"), tmp_path / "a.bin", md5=MD5)
    get(server.url("/data.bin"), tmp_path / "b.bin", sha256=SHA256)
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes() == PAYLOAD
    assert not list(tmp_path.glob("*.part"))


def test_dropped_connection_resumes_with_range(server, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "CHUNK", 1000)
    server.drops, server.drop_after = 2, 3000
    get(server.url("/data.bin"), tmp_path / "a.bin", md5=MD5)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert [(r, n) for _, r, n in server.requests] == [
        (None, 3000),
        ("bytes=3000-", 3000),
        ("bytes=6000-", len(PAYLOAD) - 6000),
    ]


def test_a_part_file_left_by_a_killed_run_is_continued(server, tmp_path):
    dest = tmp_path / "a.bin"
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:4096])
    get(server.url("/data.bin"), dest, sha256=SHA256)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/data.bin", "bytes=4096-", len(PAYLOAD) - 4096)]


def test_a_complete_part_file_is_checked_and_kept(server, tmp_path):
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD)
    get(server.url("/data.bin"), tmp_path / "a.bin", md5=MD5)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert [code for _, _, code in server.requests] == [0]  # the 416 answer: nothing sent


def test_server_without_range_support_starts_over(server, tmp_path):
    server.ranges = False
    (tmp_path / "a.bin.part").write_bytes(b"stale bytes of another file")
    get(server.url("/data.bin"), tmp_path / "a.bin", md5=MD5)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_removes_the_download(server, tmp_path):
    dest = tmp_path / "a.bin"
    with pytest.raises(QEUserError, match=f"md5 {MD5}, expected 0+; the download was removed"):
        get(server.url("/data.bin"), dest, md5="0" * 32)
    assert not dest.exists() and not (tmp_path / "a.bin.part").exists()


def test_existing_file_is_checked_and_never_overwritten(server, tmp_path):
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"not the payload")
    with pytest.raises(QEUserError, match="existing file"):
        get(server.url("/data.bin"), dest, md5=MD5)
    assert dest.read_bytes() == b"not the payload" and not server.requests


def test_trust_on_first_use_records_then_enforces(server, tmp_path):
    lock = tmp_path / "sha256.lock.json"
    url = server.url("/data.bin")
    get(url, tmp_path / "first.bin", lock_path=str(lock))
    assert json.loads(lock.read_text()) == {url: {"sha256": SHA256, "size": len(PAYLOAD)}}
    get(url, tmp_path / "again.bin", lock_path=str(lock))  # same bytes: accepted
    server.files["/data.bin"] = PAYLOAD[::-1]  # the file changed upstream
    with pytest.raises(QEUserError, match="expected " + SHA256):
        get(url, tmp_path / "changed.bin", lock_path=str(lock))
    assert not (tmp_path / "changed.bin").exists()


def test_missing_file_is_one_clear_error(server, tmp_path):
    with pytest.raises(QEUserError, match=r"cannot fetch .*/nope\.bin: Not Found; see RAW_DIR"):
        get(server.url("/nope.bin"), tmp_path / "x", md5=MD5, hint="; see RAW_DIR")


def test_file_urls_resume_too(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    (tmp_path / "copy.bin.part").write_bytes(PAYLOAD[:100])
    get(source.as_uri(), tmp_path / "copy.bin", md5=MD5)
    assert (tmp_path / "copy.bin").read_bytes() == PAYLOAD
