"""What some clients need beyond the common path: absolute Location URLs (Charliecloud cannot
follow relative ones), --public-url and trusted proxies' X-Forwarded-* headers, conditional GETs
(If-None-Match -> 304), the spec's PUT-by-digest with ?tag=, and manifests with foreign
(non-distributable) layers, such as Windows base images.

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_client_compat.py
"""

import json
import os

import pytest
import requests

from cluster import wait_until
from registry_env import (OCI_MANIFEST, Registry, RegistryCluster, assert_oci_error,
                          close_registry, config_blob, descriptor, push_blob, put_manifest,
                          sha256_digest)
from registry_env import wharf_registry  # noqa: F401 - fixture

FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def start_up(wharf_bin, root, *extra) -> Registry:
    c = RegistryCluster(wharf_bin, root)
    try:
        up = c.add_up(extra=list(extra))
        wait_until(lambda: requests.get(f"http://{up.addr}/v2/", timeout=2).status_code == 200,
                   30, "wharf up serving /v2/")
    except BaseException:
        c.close()
        raise
    return Registry("wharf", up, c)


@pytest.fixture(scope="module")
def proxied(wharf_bin, tmp_path_factory):
    """`wharf up` that trusts 127.0.0.1 as a proxy and refuses foreign layers."""
    reg = start_up(wharf_bin, tmp_path_factory.mktemp("proxied"), "--trusted-proxy",
                   "127.0.0.0/8", "--refuse-foreign-layers")
    yield reg
    close_registry(reg)


@pytest.fixture(scope="module")
def public(wharf_bin, tmp_path_factory):
    reg = start_up(wharf_bin, tmp_path_factory.mktemp("public"), "--public-url",
                   "https://registry.example.com/")
    yield reg
    close_registry(reg)


def test_locations_are_absolute_urls_of_the_request_host(wharf_registry):
    reg = wharf_registry
    r = requests.post(reg.url("/v2/abs/app/blobs/uploads/"), timeout=10)
    assert r.status_code == 202
    loc = r.headers["Location"]
    assert loc.startswith(f"http://{reg.addr}/v2/abs/app/blobs/uploads/"), loc
    data = os.urandom(1000)
    d = sha256_digest(data)
    r = requests.put(loc, params={"digest": d}, data=data, timeout=10)
    assert r.status_code == 201
    assert r.headers["Location"] == f"http://{reg.addr}/v2/abs/app/blobs/{d}"
    # The Host the client used is what comes back (a name, not the bound address).
    port = reg.addr.rsplit(":", 1)[1]
    r = requests.post(reg.url("/v2/abs/app/blobs/uploads/"),
                      headers={"Host": f"localhost:{port}"}, timeout=10)
    assert r.headers["Location"].startswith(f"http://localhost:{port}/v2/abs/app/")
    # Forwarded headers from a peer that is not a trusted proxy are ignored.
    r = requests.post(reg.url("/v2/abs/app/blobs/uploads/"),
                      headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
                      timeout=10)
    assert r.headers["Location"].startswith(f"http://{reg.addr}/"), r.headers["Location"]
    # A malformed Host gives a relative Location rather than a broken URL.
    r = requests.post(reg.url("/v2/abs/app/blobs/uploads/"),
                      headers={"Host": "bad host/x"}, timeout=10)
    assert r.headers["Location"].startswith("/v2/abs/app/blobs/uploads/"), r.headers["Location"]
    # Files too.
    r = requests.post(reg.url("/files"), data=b"hello", timeout=10)
    assert r.status_code == 201
    assert r.headers["Location"].startswith(f"http://{reg.addr}/files/")


def test_trusted_proxy_forwarded_headers(proxied):
    reg = proxied
    r = requests.post(reg.url("/v2/fwd/app/blobs/uploads/"),
                      headers={"X-Forwarded-Host": "registry.example.com, inner.proxy",
                               "X-Forwarded-Proto": "https"}, timeout=10)
    assert r.status_code == 202
    assert r.headers["Location"].startswith("https://registry.example.com/v2/fwd/app/"), \
        r.headers["Location"]
    # A hostile forwarded host is not believed; the request's Host is used.
    r = requests.post(reg.url("/v2/fwd/app/blobs/uploads/"),
                      headers={"X-Forwarded-Host": "evil/inject", "X-Forwarded-Proto": "gopher"},
                      timeout=10)
    assert r.headers["Location"].startswith(f"http://{reg.addr}/v2/fwd/app/"), \
        r.headers["Location"]


def test_public_url_wins(public):
    reg = public
    r = requests.post(reg.url("/v2/pub/app/blobs/uploads/"),
                      headers={"X-Forwarded-Host": "other.example"}, timeout=10)
    assert r.status_code == 202
    assert r.headers["Location"].startswith("https://registry.example.com/v2/pub/app/blobs/")


def test_bad_public_url_is_refused_at_start(wharf_bin, tmp_path):
    import subprocess
    for flags in (["--public-url", "registry.example.com"],
                  ["--public-url", "https://x.example/path"],
                  ["--trusted-proxy", "10.0.0.0/99"]):
        p = subprocess.run([wharf_bin, "up", "--data", str(tmp_path / "d"), "--listen",
                            "127.0.0.1:0", "--cluster-port", "0", *flags],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, flags
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not (tmp_path / "d").exists(), "nothing may be created before flags are checked"


def test_if_none_match_gives_304(wharf_registry):
    reg = wharf_registry
    data = os.urandom(5000)
    d = push_blob(reg, "cond/app", data)
    etag = f'"{d}"'
    r = requests.get(reg.url(f"/v2/cond/app/blobs/{d}"), timeout=10)
    assert r.status_code == 200 and r.headers["ETag"] == etag and r.content == data
    for inm in (etag, f'"other", {etag}', "*", f"W/{etag}"):
        for method in (requests.get, requests.head):
            r = method(reg.url(f"/v2/cond/app/blobs/{d}"), headers={"If-None-Match": inm},
                       timeout=10)
            assert r.status_code == 304, (inm, method)
            assert r.content == b""
            assert r.headers["ETag"] == etag
            assert r.headers["Docker-Content-Digest"] == d
    r = requests.get(reg.url(f"/v2/cond/app/blobs/{d}"), headers={"If-None-Match": '"nope"'},
                     timeout=10)
    assert r.status_code == 200 and r.content == data
    # A blob that is not there is still 404, whatever the condition says.
    missing = sha256_digest(b"never pushed")
    r = requests.get(reg.url(f"/v2/cond/app/blobs/{missing}"), headers={"If-None-Match": "*"},
                     timeout=10)
    assert_oci_error(r, 404, "BLOB_UNKNOWN")
    # Manifests, by tag and by digest.
    cfg = config_blob()
    push_blob(reg, "cond/app", cfg)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": descriptor("application/vnd.oci.image.config.v1+json", cfg),
                       "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", data)]}
                      ).encode()
    md = sha256_digest(body)
    assert put_manifest(reg, "cond/app", "v1", body).status_code == 201
    for ref in ("v1", md):
        r = requests.get(reg.url(f"/v2/cond/app/manifests/{ref}"),
                         headers={"Accept": OCI_MANIFEST, "If-None-Match": f'"{md}"'}, timeout=10)
        assert r.status_code == 304 and r.content == b"", ref
        assert r.headers["Docker-Content-Digest"] == md
    r = requests.get(reg.url("/v2/cond/app/manifests/v1"),
                     headers={"Accept": OCI_MANIFEST, "If-None-Match": '"sha256:old"'}, timeout=10)
    assert r.status_code == 200 and r.content == body
    # Files.
    r = requests.post(reg.url("/files"), data=b"file body", timeout=10)
    fid = r.json()["id"]
    fetag = r.headers["ETag"]
    r = requests.get(reg.url(f"/files/{fid}"), headers={"If-None-Match": fetag}, timeout=10)
    assert r.status_code == 304 and r.content == b""
    r = requests.get(reg.url(f"/files/{fid}"), headers={"If-None-Match": '"x"'}, timeout=10)
    assert r.status_code == 200 and r.content == b"file body"


def small_image(reg, repo: str, layers=None):
    layer = os.urandom(3000)
    cfg = config_blob(extra=repo)
    push_blob(reg, repo, cfg)
    push_blob(reg, repo, layer)
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": descriptor("application/vnd.oci.image.config.v1+json", cfg),
         "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)] + (layers or [])}
    return json.dumps(m).encode()


def test_put_by_digest_with_tag_parameters(wharf_registry):
    reg = wharf_registry
    body = small_image(reg, "qtag/app")
    d = sha256_digest(body)
    r = requests.put(reg.url(f"/v2/qtag/app/manifests/{d}?tag=v1&tag=latest&tag=v1"), data=body,
                     headers={"Content-Type": OCI_MANIFEST}, timeout=10)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d
    assert sorted(t.strip() for t in r.headers["OCI-Tag"].split(",")) == ["latest", "v1"]
    tags = requests.get(reg.url("/v2/qtag/app/tags/list"), timeout=10).json()["tags"]
    assert sorted(tags) == ["latest", "v1"]
    for tag in ("v1", "latest"):
        r = requests.get(reg.url(f"/v2/qtag/app/manifests/{tag}"),
                         headers={"Accept": OCI_MANIFEST}, timeout=10)
        assert r.status_code == 200 and r.content == body
    # An invalid tag stores nothing.
    body2 = small_image(reg, "qtag/app")
    d2 = sha256_digest(body2)
    r = requests.put(reg.url(f"/v2/qtag/app/manifests/{d2}?tag=ok&tag=-bad"), data=body2,
                     headers={"Content-Type": OCI_MANIFEST}, timeout=10)
    assert_oci_error(r, 400, "MANIFEST_INVALID")
    r = requests.get(reg.url(f"/v2/qtag/app/manifests/{d2}"), headers={"Accept": OCI_MANIFEST},
                     timeout=10)
    assert r.status_code == 404
    tags = requests.get(reg.url("/v2/qtag/app/tags/list"), timeout=10).json()["tags"]
    assert sorted(tags) == ["latest", "v1"]


def foreign_layer():
    data = b"windows base layer that is never pushed"
    return descriptor(FOREIGN, data,
                      urls=[f"https://mcr.microsoft.com/v2/windows/blobs/{sha256_digest(data)}"])


def test_foreign_layers_are_accepted_without_their_blobs(wharf_registry):
    reg = wharf_registry
    body = small_image(reg, "win/app", [foreign_layer()])
    r = put_manifest(reg, "win/app", "ltsc", body)
    assert r.status_code == 201, r.text
    r = requests.get(reg.url("/v2/win/app/manifests/ltsc"), headers={"Accept": OCI_MANIFEST},
                     timeout=10)
    assert r.status_code == 200 and r.content == body
    # An ordinary layer that was never pushed is still refused.
    bad = json.loads(body)
    bad["layers"].append(descriptor("application/vnd.oci.image.layer.v1.tar", b"not pushed"))
    r = put_manifest(reg, "win/app", "bad", json.dumps(bad).encode())
    assert_oci_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
    # Foreign layer URLs must be absolute http(s).
    worse = json.loads(body)
    worse["layers"][-1]["urls"] = ["file:///etc/passwd"]
    r = put_manifest(reg, "win/app", "worse", json.dumps(worse).encode())
    assert_oci_error(r, 400, "MANIFEST_INVALID")


def test_refuse_foreign_layers_switch(proxied):
    reg = proxied
    body = small_image(reg, "win/app", [foreign_layer()])
    r = put_manifest(reg, "win/app", "ltsc", body)
    assert_oci_error(r, 400, "MANIFEST_BLOB_UNKNOWN")


def test_wharf_up_is_writable_when_it_says_ready(wharf_bin, tmp_path):
    """A push right after the "ready" line succeeds: skopeo and others do not retry a 503.
    (Before, members stayed `syncing` for 3-4 s after the banner, even on an empty disk.)"""
    import subprocess
    import time

    from cluster import free_port
    port = free_port()
    p = subprocess.Popen([wharf_bin, "up", "--data", str(tmp_path / "data"), "--listen",
                          f"127.0.0.1:{port}", "--cluster-port", "0", "--reserve", "64MiB",
                          "--access-log", "off"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("wharf up: ready"):
                break
        assert lines and lines[-1].startswith("wharf up: ready"), "".join(lines)
        # At once: a blob of several chunks, then a manifest.
        data = os.urandom(3 << 20)
        d = sha256_digest(data)
        r = requests.post(f"http://127.0.0.1:{port}/v2/ready/app/blobs/uploads/",
                          params={"digest": d}, data=data, timeout=30)
        assert r.status_code == 201, (r.status_code, r.text)
        r = requests.get(f"http://127.0.0.1:{port}/v2/ready/app/blobs/{d}", timeout=30)
        assert r.status_code == 200 and r.content == data
        # Members with nothing to catch up never wait out the grace: all are active now.
        status = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert status.status_code == 200
    finally:
        p.kill()
        p.wait(timeout=30)


def test_files_wrong_method_is_405_whatever_the_id(wharf_registry):
    reg = wharf_registry
    for path in ("/files/x", "/files/not-an-id", "/files/" + "a" * 32):
        r = requests.put(reg.url(path), data=b"data", timeout=10)
        assert r.status_code == 405, (path, r.status_code)
        assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "DELETE"}
        assert r.json()["error"]["code"]
    r = requests.get(reg.url("/files/x"), timeout=10)
    assert r.status_code == 404
