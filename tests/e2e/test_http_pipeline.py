"""End-to-end tests of the request pipeline every daemon shares (src/http): request ids,
the gateway's access log.

One module cluster: a master, group g1 of two chunkservers, and a gateway writing its access
log to a file.
"""

from __future__ import annotations

import os
import socket
import re
import uuid

import pytest
import requests

import cluster as wc
from cluster import wait_until
from gateway_env import _remove_chunk_data, one_error_line, run_wharf, start_gw_cluster
from gateway_env import make_gw_cluster  # noqa: F401 - a fixture

GENERATED_ID = re.compile(r"[0-9a-f]{16}")


@pytest.fixture(scope="module")
def shared_cluster(wharf_bin, tmp_path_factory):
    """(Named like conftest's fixture, so that its failure hook prints these log tails.)"""
    root = tmp_path_factory.mktemp("pipeline")
    access = root / "access.log"
    c = start_gw_cluster(wharf_bin, root, masters=1, groups={"g1": 2}, scrub_interval=3600,
                         gateway={"chunk_size": "1MiB", "extra": ["--access-log", str(access)]})
    c.access_log = access
    yield c
    c.close()
    _remove_chunk_data(c)


@pytest.fixture
def gw(shared_cluster):
    shared_cluster.assert_no_crash()
    return shared_cluster.gateways[0]


def access_lines(c) -> list[str]:
    return c.access_log.read_text(errors="replace").splitlines() if c.access_log.exists() else []


def lines_with_id(c, rid: str) -> list[str]:
    return [ln for ln in access_lines(c) if f" request_id={rid} " in ln]


def wait_logged(c, rid: str) -> str:
    """The one access log line of request `rid` (waits for the log's thread to write it)."""
    wait_until(lambda: lines_with_id(c, rid), 10, f"access log line of {rid}")
    got = lines_with_id(c, rid)
    assert len(got) == 1, f"request {rid}: {len(got)} access log lines: {got!r}"
    return got[0]


def fields(line: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def test_access_log_one_line_per_request_with_the_clients_id(shared_cluster, gw):
    base = f"http://{gw.addr}"
    tag = uuid.uuid4().hex[:8]
    data = os.urandom(3000)

    def call(method, path, i, **kw):
        rid = f"e2e-{tag}-{i}"
        r = requests.request(method, base + path, headers={"X-Request-Id": rid}, timeout=30, **kw)
        assert r.headers.get("X-Request-Id") == rid, f"{method} {path}: id not echoed {r.headers}"
        return rid, r

    rid_post, r = call("POST", "/files", 1, data=data)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    rid_get, r = call("GET", f"/files/{fid}", 2)
    assert r.status_code == 200 and r.content == data
    rid_v2, r = call("GET", "/v2/", 3)
    assert r.status_code == 200
    rid_404, r = call("GET", "/nowhere", 4)
    assert r.status_code == 404
    rid_hz, r = call("HEAD", "/healthz", 5)
    assert r.status_code == 200

    post = fields(wait_logged(shared_cluster, rid_post))
    assert (post["method"], post["path"], post["status"], post["route"]) == \
        ("POST", "/files", "201", "files"), post
    assert post["bytes_in"] == str(len(data)), post
    assert post["remote"].startswith("127.0.0.1:"), post
    assert float(post["duration_ms"]) >= 0, post
    get = fields(wait_logged(shared_cluster, rid_get))
    assert (get["method"], get["path"], get["status"], get["bytes_out"]) == \
        ("GET", f"/files/{fid}", "200", str(len(data))), get
    assert fields(wait_logged(shared_cluster, rid_v2))["route"] == "registry"
    nf = fields(wait_logged(shared_cluster, rid_404))
    assert (nf["status"], nf["route"]) == ("404", "none"), nf
    hz = fields(wait_logged(shared_cluster, rid_hz))
    assert (hz["method"], hz["route"], hz["status"]) == ("HEAD", "healthz", "200"), hz


def test_request_id_generated_when_absent_or_insane(shared_cluster, gw):
    base = f"http://{gw.addr}"
    r = requests.get(base + "/v2/", timeout=30)
    rid = r.headers.get("X-Request-Id", "")
    assert GENERATED_ID.fullmatch(rid), f"generated id {rid!r}"
    wait_logged(shared_cluster, rid)
    for bad in ("has/slash", "x" * 129, "quote\"d", "semi;colon"):
        r = requests.get(base + "/v2/", headers={"X-Request-Id": bad}, timeout=30)
        got = r.headers.get("X-Request-Id", "")
        assert GENERATED_ID.fullmatch(got), f"id {bad!r} answered as {got!r}"
        wait_logged(shared_cluster, got)
        assert not any(bad in ln for ln in access_lines(shared_cluster)), bad


def test_daemons_echo_request_id_and_chunkserver_logs_it(shared_cluster):
    m = shared_cluster.masters[0]
    r = requests.get(f"http://{m.addr}/v1/map", headers={"X-Request-Id": "to-master-1"},
                     timeout=10)
    assert r.status_code == 200 and r.headers.get("X-Request-Id") == "to-master-1"
    cs = shared_cluster.chunkservers["g1"][0]
    rid = f"cs-{uuid.uuid4().hex[:12]}"
    # A chunk whose body does not match its checksum: refused, and logged with the id.
    r = requests.put(f"http://{cs.addr}/v1/chunks/{uuid.uuid4().hex}", data=b"abc",
                     headers={"X-Request-Id": rid, "X-Wharf-Checksum": "xxh3:0000000000000000"},
                     timeout=10)
    assert r.status_code == 400, r.text
    assert r.headers.get("X-Request-Id") == rid
    wait_until(lambda: f"request_id={rid}" in cs.log_path.read_text(errors="replace"), 10,
               "the chunkserver's log line with the request id")


def test_access_log_flag_values(shared_cluster, wharf_bin, tmp_path):
    common = ["gateway", "--listen", f"127.0.0.1:{wc.free_port()}",
              "--master", shared_cluster.master_addrs, "--meta", f"sqlite:{tmp_path / 'm.db'}"]
    r = run_wharf(wharf_bin, *common, "--access-log", str(tmp_path / "no" / "such" / "dir.log"),
                  timeout=30)
    assert "access log" in one_error_line(r, "gateway")
    r = run_wharf(wharf_bin, *common, "--access-log", "", timeout=30)
    one_error_line(r, "gateway")


# ------------------------------------------------------------ request framing (issue 9, #6)


def raw_exchange(addr: str, data: bytes, wait: float = 3.0) -> bytes:
    """Sends raw bytes; returns what the server answered until it closed (or `wait` passed)."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        except (socket.timeout, ConnectionResetError):
            pass
    return out


@pytest.mark.parametrize("te", ["xchunked", "identity", "chunked, identity", "gzip, chunked"])
def test_bad_transfer_encoding_is_400_and_smuggles_nothing(shared_cluster, gw, te):
    victim = requests.post(f"http://{gw.addr}/files", data=b"keep me", timeout=30)
    assert victim.status_code == 201, victim.text
    vid = victim.json()["id"]
    smuggled = (f"DELETE /files/{vid} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n").encode()
    for framing in (f"Transfer-Encoding: {te}\r\nContent-Length: 3\r\n",
                    f"Transfer-Encoding: {te}\r\n"):
        req = (f"POST /files HTTP/1.1\r\nHost: t\r\n{framing}\r\n").encode() + b"abc" + smuggled
        got = raw_exchange(gw.addr, req)
        assert got.startswith(b"HTTP/1.1 400 "), f"{framing!r}: {got[:200]!r}"
        assert b"HTTP/1.1 204" not in got, f"{framing!r}: the smuggled DELETE ran: {got!r}"
    r = requests.get(f"http://{gw.addr}/files/{vid}", timeout=30)
    assert r.status_code == 200 and r.content == b"keep me", "the smuggled DELETE ran"
    # The master and the chunkservers share the server: the same answer.
    bad = f"GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {te}\r\n\r\n".encode()
    for addr in (shared_cluster.masters[0].addr, shared_cluster.chunkservers["g1"][0].addr):
        got = raw_exchange(addr, bad)
        assert got.startswith(b"HTTP/1.1 400 "), f"{addr}: {got[:200]!r}"


def test_chunk_extension_and_trailer_bounds(gw):
    for body in (b"3;x=" + b"y" * (1 << 20) + b"\r\nabc\r\n0\r\n\r\n",
                 b"3\r\nabc\r\n0\r\nX-Trailer: " + b"t" * 8192 + b"\r\n\r\n"):
        req = b"POST /files HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body
        try:
            got = raw_exchange(gw.addr, req)
        except (BrokenPipeError, ConnectionResetError):
            got = b"(reset)"
        assert not got.startswith(b"HTTP/1.1 201"), f"accepted: {got[:200]!r}"
    ok = b"POST /files HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close" \
         b"\r\n\r\n3;n=v\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    got = raw_exchange(gw.addr, ok)
    assert got.startswith(b"HTTP/1.1 201"), got[:300]
