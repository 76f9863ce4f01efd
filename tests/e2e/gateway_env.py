"""Fixtures and helpers for the gateway's end-to-end tests (file API, CLI, `wharf up`).

Builds on cluster.py: a GatewayCluster is a Cluster whose processes also include gateways
(`wharf gateway` as its own process), so close(), crash checks and the log tails printed on
failure cover them too.

    c = make_gw_cluster("x", scrub_interval=3600)
    c.start_topology(masters=1, groups={"g1": 2, "g2": 2}); c.wait_cluster_ready()
    gw = c.add_gateway(chunk_size="1MiB", gc_interval=1)      # waits for /healthz 200
    fid = post_file(gw.addr, b"hello").json()["id"]

Content used by the tests never sits in memory whole when it is large: it is generated
piecewise (`PatternSource`, or a temp file of os.urandom bytes) and compared by SHA-256
computed as it streams.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import pytest
import requests

import cluster as wc
from cluster import Process, wait_until

MiB = 1 << 20
GiB = 1 << 30
ID_RE = re.compile(r"[0-9a-f]{32}")
CHUNK_NAME_RE = re.compile(r"[0-9a-f]{16,64}")


# ------------------------------------------------------------------------------ processes


class GatewayProc(Process):
    """`wharf gateway` in its own process. opts: masters, meta, chunk_size, gc_interval, extra."""

    def __init__(self, cluster: "GatewayCluster", name: str, workdir: Path):
        super().__init__(cluster, name, "gateway", workdir, GatewayProc._args)
        self.opts = {"meta": f"sqlite:{workdir / 'meta.db'}", "chunk_size": "1MiB",
                     "gc_interval": None, "masters": None, "log_level": None, "extra": []}

    @staticmethod
    def _args(p: "GatewayProc") -> list[str]:
        o = p.opts
        a = ["--listen", p.addr, "--master", o["masters"] or p.cluster.master_addrs,
             "--meta", o["meta"]]
        for k in ("chunk_size", "gc_interval", "log_level", "cluster_key"):
            v = o.get(k, p.cluster.key_file if k == "cluster_key" else None)
            if v is not None:
                a += ["--" + k.replace("_", "-"), str(v)]
        return a + list(o["extra"])

    def start(self, timeout: float = 20.0, keep_port: bool = False, healthy: bool = True):
        """healthy=False: wait only until it answers HTTP at all (a gateway whose cluster has
        no writable group never reports /healthz 200)."""
        if healthy:
            return super().start(timeout=timeout, keep_port=keep_port)
        assert not self.alive(), f"{self.name} already running"
        self._spawn()

        def answers():
            if not self.alive():
                raise wc.Crashed(f"{self.name} exited with {self.popen.returncode}: "
                                 f"{self.log_tail(5)}")
            wc.http_get(self.addr, "/healthz", timeout=1)
            return True

        wait_until(answers, timeout, f"{self.name} answering HTTP", fatal=(wc.Crashed,))
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def vm_hwm(self) -> int:
        """Peak resident set size (bytes) of the gateway process, from /proc/<pid>/status."""
        return proc_status_kib(self.pid, "VmHWM") * 1024

    def vm_rss(self) -> int:
        return proc_status_kib(self.pid, "VmRSS") * 1024


class UpProc(Process):
    """`wharf up --data DIR --listen ADDR --cluster-port 0` (the gateway address is .addr)."""

    def __init__(self, cluster: "GatewayCluster", name: str, workdir: Path):
        super().__init__(cluster, name, "up", workdir, UpProc._args)
        self.data_dir = workdir / "data"
        self.opts = {"extra": []}

    @staticmethod
    def _args(p: "UpProc") -> list[str]:
        return ["--data", str(p.data_dir), "--listen", p.addr, "--cluster-port", "0",
                *p.opts["extra"]]


def proc_status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


class GatewayCluster(wc.Cluster):
    def __init__(self, *a, **kw):
        self.gateways: list[Process] = []
        super().__init__(*a, **kw)

    @property
    def procs(self) -> list[Process]:
        return [*super().procs, *self.gateways]

    def add_gateway(self, name: Optional[str] = None, start: bool = True, healthy: bool = True,
                    **opts) -> GatewayProc:
        name = name or f"gw{len(self.gateways) + 1}"
        gw = GatewayProc(self, name, self.root / name)
        gw.opts.update(opts)
        self.gateways.append(gw)
        if start:
            gw.start(healthy=healthy)
        return gw

    def add_up(self, name: str = "up", start: bool = True, timeout: float = 30.0) -> UpProc:
        up = UpProc(self, name, self.root / name)
        self.gateways.append(up)
        if start:
            up.start(timeout=timeout)
        return up

    def restart_gateway(self, gw: GatewayProc, timeout: float = 20.0) -> GatewayProc:
        """kill -9 and start again on the same address with the same --meta."""
        gw.kill9()
        return gw.start(timeout=timeout, keep_port=True)

    def chunk_count(self, members: Optional[Iterable[wc.ChunkServer]] = None) -> int:
        """Chunks held by the (running) chunkservers, from their inventories."""
        members = list(members) if members is not None else \
            [cs for cs in self.all_chunkservers() if cs.alive()]
        return sum(len(wc.inventory(cs.addr, key=self.key)[0]) for cs in members)

    def chunk_files(self) -> dict[str, list[tuple[wc.ChunkServer, Path]]]:
        """chunk id -> [(member, path of its file)] over every chunkserver's data dirs."""
        out: dict[str, list[tuple[wc.ChunkServer, Path]]] = {}
        for cs in self.all_chunkservers():
            for d in cs.dirs:
                root = d / "chunks"
                if not root.is_dir():
                    continue
                for sub in root.iterdir():
                    if not sub.is_dir():
                        continue
                    for f in sub.iterdir():
                        if f.is_file() and CHUNK_NAME_RE.fullmatch(f.name):
                            out.setdefault(f.name, []).append((cs, f))
        return out


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture
def make_gw_cluster(wharf_bin, tmp_path, request):
    """Factory for GatewayClusters private to one test; killed (and their data removed, the
    tests store GiBs) when the test ends."""
    made: list[GatewayCluster] = []
    request.node._wharf_clusters = made  # the conftest hook prints their log tails on failure

    def make(name: str = "c", **kw) -> GatewayCluster:
        c = GatewayCluster(wharf_bin, tmp_path / name, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
    for c in made:
        _remove_chunk_data(c)


def _remove_chunk_data(c: GatewayCluster):
    """Frees the disk space of a closed cluster's chunks, keeping its logs."""
    for cs in c.all_chunkservers():
        for d in cs.dirs:
            shutil.rmtree(d, ignore_errors=True)
    for g in c.gateways:
        if isinstance(g, UpProc):
            shutil.rmtree(g.data_dir, ignore_errors=True)


def start_gw_cluster(wharf_bin: str, root: Path, masters: int = 1,
                     groups: Optional[dict[str, int]] = None, gateway: Optional[dict] = None,
                     **cluster_kw) -> GatewayCluster:
    c = GatewayCluster(wharf_bin, root, **cluster_kw)
    try:
        c.start_topology(masters=masters, groups=groups or {"g1": 2, "g2": 2})
        c.wait_cluster_ready()
        c.add_gateway(**(gateway or {}))
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        c.close()
        raise
    return c


# ------------------------------------------------------------------------------- content


class PatternSource:
    """`size` bytes of pseudo-random content, generated piecewise and cheaply: 1 MiB blocks
    drawn from a pool of random blocks, each stamped with its index (so misplaced, repeated or
    dropped blocks change the digest). Iterating yields the pieces and fills .sha256."""

    POOL = 13

    def __init__(self, size: int, piece: int = MiB, seed: Optional[int] = None):
        self.size = size
        self.piece = piece
        rnd = os.urandom(8) if seed is None else seed.to_bytes(8, "little")
        self._pool = [hashlib.shake_256(rnd + bytes([i])).digest(piece)
                      for i in range(self.POOL)]
        self.sent = 0
        self._h = hashlib.sha256()

    def pieces(self) -> Iterator[bytes]:
        i = 0
        off = 0
        while off < self.size:
            n = min(self.piece, self.size - off)
            block = self._pool[i % self.POOL]
            stamp = i.to_bytes(8, "little")
            data = (stamp + block[8:n]) if n > 8 else stamp[:n]
            self._h.update(data)
            off += n
            self.sent = off
            i += 1
            yield data

    __iter__ = pieces

    def hexdigest(self) -> str:
        assert self.sent == self.size, "digest asked before the whole content was generated"
        return self._h.hexdigest()

    def digest(self) -> str:
        return "sha256:" + self.hexdigest()


def random_file(path: Path, size: int, piece: int = 8 * MiB) -> str:
    """Writes `size` random bytes (os.urandom, piecewise) to path; returns their sha256 hex."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            b = os.urandom(min(piece, left))
            h.update(b)
            f.write(b)
            left -= len(b)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(8 * MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


def file_pieces(path: Path, piece: int = MiB) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while True:
            b = f.read(piece)
            if not b:
                return
            yield b


# -------------------------------------------------------------------------- file API client


def files_url(addr: str, fid: str = "") -> str:
    return f"http://{addr}/files" + (f"/{fid}" if fid else "")


def post_file(addr: str, data: bytes, content_type: Optional[str] = None,
              timeout: float = 60.0) -> requests.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(files_url(addr), data=data, headers=headers, timeout=timeout)


class UploadResult:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return f"<upload {self.status} {self.body[:300]!r}>"


def stream_upload(addr: str, pieces: Iterable[bytes], size: int,
                  content_type: str = "application/octet-stream",
                  on_sent: Optional[Callable[[int], None]] = None,
                  timeout: float = 300.0) -> UploadResult:
    """POST /files with a Content-Length body sent piece by piece (http.client, no buffering).
    on_sent(bytes_sent_so_far) is called after each piece."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.putrequest("POST", "/files")
        conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        sent = 0
        for p in pieces:
            conn.send(p)
            sent += len(p)
            if on_sent:
                on_sent(sent)
        assert sent == size, f"the source produced {sent} bytes, {size} announced"
        r = conn.getresponse()
        return UploadResult(r.status, dict(r.getheaders()), r.read())
    finally:
        conn.close()


def upload_ok(res: UploadResult, size: int, digest: Optional[str] = None) -> str:
    """Checks a 201 answer of POST /files; returns the id."""
    assert res.status == 201, f"POST /files: expected 201, got {res.status} {res.body[:300]!r}"
    body = res.json()
    check_post_body(body, size, digest)
    return body["id"]


def check_post_body(body: dict, size: int, digest: Optional[str] = None):
    assert isinstance(body, dict) and {"id", "digest", "size"} <= set(body), \
        f"POST /files body: {body!r}"
    assert isinstance(body["id"], str) and ID_RE.fullmatch(body["id"]), \
        f"id is not 32 lowercase hex: {body['id']!r}"
    assert body["size"] == size, f"size {body['size']} != {size}"
    if digest is not None:
        assert body["digest"] == digest, f"digest {body['digest']} != {digest}"


def download_sha256(addr: str, fid: str, headers: Optional[dict] = None,
                    timeout: float = 300.0) -> tuple[requests.Response, str, int]:
    """GET /files/{id} streamed; returns (response, sha256 hex of the body, body length)."""
    h = hashlib.sha256()
    n = 0
    with requests.get(files_url(addr, fid), headers=headers or {}, stream=True,
                      timeout=timeout) as r:
        if r.status_code in (200, 206):
            for b in r.iter_content(chunk_size=MiB):
                h.update(b)
                n += len(b)
        else:
            r.content  # noqa: B018 - read the error body
    return r, h.hexdigest(), n


def assert_reads_back(addr: str, fid: str, sha_hex: str, size: int, what: str = ""):
    r, got, n = download_sha256(addr, fid)
    assert r.status_code == 200, f"{what} GET {fid}: {r.status_code} {r.text[:300]!r}"
    assert n == size, f"{what} GET {fid}: {n} bytes, expected {size}"
    assert got == sha_hex, f"{what} GET {fid}: content differs (sha256 {got} != {sha_hex})"


def assert_json_error(r: requests.Response, status: int, code: Optional[str], what: str):
    assert r.status_code == status, \
        f"{what}: expected {status}, got {r.status_code} {r.text[:300]!r}"
    try:
        body = r.json()
    except ValueError:
        pytest.fail(f"{what}: error body is not JSON: {r.text[:300]!r}")
    err = body.get("error") if isinstance(body, dict) else None
    assert isinstance(err, dict), f"{what}: error shape {body!r}"
    if code is not None:
        assert err.get("code") == code, f"{what}: expected code {code!r}, got {body!r}"
    assert isinstance(err.get("message"), str) and err["message"], \
        f"{what}: error message missing: {body!r}"


# ---------------------------------------------------------------------------------- CLI


def run_wharf(bin_path: str, *args: str, timeout: float = 300.0, env: Optional[dict] = None,
              stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("WHARF_GATEWAY", None)
    if env:
        e.update(env)
    return subprocess.run([bin_path, *args], stdout=stdout, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=e)


def cli_put(bin_path: str, gw_url: str, path: Path, **kw) -> str:
    r = run_wharf(bin_path, "put", str(path), "--gateway", gw_url, **kw)
    assert r.returncode == 0, f"wharf put {path}: exit {r.returncode}, stderr {r.stderr!r}"
    lines = r.stdout.decode().strip().splitlines()
    assert lines, f"wharf put printed nothing (stderr {r.stderr!r})"
    fid = lines[-1].strip()
    assert ID_RE.fullmatch(fid), f"wharf put: last line is not an id: {r.stdout!r}"
    return fid


def one_error_line(r: subprocess.CompletedProcess, cmd: str) -> str:
    """The single stderr line `wharf <cmd>: ...` of a failed command."""
    assert r.returncode != 0, f"wharf {cmd} succeeded unexpectedly: {r.stdout[:300]!r}"
    err = r.stderr.decode(errors="replace").strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wharf {cmd}: "), \
        f"wharf {cmd}: expected one line 'wharf {cmd}: <message>' on stderr, got {err!r}"
    return lines[0]
