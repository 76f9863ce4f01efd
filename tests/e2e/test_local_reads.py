"""Short-circuit local reads in `wharf up` (issue 12): the gateway reads the chunk files of the
chunkservers in its own process from their stores (verified, then sendfile) instead of over
loopback HTTP.

- a multi-chunk blob pulls byte-identical, every chunk served locally (the chunkservers' own
  GET counters do not move);
- with one copy of every chunk corrupted on disk, pulls stay byte-identical (the bad copy is
  caught before any of its bytes are sent, and the other copy serves), counted as corrupt;
- `--local-reads off` reads over HTTP as before.

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_local_reads.py
"""

import hashlib
import os

import requests

import cluster as wc
from gateway_env import MiB
from gateway_env import make_gw_cluster  # noqa: F401 - a fixture

CHUNK = MiB
SIZE = 5 * MiB + 123  # six chunks, the last one short


def push_blob(addr: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(wc.url(addr, f"/v2/{repo}/blobs/uploads/"), timeout=30)
    assert r.status_code == 202, (r.status_code, r.text)
    loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = wc.url(addr, loc)
    sep = "&" if "?" in loc else "?"
    r = requests.put(f"{loc}{sep}digest={digest}", data=data,
                     headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert r.status_code == 201, (r.status_code, r.text)
    return digest


def pull_sha256(addr: str, repo: str, digest: str) -> str:
    h = hashlib.sha256()
    with requests.get(wc.url(addr, f"/v2/{repo}/blobs/{digest}"), stream=True, timeout=60) as r:
        assert r.status_code == 200, (r.status_code, r.text)
        for piece in r.iter_content(1 << 16):
            h.update(piece)
    return "sha256:" + h.hexdigest()


def metrics(addr: str) -> dict:
    r = wc.http_get(addr, "/metrics")
    r.raise_for_status()
    return wc.parse_metrics(r.text)


def local(m: dict, outcome: str) -> float:
    return m.get(f'wharf_gateway_local_reads_total{{outcome="{outcome}"}}', 0.0)


def chunk_files(data_dir) -> dict:
    """chunk id -> [paths of its files] over the chunkservers of a `wharf up` data dir."""
    out: dict = {}
    for member in sorted(data_dir.iterdir()):
        root = member / "chunks"
        if not root.is_dir():
            continue
        for sub in root.iterdir():
            for f in sub.iterdir():
                out.setdefault(f.name, []).append(f)
    return out


def flip_byte(path, offset: int):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def start_up(c, *extra):
    up = c.add_up(start=False)
    up.opts["extra"] = ["--chunk-size", "1MiB", "--reserve", "64MiB", *extra]
    up.start(timeout=40)
    return up


def test_pull_is_served_locally_and_survives_a_corrupt_copy(make_gw_cluster):
    c = make_gw_cluster("local")
    up = start_up(c)
    data = os.urandom(SIZE)
    digest = push_blob(up.addr, "team/local", data)
    before = metrics(up.addr)
    assert pull_sha256(up.addr, "team/local", digest) == digest
    after = metrics(up.addr)
    chunks = (SIZE + CHUNK - 1) // CHUNK
    assert local(after, "served") - local(before, "served") == chunks, after
    # Not one chunk GET reached a chunkserver: the bytes came from their stores.
    assert after.get("wharf_chunkserver_gets_total", 0) == \
        before.get("wharf_chunkserver_gets_total", 0)

    # One copy of every chunk of the blob corrupted on disk, early in its data (a streamed read
    # would have sent those bytes before its checksum could tell).
    files = chunk_files(up.data_dir)
    copies = [paths for paths in files.values() if len(paths) == 2]
    assert len(copies) >= chunks, files
    for paths in copies:
        flip_byte(sorted(paths)[0], 32 + 10)
    failures = after.get("wharf_gateway_read_failures_total", 0)
    for _ in range(3):  # reads alternate between the copies: some start with a bad one
        assert pull_sha256(up.addr, "team/local", digest) == digest
    end = metrics(up.addr)
    assert local(end, "corrupt") - local(after, "corrupt") >= 1, end
    assert local(end, "served") - local(after, "served") == 3 * chunks, end
    assert end.get("wharf_gateway_read_failures_total", 0) == failures  # no answer was cut
    assert end.get("wharf_chunkserver_gets_total", 0) == after.get("wharf_chunkserver_gets_total", 0)


def test_local_reads_off_reads_over_http(make_gw_cluster):
    c = make_gw_cluster("http")
    up = start_up(c, "--local-reads", "off")
    data = os.urandom(3 * MiB + 7)
    digest = push_blob(up.addr, "team/http", data)
    before = metrics(up.addr)
    assert pull_sha256(up.addr, "team/http", digest) == digest
    after = metrics(up.addr)
    assert local(after, "served") == 0
    assert after.get("wharf_chunkserver_gets_total", 0) - \
        before.get("wharf_chunkserver_gets_total", 0) >= 4
