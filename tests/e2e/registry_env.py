"""Fixtures and helpers for the registry's end-to-end tests (OCI Distribution API v1.1).

Two kinds of registry, behind one `Registry` handle:
  * "wharf": `wharf up` (the whole cluster in one process) with 1 MiB chunks, or a cluster
    of separate processes with a `wharf gateway` (for tests that kill chunkservers);
  * "reference": Debian's `docker-registry` (distribution 2.8) on a temp directory, to show
    that the client tests test the protocol and not wharf's quirks.

Builds on cluster.py and gateway_env.py (GatewayCluster, UpProc, GatewayProc): every process
is in a Cluster, so it is killed when its fixture ends (even on failure) and its log tail is
printed when a test fails.

Also: a small OCI client over `requests` (push_blob, chunked uploads, put_manifest) and an
OCI image layout writer for skopeo (write_oci_layout).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pytest
import requests

import cluster as wc
from cluster import HOST, Process, Timeout, wait_until
from gateway_env import GatewayCluster, MiB, UpProc, _remove_chunk_data

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

REFERENCE_BIN = "/usr/bin/docker-registry"


# ------------------------------------------------------------------------------ processes


class ReferenceRegistryProc(Process):
    """Debian's docker-registry (`docker-registry serve CONFIG`); healthy = GET /v2/ answers."""

    def __init__(self, cluster: wc.Cluster, name: str, workdir: Path):
        super().__init__(cluster, name, "serve", workdir, ReferenceRegistryProc._args)
        self.storage = workdir / "storage"
        self.config = workdir / "config.yml"

    @staticmethod
    def _args(p: "ReferenceRegistryProc") -> list[str]:
        p.config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {p.storage}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {p.addr}\n")
        return [str(p.config)]

    def wait_healthy(self, timeout: float = 15.0):
        def ok():
            if not self.alive():
                raise wc.Crashed(f"{self.name} exited with {self.popen.returncode}: "
                                 f"{self.log_tail(5)}")
            return wc.http_get(self.addr, "/v2/", timeout=1).status_code == 200

        try:
            wait_until(ok, timeout, f"{self.name} answering /v2/", fatal=(wc.Crashed,))
        except wc.Crashed as e:
            raise Timeout(str(e)) from e


class RegistryCluster(GatewayCluster):
    """A GatewayCluster that may also hold a reference registry (in .gateways, so that close()
    and the failure log tails cover it)."""

    def add_up(self, name: str = "up", start: bool = True, timeout: float = 30.0,
               chunk_size: str = "1MiB", extra: Iterable[str] = ()) -> UpProc:
        up = UpProc(self, name, self.root / name)
        up.opts["extra"] = ["--chunk-size", chunk_size, "--reserve", "64MiB", *extra]
        self.gateways.append(up)
        if start:
            up.start(timeout=timeout)
        return up


@dataclass
class Registry:
    kind: str  # "wharf" | "reference"
    proc: Process
    cluster: RegistryCluster
    notes: dict = field(default_factory=dict)

    @property
    def addr(self) -> str:
        return self.proc.addr

    def url(self, path: str) -> str:
        return f"http://{self.addr}{path}"

    @property
    def is_reference(self) -> bool:
        return self.kind == "reference"


def start_wharf_up(bin_path: str, root: Path, chunk_size: str = "1MiB") -> Registry:
    c = RegistryCluster(bin_path, root)
    try:
        up = c.add_up(chunk_size=chunk_size)
        wait_until(lambda: requests.get(f"http://{up.addr}/v2/", timeout=2).status_code == 200,
                   30, "wharf up serving /v2/")
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        c.close()
        raise
    return Registry("wharf", up, c)


def start_reference(root: Path) -> Registry:
    if not os.access(REFERENCE_BIN, os.X_OK):
        pytest.skip(f"the reference registry {REFERENCE_BIN} is not installed")
    # The reference binary takes "serve CONFIG": Process runs [cluster.bin, role, *args].
    c = RegistryCluster(REFERENCE_BIN, root)
    try:
        p = ReferenceRegistryProc(c, "reference", c.root / "reference")
        c.gateways.append(p)
        p.start()
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        c.close()
        raise
    return Registry("reference", p, c)


class Registries:
    """Several registries of one test: reference registries and `wharf up`s, each kind in its
    own cluster (killed at close), for tests of wharf talking to other registries (replication,
    the pull-through proxy). A fixture yields one through `closing(...)` (cluster.py)."""

    def __init__(self, wharf_bin, tmp_path: Path):
        if not os.access(REFERENCE_BIN, os.X_OK):
            pytest.skip(f"the reference registry {REFERENCE_BIN} is not installed")
        self.tmp = tmp_path
        self.refs = RegistryCluster(REFERENCE_BIN, tmp_path / "ref")
        self.c = RegistryCluster(wharf_bin, tmp_path / "wharf")

    def reference(self, name: str, start: bool = True, proc_cls=None, **kw) -> Registry:
        """A docker-registry; with start=False its port is chosen and nothing listens yet."""
        p = (proc_cls or ReferenceRegistryProc)(self.refs, name, self.refs.root / name, **kw)
        self.refs.gateways.append(p)
        if start:
            p.start()
        return Registry("reference", p, self.refs)

    def wharf(self, name: str, extra=()) -> Registry:
        up = self.c.add_up(name=name, extra=list(extra))
        wait_until(lambda: requests.get(f"http://{up.addr}/v2/", timeout=2).status_code == 200,
                   30, f"{name} serving /v2/")
        return Registry("wharf", up, self.c)

    def close(self):
        self.c.close()
        self.refs.close()

    def log_tails(self) -> str:
        return self.c.log_tails() + "\n" + self.refs.log_tails()


def close_registry(reg: Registry):
    reg.cluster.close()
    _remove_chunk_data(reg.cluster)
    if isinstance(reg.proc, ReferenceRegistryProc):
        shutil.rmtree(reg.proc.storage, ignore_errors=True)


@pytest.fixture(scope="module")
def wharf_registry(wharf_bin, tmp_path_factory):
    """`wharf up` with 1 MiB chunks, shared by a module's tests."""
    reg = start_wharf_up(wharf_bin, tmp_path_factory.mktemp("wharf-up"))
    yield reg
    close_registry(reg)


@pytest.fixture(scope="module", params=["wharf", "reference"])
def any_registry(request, wharf_bin, tmp_path_factory):
    """Each client test runs once against `wharf up` and once against the reference."""
    if request.param == "wharf":
        reg = start_wharf_up(wharf_bin, tmp_path_factory.mktemp("wharf-up"), chunk_size="4MiB")
    else:
        reg = start_reference(tmp_path_factory.mktemp("reference"))
    yield reg
    close_registry(reg)


# ---------------------------------------------------------------------- a small OCI client


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512_digest(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def absolute(reg: Registry, location: str) -> str:
    assert location, "no Location header"
    return location if location.startswith("http") else reg.url(location)


def push_blob(reg: Registry, repo: str, data: bytes, digest: Optional[str] = None) -> str:
    """Monolithic POST ?digest=; returns the digest."""
    digest = digest or sha256_digest(data)
    r = requests.post(reg.url(f"/v2/{repo}/blobs/uploads/"), params={"digest": digest},
                      data=data, headers={"Content-Type": "application/octet-stream"},
                      timeout=60)
    assert r.status_code == 201, f"push blob to {repo}: {r.status_code} {r.text[:300]}"
    return digest


def start_upload(reg: Registry, repo: str) -> str:
    r = requests.post(reg.url(f"/v2/{repo}/blobs/uploads/"), timeout=10)
    assert r.status_code == 202, f"start upload in {repo}: {r.status_code} {r.text[:300]}"
    return absolute(reg, r.headers["Location"])


def patch_chunk(location: str, data: bytes, start: Optional[int] = None,
                content_range: Optional[str] = None) -> requests.Response:
    headers = {"Content-Type": "application/octet-stream"}
    if content_range is not None:
        headers["Content-Range"] = content_range
    elif start is not None:
        headers["Content-Range"] = f"{start}-{start + len(data) - 1}"
    return requests.patch(location, data=data, headers=headers, timeout=60)


def with_query(location: str, **params) -> str:
    sep = "&" if "?" in location else "?"
    return location + sep + "&".join(f"{k}={v}" for k, v in params.items())


def config_blob(arch: str = "amd64", diff_ids: Iterable[str] = (), extra: str = "") -> bytes:
    cfg = {"architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": {"Labels": {"wharf.test": extra or "x"}},
           "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}
    return json.dumps(cfg, sort_keys=True).encode()


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    d = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    d.update(extra)
    return d


def image_manifest(config: bytes, layers: list[bytes], media_type: str = OCI_MANIFEST,
                   config_type: Optional[str] = None, layer_type: Optional[str] = None,
                   **extra) -> bytes:
    docker = media_type == DOCKER_MANIFEST
    m = {"schemaVersion": 2, "mediaType": media_type,
         "config": descriptor(config_type or (DOCKER_CONFIG if docker else OCI_CONFIG), config),
         "layers": [descriptor(layer_type or (DOCKER_LAYER if docker else OCI_LAYER_TAR), l)
                    for l in layers]}
    m.update(extra)
    return json.dumps(m, indent=2).encode()


def index_manifest(children: list[tuple[bytes, str]], media_type: str = OCI_INDEX) -> bytes:
    """children: (manifest bytes, architecture)."""
    child_type = DOCKER_MANIFEST if media_type == DOCKER_LIST else OCI_MANIFEST
    m = {"schemaVersion": 2, "mediaType": media_type,
         "manifests": [descriptor(child_type, b, platform={"architecture": a, "os": "linux"})
                       for b, a in children]}
    return json.dumps(m, indent=2).encode()


def put_manifest(reg: Registry, repo: str, ref: str, body: bytes,
                 media_type: str = OCI_MANIFEST) -> requests.Response:
    return requests.put(reg.url(f"/v2/{repo}/manifests/{ref}"), data=body,
                        headers={"Content-Type": media_type}, timeout=30)


def push_image(reg: Registry, repo: str, tag: Optional[str], layers: list[bytes],
               arch: str = "amd64", media_type: str = OCI_MANIFEST, **extra) -> tuple[str, bytes]:
    """Pushes layers, a config and a manifest; returns (manifest digest, manifest bytes)."""
    cfg = config_blob(arch, [sha256_digest(l) for l in layers], extra=repo)
    for b in [cfg, *layers]:
        push_blob(reg, repo, b)
    body = image_manifest(cfg, layers, media_type=media_type, **extra)
    digest = sha256_digest(body)
    r = put_manifest(reg, repo, tag or digest, body, media_type)
    assert r.status_code == 201, f"put manifest {repo}:{tag}: {r.status_code} {r.text[:300]}"
    return digest, body


def push_image_two_step(reg: Registry, repo: str, tag: str, layers: list[bytes]):
    """POST + PUT ?digest= for each blob (what the reference takes), then the manifest;
    returns (manifest digest, manifest bytes)."""
    cfg = config_blob("amd64", [sha256_digest(l) for l in layers], extra=repo)
    for blob in [cfg, *layers]:
        loc = start_upload(reg, repo)
        sep = "&" if "?" in loc else "?"
        r = requests.put(f"{loc}{sep}digest={sha256_digest(blob)}", data=blob, timeout=60,
                         headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, f"blob to {repo}: {r.status_code} {r.text[:300]}"
    body = image_manifest(cfg, layers)
    r = put_manifest(reg, repo, tag, body)
    assert r.status_code == 201, f"manifest {repo}:{tag}: {r.status_code} {r.text[:300]}"
    return sha256_digest(body), body


def oci_error_codes(r: requests.Response) -> list[str]:
    """The codes of an OCI error body ({"errors":[{"code":...}]}); [] if it is not one."""
    try:
        body = r.json()
        return [e["code"] for e in body["errors"]]
    except Exception:  # noqa: BLE001
        return []


def assert_oci_error(r: requests.Response, status: int, code: Optional[str], what: str = ""):
    assert r.status_code == status, \
        f"{what}: expected {status}, got {r.status_code} {r.text[:300]!r}"
    if r.request.method == "HEAD":
        return
    try:
        body = r.json()
    except ValueError:
        pytest.fail(f"{what}: error body is not JSON: {r.text[:300]!r}")
    assert isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"], \
        f"{what}: not an OCI error body: {body!r}"
    for e in body["errors"]:
        assert isinstance(e.get("code"), str) and isinstance(e.get("message"), str), \
            f"{what}: error entry shape: {e!r}"
    if code is not None:
        assert code in oci_error_codes(r), f"{what}: expected code {code}, got {body!r}"


# ---------------------------------------------------------------------- OCI image layouts


def tar_layer(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar of small files (deterministic: fixed mtime/owner)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 1700000000
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class LayoutWriter:
    """Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) blob by blob."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.refs: list[dict] = []
        self.blobs: dict[str, int] = {}  # digest -> size

    def add_bytes(self, data: bytes) -> dict:
        d = sha256_digest(data)
        (self.root / "blobs" / "sha256" / d.split(":")[1]).write_bytes(data)
        self.blobs[d] = len(data)
        return {"digest": d, "size": len(data)}

    def add_big_tar_layer(self, size: int, name: str = "big.bin") -> dict:
        """An uncompressed tar holding one file of `size` random bytes, streamed to disk."""
        tmp = self.root / "tmp-layer"
        h = hashlib.sha256()

        class Tee(io.RawIOBase):
            def __init__(self, f):
                self.f = f

            def writable(self):
                return True

            def write(self, b):
                h.update(b)
                return self.f.write(b)

        class RandomReader(io.RawIOBase):
            def __init__(self, n):
                self.left = n

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = os.urandom(n)
                self.left -= n
                return n

        with open(tmp, "wb") as f:
            with tarfile.open(fileobj=Tee(f), mode="w|", format=tarfile.PAX_FORMAT) as t:
                ti = tarfile.TarInfo(name)
                ti.size = size
                ti.mtime = 1700000000
                t.addfile(ti, io.BufferedReader(RandomReader(size), 4 * MiB))
        d = "sha256:" + h.hexdigest()
        n = tmp.stat().st_size
        tmp.rename(self.root / "blobs" / "sha256" / d.split(":")[1])
        self.blobs[d] = n
        return {"digest": d, "size": n}

    def add_image(self, layers: list[dict], arch: str = "amd64") -> dict:
        """layers: descriptors from add_bytes / add_big_tar_layer (uncompressed tars)."""
        cfg = config_blob(arch, [l["digest"] for l in layers], extra=arch)
        cd = self.add_bytes(cfg)
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": {"mediaType": OCI_CONFIG, **cd},
             "layers": [{"mediaType": OCI_LAYER_TAR, **l} for l in layers]}
        md = self.add_bytes(json.dumps(m, indent=2).encode())
        return {"mediaType": OCI_MANIFEST, **md,
                "platform": {"architecture": arch, "os": "linux"}}

    def add_index(self, manifests: list[dict]) -> dict:
        idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return {"mediaType": OCI_INDEX, **self.add_bytes(json.dumps(idx, indent=2).encode())}

    def tag(self, desc: dict, name: str):
        d = {k: v for k, v in desc.items() if k != "platform"}
        d["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.refs.append(d)
        (self.root / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs}, indent=2))
