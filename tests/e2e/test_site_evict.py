"""Watermark eviction of a site cache (`--site-cache-low` / `--site-cache-high`): a site `wharf
up` over a central `wharf up`, each of the site's four chunkservers on its own small tmpfs (so a
group's free space is its own, as on real machines).

  push 10 images through the site   ->  free space falls under the low watermark (40%)
  images 0 and 1 pulled in between  ->  the least recently pulled (images 2..5) are evicted,
                                        0, 1 and the newer 6..9 kept
  garbage collection                ->  free space back over the high watermark (60%)
  pull an evicted image             ->  fetched from the centre again, byte-identical
  PUT a manifest of an evicted blob ->  the site fetches the blob from the centre; 201
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

import cluster as wc
from cluster import wait_until
from gateway_env import UpProc
from registry_env import (OCI_MANIFEST, RegistryCluster, Registry, config_blob, image_manifest,
                          push_image, put_manifest, sha256_digest)
from test_site import pull_image, start_up

MEMBERS = ["g1-a", "g1-b", "g2-a", "g2-b"]  # `wharf up`'s chunkservers: DATA/<id>
MEMBER_FS = "16m"
LAYER = 2 << 20


def layer(i: int) -> bytes:
    block = bytes((i * 31 + j) % 253 for j in range(4096)) + i.to_bytes(4, "big")
    return (block * (LAYER // len(block) + 1))[:LAYER]


def mount_tmpfs(path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={MEMBER_FS}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the site's chunkservers ({r.stderr.strip()}): "
                    "the eviction test needs root (mount -t tmpfs)")


def unmount(path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def stored_blobs(db) -> set[str]:
    """Digests of the blob records of the site's metadata store (read-only, beside the gateway)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0] for row in con.execute("SELECT digest FROM blobs")}
    finally:
        con.close()


def members_free_fraction(data) -> float:
    """Σ over groups of the smaller member's free space / Σ capacity, from statvfs."""
    free = cap = 0
    for g in ("g1", "g2"):
        st = [os.statvfs(data / f"{g}-{m}") for m in ("a", "b")]
        free += min(s.f_bavail * s.f_frsize for s in st)
        cap += min(s.f_blocks * s.f_frsize for s in st)
    return free / cap


def metrics(addr: str) -> dict[str, float]:
    r = wc.http_get(addr, "/metrics")
    r.raise_for_status()
    return wc.parse_metrics(r.text)


def next_second() -> None:
    """Waits until the wall clock's second moves on: last uses are unix seconds, and content of
    one second is ordered by digest."""
    t = int(time.time())
    wait_until(lambda: int(time.time()) > t, 5, "the next second")


def test_site_evicts_least_recently_pulled_between_watermarks(wharf_bin, tmp_path):
    c = RegistryCluster(wharf_bin, tmp_path)
    site_dir = tmp_path / "site"
    data = site_dir / "data"
    mounted = []
    try:
        for m in MEMBERS:
            mount_tmpfs(data / m)
            mounted.append(data / m)
        centre = start_up(c, "centre")
        site = UpProc(c, "site", site_dir)
        site.opts["extra"] = [
            "--chunk-size", "1MiB", "--reserve", "1MiB",
            "--site-upstream", f"http://{centre.addr}", "--site-tag-ttl", "1s",
            "--site-cache-low", "40%", "--site-cache-high", "60%",
            "--gc-interval", "0.5",
        ]  # yapf: disable
        c.gateways.append(site)
        site.start(timeout=30)
        wait_until(lambda: requests.get(f"http://{site.addr}/v2/", timeout=2).status_code == 200,
                   30, "the site serving /v2/")
        reg = Registry("wharf", site, c)
        db = data / "meta.db"

        layers = [layer(i) for i in range(10)]
        bodies = {}
        for i in range(6):
            _, bodies[i] = push_image(reg, f"evict/img{i}", "v1", [layers[i]])
        assert metrics(site.addr).get("wharf_site_evictions_total", 0) == 0

        # Images 0 and 1 pulled after 2..5 were pushed, and before 6..9 are: their last use
        # falls between. Wait until the pulls were written to the store (TouchBlobs).
        next_second()
        touches = metrics(site.addr).get('wharf_meta_op_seconds_count{op="touch_blobs"}', 0)
        for i in (0, 1):
            manifest, blobs = pull_image(reg, f"evict/img{i}", "v1")
            assert manifest == bodies[i] and blobs[sha256_digest(layers[i])] == layers[i]
        wait_until(
            lambda: metrics(site.addr).get('wharf_meta_op_seconds_count{op="touch_blobs"}', 0) >
            touches, 30, "the pulls written to the store")
        next_second()
        for i in range(6, 10):
            _, bodies[i] = push_image(reg, f"evict/img{i}", "v1", [layers[i]])

        # 20 MiB of layers on 2 x 16 MiB: under 40% free. Eviction takes the least recently
        # pulled until 60% is reached once collected: layers 2..5 (8 MiB >= 7.2 MiB needed).
        evicted = {sha256_digest(layers[i]) for i in range(2, 6)}
        kept = {sha256_digest(layers[i]) for i in (0, 1, 6, 7, 8, 9)}
        wait_until(lambda: not (evicted & stored_blobs(db)), 120, "layers 2..5 evicted")
        m = metrics(site.addr)
        assert m["wharf_site_evictions_total"] >= 4
        assert m["wharf_site_evicted_bytes_total"] >= 4 * LAYER
        assert kept <= stored_blobs(db), "a recently pulled or newer layer was evicted"

        # The collector deletes the evicted chunks: free space back above the high watermark, in
        # the members' file systems and as the site measures it.
        wait_until(lambda: members_free_fraction(data) >= 0.60, 120,
                   "free space on the members back over 60%")
        wait_until(lambda: metrics(site.addr).get("wharf_site_cache_free_ratio", 0) >= 0.60, 60,
                   "the site measuring free space over 60%")
        assert kept <= stored_blobs(db)
        assert metrics(site.addr)["wharf_site_evictions_total"] == m["wharf_site_evictions_total"]

        # An evicted image pulls again, byte-identical, fetched from the centre and kept.
        fetched = metrics(site.addr).get(
            'wharf_site_upstream_fetches_total{kind="blob",outcome="stored"}', 0)
        manifest, blobs = pull_image(reg, "evict/img2", "v1")
        assert manifest == bodies[2] and blobs[sha256_digest(layers[2])] == layers[2]
        assert metrics(site.addr).get(
            'wharf_site_upstream_fetches_total{kind="blob",outcome="stored"}', 0) > fetched
        # The client has every byte before the site's copy commits: wait for it.
        wait_until(lambda: sha256_digest(layers[2]) in stored_blobs(db), 60,
                   "the re-fetched layer stored at the site")

        # A client pushing an evicted layer again finds it by HEAD (the site asks the centre) and
        # skips it; the manifest PUT then makes the site fetch it: 201, and the blob is here.
        d3 = sha256_digest(layers[3])
        assert requests.head(reg.url(f"/v2/evict/img3/blobs/{d3}"), timeout=30).status_code == 200
        body = image_manifest(config_blob("amd64", [d3], extra="evict/img3"), [layers[3]])
        assert body == bodies[3]
        r = put_manifest(reg, "evict/img3", "again", body, OCI_MANIFEST)
        assert r.status_code == 201, f"{r.status_code} {r.text[:300]}"
        assert d3 in stored_blobs(db)
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        raise
    finally:
        c.close()
        for p in mounted:
            unmount(p)
