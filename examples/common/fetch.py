"""Resumable, checksummed downloads for the reproduction recipes.

    python examples/common/fetch.py URL DEST [--md5 HEX | --sha256 HEX] [--lock LOCK.json]

A download goes to ``DEST.part``; an interrupted one (a dropped connection, a killed run)
continues from where it stopped with an HTTP ``Range`` request (``file://`` URLs: from that
byte of the file), and only a complete file whose checksum matches is renamed to ``DEST``.
The checksum is the published one (``--md5``/``--sha256``); a file without one is trusted on
first use: its sha256 is recorded in ``--lock`` and every later download of that URL must
match it. An existing ``DEST`` is checked the same way and never overwritten.
"""

import argparse
import hashlib
import http.client
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from fairseq_sigmoid_qe.core.errors import QEUserError, install_excepthook  # noqa: E402

CHUNK = 1 << 20
ATTEMPTS = 5
TIMEOUT_S = 60


def file_digest(path, algorithm):
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def read_lock(lock_path):
    """{url: {"sha256": hex, "size": bytes}} of a lock file (empty when there is none)."""
    if not lock_path or not os.path.exists(lock_path):
        return {}
    try:
        with open(lock_path, encoding="utf-8") as stream:
            entries = json.load(stream)
    except (OSError, ValueError) as exc:
        raise QEUserError(f"cannot read the checksum lock {lock_path}: {exc}") from None
    if not isinstance(entries, dict):
        raise QEUserError(f"{lock_path} is not a checksum lock (a JSON object of URLs)")
    return entries


def record_lock(lock_path, url, sha256, size):
    """Add ``url``'s sha256 to the lock file (written to a .part file, then renamed)."""
    entries = read_lock(lock_path)
    entries[url] = {"sha256": sha256, "size": size}
    part = lock_path + ".part"
    with open(part, "w", encoding="utf-8") as stream:
        json.dump(entries, stream, indent=2, sort_keys=True)
        stream.write("\n")
    os.replace(part, lock_path)


def expected_checksum(url, md5=None, sha256=None, lock_path=None):
    """(algorithm, hex digest) a download of ``url`` must have, or None (first use)."""
    if md5 and sha256:
        raise QEUserError(f"{url}: give one checksum, --md5 or --sha256")
    if md5:
        return "md5", md5.lower()
    if sha256:
        return "sha256", sha256.lower()
    recorded = read_lock(lock_path).get(url)
    return ("sha256", recorded["sha256"]) if recorded else None


def _open_from(url, offset):
    """(stream, first byte it yields) for ``url`` from byte ``offset``: the server may ignore
    the Range request (then the stream starts at 0)."""
    if url.startswith("file://"):
        path = urllib.request.url2pathname(url[len("file://") :])
        stream = open(path, "rb")
        stream.seek(min(offset, os.path.getsize(path)))
        return stream, stream.tell()
    request = urllib.request.Request(url, headers={"User-Agent": "fairseq-sigmoid-qe-fetch"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing after offset: the part file is complete
            return None, offset
        raise
    if response.status == 206:
        first = response.headers.get("Content-Range", "").split(" ")[-1].split("-")[0]
        if first != str(offset):
            response.close()
            raise OSError(f"the server resumed at byte {first}, not {offset}")
        return response, offset
    return response, 0


def _transfer(url, part):
    """Append ``url``'s remaining bytes to ``part`` (restarting it if the server ignores
    Range); raises on a dropped connection, the bytes so far stay in ``part``."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    stream, start = _open_from(url, offset)
    if stream is None:
        return
    with stream, open(part, "ab" if start else "wb") as out:
        while block := stream.read1(CHUNK):
            out.write(block)
        missing = getattr(stream, "length", None)  # an HTTP body's bytes not received
        if missing:
            raise http.client.IncompleteRead(b"", missing)


def permanent(error):
    """Errors a retry cannot mend: an HTTP error answer, a missing local file, a host name
    that does not resolve (offline)."""
    if isinstance(error, (urllib.error.HTTPError, FileNotFoundError)):
        return True
    return isinstance(error, urllib.error.URLError) and isinstance(error.reason, socket.gaierror)


def _check(path, url, expected, what):
    algorithm, want = expected
    got = file_digest(path, algorithm)
    if got != want:
        raise QEUserError(f"{what} {path} from {url}: {algorithm} {got}, expected {want}")


def fetch(url, dest, md5=None, sha256=None, lock_path=None, hint="", log=print, retry_wait_s=5):
    """Download ``url`` to ``dest`` (see the module docstring); returns ``dest``. A dropped
    connection is resumed up to ``ATTEMPTS`` times; ``hint`` ends the error line."""
    expected = expected_checksum(url, md5, sha256, lock_path)
    if os.path.exists(dest):
        if expected:
            _check(dest, url, expected, "existing file")
        return dest
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    if os.path.exists(part):
        log(f"fetch: resuming {url} at byte {os.path.getsize(part)}")
    else:
        log(f"fetch: {url} -> {dest}")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _transfer(url, part)
            break
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            if permanent(exc) or attempt == ATTEMPTS:
                kept = (
                    f"; {os.path.getsize(part)} bytes kept in {part}"
                    if os.path.exists(part)
                    else ""
                )
                raise QEUserError(f"cannot fetch {url}: {reason}{kept}{hint}") from None
            log(f"fetch: {url}: {reason}; resuming (attempt {attempt + 1} of {ATTEMPTS})")
            time.sleep(retry_wait_s * attempt)
    if expected:
        try:
            _check(part, url, expected, "download")
        except QEUserError as exc:
            os.remove(part)
            raise QEUserError(f"{exc}; the download was removed, run again to retry") from None
    else:
        digest = file_digest(part, "sha256")
        if lock_path:
            record_lock(lock_path, url, digest, os.path.getsize(part))
            log(f"fetch: {url} has no published checksum: sha256 {digest} recorded in {lock_path}")
    os.replace(part, dest)
    return dest


def main(argv=None):
    install_excepthook()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("dest")
    parser.add_argument("--md5", help="the published md5 of the file")
    parser.add_argument("--sha256", help="the published sha256 of the file")
    parser.add_argument(
        "--lock", help="sha256 lock file (trust on first use) for files without one"
    )
    args = parser.parse_args(argv)
    fetch(args.url, args.dest, args.md5, args.sha256, args.lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
