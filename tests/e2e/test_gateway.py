"""End-to-end tests of the gateway: the file API, the file CLI and `wharf up` (issue 3).

Topology of the shared cluster (module scope, tests run in file order): one master, groups g1
and g2 of two chunkservers each (heartbeat 0.5 s, scrubber effectively off: interval 1 h, so a
corrupted copy stays corrupt), and a gateway (`wharf gateway`, its own process) with 1 MiB
chunks and a 1 s GC interval. Tests that kill members, need an unwritable cluster or run
`wharf up` make their own.

Large contents are never held in memory whole: they are generated piecewise (PatternSource or
a temp file of os.urandom bytes) and compared by streaming SHA-256.

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_gateway.py
"""

import hashlib
import os
import pty
import select
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

import cluster as wc
from cluster import free_port, wait_until
from gateway_env import (GiB, MiB, ID_RE, PatternSource, assert_json_error, assert_reads_back,
                         check_post_body, cli_put, files_url, one_error_line, post_file,
                         random_file, run_wharf, sha256_file, start_gw_cluster, stream_upload,
                         upload_ok, _remove_chunk_data)
from gateway_env import make_gw_cluster  # noqa: F401 - a fixture

CHUNK = MiB  # the shared gateway's --chunk-size
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1]

# Everything stored through the shared gateway and not deleted: id -> (sha256 hex, size).
# test_restart_gateway reads all of it back.
STORED: dict[str, tuple[str, int]] = {}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def shared_cluster(wharf_bin, tmp_path_factory):
    """The module's cluster. (Named like conftest's fixture, which it overrides here, so that
    conftest's failure hook prints this cluster's log tails, the gateway's included.)"""
    c = start_gw_cluster(wharf_bin, tmp_path_factory.mktemp("gwshared"), masters=1,
                         groups={"g1": 2, "g2": 2}, scrub_interval=3600,
                         gateway={"chunk_size": "1MiB", "gc_interval": 1})
    yield c
    c.close()
    _remove_chunk_data(c)


@pytest.fixture
def gw(shared_cluster):
    shared_cluster.assert_no_crash()
    return shared_cluster.gateways[0]


def gw_url(gw) -> str:
    return f"http://{gw.addr}"


# ------------------------------------------------------------------------ HTTP round trips


@pytest.mark.parametrize("size", SIZES, ids=["0", "1", "chunk-1", "chunk", "chunk+1"])
def test_http_round_trip(gw, size):
    data = os.urandom(size)
    r = post_file(gw.addr, data, content_type="image/png")
    assert r.status_code == 201, f"POST /files ({size} B): {r.status_code} {r.text[:300]!r}"
    body = r.json()
    check_post_body(body, size, "sha256:" + sha(data))
    fid = body["id"]
    STORED[fid] = (sha(data), size)

    g = requests.get(files_url(gw.addr, fid), timeout=30)
    assert g.status_code == 200, f"GET: {g.status_code} {g.text[:300]!r}"
    assert g.content == data, f"GET of a {size}-byte object: content differs"
    assert g.headers.get("Content-Type") == "image/png", g.headers
    assert g.headers.get("Content-Length") == str(size), g.headers
    assert g.headers.get("ETag") == f'"sha256:{sha(data)}"', g.headers
    assert g.headers.get("Accept-Ranges") == "bytes", g.headers

    h = requests.head(files_url(gw.addr, fid), timeout=30)
    assert h.status_code == 200, f"HEAD: {h.status_code}"
    assert h.content == b""
    for k in ("Content-Type", "Content-Length", "ETag", "Accept-Ranges"):
        assert h.headers.get(k) == g.headers.get(k), f"HEAD {k}: {h.headers.get(k)!r} vs GET " \
                                                     f"{g.headers.get(k)!r}"


def test_http_ids_are_unique_and_type_defaults(gw):
    """Same content twice: two objects (two ids), each readable; no Content-Type given is
    still served with some Content-Type."""
    data = os.urandom(1000)
    a = post_file(gw.addr, data)
    b = post_file(gw.addr, data)
    assert a.status_code == 201 and b.status_code == 201, (a.text, b.text)
    ia, ib = a.json()["id"], b.json()["id"]
    assert ia != ib, "two uploads got the same id"
    for fid in (ia, ib):
        g = requests.get(files_url(gw.addr, fid), timeout=30)
        assert g.status_code == 200 and g.content == data
        assert g.headers.get("Content-Type"), g.headers
        STORED[fid] = (sha(data), len(data))


def test_http_streamed_both_ways(gw):
    """A 20 MiB body streamed from a generator with Content-Length (http.client), read back
    streamed (requests, stream=True)."""
    src = PatternSource(20 * MiB + 12345)
    res = stream_upload(gw.addr, src.pieces(), src.size)
    fid = upload_ok(res, src.size, src.digest())
    STORED[fid] = (src.hexdigest(), src.size)
    assert_reads_back(gw.addr, fid, src.hexdigest(), src.size)


def test_http_chunked_request_body(gw):
    """POST /files with Transfer-Encoding: chunked (no Content-Length), as `curl -T -` and
    requests with a generator send it: any size means a size not known in advance, too."""
    src = PatternSource(3 * MiB + 7, piece=256 * 1024)
    r = requests.post(files_url(gw.addr), data=src.pieces(), timeout=60)
    assert r.status_code == 201, f"chunked POST: {r.status_code} {r.text[:300]!r}"
    check_post_body(r.json(), src.size, src.digest())
    fid = r.json()["id"]
    STORED[fid] = (src.hexdigest(), src.size)
    assert_reads_back(gw.addr, fid, src.hexdigest(), src.size)


# ---------------------------------------------------------------------------------- ranges


def test_range_reads_across_chunk_boundaries(gw):
    c = CHUNK
    size = 3 * c + 17
    data = os.urandom(size)
    r = post_file(gw.addr, data)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    STORED[fid] = (sha(data), size)

    cases = [  # (Range header, first, last)
        ("bytes=0-0", 0, 0),
        ("bytes=0-99", 0, 99),
        (f"bytes={c - 1}-{c - 1}", c - 1, c - 1),         # last byte of chunk 0
        (f"bytes={c}-{c}", c, c),                         # first byte of chunk 1
        (f"bytes={c - 1}-{c}", c - 1, c),                 # across one boundary
        (f"bytes={c}-{2 * c - 1}", c, 2 * c - 1),         # exactly chunk 1
        (f"bytes={c - 10}-{2 * c + 10}", c - 10, 2 * c + 10),  # three chunks
        (f"bytes=5-{size - 1}", 5, size - 1),
        (f"bytes={3 * c}-", 3 * c, size - 1),             # the short last chunk, open end
        (f"bytes={2 * c + 3}-", 2 * c + 3, size - 1),
        ("bytes=-5", size - 5, size - 1),                 # suffix
        (f"bytes=-{c + 20}", size - c - 20, size - 1),    # suffix across a boundary
        (f"bytes={size - 3}-{size + 1000}", size - 3, size - 1),  # end clipped to the size
        (f"bytes=0-{size - 1}", 0, size - 1),
    ]
    for rng, first, last in cases:
        g = requests.get(files_url(gw.addr, fid), headers={"Range": rng}, timeout=30)
        assert g.status_code == 206, f"Range {rng}: {g.status_code} {g.text[:200]!r}"
        want = data[first:last + 1]
        assert len(g.content) == len(want) and g.content == want, \
            f"Range {rng}: {len(g.content)} bytes, expected {len(want)} (bytes {first}-{last})"
        assert g.headers.get("Content-Range") == f"bytes {first}-{last}/{size}", \
            f"Range {rng}: Content-Range {g.headers.get('Content-Range')!r}"
        assert g.headers.get("Content-Length") == str(len(want)), g.headers

    for rng in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}"):
        g = requests.get(files_url(gw.addr, fid), headers={"Range": rng}, timeout=30)
        assert g.status_code == 416, f"Range {rng} past the end: {g.status_code}"


# --------------------------------------------------------------------- delete and unknown id


def test_delete_then_404_and_unknown_id(gw):
    data = os.urandom(CHUNK + 5)
    r = post_file(gw.addr, data)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    assert requests.get(files_url(gw.addr, fid), timeout=30).content == data

    d = requests.delete(files_url(gw.addr, fid), timeout=30)
    assert d.status_code == 204, f"DELETE: {d.status_code} {d.text[:300]!r}"
    assert_json_error(requests.get(files_url(gw.addr, fid), timeout=30), 404, None,
                      "GET after DELETE")
    assert requests.head(files_url(gw.addr, fid), timeout=30).status_code == 404
    assert_json_error(requests.delete(files_url(gw.addr, fid), timeout=30), 404, None,
                      "DELETE after DELETE")

    unknown = os.urandom(16).hex()
    assert_json_error(requests.get(files_url(gw.addr, unknown), timeout=30), 404, None,
                      "GET of an unknown id")
    assert requests.head(files_url(gw.addr, unknown), timeout=30).status_code == 404
    assert_json_error(requests.delete(files_url(gw.addr, unknown), timeout=30), 404, None,
                      "DELETE of an unknown id")
    g = requests.get(files_url(gw.addr, "not-an-id"), timeout=30)
    assert g.status_code in (400, 404), f"GET /files/not-an-id: {g.status_code}"


# ------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("size", SIZES, ids=["0", "1", "chunk-1", "chunk", "chunk+1"])
def test_cli_round_trip(gw, wharf_bin, tmp_path, size):
    src = tmp_path / "in.bin"
    want = random_file(src, size)
    fid = cli_put(wharf_bin, gw_url(gw), src)
    STORED[fid] = (want, size)

    out = tmp_path / "out.bin"
    r = run_wharf(wharf_bin, "get", fid, "-o", str(out), "--gateway", gw_url(gw))
    assert r.returncode == 0, f"wharf get -o: {r.returncode} {r.stderr!r}"
    assert r.stdout == b"", "wharf get -o wrote to stdout"
    assert out.stat().st_size == size and sha256_file(out) == want

    # to stdout (a file here, as with a shell redirection)
    out2 = tmp_path / "out2.bin"
    with open(out2, "wb") as f:
        r = run_wharf(wharf_bin, "get", fid, "--gateway", gw_url(gw), stdout=f)
    assert r.returncode == 0, f"wharf get > file: {r.returncode} {r.stderr!r}"
    assert out2.stat().st_size == size and sha256_file(out2) == want
    assert r.stderr == b"", f"piped wharf get is not quiet: {r.stderr[:300]!r}"

    # and the HTTP view of a CLI upload agrees
    assert_reads_back(gw.addr, fid, want, size, "HTTP read of a CLI upload:")


def test_cli_get_refuses_a_terminal(gw, wharf_bin, tmp_path):
    """Like curl: binary bytes are not written to a terminal unless asked with -o."""
    src = tmp_path / "bin.dat"
    src.write_bytes(bytes(range(256)) * 4)
    fid = cli_put(wharf_bin, gw_url(gw), src)
    STORED[fid] = (sha(src.read_bytes()), 1024)
    master_fd, slave_fd = pty.openpty()
    try:
        r = run_wharf(wharf_bin, "get", fid, "--gateway", gw_url(gw), stdout=slave_fd)
        os.set_blocking(master_fd, False)
        try:
            shown = os.read(master_fd, 65536)
        except BlockingIOError:
            shown = b""
    finally:
        os.close(slave_fd)
        os.close(master_fd)
    line = one_error_line(r, "get")
    assert "terminal" in line and "-o" in line, line
    assert shown == b"", f"wharf get wrote {len(shown)} bytes to the terminal"
    # -o - is stdout too, and refused the same way; -o FILE still works from a terminal
    out = tmp_path / "copy.dat"
    r = run_wharf(wharf_bin, "get", fid, "-o", str(out), "--gateway", gw_url(gw))
    assert r.returncode == 0 and out.read_bytes() == src.read_bytes(), r.stderr


def test_status_pointed_at_a_gateway_says_so(gw, wharf_bin):
    r = run_wharf(wharf_bin, "status", "--master", gw.addr, timeout=30)
    line = one_error_line(r, "status")
    assert "not a wharf master" in line and gw.addr in line, line


def test_cli_gateway_from_env_and_flag_wins(gw, wharf_bin, tmp_path):
    src = tmp_path / "x.txt"
    src.write_bytes(b"hello wharf\n")
    dead = f"http://127.0.0.1:{free_port()}"
    # env only
    r = run_wharf(wharf_bin, "put", str(src), env={"WHARF_GATEWAY": gw_url(gw)})
    assert r.returncode == 0, r.stderr
    fid = r.stdout.decode().strip().splitlines()[-1]
    assert ID_RE.fullmatch(fid)
    STORED[fid] = (sha(b"hello wharf\n"), 12)
    g = requests.get(files_url(gw.addr, fid), timeout=30)
    assert g.content == b"hello wharf\n"
    assert g.headers.get("Content-Type", "").startswith("text/plain"), \
        f"wharf put of a .txt: Content-Type {g.headers.get('Content-Type')!r}"
    # the flag wins over the env
    r = run_wharf(wharf_bin, "get", fid, "--gateway", gw_url(gw), env={"WHARF_GATEWAY": dead})
    assert r.returncode == 0 and r.stdout == b"hello wharf\n", r.stderr
    # the env wins over the default (which would be :5000, possibly something else)
    r = run_wharf(wharf_bin, "get", fid, env={"WHARF_GATEWAY": dead})
    assert r.returncode != 0


def test_cli_errors(gw, wharf_bin, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 100)

    line = one_error_line(run_wharf(wharf_bin, "put", str(src), "--gateway", dead, timeout=30),
                          "put")
    assert "127.0.0.1" in line, line
    one_error_line(run_wharf(wharf_bin, "get", "0" * 32, "--gateway", dead, timeout=30), "get")
    one_error_line(run_wharf(wharf_bin, "rm", "0" * 32, "--gateway", dead, timeout=30), "rm")

    unknown = os.urandom(16).hex()
    out = tmp_path / "never.bin"
    r = run_wharf(wharf_bin, "get", unknown, "-o", str(out), "--gateway", gw_url(gw))
    assert one_error_line(r, "get") == f"wharf get: no such file {unknown}"
    assert not out.exists(), "a failed wharf get -o left a file behind"
    r = run_wharf(wharf_bin, "rm", unknown, "--gateway", gw_url(gw))
    assert one_error_line(r, "rm") == f"wharf rm: no such file {unknown}"

    one_error_line(run_wharf(wharf_bin, "put", str(tmp_path / "missing"), "--gateway",
                             gw_url(gw)), "put")
    r = run_wharf(wharf_bin, "put", "--gateway", gw_url(gw))
    one_error_line(r, "put")

    # rm, then get says "no such file"
    fid = cli_put(wharf_bin, gw_url(gw), src)
    r = run_wharf(wharf_bin, "rm", fid, "--gateway", gw_url(gw))
    assert r.returncode == 0, r.stderr
    r = run_wharf(wharf_bin, "get", fid, "--gateway", gw_url(gw))
    assert one_error_line(r, "get") == f"wharf get: no such file {fid}"


def _run_on_pty_stderr(argv: list[str], timeout: float = 120.0) -> tuple[int, bytes, bytes]:
    """Runs argv with stderr on a pseudo-terminal (stdout piped); returns rc, stdout, tty."""
    master, slave = pty.openpty()
    got = bytearray()
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        slave = -1
        out_chunks = []
        t = threading.Thread(target=lambda: out_chunks.append(p.stdout.read()), daemon=True)
        t.start()
        deadline = time.monotonic() + timeout
        while True:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    b = os.read(master, 65536)
                except OSError:
                    b = b""
                if b:
                    got += b
                    continue
                p.wait(timeout=timeout)  # EOF/EIO: every writer of the terminal has gone
                break
            if p.poll() is not None:
                break
            if time.monotonic() > deadline:
                p.kill()
                raise AssertionError(f"{argv} did not finish in {timeout}s")
        p.wait()
        while select.select([master], [], [], 0.2)[0]:  # what is left in the terminal
            try:
                b = os.read(master, 65536)
            except OSError:
                break
            if not b:
                break
            got += b
        t.join(10)
        return p.returncode, b"".join(out_chunks), bytes(got)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)


def test_cli_progress_on_terminal_only(gw, wharf_bin, tmp_path):
    src = tmp_path / "big.bin"
    size = 24 * MiB
    want = random_file(src, size)
    # piped: quiet
    r = run_wharf(wharf_bin, "put", str(src), "--gateway", gw_url(gw))
    assert r.returncode == 0 and r.stderr == b"", f"piped put not quiet: {r.stderr[:300]!r}"
    STORED[r.stdout.decode().split()[-1]] = (want, size)
    # on a terminal: a progress bar with bytes, rate, time
    rc, out, tty = _run_on_pty_stderr([wharf_bin, "put", str(src), "--gateway", gw_url(gw)])
    assert rc == 0, tty[-500:]
    fid = out.decode().strip().splitlines()[-1]
    assert ID_RE.fullmatch(fid), out
    STORED[fid] = (want, size)
    text = tty.decode(errors="replace")
    assert "MiB" in text and "/s" in text, f"no progress bar on a terminal: {text[-400:]!r}"
    assert text.count("\r") < 10 * 60, "progress redrawn too often"
    # get -o on a terminal shows one too; small transfers stay quiet
    rc, _, tty = _run_on_pty_stderr([wharf_bin, "get", fid, "-o", str(tmp_path / "o.bin"),
                                     "--gateway", gw_url(gw)])
    assert rc == 0 and sha256_file(tmp_path / "o.bin") == want
    assert b"/s" in tty, f"no progress bar for get on a terminal: {tty[-300:]!r}"
    small = tmp_path / "small.bin"
    small.write_bytes(b"s" * 1000)
    rc, out, tty = _run_on_pty_stderr([wharf_bin, "put", str(small), "--gateway", gw_url(gw)])
    assert rc == 0 and tty.strip() == b"", f"small put drew something: {tty!r}"


# -------------------------------------------------------------------------------- 300 MiB


def test_300mib_by_http_and_cli(gw, wharf_bin, tmp_path):
    size = 300 * MiB
    src = tmp_path / "300m.bin"
    want = random_file(src, size)

    # HTTP, streamed both ways (requests: the file object is sent as it is read)
    with open(src, "rb") as f:
        r = requests.post(files_url(gw.addr), data=f,
                          headers={"Content-Length": str(size)}, timeout=300)
    assert r.status_code == 201, f"POST 300 MiB: {r.status_code} {r.text[:300]!r}"
    check_post_body(r.json(), size, "sha256:" + want)
    fid = r.json()["id"]
    STORED[fid] = (want, size)
    assert_reads_back(gw.addr, fid, want, size, "300 MiB by HTTP:")

    # the CLI
    fid2 = cli_put(wharf_bin, gw_url(gw), src)
    assert fid2 != fid
    STORED[fid2] = (want, size)
    out = tmp_path / "300m.out"
    r = run_wharf(wharf_bin, "get", fid2, "-o", str(out), "--gateway", gw_url(gw))
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size == size and sha256_file(out) == want, "300 MiB by CLI differs"
    out.unlink()


# ---------------------------------------------------------------------------- corruption


def test_corrupt_copy_is_not_served(shared_cluster, gw):
    """Flip a data byte in one member's copy of chunks of an object: reads still return the
    right bytes, and the gateway counts the checksum mismatches it met."""
    c = shared_cluster
    before = c.chunk_files()
    data = os.urandom(8 * CHUNK + 100)
    r = post_file(gw.addr, data)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    STORED[fid] = (sha(data), len(data))
    new = {cid: holders for cid, holders in c.chunk_files().items() if cid not in before}
    assert len(new) == 9, f"expected 9 new chunks of 1 MiB, found {len(new)}: {sorted(new)}"
    for cid, holders in new.items():
        assert len(holders) == 2, f"chunk {cid} is on {[h[0].name for h in holders]}"

    # per group, alternate which member's copy is corrupted, so whichever member the gateway
    # prefers, it meets corrupt copies
    by_group: dict[str, list[str]] = {}
    for cid, holders in sorted(new.items()):
        by_group.setdefault(holders[0][0].group, []).append(cid)
    corrupted = []
    for group, cids in by_group.items():
        for i, cid in enumerate(cids):
            holders = sorted(new[cid], key=lambda h: h[0].name)
            cs, path = holders[i % 2]
            n = path.stat().st_size - 32  # a 32-byte header, then the data
            assert n > 0, f"chunk file {path} has no data ({n + 32} bytes)"
            off = 32 + min(1000, n // 2)
            with open(path, "r+b") as f:
                f.seek(off)
                b = f.read(1)
                f.seek(off)
                f.write(bytes([b[0] ^ 0xFF]))
                f.flush()
                os.fsync(f.fileno())
            corrupted.append((cs.name, cid))

    m0 = wc.metric(gw.addr, "wharf_gateway_read_checksum_mismatch_total")
    for i in range(6):
        g = requests.get(files_url(gw.addr, fid), timeout=60)
        assert g.status_code == 200, f"read {i}: {g.status_code} {g.text[:200]!r}"
        assert g.content == data, f"read {i} returned corrupt bytes (corrupted: {corrupted})"
    # a range read inside a corrupted chunk too
    g = requests.get(files_url(gw.addr, fid), headers={"Range": "bytes=1000-1031"}, timeout=30)
    assert g.status_code == 206 and g.content == data[1000:1032]
    m1 = wc.metric(gw.addr, "wharf_gateway_read_checksum_mismatch_total")
    assert m1 > m0, (f"wharf_gateway_read_checksum_mismatch_total did not increase ({m0} -> "
                     f"{m1}) although corrupt copies were on both members of each group: "
                     f"{corrupted}")


# ------------------------------------------------------------------------ client disconnect


def test_client_disconnect_mid_upload_is_cleaned_up(shared_cluster, gw):
    c = shared_cluster

    def stable_count():
        a = c.chunk_count()
        time.sleep(1.5)
        b = c.chunk_count()
        return (a,) if a == b else None

    (base,) = wait_until(stable_count, 30, "chunk counts to settle")
    host, port = gw.addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=30)
    try:
        total = 64 * MiB
        s.sendall((f"POST /files HTTP/1.1\r\nHost: {gw.addr}\r\n"
                   f"Content-Type: application/octet-stream\r\n"
                   f"Content-Length: {total}\r\n\r\n").encode())
        src = PatternSource(total)
        sent = 0
        for p in src.pieces():
            s.sendall(p)
            sent += len(p)
            if sent >= 24 * MiB:
                break
        # the chunks of the first ~20 MiB become durable on both members of their groups
        wait_until(lambda: c.chunk_count() >= base + 2 * 12, 30,
                   "chunks of the partial upload to reach the chunkservers")
        # no answer (no id) came back for an unfinished body
        s.setblocking(False)
        try:
            early = s.recv(4096)
        except BlockingIOError:
            early = b""
        assert early == b"", f"the gateway answered an unfinished upload: {early[:300]!r}"
    finally:
        # abort: RST, as a crashed client would
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    t0 = time.monotonic()
    wait_until(lambda: c.chunk_count() <= base, 45,
               f"the aborted upload's chunks to be collected (baseline {base})", interval=0.5)
    print(f"aborted upload's chunks collected in {time.monotonic() - t0:.1f}s")
    assert wc.http_get(gw.addr, "/healthz").status_code == 200


# -------------------------------------------------------------------------- gateway restart


def test_restart_gateway_everything_reads_back(shared_cluster, gw):
    c = shared_cluster
    src = PatternSource(5 * MiB + 3)
    fid = upload_ok(stream_upload(gw.addr, src.pieces(), src.size), src.size, src.digest())
    STORED[fid] = (src.hexdigest(), src.size)
    assert len(STORED) >= 10, f"the earlier tests stored only {len(STORED)} objects"

    c.restart_gateway(gw)  # kill -9, same --meta, same address
    for fid, (h, size) in STORED.items():
        assert_reads_back(gw.addr, fid, h, size, "after the gateway restart:")
    # and it takes new writes
    r = post_file(gw.addr, b"after restart")
    assert r.status_code == 201, r.text
    STORED[r.json()["id"]] = (sha(b"after restart"), 13)


# ------------------------------------------------------------------------- memory (2 GiB)


def test_gateway_memory_bounded_2gib(shared_cluster):
    """VmHWM of a `wharf gateway` process that took and then served a 2 GiB object (16 MiB
    chunks) stays under 256 MiB."""
    c = shared_cluster
    # One namespace per cluster: a second gateway shares the first one's metadata store.
    g16 = c.add_gateway("gw16", chunk_size="16MiB", meta=c.gateways[0].opts["meta"])
    try:
        hwm0 = g16.vm_hwm()
        src = PatternSource(2 * GiB)
        res = stream_upload(g16.addr, src.pieces(), src.size, timeout=600)
        fid = upload_ok(res, src.size, src.digest())
        hwm_up = g16.vm_hwm()
        assert_reads_back(g16.addr, fid, src.hexdigest(), src.size, "2 GiB:")
        hwm = g16.vm_hwm()
        print(f"gateway VmHWM: at start {hwm0 / MiB:.1f} MiB, after upload {hwm_up / MiB:.1f} "
              f"MiB, after download {hwm / MiB:.1f} MiB")
        assert hwm < 256 * MiB, (f"gateway peak RSS {hwm / MiB:.1f} MiB >= 256 MiB (after the "
                                 f"upload {hwm_up / MiB:.1f} MiB)")
        d = requests.delete(files_url(g16.addr, fid), timeout=60)
        assert d.status_code == 204, d.text
    finally:
        g16.stop()


# ------------------------------------------------------------------ private clusters: 503


def test_503_when_no_group_is_writable(make_gw_cluster, wharf_bin, tmp_path):
    c = make_gw_cluster("full", reserve="1000TiB")  # every chunkserver is under its reserve
    c.start_topology(masters=1, groups={"g1": 2})
    m = c.masters[0]
    for cs in c.all_chunkservers():
        c.wait_member_state(m, cs.member_id, lambda s: s not in ("syncing", "offline"), 20,
                            "known and serving")
    gw = c.add_gateway(healthy=False, chunk_size="1MiB")

    r = post_file(gw.addr, b"x" * 1000)
    assert_json_error(r, 503, "unavailable", "POST /files with no writable group")
    msg = r.json()["error"]["message"]
    assert wc.http_get(gw.addr, "/healthz").status_code != 200, \
        "/healthz says 200 while no group is writable"
    assert_json_error(requests.get(files_url(gw.addr, os.urandom(16).hex()), timeout=10), 404,
                      None, "GET of an unknown id (no writable group)")

    src = tmp_path / "small.bin"
    src.write_bytes(b"y" * 1000)
    r = run_wharf(wharf_bin, "put", str(src), "--gateway", f"http://{gw.addr}", timeout=60)
    line = one_error_line(r, "put")
    stem = msg.split(" (")[0][:40]  # the message may name a changing map version
    assert stem in line, f"wharf put does not pass on the server's message {msg!r}: {line!r}"
    # a body of several chunks: the gateway answers 503 (the CLI reports it, it does not hang)
    big = tmp_path / "big.bin"
    random_file(big, 5 * MiB)
    r = run_wharf(wharf_bin, "put", str(big), "--gateway", f"http://{gw.addr}", timeout=60)
    line = one_error_line(r, "put")
    assert "503" in line or stem in line, line


# ------------------------------------------------- private clusters: kill -9 mid-upload


def test_kill9_chunkserver_mid_1gib_upload(make_gw_cluster):
    c = make_gw_cluster("kill", scrub_interval=3600)
    c.start_topology(masters=1, groups={"g1": 2, "g2": 2})
    c.wait_cluster_ready()
    gw = c.add_gateway(chunk_size="16MiB")

    before = {}
    for size in (1, 5 * MiB, 16 * MiB, 16 * MiB + 1, 40 * MiB):
        src = PatternSource(size)
        fid = upload_ok(stream_upload(gw.addr, src.pieces(), size), size, src.digest())
        before[fid] = (src.hexdigest(), size)

    # The victim: a member with a chunk write in flight at ~300 MiB (a file in <dir>/tmp), so
    # the kill lands mid-chunk; failing that, a member that received chunks of this upload.
    members = c.all_chunkservers()
    counts = lambda: {cs.name: len(wc.inventory(cs.addr)[0]) for cs in members}  # noqa: E731
    snap: dict = {}
    killed: list = []

    def writing(cs) -> bool:
        return any(any((d / "tmp").iterdir()) for d in cs.dirs if (d / "tmp").is_dir())

    def on_sent(n):
        if "a" not in snap and n >= 260 * MiB:
            snap["a"] = counts()
        elif not killed and n >= 300 * MiB:
            victim, how = None, "mid-chunk"
            deadline = time.monotonic() + 5
            while victim is None and time.monotonic() < deadline:
                victim = next((cs for cs in members if writing(cs)), None)
                time.sleep(0.002)
            if victim is None:
                b = counts()
                grown = [cs for cs in members if b[cs.name] > snap["a"][cs.name]]
                assert grown, f"no chunkserver received chunks between 260 and 300 MiB: {b}"
                victim, how = max(grown, key=lambda cs: b[cs.name] - snap["a"][cs.name]), "idle"
            victim.kill9()
            killed.append((victim, n, how))

    retries0 = wc.metric(gw.addr, "wharf_gateway_chunk_write_retries_total")
    src = PatternSource(GiB)
    t0 = time.monotonic()
    res = stream_upload(gw.addr, src.pieces(), src.size, on_sent=on_sent, timeout=600)
    assert killed, "the chunkserver was not killed"
    victim, at, how = killed[0]
    fid = upload_ok(res, src.size, src.digest())
    retries = wc.metric(gw.addr, "wharf_gateway_chunk_write_retries_total") - retries0
    print(f"1 GiB upload with {victim.name} killed ({how}) at {at / MiB:.0f} MiB: "
          f"{time.monotonic() - t0:.1f}s, chunk writes retried on another group: {retries:.0f}")
    assert not victim.alive()
    assert_reads_back(gw.addr, fid, src.hexdigest(), src.size, "1 GiB after the kill:")
    for bid, (h, size) in before.items():
        assert_reads_back(gw.addr, bid, h, size, f"stored before the kill of {victim.name}:")


# -------------------------------------------------------------------------------- wharf up


def test_wharf_up_then_cli(make_gw_cluster, wharf_bin, tmp_path):
    c = make_gw_cluster("up")
    up = c.add_up(timeout=40)  # waits for /healthz 200 on --listen: the cluster is writable
    log = up.log_path.read_text(errors="replace")
    assert up.addr in log, f"wharf up does not print where the gateway listens:\n{log[-1500:]}"

    src = tmp_path / "pic.png"
    want = random_file(src, 3 * MiB + 1)
    fid = cli_put(wharf_bin, f"http://{up.addr}", src)
    out = tmp_path / "back.png"
    r = run_wharf(wharf_bin, "get", fid, "-o", str(out), env={"WHARF_GATEWAY": f"http://{up.addr}"})
    assert r.returncode == 0, r.stderr
    assert sha256_file(out) == want
    g = requests.get(files_url(up.addr, fid), timeout=30)
    assert g.status_code == 200 and g.headers.get("Content-Type") == "image/png"
    r = run_wharf(wharf_bin, "rm", fid, "--gateway", f"http://{up.addr}")
    assert r.returncode == 0, r.stderr
    assert requests.get(files_url(up.addr, fid), timeout=30).status_code == 404

    # Ctrl-C stops it cleanly
    os.killpg(up.popen.pid, signal.SIGINT)
    try:
        rc = up.popen.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("wharf up did not stop within 15 s of SIGINT")
    up.expected_up = False
    assert rc == 0, f"wharf up exited with {rc} on SIGINT"


# ------------------------------------------------------------- space reclaimed after a delete


def test_delete_while_a_member_is_down_is_reclaimed_when_it_returns(wharf_bin, tmp_path):
    """Deleting an object frees its chunks on every member, including one that was down when
    the object was deleted: its copies go once it is back."""
    c = start_gw_cluster(wharf_bin, tmp_path / "gc", masters=1, groups={"g1": 2},
                         scrub_interval=3600, gateway={"chunk_size": "1MiB", "gc_interval": 1})
    try:
        gw = c.gateways[0]
        data = os.urandom(3 * MiB + 5)
        r = requests.post(files_url(gw.addr), data=data, timeout=60)
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        files = c.chunk_files()
        assert len(files) == 4 and all(len(v) == 2 for v in files.values()), files
        victim = c.all_chunkservers()[0]
        c.kill9(victim)
        assert requests.delete(files_url(gw.addr, fid), timeout=30).status_code == 204
        assert requests.get(files_url(gw.addr, fid), timeout=30).status_code == 404
        time.sleep(3)  # several GC passes while the member is down
        held = [p for v in c.chunk_files().values() for cs, p in v if cs is victim]
        assert len(held) == 4, "the down member's copies cannot have gone anywhere"
        c.restart(victim)
        wait_until(lambda: not c.chunk_files(), 60,
                   "every copy, the returned member's too, to be reclaimed", interval=0.5)
    finally:
        c.close()
        _remove_chunk_data(c)
