"""The gateway's bounds against clients that hold resources (issue 9, defects 5, 7 and 4):

- one memory budget for every in-flight buffer (--memory-budget): uploads stalled just under a
  chunk boundary do not grow the gateway past it; while it is spent, requests wait for memory
  (back-pressure) and go on once the holders are gone;
- small appends are coalesced: thousands of tiny PATCHes make a chunk, not a chunk each, and
  the bytes a 202 acknowledged survive a kill -9 of the gateway;
- a minimum body rate (--min-body-rate): a client sending a body slowly is cut within the
  window with 408 Request Timeout, a normal one is not.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import select
import socket
import threading
import time
from urllib.parse import urlsplit

import requests

import cluster as wc
from cluster import wait_until
from gateway_env import MiB, proc_status_kib
from gateway_env import make_gw_cluster  # noqa: F401 - a fixture

REPO = "limits/app"


def start(make_gw_cluster, name: str, **gw):
    c = make_gw_cluster(name)
    c.start_topology(masters=1, groups={"g1": 2})
    c.wait_cluster_ready()
    return c, c.add_gateway(**gw)


def rss(gw) -> int:
    return proc_status_kib(gw.pid, "VmRSS") * 1024


def gauge(gw, name: str) -> float:
    return wc.metric(gw.addr, name)


def start_upload(addr: str) -> str:
    """POST /v2/REPO/blobs/uploads/ -> the upload's path."""
    r = requests.post(f"http://{addr}/v2/{REPO}/blobs/uploads/", timeout=10)
    assert r.status_code == 202, r.text
    return urlsplit(r.headers["Location"]).path


class StalledUpload:
    """A request whose body announces `length` bytes, sends `send` of them and then stalls
    (the socket stays open, nothing more is sent) until close()."""

    def __init__(self, addr: str, method: str, path: str, length: int, send: int):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        head = (f"{method} {path} HTTP/1.1\r\nHost: {addr}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n")
        self.sent = 0
        self.cut = threading.Event()  # the server closed the connection
        self.thread = threading.Thread(target=self._send, args=(head.encode(), send), daemon=True)
        self.thread.start()

    def _send(self, head: bytes, n: int):
        try:
            self.sock.sendall(head)
            block = os.urandom(256 * 1024)
            while self.sent < n:
                k = min(len(block), n - self.sent)
                self.sock.sendall(block[:k])
                self.sent += k
            # Stall: wait for the server to answer or close.
            while self.sock.recv(65536):
                pass
            self.cut.set()
        except OSError:
            self.cut.set()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def stall_uploads(gw, n: int, size: int) -> list[StalledUpload]:
    """n uploads that each send `size` bytes and stall: half monolithic POST ?digest=, half
    PATCH of an open session."""
    out = []
    digest = "sha256:" + "0" * 64  # never reached: the bodies never end
    for i in range(n):
        if i % 2:
            out.append(StalledUpload(gw.addr, "PATCH", start_upload(gw.addr), 4 * size, size))
        else:
            out.append(StalledUpload(gw.addr, "POST",
                                     f"/v2/{REPO}/blobs/uploads/?digest={digest}", 4 * size, size))
    return out


def push_blob(addr: str, data: bytes, timeout: float = 120.0) -> requests.Response:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return requests.post(f"http://{addr}/v2/{REPO}/blobs/uploads/?digest={digest}", data=data,
                         headers={"Content-Type": "application/octet-stream"}, timeout=timeout)


# ------------------------------------------------------------------- defect 5: memory budget


def test_stalled_uploads_stay_within_the_memory_budget(make_gw_cluster):
    """48 uploads stalled just under a 4 MiB chunk boundary would hold 192 MiB of chunk
    buffers; under --memory-budget 64MiB the gateway's RSS grows by less than the budget plus
    a margin, the waits are counted, and a normal push goes through once the stalled clients
    are gone (no deadlock, nothing leaked: the budget is all back)."""
    chunk, budget, n = 4 * MiB, 64 * MiB, 48
    c, gw = start(make_gw_cluster, "budget", chunk_size="4MiB",
                  extra=["--memory-budget", "64MiB", "--min-body-rate", "0"])
    assert push_blob(gw.addr, os.urandom(3 * chunk + 5)).status_code == 201  # warm up
    rss0 = rss(gw)
    stalled = stall_uploads(gw, n, chunk - 1)
    try:
        # Every connection has sent what the gateway was willing to read.
        time.sleep(3)
        wait_until(lambda: gauge(gw, "wharf_gateway_memory_in_use_bytes") >= budget - chunk, 30,
                   "the stalled uploads to hold the memory budget")
        time.sleep(2)
        grown = rss(gw) - rss0
        in_use = gauge(gw, "wharf_gateway_memory_in_use_bytes")
        waits = gauge(gw, "wharf_gateway_memory_waits_total")
        print(f"gateway RSS {rss0 / MiB:.0f} MiB -> {(rss0 + grown) / MiB:.0f} MiB with {n} "
              f"stalled uploads ({n * (chunk - 1) / MiB:.0f} MiB sent); budget in use "
              f"{in_use / MiB:.0f} MiB, waits {waits:.0f}")
        assert in_use <= budget
        assert waits >= 1, "no request waited for memory although the budget was spent"
        assert grown < budget + 32 * MiB, (
            f"gateway RSS grew by {grown / MiB:.0f} MiB with {n} stalled uploads, over the "
            f"{budget / MiB:.0f} MiB budget (+32 MiB margin)")

        # A normal push meanwhile waits for memory; it completes once the holders are gone.
        data = os.urandom(3 * chunk + 7)
        done: dict = {}
        t = threading.Thread(target=lambda: done.setdefault("r", push_blob(gw.addr, data)))
        t.start()
        time.sleep(2)
        assert wc.http_get(gw.addr, "/healthz").status_code == 200  # ops are not starved
    finally:
        for s in stalled:
            s.close()
    t.join(60)
    assert "r" in done and done["r"].status_code == 201, done.get("r")
    r = requests.get(f"http://{gw.addr}/v2/{REPO}/blobs/sha256:{hashlib.sha256(data).hexdigest()}",
                     timeout=60)
    assert r.status_code == 200 and r.content == data
    wait_until(lambda: gauge(gw, "wharf_gateway_memory_in_use_bytes") == 0, 30,
               "the memory budget to be all back once the stalled uploads are gone")


# ---------------------------------------------------------- defect 7: small appends coalesced


def patch(addr: str, path: str, offset: int, data: bytes) -> requests.Response:
    return requests.patch(f"http://{addr}{path}", data=data, timeout=30, headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": f"{offset}-{offset + len(data) - 1}"})


def test_tiny_patches_are_coalesced_and_survive_a_gateway_kill(make_gw_cluster):
    """2,000 one-byte PATCHes make one chunk (they made 2,000); the bytes acknowledged before a
    kill -9 of the gateway are there after it (upload status, Range); mixed with a large PATCH
    the blob has as few chunks as its size needs, and reads back byte-identical."""
    chunk = MiB
    c, gw = start(make_gw_cluster, "coalesce", chunk_size="1MiB")
    before = set(c.chunk_files())
    path = start_upload(gw.addr)
    content = bytearray()
    h = hashlib.sha256()

    def send(data: bytes):
        r = patch(gw.addr, path, len(content), data)
        assert r.status_code == 202, r.text
        content.extend(data)
        h.update(data)
        assert r.headers["Range"] == f"0-{len(content) - 1}"

    t0 = time.monotonic()
    for i in range(1000):
        send(bytes([i % 251]))
    c.restart_gateway(gw)  # kill -9 between two PATCHes
    r = requests.get(f"http://{gw.addr}{path}", timeout=10)
    assert r.status_code == 204, r.text
    assert r.headers["Range"] == f"0-{len(content) - 1}", "acknowledged bytes lost in the kill"
    for i in range(1000):
        send(bytes([(i * 7) % 253]))
    print(f"2000 one-byte PATCHes in {time.monotonic() - t0:.1f}s")
    tiny_chunks = set(c.chunk_files()) - before
    assert len(tiny_chunks) == 0, (
        f"2000 one-byte PATCHes wrote {len(tiny_chunks)} chunks; they should wait in the "
        "session for a chunk's worth")

    send(os.urandom(2 * chunk + chunk // 2))  # two whole chunks and a tail
    for i in range(50):
        send(os.urandom(1 + i * 100))
    digest = "sha256:" + h.hexdigest()
    r = requests.put(f"http://{gw.addr}{path}?digest={digest}", timeout=60)
    assert r.status_code == 201, r.text
    new = set(c.chunk_files()) - before
    need = -(-len(content) // chunk)
    print(f"{len(content)} bytes in {len(new)} chunks (at least {need})")
    assert len(new) == need, f"{len(content)} bytes made {len(new)} chunks, {need} would do"
    for cid, copies in c.chunk_files().items():
        if cid in new:
            assert len(copies) == 2, f"chunk {cid} is not on both members"
    r = requests.get(f"http://{gw.addr}/v2/{REPO}/blobs/{digest}", timeout=60)
    assert r.status_code == 200
    assert r.content == bytes(content), "the coalesced blob does not read back byte-identical"


# ------------------------------------------------------------- defect 4: minimum body rate


def dribble_until_answered(s: socket.socket, every: float, most: int):
    """Sends a byte every `every` seconds (at most `most`), watching for an answer between
    them. Returns (seconds until the answer or the cut, the bytes answered: b"" when the
    connection was cut without one)."""
    t0 = time.monotonic()
    got = b""
    for _ in range(most):
        try:
            s.sendall(b"x")
        except OSError:
            break
        ready, _, _ = select.select([s], [], [], every)
        if ready:
            try:
                while True:  # the whole answer: the server closes after it
                    b = s.recv(65536)
                    if not b:
                        break
                    got += b
            except OSError:
                pass
            break
    return time.monotonic() - t0, got


def test_slow_bodies_are_cut_and_normal_ones_are_not(make_gw_cluster):
    """--min-body-rate 10KiB over 2 s: a body dribbled at a few bytes per second is cut within
    the window with 408 Request Timeout and Connection: close (counted, logged), on the OCI
    routes and the file API alike; a body streamed normally, and one sent at 40 KiB/s with
    pauses shorter than the window, complete."""
    c, gw = start(make_gw_cluster, "rate", chunk_size="1MiB",
                  extra=["--min-body-rate", "10KiB", "--min-body-rate-window", "2s"])
    host, port = gw.addr.rsplit(":", 1)
    for what, head in [
            ("PATCH", f"PATCH {start_upload(gw.addr)} HTTP/1.1\r\n"),
            ("POST /files", "POST /files HTTP/1.1\r\n")]:
        s = socket.create_connection((host, int(port)), timeout=30)
        s.sendall(f"{head}Host: {gw.addr}\r\nContent-Length: 1000\r\n"
                  f"Content-Type: application/octet-stream\r\n\r\n".encode())
        cut_after, answer = dribble_until_answered(s, 0.5, 40)  # 2 bytes/s for up to 20 s
        s.close()
        print(f"{what}: a 2 B/s body was cut after {cut_after:.1f}s with {answer[:200]!r}")
        assert cut_after < 6, f"{what}: a 2 B/s body was not cut within the window"
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 408 "), \
            f"{what}: a body too slow was answered {status_line!r}, not 408 Request Timeout"
        head_fields = rest.partition(b"\r\n\r\n")[0].lower()
        assert b"connection: close" in head_fields, f"{what}: 408 without Connection: close"
    assert gauge(gw, "wharf_gateway_http_slow_bodies_total") >= 2
    assert "request body too slow" in gw.log_tail(200)

    # A normal body completes, and so does a slower but sufficient one with short pauses.
    data = os.urandom(5 * MiB)
    assert push_blob(gw.addr, data).status_code == 201
    paced = os.urandom(120 * 1024)
    digest = "sha256:" + hashlib.sha256(paced).hexdigest()
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", f"/v2/{REPO}/blobs/uploads/?digest={digest}")
    conn.putheader("Content-Length", str(len(paced)))
    conn.putheader("Content-Type", "application/octet-stream")
    conn.endheaders()
    for i in range(0, len(paced), 40 * 1024):  # 40 KiB, then a 1 s pause: 3 s in all
        conn.send(paced[i:i + 40 * 1024])
        time.sleep(1)
    resp = conn.getresponse()
    assert resp.status == 201, resp.read()
    conn.close()
    assert gauge(gw, "wharf_gateway_http_slow_bodies_total") == 2


def test_stalled_uploads_release_the_budget_within_the_rate_window(make_gw_cluster):
    """With the minimum body rate on, uploads stalled while holding the whole memory budget
    are cut within the window, so a normal push started meanwhile completes without any
    stalled client giving up."""
    chunk, n = 4 * MiB, 24
    c, gw = start(make_gw_cluster, "budget-rate", chunk_size="4MiB",
                  extra=["--memory-budget", "32MiB", "--min-body-rate", "64KiB",
                         "--min-body-rate-window", "3s"])
    stalled = stall_uploads(gw, n, chunk - 1)
    try:
        wait_until(lambda: gauge(gw, "wharf_gateway_memory_in_use_bytes") >= 24 * MiB, 30,
                   "the stalled uploads to hold the memory budget")
        data = os.urandom(2 * chunk + 3)
        t0 = time.monotonic()
        r = push_blob(gw.addr, data, timeout=60)
        took = time.monotonic() - t0
        print(f"a push behind {n} stalled uploads took {took:.1f}s")
        assert r.status_code == 201, r.text
        assert took < 30
        assert gauge(gw, "wharf_gateway_http_slow_bodies_total") >= 1
        wait_until(lambda: all(s.cut.is_set() for s in stalled), 30,
                   "every stalled upload to be cut")
    finally:
        for s in stalled:
            s.close()
