"""End-to-end fault tests of the gateway's chunk path (issue 9): a hung chunkserver, chunks
that no member can serve, upload sessions that outlive their gateway.

Each test makes its own cluster of separate processes (one master, groups g1 and g2 of two
chunkservers, a `wharf gateway` with 1 MiB chunks), so a member can be stopped (SIGSTOP) or
its disk tampered with. A stopped member is always continued (SIGCONT) at the end, even when
the test fails, before the cluster is killed.

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_faults.py
"""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import time

import pytest
import requests

import cluster as wc
from cluster import wait_until
from gateway_env import (MiB, PatternSource, assert_json_error, files_url, start_gw_cluster,
                         stream_upload, upload_ok)
from gateway_env import make_gw_cluster  # noqa: F401 - a fixture

# A hung member must not cost more than this (the gateway's default --member-timeout is 5 s;
# before the deadlines, a pull stalled 120 s and a push 121 s).
BOUND = 15.0


# The hedged-read test: a member deadline far longer than any bound of the test, and a short
# hedge delay, so that only hedging can make the pull fast.
HEDGE_MEMBER_TIMEOUT = 60.0
HEDGE_BOUND = 25.0


def faulty_cluster(wharf_bin, tmp_path, request, extra=()):
    """A fresh cluster; members stopped with stop_member() are continued at teardown."""
    c = start_gw_cluster(wharf_bin, tmp_path / "c", masters=1, groups={"g1": 2, "g2": 2},
                         scrub_interval=3600,
                         gateway={"chunk_size": "1MiB", "extra": list(extra)})
    c.stopped = []
    request.node._wharf_clusters = [c]  # conftest prints its log tails on failure
    yield c
    for cs in c.stopped:
        continue_member(cs)
    c.close()


@pytest.fixture
def faulty(wharf_bin, tmp_path, request):
    yield from faulty_cluster(wharf_bin, tmp_path, request)


@pytest.fixture
def faulty_slow_deadline(wharf_bin, tmp_path, request):
    yield from faulty_cluster(wharf_bin, tmp_path, request,
                              ["--member-timeout", f"{int(HEDGE_MEMBER_TIMEOUT)}s",
                               "--read-hedge", "200ms"])


def stop_member(c, cs):
    c.stopped.append(cs)
    os.kill(cs.popen.pid, signal.SIGSTOP)


def continue_member(cs):
    try:
        os.kill(cs.popen.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def download(addr: str, fid: str, on_read=None, timeout: float = 60.0):
    """GET /files/{id} streamed: (status, sha256 hex, length). on_read(n) after each piece."""
    h = hashlib.sha256()
    n = 0
    with requests.get(files_url(addr, fid), stream=True, timeout=timeout) as r:
        for b in r.iter_content(chunk_size=256 * 1024):
            h.update(b)
            n += len(b)
            if on_read:
                on_read(n)
        return r.status_code, h.hexdigest(), n


def busiest_member(c):
    """The chunkserver holding the most chunk files."""
    counts: dict[str, int] = {}
    for holders in c.chunk_files().values():
        for cs, _ in holders:
            counts[cs.name] = counts.get(cs.name, 0) + 1
    name = max(counts, key=counts.get)
    return next(cs for cs in c.all_chunkservers() if cs.name == name)


def store(addr: str, size: int) -> tuple[str, str]:
    src = PatternSource(size)
    fid = upload_ok(stream_upload(addr, src, size), size)
    return fid, src.hexdigest()


# --------------------------------------------------------------------- a hung chunkserver


def hedged_reads(addr: str) -> dict[str, float]:
    m = wc.parse_metrics(wc.http_get(addr, "/metrics").text)
    return {o: m.get(f'wharf_gateway_hedged_reads_total{{outcome="{o}"}}', 0.0)
            for o in ("hedge_won", "first_won", "failed")}


def test_pull_survives_a_hung_member(faulty_slow_deadline):
    """The member holding most of a 24 MiB object's chunks stops (SIGSTOP) just before the
    object is pulled (the master has not noticed yet, so the gateway still reads from it).
    The gateway's member deadline is 60 s and its hedge delay 200 ms: reads from the stopped
    member are hedged to its peer, and the whole object comes back right, twice, each well
    within the 60 s a single read from the stopped member would wait without hedging; the
    metric counts hedges that won."""
    c = faulty_slow_deadline
    gw = c.gateways[0]
    size = 24 * MiB
    fid, sha = store(gw.addr, size)
    # The victim: the member a pull asks first most often (the read order's rotation follows
    # the chunks' placement, so a member may never be asked first: stopping it proves nothing).
    before = {cs.name: wc.metric(cs.addr, "wharf_chunkserver_gets_total")
              for cs in c.all_chunkservers()}
    status, got, n = download(gw.addr, fid, timeout=60)
    assert status == 200 and got == sha
    served = {cs.name: wc.metric(cs.addr, "wharf_chunkserver_gets_total") - before[cs.name]
              for cs in c.all_chunkservers()}
    victim = next(cs for cs in c.all_chunkservers() if cs.name == max(served, key=served.get))
    stop_member(c, victim)
    for attempt in range(2):
        t0 = time.monotonic()
        try:
            status, got, n = download(gw.addr, fid, timeout=HEDGE_MEMBER_TIMEOUT * 2)
        except requests.RequestException as e:
            pytest.fail(f"read {attempt} died after {time.monotonic() - t0:.1f}s with "
                        f"{victim.name} stopped: {e!r}")
        took = time.monotonic() - t0
        print(f"read {attempt} took {took:.1f}s with {victim.name} stopped; "
              f"hedged reads {hedged_reads(gw.addr)}")
        assert status == 200 and n == size and got == sha, \
            f"read {attempt}: status {status}, {n} of {size} bytes, sha256 ok: {got == sha}"
        assert took < HEDGE_BOUND, \
            (f"read {attempt} took {took:.1f}s with {victim.name} stopped: a read waited for "
             f"the member deadline ({HEDGE_MEMBER_TIMEOUT:.0f}s) instead of being hedged")
    assert hedged_reads(gw.addr)["hedge_won"] >= 1, "no hedge delivered a chunk"
    assert wc.metric(gw.addr, "wharf_gateway_read_aborted_total") == 0


def test_push_survives_a_member_hung_mid_write(faulty):
    """A member of g1 stops (SIGSTOP) while a 24 MiB object is being uploaded: the chunks in
    flight to g1 fail at the member deadline and go to g2, later chunks avoid g1, and the
    upload is acknowledged within a few seconds and reads back right."""
    c = faulty
    gw = c.gateways[0]
    size = 24 * MiB
    victim = c.chunkservers["g1"][0]
    src = PatternSource(size)
    stopped_at = []

    def on_sent(n):
        if n >= 3 * MiB and not stopped_at:
            stop_member(c, victim)
            stopped_at.append(time.monotonic())

    t0 = time.monotonic()
    try:
        res = stream_upload(gw.addr, src, size, on_sent=on_sent, timeout=BOUND * 2)
    except OSError as e:
        pytest.fail(f"the upload died after {time.monotonic() - t0:.1f}s with {victim.name} "
                    f"stopped: {e!r}")
    took = time.monotonic() - t0
    fid = upload_ok(res, size)
    assert stopped_at, "the member was never stopped"
    assert took < BOUND, f"the upload took {took:.1f}s with {victim.name} stopped"
    assert wc.metric(gw.addr, "wharf_gateway_replica_write_failures_total") >= 1
    status, got, n = download(gw.addr, fid, timeout=BOUND * 2)
    assert status == 200 and n == size and got == src.hexdigest()


# ------------------------------------------------------------- no copy of a chunk readable


def chunk_files_of(c, data: bytes, before: dict) -> dict[int, list]:
    """The new chunk files of `data` (stored with 1 MiB chunks), by chunk index: matched by
    content (a 32-byte header, then the chunk's bytes)."""
    out: dict[int, list] = {}
    for cid, holders in c.chunk_files().items():
        if cid in before:
            continue
        for cs, path in holders:
            with open(path, "rb") as f:
                f.seek(32)
                head = f.read(64)
            for i in range(0, (len(data) + MiB - 1) // MiB):
                if data[i * MiB:i * MiB + 64] == head:
                    out.setdefault(i, []).append((cs, path))
    return out


def spoil(path, how: str):
    if how == "delete":
        os.remove(path)
        return
    with open(path, "r+b") as f:
        f.seek(32 + 10)
        b = f.read(1)
        f.seek(32 + 10)
        f.write(bytes([b[0] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())


@pytest.mark.parametrize("how", ["delete", "corrupt"])
def test_unreadable_first_chunk_is_503_json_not_a_cut_200(faulty, how):
    """Every copy of the first chunk of a file and of a blob deleted (or corrupted) on the
    members' disks: GET answers 503 with the error JSON (file API and OCI shapes) before any
    header of a 200 went out; HEAD, which reads no chunk, still answers 200."""
    c = faulty
    gw = c.gateways[0]
    data = os.urandom(3 * MiB + 100)
    before = c.chunk_files()
    r = requests.post(files_url(gw.addr), data=data, timeout=60)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    file_chunks = chunk_files_of(c, data, before)
    # The same bytes as a blob: distinct chunks of their own.
    mid = c.chunk_files()
    r = requests.post(f"http://{gw.addr}/v2/faults/blob/blobs/uploads/", params={"digest": digest},
                      data=data, headers={"Content-Type": "application/octet-stream"},
                      timeout=60)
    assert r.status_code == 201, r.text
    blob_chunks = chunk_files_of(c, data, mid)
    assert len(file_chunks[0]) == 2 and len(blob_chunks[0]) == 2, (file_chunks, blob_chunks)
    for _, path in file_chunks[0] + blob_chunks[0]:
        spoil(path, how)

    g = requests.get(files_url(gw.addr, fid), timeout=BOUND * 2)
    assert_json_error(g, 503, "unavailable", f"GET /files with the first chunk {how}d")
    assert "ETag" not in g.headers
    g = requests.get(f"http://{gw.addr}/v2/faults/blob/blobs/{digest}", timeout=BOUND * 2)
    assert g.status_code == 503, f"GET blob: {g.status_code} {g.text[:300]!r}"
    errors = g.json().get("errors")
    assert isinstance(errors, list) and errors and errors[0].get("code") == "UNAVAILABLE", g.text
    assert "Docker-Content-Digest" not in g.headers and "Cache-Control" not in g.headers
    h = requests.head(f"http://{gw.addr}/v2/faults/blob/blobs/{digest}", timeout=30)
    assert h.status_code == 200 and h.headers.get("Docker-Content-Digest") == digest
    assert wc.metric(gw.addr, "wharf_gateway_read_unavailable_total") == 2


def test_unreadable_later_chunk_cuts_the_body_and_is_counted(faulty):
    """Every copy of the third chunk corrupted: the 200 and the first two chunks went out
    before it was read, so the response is cut (never completed with wrong bytes) and the
    gateway counts it."""
    c = faulty
    gw = c.gateways[0]
    data = os.urandom(3 * MiB + 100)
    before = c.chunk_files()
    r = requests.post(files_url(gw.addr), data=data, timeout=60)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    chunks = chunk_files_of(c, data, before)
    assert len(chunks[2]) == 2, chunks
    for _, path in chunks[2]:
        spoil(path, "corrupt")
    got = b""
    try:
        with requests.get(files_url(gw.addr, fid), stream=True, timeout=BOUND * 2) as g:
            assert g.status_code == 200
            for b in g.iter_content(chunk_size=64 * 1024):
                got += b
    except requests.exceptions.ChunkedEncodingError:
        pass  # the cut noticed by the client (urllib3 may also just end the body short)
    assert len(got) == 2 * MiB and data.startswith(got), f"{len(got)} bytes"
    assert wc.metric(gw.addr, "wharf_gateway_read_failures_total") == 1


# ------------------------------------------------------------------ upload sessions


def test_upload_streaming_longer_than_the_expiry_is_not_killed(make_gw_cluster):
    """--upload-expiry 2s, a collector round every 200 ms, and a 6 MiB upload trickling in over
    ~6 s: the expiry counts from the last bytes received, so the upload is acknowledged and
    reads back."""
    c = make_gw_cluster("expiry", scrub_interval=3600)
    c.start_topology(masters=1, groups={"g1": 2})
    c.wait_cluster_ready()
    gw = c.add_gateway(gc_interval="200ms", extra=["--upload-expiry", "2s"])
    size = 6 * MiB
    src = PatternSource(size, piece=256 * 1024)

    def slowly(n):
        time.sleep(0.25)

    res = stream_upload(gw.addr, src, size, on_sent=slowly, timeout=60)
    fid = upload_ok(res, size)
    status, got, n = download(gw.addr, fid)
    assert status == 200 and n == size and got == src.hexdigest()
    assert wc.metric(gw.addr, "wharf_gateway_gc_uploads_expired_total") == 0


def test_a_crashed_gateways_upload_leftovers_are_collected_within_seconds(make_gw_cluster):
    """A gateway is killed (-9) in the middle of a file upload that had written chunks; a
    gateway on the same metadata store, with --upload-stale 2s, deletes the dead session and
    its chunks from the members within seconds (before: after --upload-expiry, 24 h)."""
    c = make_gw_cluster("stale", scrub_interval=3600)
    c.start_topology(masters=1, groups={"g1": 2})
    c.wait_cluster_ready()
    gw = c.add_gateway(gc_interval="200ms", extra=["--upload-stale", "2s"])
    baseline = c.chunk_count()
    size = 8 * MiB
    src = PatternSource(size)
    written = []

    def crash_after_some_chunks(n):
        if n >= 4 * MiB and not written:
            # The first chunks are on the members once the gateway counted them written.
            wait_until(lambda: wc.metric(gw.addr, "wharf_gateway_chunks_written_total") >= 2,
                       20, "chunks written")
            written.append(c.chunk_count())
            gw.kill9()

    with pytest.raises((OSError, http.client.HTTPException)):
        stream_upload(gw.addr, src, size, on_sent=crash_after_some_chunks, timeout=30)
    assert written and written[0] >= baseline + 4, f"chunks before the crash: {written}"
    gw.start(keep_port=True)
    t0 = time.monotonic()
    wait_until(lambda: c.chunk_count() <= baseline, 30,
               "the dead upload's chunks deleted from every member")
    took = time.monotonic() - t0
    assert took < BOUND, f"collected after {took:.1f}s"
    assert wc.metric(gw.addr, "wharf_gateway_gc_uploads_stale_total") == 1
