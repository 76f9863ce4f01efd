"""More real clients, as Debian 12 packages them: buildah, containerd's `ctr` (a private
containerd) and Charliecloud's `ch-image`, each once against `wharf up` and once against the
reference registry (Debian's docker-registry), like test_registry_clients.py.

Every test checks what came back, not only the exit status: the blobs a client pushed are read
back over HTTP and hash to their digests, and the files of a pulled image are the bytes that
went in. Images are tiny (one tar layer built by the test); nothing is fetched from outside.

  * buildah: `from scratch`, `copy`, `commit`, `push`, then `rmi` and `pull` back;
  * ctr: a containerd with its own root, state and socket in a temp dir (killed at the end),
    `ctr images pull --plain-http`, the content store compared with what was pushed;
  * ch-image: it speaks only HTTPS, so both registries serve TLS with a certificate made here
    (trusted through REQUESTS_CA_BUNDLE); `pull`, `push` to another repository, `pull` back
    into a fresh storage directory (`-s`).

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_more_clients.py
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import requests

import cluster as wc
from cluster import wait_until
from gateway_env import UpProc, _remove_chunk_data
from registry_env import (DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST,
                          LayoutWriter, ReferenceRegistryProc, Registry, RegistryCluster,
                          close_registry, config_blob, image_manifest, push_image_two_step,
                          put_manifest, sha256_digest, start_upload, tar_layer)
from registry_env import any_registry  # noqa: F401 - fixture

BUILDAH = shutil.which("buildah")
CTR = shutil.which("ctr")
CONTAINERD = shutil.which("containerd")
SKOPEO = shutil.which("skopeo")
OPENSSL = shutil.which("openssl")
CH_IMAGE = "/usr/bin/ch-image"
ACCEPT = ", ".join([OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX])


def run(argv, timeout=120, check=True, env=None, cwd=None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    if check:
        assert r.returncode == 0, (f"{' '.join(map(str, argv))}: exit {r.returncode}\n"
                                   f"{r.stdout[-1500:]}\n{r.stderr[-2500:]}")
    return r


def short_tmp(prefix: str, request) -> Path:
    """A temp dir with a short path (unix sockets and podman-style run roots need one)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def fetch_image(base: str, repo: str, ref: str, verify=None) -> tuple[str, dict, dict[str, bytes]]:
    """(manifest digest, manifest, {digest: bytes} of its config and layers) read over HTTP;
    every blob is checked against its digest and size."""
    r = requests.get(f"{base}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT},
                     timeout=30, verify=verify)
    assert r.status_code == 200, f"manifest {repo}:{ref}: {r.status_code} {r.text[:300]}"
    digest = sha256_digest(r.content)
    assert r.headers.get("Docker-Content-Digest", digest) == digest
    m = r.json()
    blobs = {}
    for d in [m["config"], *m["layers"]]:
        b = requests.get(f"{base}/v2/{repo}/blobs/{d['digest']}", timeout=60, verify=verify)
        assert b.status_code == 200, f"blob {d['digest']}: {b.status_code}"
        assert sha256_digest(b.content) == d["digest"], f"blob {d['digest']} hashes otherwise"
        assert len(b.content) == d["size"]
        blobs[d["digest"]] = b.content
    return digest, m, blobs


def files_of_layers(m: dict, blobs: dict[str, bytes]) -> dict[str, bytes]:
    """The regular files of an image's layers (compressed or not), later layers winning."""
    out = {}
    for layer in m["layers"]:
        with tarfile.open(fileobj=io.BytesIO(blobs[layer["digest"]]), mode="r:*") as t:
            for member in t.getmembers():
                if member.isfile():
                    out[member.name.lstrip("./")] = t.extractfile(member).read()
    return out


def payload_files() -> dict[str, bytes]:
    return {"etc/hello.txt": b"hello from wharf\n", "data/payload.bin": os.urandom(200_000)}


# --------------------------------------------------------------------------------- buildah


def buildah_cmd(root: Path) -> list[str]:
    return [BUILDAH, "--root", str(root / "root"), "--runroot", str(root / "run"),
            "--storage-driver", "vfs"]


def test_buildah_from_commit_push_and_pull_back(any_registry, tmp_path, request):
    if not BUILDAH:
        pytest.skip("buildah is not installed")
    reg = any_registry
    b = buildah_cmd(short_tmp("wharf-bh-", request))
    files = payload_files()
    src = tmp_path / "src"
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    ctr = run([*b, "from", "scratch"]).stdout.strip()
    run([*b, "copy", ctr, str(src), "/"])
    run([*b, "config", "--label", "wharf.test=buildah", "--env", "WHARF=1", ctr])
    run([*b, "commit", "--format", "oci", ctr, "localhost/wharf-bh:v1"])
    image_id = run([*b, "images", "--no-trunc", "--format", "{{.ID}}",
                    "localhost/wharf-bh:v1"]).stdout.strip().removeprefix("sha256:")
    dst = f"{reg.addr}/bh/app:v1"
    run([*b, "push", "--tls-verify=false", "localhost/wharf-bh:v1", f"docker://{dst}"])
    # What the registry holds: the layer carries the files, the config is buildah's.
    _, m, blobs = fetch_image(f"http://{reg.addr}", "bh/app", "v1")
    assert m["config"]["digest"] == f"sha256:{image_id}"
    cfg = json.loads(blobs[m["config"]["digest"]])
    assert cfg["config"]["Labels"]["wharf.test"] == "buildah"
    got = files_of_layers(m, blobs)
    for name, data in files.items():
        assert got.get(name) == data, f"{name} differs in the pushed layer"
    # Gone locally, pulled back: the same image, the same files.
    run([*b, "rm", "-a"])
    run([*b, "rmi", "-a", "-f"])
    run([*b, "pull", "--tls-verify=false", dst])
    again = run([*b, "images", "--no-trunc", "--format", "{{.ID}}", dst]).stdout.strip()
    assert again.removeprefix("sha256:") == image_id
    ctr = run([*b, "from", "--pull-never", dst]).stdout.strip()
    mnt = Path(run([*b, "mount", ctr]).stdout.strip())
    try:
        for name, data in files.items():
            assert (mnt / name).read_bytes() == data, f"{name} differs after the pull"
    finally:
        run([*b, "umount", ctr], check=False)
        run([*b, "rm", "-a"], check=False)


# ------------------------------------------------------------------------------------ ctr


class Containerd:
    """A private containerd: root, state and socket under `d`; no CRI; killed by close()."""

    def __init__(self, d: Path):
        self.d = d
        self.sock = d / "c.sock"
        cfg = d / "config.toml"
        cfg.write_text(
            "version = 2\n"
            f'root = "{d}/root"\n'
            f'state = "{d}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri", '
            '"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", '
            '"io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", '
            '"io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.opt"]\n'
            f'[grpc]\n  address = "{self.sock}"\n'
            f'[ttrpc]\n  address = "{self.sock}.ttrpc"\n'
            '[debug]\n  address = ""\n'
            '[metrics]\n  address = ""\n')
        self.log = open(d / "containerd.log", "wb")
        self.popen = subprocess.Popen([CONTAINERD, "--config", str(cfg)], stdout=self.log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        try:
            wait_until(self._ready, 30, "containerd answering on its socket")
        except BaseException:
            self.close()
            raise

    def _ready(self) -> bool:
        if self.popen.poll() is not None:
            raise AssertionError(f"containerd exited with {self.popen.returncode}: "
                                 f"{(self.d / 'containerd.log').read_text()[-1500:]}")
        return self.sock.exists() and self.ctr("version", check=False).returncode == 0

    def ctr(self, *args, check=True, timeout=120) -> subprocess.CompletedProcess:
        return run([CTR, "-a", str(self.sock), *args], check=check, timeout=timeout)

    def close(self):
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=15)
        self.log.close()


@pytest.fixture
def containerd(request):
    if not (CTR and CONTAINERD):
        pytest.skip("containerd (ctr) is not installed")
    c = Containerd(short_tmp("wharf-ctd-", request))
    request.addfinalizer(c.close)
    return c


def test_ctr_pulls_an_image_byte_for_byte(any_registry, containerd):
    reg = any_registry
    layers = [tar_layer(payload_files()), tar_layer({"etc/second.txt": os.urandom(5000)})]
    digest, body = push_image_two_step(reg, "ctr/app", "v1", layers)
    ref = f"{reg.addr}/ctr/app:v1"
    containerd.ctr("images", "pull", "--plain-http", "--snapshotter", "native", ref)
    # The image record names the manifest wharf served...
    listed = containerd.ctr("images", "ls").stdout.splitlines()
    row = [line.split() for line in listed if line.startswith(ref + " ")]
    assert row and row[0][2] == digest, listed
    check = containerd.ctr("images", "check").stdout
    assert "complete" in check, check
    # ...and the content store holds exactly the bytes pushed.
    m = json.loads(body)
    assert subprocess.run([CTR, "-a", str(containerd.sock), "content", "get", digest],
                          capture_output=True, timeout=60).stdout == body
    for d, data in zip([l["digest"] for l in m["layers"]], layers):
        got = subprocess.run([CTR, "-a", str(containerd.sock), "content", "get", d],
                             capture_output=True, timeout=60).stdout
        assert got == data, f"layer {d} differs in containerd's store"
    # By digest, too.
    containerd.ctr("images", "rm", ref)
    containerd.ctr("images", "pull", "--plain-http", "--snapshotter", "native",
                   f"{reg.addr}/ctr/app@{digest}")


# ------------------------------------------------------------------------------- ch-image


def self_signed(d: Path) -> tuple[Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
    return cert, key


def https_healthy(proc, path: str, cert: Path) -> bool:
    if not proc.alive():
        raise wc.Timeout(f"{proc.name} exited with {proc.popen.returncode}: {proc.log_tail(5)}")
    try:
        return requests.get(f"https://{proc.addr}{path}", verify=str(cert),
                            timeout=1).status_code == 200
    except requests.RequestException:
        return False


class TlsUpProc(UpProc):
    def __init__(self, cluster, name, workdir, cert: Path):
        super().__init__(cluster, name, workdir)
        self.cert = cert

    def wait_healthy(self, timeout: float = 30.0):
        wait_until(lambda: https_healthy(self, "/v2/", self.cert), timeout,
                   f"{self.name} serving /v2/ over HTTPS")


class TlsReferenceProc(ReferenceRegistryProc):
    def __init__(self, cluster, name, workdir, cert: Path, key: Path):
        super().__init__(cluster, name, workdir)
        self.cert, self.key = cert, key
        self.build_args = TlsReferenceProc._tls_args

    @staticmethod
    def _tls_args(p: "TlsReferenceProc") -> list[str]:
        args = ReferenceRegistryProc._args(p)
        with open(p.config, "a") as f:
            f.write(f"  tls:\n    certificate: {p.cert}\n    key: {p.key}\n")
        return args

    def wait_healthy(self, timeout: float = 15.0):
        wait_until(lambda: https_healthy(self, "/v2/", self.cert), timeout,
                   f"{self.name} serving /v2/ over HTTPS")


@pytest.fixture(scope="module", params=["wharf", "reference"])
def tls_registry(request, wharf_bin, tmp_path_factory):
    """(registry, certificate): `wharf up` or the reference, serving HTTPS."""
    if not OPENSSL:
        pytest.skip("openssl is not installed")
    root = tmp_path_factory.mktemp(f"tls-{request.param}")
    cert, key = self_signed(root / "pki")
    if request.param == "wharf":
        c = RegistryCluster(wharf_bin, root)
        up = TlsUpProc(c, "up", c.root / "up", cert)
        up.opts["extra"] = ["--chunk-size", "1MiB", "--reserve", "64MiB", "--tls-cert",
                            str(cert), "--tls-key", str(key)]
        c.gateways.append(up)
        proc = up
    else:
        if not os.access("/usr/bin/docker-registry", os.X_OK):
            pytest.skip("the reference registry is not installed")
        c = RegistryCluster("/usr/bin/docker-registry", root)
        proc = TlsReferenceProc(c, "reference", c.root / "reference", cert, key)
        c.gateways.append(proc)
    try:
        proc.start(timeout=30)
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        c.close()
        raise
    reg = Registry(request.param, proc, c)
    yield reg, cert
    close_registry(reg)


def ch_image_env(home: Path, cert: Path) -> dict:
    """ch-image runs under Debian's python3 (not one earlier on PATH) and trusts `cert`
    through requests' REQUESTS_CA_BUNDLE (which beats its --tls-no-verify, so it is set)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CURL_CA_BUNDLE",)}
    env.update(PATH="/usr/bin:/bin:/usr/sbin:/sbin", USER="root", HOME=str(home),
               REQUESTS_CA_BUNDLE=str(cert))
    return env


def ch_image(env, storage: Path, *args) -> subprocess.CompletedProcess:
    # --no-cache: the build cache is a git repository, needing a git identity in $HOME.
    return run([CH_IMAGE, "-s", storage, "--no-cache", *args], env=env, timeout=180)


def ch_layout(root: Path, files: dict[str, bytes]) -> None:
    """An OCI layout whose config has the history ch-image insists on."""
    w = LayoutWriter(root)
    layer = w.add_bytes(tar_layer(files))
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": {"Env": ["PATH=/bin"]},
           "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
           "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "wharf e2e test"}]}
    cd = w.add_bytes(json.dumps(cfg).encode())
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": OCI_CONFIG, **cd},
         "layers": [{"mediaType": OCI_LAYER_TAR, **layer}]}
    w.tag({"mediaType": OCI_MANIFEST, **w.add_bytes(json.dumps(m).encode())}, "v1")


def ch_image_dir(storage: Path, ref: str) -> Path:
    return storage / "img" / ref.replace(":", "+").replace("/", "%")


def test_ch_image_push_and_pull(tls_registry, tmp_path, request):
    if not os.access(CH_IMAGE, os.X_OK):
        pytest.skip("Charliecloud's ch-image (charliecloud-builders) is not installed")
    if not SKOPEO:
        pytest.skip("skopeo is not installed")
    reg, cert = tls_registry
    env = ch_image_env(tmp_path, cert)
    r = run([CH_IMAGE, "--dependencies"], env=env, check=False)
    if r.returncode != 0:
        pytest.fail(f"ch-image cannot run: {(r.stdout + r.stderr).strip()[-500:]}")
    files = payload_files()
    ch_layout(tmp_path / "oci", files)
    src = f"{reg.addr}/ch/src:v1"
    run([SKOPEO, "--insecure-policy", "copy", "--dest-tls-verify=false",
         f"oci:{tmp_path / 'oci'}:v1", f"docker://{src}"])
    store = short_tmp("wharf-ch-", request)
    ch_image(env, store / "a", "pull", src)
    img = ch_image_dir(store / "a", src)
    for name, data in files.items():
        assert (img / name).read_bytes() == data, f"{name} differs after ch-image pull"
    # ch-image repacks the image into a layer of its own: push it elsewhere...
    dst = f"{reg.addr}/ch/pushed:v2"
    ch_image(env, store / "a", "push", src, dst)
    _, m, blobs = fetch_image(f"https://{reg.addr}", "ch/pushed", "v2", verify=str(cert))
    got = files_of_layers(m, blobs)
    for name, data in files.items():
        assert got.get(name) == data, f"{name} differs in the layer ch-image pushed"
    # ...and pull that back into an empty storage directory.
    ch_image(env, store / "b", "pull", dst)
    img = ch_image_dir(store / "b", dst)
    for name, data in files.items():
        assert (img / name).read_bytes() == data, f"{name} differs after pulling the push back"
