"""Many gateways, one PostgreSQL, one cluster: the gateway is stateless, so any of them serves
any request of a client, halfway through an upload included.

One cluster (a master, groups g1 and g2 of two chunkservers) with gateways A, B and C on one
PostgreSQL database is shared by the module's tests; each test uses its own repositories.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

import cluster as wc
from cluster import wait_until
from gateway_env import GatewayCluster, MiB, one_error_line, run_wharf
from pg_env import PgServer, find_bindir, pg_server  # noqa: F401 - fixture
from registry_env import (OCI_MANIFEST, LayoutWriter, Registry, absolute, push_blob, push_image,
                          sha256_digest, start_upload, tar_layer, with_query)

SKOPEO = shutil.which("skopeo")


class Many:
    def __init__(self, c: GatewayCluster, url: str, gateways: list):
        self.c = c
        self.url = url
        self.gws = gateways
        self.regs = [Registry("wharf", g, c) for g in gateways]


@pytest.fixture(scope="module")
def many(wharf_bin, pg_server, tmp_path_factory):  # noqa: F811 - fixture
    url = pg_server.fresh_database()
    c = GatewayCluster(wharf_bin, tmp_path_factory.mktemp("many"))
    try:
        c.start_topology(masters=1, groups={"g1": 2, "g2": 2})
        c.wait_cluster_ready()
        gws = [c.add_gateway(name, meta=url, chunk_size="1MiB", gc_interval=1)
               for name in ("gwA", "gwB", "gwC")]
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        c.close()
        raise
    yield Many(c, url, gws)
    c.close()


def at(reg: Registry, location: str) -> str:
    """The same upload url, on another gateway."""
    path = location.split("://", 1)[1].split("/", 1)[1]
    return reg.url("/" + path)


def get_blob(reg: Registry, repo: str, digest: str) -> bytes:
    r = requests.get(reg.url(f"/v2/{repo}/blobs/{digest}"), timeout=60)
    assert r.status_code == 200, f"GET blob via {reg.addr}: {r.status_code} {r.text[:200]}"
    return r.content


def test_chunked_upload_started_continued_and_closed_on_three_gateways(many):
    a, b, c = many.regs
    parts = [os.urandom(MiB + 17), os.urandom(2 * MiB + 5), os.urandom(333)]
    data = b"".join(parts)
    loc = start_upload(a, "many/chunked")
    r = requests.patch(loc, data=parts[0], timeout=60,
                       headers={"Content-Range": f"0-{len(parts[0]) - 1}"})
    assert r.status_code == 202, f"PATCH on A: {r.status_code} {r.text[:200]}"
    loc = at(b, absolute(a, r.headers["Location"]))
    # B knows where the upload stands.
    st = requests.get(loc, timeout=10)
    assert st.status_code == 204 and st.headers["Range"] == f"0-{len(parts[0]) - 1}", st.headers
    start = len(parts[0])
    r = requests.patch(loc, data=parts[1], timeout=60,
                       headers={"Content-Range": f"{start}-{start + len(parts[1]) - 1}"})
    assert r.status_code == 202, f"PATCH on B: {r.status_code} {r.text[:200]}"
    loc = at(c, absolute(b, r.headers["Location"]))
    digest = sha256_digest(data)
    r = requests.put(with_query(loc, digest=digest), data=parts[2], timeout=60)
    assert r.status_code == 201, f"PUT on C: {r.status_code} {r.text[:200]}"
    for reg in many.regs:
        assert get_blob(reg, "many/chunked", digest) == data


def test_same_blob_pushed_through_all_three_at_once(many, pg_server):  # noqa: F811
    data = os.urandom(3 * MiB + 1)
    digest = sha256_digest(data)
    results: list = [None] * 3
    start = threading.Barrier(3)

    def push(i: int):
        start.wait()
        try:
            results[i] = requests.post(many.regs[i].url(f"/v2/many/same{i}/blobs/uploads/"),
                                       params={"digest": digest}, data=data,
                                       timeout=120).status_code
        except requests.RequestException as e:  # noqa: PERF203
            results[i] = repr(e)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201, 201, 201], results
    for i, reg in enumerate(many.regs):
        assert get_blob(reg, f"many/same{(i + 1) % 3}", digest) == data
    # Stored once: one chunk list; the other copies' chunks became garbage, which the
    # collectors delete from the members and forget.
    d = many.url.split("@/", 1)[1].split("?")[0]
    owner = f"blob:{digest}"
    assert pg_server.psql(d, f"SELECT count(*) FROM chunk_lists WHERE owner = '{owner}'") == "4"
    wait_until(lambda: pg_server.psql(d, "SELECT count(*) FROM chunks WHERE owner = ''") == "0",
               30, "the duplicate copies collected")


def small_layout(root: Path):
    w = LayoutWriter(root)
    layers = [w.add_bytes(tar_layer({f"f{i}": os.urandom(200_000 + i)})) for i in range(3)]
    img = w.add_image(layers)
    w.tag(img, "v1")
    return img


def skopeo(*args, timeout=300):
    if not SKOPEO:
        pytest.skip("skopeo is not installed")
    r = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"skopeo {' '.join(args)}: {r.stderr[-2000:]}"
    return r


def test_skopeo_pushes_through_a_and_pulls_through_b(many, tmp_path):
    a, b, _ = many.regs
    img = small_layout(tmp_path / "oci")
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{tmp_path / 'oci'}:v1",
           f"docker://{a.addr}/many/skopeo:v1")
    out = tmp_path / "pulled"
    skopeo("copy", "--src-tls-verify=false", f"docker://{b.addr}/many/skopeo:v1", f"dir:{out}")
    manifest = (out / "manifest.json").read_bytes()
    assert sha256_digest(manifest) == img["digest"]
    m = json.loads(manifest)
    for desc in [m["config"], *m["layers"]]:
        blob = out / desc["digest"].split(":")[1]
        assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == desc["digest"]


def test_gateway_killed_mid_push_and_the_retry_through_another_completes(many):
    a, b, c = many.regs
    gw_a = many.gws[0]
    data = os.urandom(12 * MiB + 99)
    digest = sha256_digest(data)
    loc = start_upload(a, "many/killed")

    def body():
        for i in range(0, len(data), MiB):
            if i == 6 * MiB:
                gw_a.kill9()  # mid-PATCH: half the body is in, none of it committed
            yield data[i:i + MiB]

    with pytest.raises(requests.RequestException):
        r = requests.patch(loc, data=body(), timeout=60)
        raise AssertionError(f"the PATCH through a killed gateway answered {r.status_code}")
    try:
        # The client's retry, through B: where does the upload stand? Then the rest, and close.
        loc_b = at(b, loc)
        st = requests.get(loc_b, timeout=10)
        assert st.status_code == 204, f"upload status on B: {st.status_code} {st.text[:200]}"
        # "0-0" is what an upload with no bytes yet answers (the spec's Range cannot say 0).
        rng = st.headers.get("Range", "0-0")
        have = 0 if rng == "0-0" else int(rng.split("-")[1]) + 1
        assert have < len(data)
        r = requests.patch(loc_b, data=data[have:], timeout=120,
                           headers={"Content-Range": f"{have}-{len(data) - 1}"})
        assert r.status_code == 202, f"PATCH on B: {r.status_code} {r.text[:200]}"
        r = requests.put(with_query(at(b, absolute(b, r.headers["Location"])), digest=digest),
                         timeout=60)
        assert r.status_code == 201, f"PUT on B: {r.status_code} {r.text[:200]}"
        assert get_blob(c, "many/killed", digest) == data
    finally:
        gw_a.start(keep_port=True)
    assert get_blob(a, "many/killed", digest) == data


def test_tags_and_catalog_identical_through_every_gateway(many):
    for i, reg in enumerate(many.regs):
        for t in range(3):
            push_image(reg, f"many/img{i}", f"t{t}", [os.urandom(1000 + t)])
    views = []
    for reg in many.regs:
        cat = requests.get(reg.url("/v2/_catalog"), timeout=10)
        assert cat.status_code == 200
        tags = {r: requests.get(reg.url(f"/v2/{r}/tags/list"), timeout=10).json()
                for r in cat.json()["repositories"]}
        page = requests.get(reg.url("/v2/_catalog"), params={"n": 2}, timeout=10)
        manifests = {t: requests.get(reg.url(f"/v2/many/img1/manifests/{t}"), timeout=10,
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
                                     ).content for t in ("t0", "t1", "t2")}
        views.append((cat.json(), tags, page.json(), page.headers.get("Link"), manifests))
    assert views[0] == views[1] == views[2]
    assert {"many/img0", "many/img1", "many/img2"} <= set(views[0][0]["repositories"])
    assert views[0][1]["many/img2"]["tags"] == ["t0", "t1", "t2"]


def test_lookup_caches_stay_coherent_across_gateways(many):
    """Each gateway remembers which blobs a repository links and manifests by digest for
    --lookup-cache-ttl (2 s); with several gateways on one store tags are not cached. So a tag
    moved through A is served by B at once, and a blob deleted through A is gone on A at once
    and on B within the ttl (never later)."""
    a, b = many.regs[0], many.regs[1]
    repo = "many/cache"
    accept = {"Accept": OCI_MANIFEST}
    d1, _ = push_image(a, repo, "v", [os.urandom(500)])
    bd = push_blob(a, repo, os.urandom(2000))
    hit = 'wharf_gateway_lookup_cache_total{kind="blob",outcome="hit"}'
    before = wc.metric(many.gws[1].addr, hit)
    for _ in range(3):
        assert requests.head(b.url(f"/v2/{repo}/blobs/{bd}"), timeout=10).status_code == 200
        r = requests.get(b.url(f"/v2/{repo}/manifests/v"), headers=accept, timeout=10)
        assert r.headers["Docker-Content-Digest"] == d1
    assert wc.metric(many.gws[1].addr, hit) >= before + 2, "B answers repeated HEADs from memory"

    d2, _ = push_image(a, repo, "v", [os.urandom(600)])
    r = requests.get(b.url(f"/v2/{repo}/manifests/v"), headers=accept, timeout=10)
    assert r.headers["Docker-Content-Digest"] == d2, "a tag moved on A is seen on B at once"

    assert requests.head(a.url(f"/v2/{repo}/blobs/{bd}"), timeout=10).status_code == 200
    assert requests.delete(a.url(f"/v2/{repo}/blobs/{bd}"), timeout=10).status_code == 202
    assert requests.head(a.url(f"/v2/{repo}/blobs/{bd}"), timeout=10).status_code == 404
    t0 = time.monotonic()
    wait_until(lambda: requests.head(b.url(f"/v2/{repo}/blobs/{bd}"), timeout=10).status_code
               == 404, timeout=15, what="B to forget the deleted blob")
    assert time.monotonic() - t0 < 2.0 + 5.0, "within the 2 s ttl (and a loaded machine's slack)"


def test_gateway_without_its_database_fails_at_start_with_one_line(wharf_bin, many):
    r = run_wharf(wharf_bin, "gateway", "--listen", f"127.0.0.1:{wc.free_port()}", "--master",
                  many.c.master_addrs, "--meta",
                  "postgres://wharf:secret@/wharf?host=/nonexistent-socket-dir&port=5",
                  timeout=60)
    line = one_error_line(r, "gateway")
    assert "cannot connect" in line and "secret" not in line, line


def test_database_down_at_run_time_gives_503_not_a_crash(wharf_bin, tmp_path):
    bindir = find_bindir()
    if not bindir:
        pytest.fail("PostgreSQL server binaries not found (see pg_env.find_bindir)",
                    pytrace=False)
    server = PgServer(bindir).start()
    c = GatewayCluster(wharf_bin, tmp_path / "down")
    try:
        url = server.fresh_database()
        c.start_topology(masters=1, groups={"g1": 2})
        c.wait_cluster_ready()
        gw = c.add_gateway(meta=url, chunk_size="1MiB")
        reg = Registry("wharf", gw, c)
        digest, _ = push_image(reg, "down/img", "v1", [b"layer"])
        server.stop_server()
        r = requests.get(reg.url("/v2/down/img/manifests/v1"), timeout=30)
        assert r.status_code == 503, f"{r.status_code} {r.text[:200]}"
        r = requests.post(reg.url("/v2/down/img/blobs/uploads/"), timeout=30)
        assert r.status_code == 503, f"{r.status_code} {r.text[:200]}"
        assert gw.alive(), "the gateway died with its database"
        # Back: the pool drops its dead connections and opens new ones.
        server.start_again()
        r = requests.get(reg.url("/v2/down/img/manifests/v1"), timeout=30,
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 200, f"{r.status_code} {r.text[:200]}"
        assert r.headers["Docker-Content-Digest"] == digest
    finally:
        c.close()
        server.stop()


def test_wharf_up_on_postgres(wharf_bin, pg_server, tmp_path):  # noqa: F811
    url = pg_server.fresh_database()
    c = GatewayCluster(wharf_bin, tmp_path / "up")
    try:
        up = c.add_up(start=False)
        up.opts["extra"] = ["--meta", url, "--chunk-size", "1MiB"]
        up.start(timeout=30)
        reg = Registry("wharf", up, c)
        digest, body = push_image(reg, "up/img", "v1", [os.urandom(MiB + 3)])
        db = url.split("@/", 1)[1].split("?")[0]
        assert pg_server.psql(db, "SELECT count(*) FROM tags") == "1"
        assert not (up.data_dir / "meta.db").exists()
    finally:
        c.close()
