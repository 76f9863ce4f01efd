"""Site mode (`--site-upstream`): two sites, each a `wharf up` with its own data and ports,
over a central `wharf up`; and Debian's `docker-registry` as the upstream of one site.

  push to site A  ->  written through to the centre before it is acknowledged
  pull from site B ->  fetched on miss from the centre, streamed and stored; the second pull
                       makes no upstream blob request (counted in the centre's access log)
  centre stopped  ->  B serves what it cached; a miss is a 503 with the spec's error JSON;
                       a push to A fails with a clear 5xx
"""

from __future__ import annotations

import os
import re
import sys

import pytest
import requests

from cluster import Timeout, wait_until
from registry_env import (OCI_MANIFEST, REFERENCE_BIN, RegistryCluster, ReferenceRegistryProc,
                          Registry, assert_oci_error, push_blob, push_image, sha256_digest)

def layer(seed: int, size: int) -> bytes:
    block = bytes((seed * 7 + i) % 251 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


def start_up(c: RegistryCluster, name: str, extra=()) -> Registry:
    up = c.add_up(name=name, extra=list(extra))
    wait_until(lambda: requests.get(f"http://{up.addr}/v2/", timeout=2).status_code == 200,
               30, f"{name} serving /v2/")
    return Registry("wharf", up, c)


def blob_gets(access_log) -> int:
    """GETs of blob content the centre answered (HEADs and manifests not counted)."""
    if not access_log.exists():
        return 0
    n = 0
    for line in access_log.read_text().splitlines():
        if " method=GET " in line and re.search(r" path=/v2/\S+/blobs/sha256:", line):
            n += 1
    return n


def pull_image(reg: Registry, repo: str, tag: str) -> tuple[bytes, dict[str, bytes]]:
    r = requests.get(reg.url(f"/v2/{repo}/manifests/{tag}"),
                     headers={"Accept": OCI_MANIFEST}, timeout=60)
    assert r.status_code == 200, f"{reg.proc.name} manifest {repo}:{tag}: {r.status_code} {r.text}"
    manifest = r.content
    doc = r.json()
    blobs = {}
    for d in [doc["config"], *doc["layers"]]:
        b = requests.get(reg.url(f"/v2/{repo}/blobs/{d['digest']}"), timeout=120)
        assert b.status_code == 200, f"blob {d['digest']}: {b.status_code} {b.text[:300]}"
        assert sha256_digest(b.content) == d["digest"]
        blobs[d["digest"]] = b.content
    return manifest, blobs


@pytest.fixture
def sites(wharf_bin, tmp_path):
    c = RegistryCluster(wharf_bin, tmp_path)
    try:
        centre_log = tmp_path / "centre-access.log"
        centre = start_up(c, "centre", ["--access-log", str(centre_log)])
        up = ["--site-upstream", f"http://{centre.addr}", "--site-tag-ttl", "1s"]
        a = start_up(c, "site_a", up)
        b = start_up(c, "site_b", up)
        yield centre, a, b, centre_log
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        raise
    finally:
        c.close()


def test_push_to_a_pull_from_b_then_centre_down(sites):
    centre, a, b, centre_log = sites
    layers = [layer(1, 3 << 20), layer(2, 200_000)]
    digest, body = push_image(a, "team/app", "v1", layers)

    # Written through: the centre has the manifest and every blob.
    r = requests.get(centre.url("/v2/team/app/manifests/v1"), headers={"Accept": OCI_MANIFEST},
                     timeout=30)
    assert r.status_code == 200 and r.content == body
    checked = blob_gets(centre_log)
    for l in layers:
        assert requests.get(centre.url(f"/v2/team/app/blobs/{sha256_digest(l)}"),
                            timeout=30).content == l
    # The access log is written by its own thread: the lines of these GETs may land a moment
    # after their answers, and must not be counted as B's.
    wait_until(lambda: blob_gets(centre_log) >= checked + len(layers), 10,
               "the centre's access log lines of the checks")

    # Site B fetches on miss, byte-identical.
    before = blob_gets(centre_log)
    manifest, blobs = pull_image(b, "team/app", "v1")
    assert manifest == body
    for l in layers:
        assert blobs[sha256_digest(l)] == l
    wait_until(lambda: blob_gets(centre_log) >= before + 3, 10, "centre access log lines")
    first = blob_gets(centre_log) - before
    assert first == 3, f"first pull through B fetched {first} blobs from the centre, not 3"

    # The second pull is served from B's own cluster: no blob request reaches the centre.
    manifest2, blobs2 = pull_image(b, "team/app", "v1")
    assert manifest2 == body and blobs2 == blobs
    assert blob_gets(centre_log) - before == first

    # A second tag pushed at the centre directly is seen by B once the tag TTL (1 s) passed.
    digest2, body2 = push_image(centre, "team/app", "v2", [layer(3, 1000)])
    m = requests.get(b.url("/v2/team/app/manifests/v2"), headers={"Accept": OCI_MANIFEST},
                     timeout=30)
    assert m.status_code == 200 and m.content == body2

    # The centre goes away.
    centre.proc.stop()
    # B still serves what it cached (tags included, from its last lookup).
    manifest3, blobs3 = pull_image(b, "team/app", "v1")
    assert manifest3 == body and blobs3 == blobs
    # A miss is a clear 503 with the spec's error JSON.
    missing = requests.get(b.url(f"/v2/team/app/blobs/{sha256_digest(b'never pushed')}"),
                           timeout=60)
    assert_oci_error(missing, 503, "UNAVAILABLE")
    assert "site upstream" in missing.text and "unreachable" in missing.text
    # A push to A fails with a clear error: not acknowledged without the upstream.
    r = requests.post(a.url("/v2/team/app/blobs/uploads/"),
                      params={"digest": sha256_digest(b"late blob")}, data=b"late blob",
                      timeout=120)
    assert r.status_code == 503, f"{r.status_code} {r.text}"
    assert "site upstream" in r.text and "push again" in r.text


def test_reference_registry_as_upstream(wharf_bin, tmp_path):
    if not os.access(REFERENCE_BIN, os.X_OK):
        pytest.skip(f"the reference registry {REFERENCE_BIN} is not installed")
    ref_cluster = RegistryCluster(REFERENCE_BIN, tmp_path / "ref")
    c = RegistryCluster(wharf_bin, tmp_path / "sites")
    try:
        p = ReferenceRegistryProc(ref_cluster, "reference", ref_cluster.root / "reference")
        ref_cluster.gateways.append(p)
        p.start()
        ref = Registry("reference", p, ref_cluster)
        up = ["--site-upstream", f"http://{p.addr}"]
        a = start_up(c, "site_a", up)
        b = start_up(c, "site_b", up)
        layers = [layer(5, 2 << 20), layer(6, 777)]
        digest, body = push_image(a, "ref/app", "v1", layers)
        r = requests.get(ref.url("/v2/ref/app/manifests/v1"), headers={"Accept": OCI_MANIFEST},
                         timeout=30)
        assert r.status_code == 200 and r.content == body
        manifest, blobs = pull_image(b, "ref/app", "v1")
        assert manifest == body
        for l in layers:
            assert blobs[sha256_digest(l)] == l
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n" + ref_cluster.log_tails() + "\n")
        raise
    finally:
        c.close()
        ref_cluster.close()
