"""Real clients against the registry: skopeo and podman (Debian's), once against `wharf up`
and once against the reference registry (Debian's docker-registry, distribution 2.8), so the
tests test the protocol and not wharf's quirks. Plus a skopeo push of a 500 MiB layer during
which a chunkserver is killed with -9 (wharf only).

Images come from an OCI image layout written by the test (registry_env.LayoutWriter):
uncompressed tar layers (three small ones and one over 200 MiB), and a two-platform index.

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_registry_clients.py
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

import cluster as wc
from cluster import wait_until
from gateway_env import MiB, sha256_file
from registry_env import OCI_INDEX, LayoutWriter, Registry, RegistryCluster, tar_layer
from registry_env import any_registry  # noqa: F401 - fixture

SKOPEO = shutil.which("skopeo")
PODMAN = shutil.which("podman")
BIG = 200 * MiB + 123


def run(argv, timeout=300, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, f"{' '.join(argv)}: exit {r.returncode}\n{r.stderr[-2000:]}"
    return r


def skopeo(*args, timeout=300, check=True):
    if not SKOPEO:
        pytest.skip("skopeo is not installed")
    return run([SKOPEO, "--insecure-policy", *args], timeout=timeout, check=check)


class Layout:
    """The OCI layout written once per module: tag "big" (3 small layers + one of BIG bytes)
    and tag "multi" (an index of an amd64 and an arm64 image)."""

    def __init__(self, root: Path):
        self.w = LayoutWriter(root)
        small = [self.w.add_bytes(tar_layer({f"etc/f{i}.txt": os.urandom(1000 * (i + 1)),
                                             f"bin/sh{i}": b"#!/bin/true\n"}))
                 for i in range(3)]
        big = self.w.add_big_tar_layer(BIG)
        self.big = self.w.add_image(small + [big])
        self.w.tag(self.big, "big")
        amd = self.w.add_image(small[:2], "amd64")
        arm = self.w.add_image(small[1:], "arm64")
        self.multi = self.w.add_index([amd, arm])
        self.w.tag(self.multi, "multi")
        self.root = Path(root)

    def manifest(self, digest: str) -> dict:
        return json.loads(self.blob_path(digest).read_bytes())

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.split(":")[1]

    def image_blobs(self, manifest_digest: str) -> set[str]:
        m = self.manifest(manifest_digest)
        return {m["config"]["digest"], *(l["digest"] for l in m["layers"])}


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    lay = Layout(root / "oci")
    yield lay
    shutil.rmtree(root, ignore_errors=True)


def ref(reg: Registry, repo: str) -> str:
    return f"docker://{reg.addr}/{repo}"


def check_dir_copy(d: Path, manifest_digest: str, blobs: set[str]):
    """A skopeo dir: copy of one image: manifest.json is the manifest byte for byte and every
    blob is there with the right content."""
    got = "sha256:" + hashlib.sha256((d / "manifest.json").read_bytes()).hexdigest()
    assert got == manifest_digest, f"manifest.json digest {got} != {manifest_digest}"
    files = {"sha256:" + p.name for p in d.iterdir() if len(p.name) == 64}
    assert files == blobs, f"blobs differ: missing {blobs - files}, extra {files - blobs}"
    for digest in blobs:
        p = d / digest.split(":")[1]
        assert "sha256:" + sha256_file(p) == digest, f"{p} does not hash to its digest"


# --------------------------------------------------------------------------------- skopeo


def test_skopeo_image_with_big_layer(any_registry, layout, tmp_path):
    reg = any_registry
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout.root}:big",
           ref(reg, "sk/big:v1"))
    out = tmp_path / "pulled"
    skopeo("copy", "--src-tls-verify=false", ref(reg, "sk/big:v1"), f"dir:{out}")
    check_dir_copy(out, layout.big["digest"], layout.image_blobs(layout.big["digest"]))
    # inspect: digest, layers, config
    info = json.loads(skopeo("inspect", "--tls-verify=false", ref(reg, "sk/big:v1")).stdout)
    assert info["Digest"] == layout.big["digest"]
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Layers"] == [l["digest"] for l in layout.manifest(layout.big["digest"])["layers"]]
    raw = skopeo("inspect", "--raw", "--tls-verify=false", ref(reg, "sk/big:v1")).stdout
    assert raw.encode() == layout.blob_path(layout.big["digest"]).read_bytes()
    # list-tags after a second tag
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout.root}:big",
           ref(reg, "sk/big:v2"))
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", ref(reg, "sk/big")).stdout)
    assert sorted(tags["Tags"]) == ["v1", "v2"]


def test_skopeo_multi_platform_index(any_registry, layout, tmp_path):
    reg = any_registry
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{layout.root}:multi",
           ref(reg, "sk/multi:latest"))
    out = tmp_path / "pulled"
    skopeo("copy", "--all", "--src-tls-verify=false", ref(reg, "sk/multi:latest"), f"dir:{out}")
    idx_bytes = (out / "manifest.json").read_bytes()
    assert "sha256:" + hashlib.sha256(idx_bytes).hexdigest() == layout.multi["digest"]
    idx = json.loads(idx_bytes)
    assert idx["mediaType"] == OCI_INDEX and len(idx["manifests"]) == 2
    want = set()
    for m in idx["manifests"]:
        p = out / (m["digest"].split(":")[1] + ".manifest.json")
        assert "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() == m["digest"]
        want |= layout.image_blobs(m["digest"])
    files = {"sha256:" + p.name for p in out.iterdir() if len(p.name) == 64}
    assert files == want
    for d in want:
        assert "sha256:" + sha256_file(out / d.split(":")[1]) == d
    # the index by digest and a platform's manifest through the index
    raw = skopeo("inspect", "--raw", "--tls-verify=false",
                 ref(reg, f"sk/multi@{layout.multi['digest']}")).stdout
    assert raw.encode() == idx_bytes
    arm = run([SKOPEO, "--insecure-policy", "--override-arch", "arm64", "inspect",
               "--tls-verify=false", ref(reg, "sk/multi:latest")])
    assert json.loads(arm.stdout)["Architecture"] == "arm64"


def test_skopeo_delete(any_registry, layout):
    reg = any_registry
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{layout.root}:multi",
           ref(reg, "sk/del:doomed"))
    skopeo("inspect", "--raw", "--tls-verify=false", ref(reg, "sk/del:doomed"))
    skopeo("delete", "--tls-verify=false", ref(reg, "sk/del:doomed"))
    r = skopeo("inspect", "--raw", "--tls-verify=false", ref(reg, "sk/del:doomed"), check=False)
    assert r.returncode != 0 and ("manifest unknown" in r.stderr.lower()
                                  or "not found" in r.stderr.lower()), r.stderr
    r = requests.get(f"http://{reg.addr}/v2/sk/del/manifests/{layout.multi['digest']}",
                     timeout=10)
    assert r.status_code == 404


# --------------------------------------------------------------------------------- podman


def podman_cmd(root: Path) -> list[str]:
    """podman with private storage under `root` (podman refuses a runroot over 50 chars)."""
    return [PODMAN, "--root", str(root / "root"), "--runroot", str(root / "run"),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend",
            "none"]


@pytest.fixture(scope="module")
def podman_usable(tmp_path_factory):
    if not PODMAN:
        pytest.skip("podman is not installed")
    root = Path(tempfile.mkdtemp(prefix="wharf-pd-", dir="/tmp"))
    try:
        r = run([*podman_cmd(root), "images"], timeout=60, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if r.returncode != 0:
        pytest.skip(f"podman cannot run here: {r.stderr.strip()[-300:]}")
    return True


def test_podman_push_and_pull(any_registry, layout, podman_usable, request):
    reg = any_registry
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{layout.root}:multi",
           ref(reg, "pod/src:v1"))
    short = Path(tempfile.mkdtemp(prefix="wharf-pd-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(short, ignore_errors=True))
    p = podman_cmd(short)
    src = f"{reg.addr}/pod/src:v1"
    run([*p, "pull", "--tls-verify=false", src], timeout=300)
    dst = f"{reg.addr}/pod/pushed:v2"
    run([*p, "tag", src, dst])
    run([*p, "push", "--tls-verify=false", dst], timeout=300)
    image_id = run([*p, "image", "inspect", "--format", "{{.Id}}", dst]).stdout.strip()
    run([*p, "rmi", "-a", "-f"])
    run([*p, "pull", "--tls-verify=false", dst], timeout=300)
    again = run([*p, "image", "inspect", "--format", "{{.Id}}", dst]).stdout.strip()
    assert again == image_id  # the image id is the config digest: same config came back
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", ref(reg, "pod/pushed")).stdout)
    assert tags["Tags"] == ["v2"]
    # the pulled root filesystem holds the layers' files
    run([*p, "rmi", "-a", "-f"])


# ---------------------------------------------------- a chunkserver dies during a push


def test_skopeo_push_survives_chunkserver_kill(wharf_bin, tmp_path):
    """kill -9 of a chunkserver while skopeo pushes a 500 MiB layer: the push completes and
    the image pulls back identical."""
    lay_root = tmp_path / "oci"
    w = LayoutWriter(lay_root)
    big = w.add_big_tar_layer(500 * MiB)
    img = w.add_image([big])
    w.tag(img, "big")
    c = RegistryCluster(wharf_bin, tmp_path / "cluster")
    try:
        c.start_topology(masters=1, groups={"g1": 2, "g2": 2})
        c.wait_cluster_ready()
        gw = c.add_gateway(chunk_size="4MiB")
        reg = Registry("wharf", gw, c)
        argv = [SKOPEO, "--insecure-policy", "copy", "--preserve-digests",
                "--dest-tls-verify=false", f"oci:{lay_root}:big", ref(reg, "kill/big:v1")]
        err_path = tmp_path / "skopeo.err"
        err_file = open(err_path, "w")
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err_file,
                                stdin=subprocess.DEVNULL)
        try:
            victim = c.chunkservers["g1"][0]
            # kill once some of the layer is stored (chunks on the victim's disk)
            wait_until(lambda: proc.poll() is not None or len(wc.inventory(victim.addr)[0]) >= 8,
                       120, "the push to reach the chunkservers", interval=0.1)
            assert proc.poll() is None, "the push ended before the kill: make the layer bigger"
            c.kill9(victim)
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err_file.close()
        err = err_path.read_text(errors="replace")
        assert proc.returncode == 0, f"skopeo push failed after the kill:\n{err[-2000:]}"
        out_dir = tmp_path / "pulled"
        skopeo("copy", "--src-tls-verify=false", ref(reg, "kill/big:v1"), f"dir:{out_dir}")
        cfg = json.loads((lay_root / "blobs" / "sha256" / img["digest"].split(":")[1])
                         .read_bytes())["config"]["digest"]
        check_dir_copy(out_dir, img["digest"], {cfg, big["digest"]})
    finally:
        c.close()
        for cs in c.all_chunkservers():
            for d in cs.dirs:
                shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(lay_root, ignore_errors=True)
