"""End-to-end tests of online garbage collection: real master, chunkservers and gateway, pushes
and pulls over the OCI API, chunk files checked on every member's disk.

  * deleting an image frees its exclusive layers' chunk files from every member, and keeps the
    layers another image shares (the gateway's own collector loop);
  * `wharf gc --dry-run` prints and frees nothing, then `wharf gc` frees;
  * the race "blob seen present, collected, manifest commits", forced in both orders with the
    test-only pause of `wharf gc` between its steps (no sleeps);
  * GET /admin/gc shows the bytes stored and the bytes reclaimable, and follows a collection;
  * a bounded stress test: pushers and deleters against the collector running in short rounds.

All but the stress test (SQLite only; tests/e2e/test_gc_stress.py is its two-gateway
PostgreSQL twin) run on both metadata stores: SQLite, and a private PostgreSQL (pg_env.py).

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_gc.py
"""

from __future__ import annotations

import json
import os
import random
import select
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

import cluster as wc
from cluster import wait_until
from gateway_env import make_gw_cluster  # noqa: F401 - a fixture
from gateway_env import MiB, one_error_line, run_wharf
from pg_env import pg_server  # noqa: F401 - a fixture
from registry_env import (OCI_MANIFEST, Registry, assert_oci_error, config_blob,
                          image_manifest, push_blob, put_manifest, sha256_digest)


# --------------------------------------------------------------------------------- helpers


@pytest.fixture(params=["sqlite", "postgres"])
def store(request) -> dict:
    """The gateway options that pick the metadata store: its own SQLite file (the default), or
    a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return {}
    return {"meta": request.getfixturevalue("pg_server").fresh_database()}


def start(make, name: str, **gateway_opts):
    c = make(name)
    c.start_topology(masters=1, groups={"g1": 2, "g2": 2})
    c.wait_cluster_ready()
    gw = c.add_gateway(**gateway_opts)
    return c, gw, Registry("wharf", gw, c)


def meta_path(gw) -> Path:
    return Path(gw.opts["meta"].removeprefix("sqlite:"))


def chunk_ids(c) -> dict[str, list]:
    """chunk id -> the members holding its file."""
    return {cid: [cs for cs, _ in where] for cid, where in c.chunk_files().items()}


def push_blob_if_absent(reg, repo: str, data: bytes) -> str:
    """As clients do: HEAD first, push only when absent."""
    d = sha256_digest(data)
    if requests.head(reg.url(f"/v2/{repo}/blobs/{d}"), timeout=30).status_code == 200:
        return d
    return push_blob(reg, repo, data)


def image(repo: str, layers: list[bytes], salt: str) -> tuple[bytes, list[bytes]]:
    """(manifest body, [config, *layers])."""
    cfg = config_blob("amd64", [sha256_digest(l) for l in layers], extra=repo + salt)
    return image_manifest(cfg, layers), [cfg, *layers]


def push(reg, repo: str, tag: str, layers: list[bytes], salt: str = "") -> tuple[str, bytes]:
    body, blobs = image(repo, layers, salt)
    for b in blobs:
        push_blob_if_absent(reg, repo, b)
    r = put_manifest(reg, repo, tag, body)
    assert r.status_code == 201, f"put manifest {repo}:{tag}: {r.status_code} {r.text[:300]}"
    return sha256_digest(body), body


def pull_verified(reg, repo: str, ref: str, want_digest: str):
    """GETs the manifest and every blob it names, checking each digest and size."""
    r = requests.get(reg.url(f"/v2/{repo}/manifests/{ref}"), timeout=30,
                     headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, f"pull {repo}:{ref}: {r.status_code} {r.text[:200]}"
    assert sha256_digest(r.content) == want_digest, f"{repo}:{ref} manifest digest"
    m = json.loads(r.content)
    for desc in [m["config"], *m["layers"]]:
        b = requests.get(reg.url(f"/v2/{repo}/blobs/{desc['digest']}"), timeout=60)
        assert b.status_code == 200, f"{repo} blob {desc['digest']}: {b.status_code}"
        assert len(b.content) == desc["size"] and sha256_digest(b.content) == desc["digest"], \
            f"{repo} blob {desc['digest']} corrupt"


def gc_cmd(wharf_bin, c, gw, *args: str) -> list[str]:
    return [wharf_bin, "gc", "--meta", gw.opts["meta"], "--master", c.master_addrs, *args]


def run_gc(wharf_bin, c, gw, *args: str) -> dict:
    r = run_wharf(wharf_bin, *gc_cmd(wharf_bin, c, gw, *args, "--json")[1:], timeout=120)
    assert r.returncode == 0, f"wharf gc: exit {r.returncode}: {r.stderr.decode()[-500:]}"
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


class PausedGc:
    """`wharf gc --pause-at-for-test STEP`: waits until it says it paused, resume() lets it go
    on, result() is its JSON report. Killed in close() whatever happened."""

    def __init__(self, wharf_bin, c, gw, step: str, *args: str):
        self.p = subprocess.Popen(
            gc_cmd(wharf_bin, c, gw, "--pause-at-for-test", step, "--json", *args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self._line(30)
        assert line == f"paused at {step}", f"wharf gc said {line!r}, stderr: {self._err()}"

    def _line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        assert ready, f"wharf gc printed nothing in {timeout}s; stderr: {self._err()}"
        return self.p.stdout.readline().decode().strip()

    def _err(self) -> str:
        if self.p.poll() is None:
            return "(running)"
        return self.p.stderr.read().decode()[-500:]

    def resume(self) -> dict:
        self.p.stdin.write(b"\n")
        self.p.stdin.flush()
        out, err = self.p.communicate(timeout=60)
        assert self.p.returncode == 0, f"wharf gc: exit {self.p.returncode}: {err.decode()[-500:]}"
        return json.loads(out.decode().strip().splitlines()[-1])

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def live_chunks(db: Path) -> set[str]:
    """Chunk ids that a blob, file or upload of the metadata store lists."""
    con = sqlite3.connect(str(db), timeout=10)
    try:
        return {r[0] for r in con.execute("SELECT chunk_id FROM chunk_lists")}
    finally:
        con.close()


def next_second():
    """Waits for the next whole unix second: the store stamps links in whole seconds, and
    `--gc-grace 0` takes the links of past seconds only."""
    t = int(time.time())
    wait_until(lambda: int(time.time()) > t, 3, "the next second", interval=0.02)


def rnd(n: int) -> bytes:
    return os.urandom(n)


# ----------------------------------------------------------------------------------- tests


def test_deleting_an_image_frees_its_exclusive_layers_on_every_member(make_gw_cluster, store):
    c, gw, reg = start(make_gw_cluster, "del", gc_interval="0.2",
                       extra=["--gc-grace", "2s"], **store)
    shared, only_b, only_a = rnd(2 * MiB + 5), rnd(MiB + 7), rnd(2 * MiB + 9)
    db, _ = push(reg, "app", "b", [shared, only_b])
    before_a = set(chunk_ids(c))
    da, _ = push(reg, "app", "a", [shared, only_a])
    files = chunk_ids(c)
    a_chunks = set(files) - before_a
    assert len(a_chunks) == 3 + 1, "only_a (3 chunks) and a's config; shared was not re-pushed"
    assert all(len(files[cid]) == 2 for cid in files), "every chunk on both members of its group"
    # Past the grace period, with rounds running, referenced layers all stay.
    runs = wc.metric(gw.addr, "wharf_gc_runs_total")
    time.sleep(2.5)
    wait_until(lambda: wc.metric(gw.addr, "wharf_gc_runs_total") >= runs + 15, 30, "gc rounds")
    assert set(chunk_ids(c)) == set(files)
    freed_before = wc.metric(gw.addr, "wharf_gc_bytes_freed_total")
    r = requests.delete(reg.url(f"/v2/app/manifests/{da}"), timeout=10)
    assert r.status_code == 202, r.text
    # chunk_ids() reads the members' data directories: the files are gone from every disk.
    wait_until(lambda: set(chunk_ids(c)) == before_a, 30, "a's exclusive chunks deleted")
    pull_verified(reg, "app", "b", db)
    assert_oci_error(requests.get(reg.url(f"/v2/app/blobs/{sha256_digest(only_a)}"), timeout=10),
                     404, "BLOB_UNKNOWN", "a's layer")
    freed = wc.metric(gw.addr, "wharf_gc_bytes_freed_total") - freed_before
    assert freed >= len(only_a), freed
    assert wc.metric(gw.addr, "wharf_gc_items_freed_total") > 0


def test_gc_cli_dry_run_frees_nothing_then_gc_frees(make_gw_cluster, wharf_bin, store):
    # The gateway's own collector does not run here: only `wharf gc` frees.
    c, gw, reg = start(make_gw_cluster, "cli", gc_interval="3600", **store)
    keep = rnd(MiB + 3)
    dk, _ = push(reg, "cli/keep", "v1", [keep])
    before = set(chunk_ids(c))
    layers = [rnd(2 * MiB + 1), rnd(300_000)]
    dx, body = push(reg, "cli/x", "v1", layers)
    x_chunks = set(chunk_ids(c)) - before
    _, blobs = image("cli/x", layers, "")
    x_bytes = sum(len(b) for b in blobs)
    assert requests.delete(reg.url(f"/v2/cli/x/manifests/{dx}"), timeout=10).status_code == 202
    next_second()

    dry = run_gc(wharf_bin, c, gw, "--dry-run", "--gc-grace", "0")
    assert dry["dry_run"] is True
    assert (dry["blob_links"], dry["blobs"], dry["blob_bytes"]) == (3, 3, x_bytes), dry
    assert dry["chunks_released"] == len(x_chunks), dry
    assert dry["chunks_deleted"] == 0
    text = run_wharf(wharf_bin, *gc_cmd(wharf_bin, c, gw, "--dry-run", "--gc-grace", "0")[1:])
    assert text.returncode == 0 and b"dry run: nothing was deleted" in text.stdout, text
    assert set(chunk_ids(c)) == before | x_chunks, "a dry run deletes nothing"
    for b in blobs:
        assert requests.head(reg.url(f"/v2/cli/x/blobs/{sha256_digest(b)}"),
                             timeout=10).status_code == 200
    # The default grace (1h) covers these just-pushed blobs.
    assert run_gc(wharf_bin, c, gw)["blobs"] == 0

    real = run_gc(wharf_bin, c, gw, "--gc-grace", "0")
    assert real["dry_run"] is False
    assert (real["blob_links"], real["blobs"], real["blob_bytes"]) == (3, 3, x_bytes), real
    assert real["chunks_deleted"] == len(x_chunks), real
    assert real["bytes_deleted"] == x_bytes, real
    assert set(chunk_ids(c)) == before
    for b in blobs:
        assert_oci_error(requests.get(reg.url(f"/v2/cli/x/blobs/{sha256_digest(b)}"),
                                      timeout=10), 404, "BLOB_UNKNOWN", "collected blob")
    pull_verified(reg, "cli/keep", "v1", dk)
    again = run_gc(wharf_bin, c, gw, "--gc-grace", "0")
    assert (again["blobs"], again["chunks_deleted"]) == (0, 0), again

    # Bad input: one line, exit 2.
    for args, what in ((["--gc-grace", "-1"], "--gc-grace"),
                       (["--gc-untagged-after", "soon"], "--gc-untagged-after")):
        r = run_wharf(wharf_bin, *gc_cmd(wharf_bin, c, gw, *args)[1:])
        assert r.returncode == 2 and what in one_error_line(r, "gc")
    r = run_wharf(wharf_bin, "gc", "--meta", "sqlite:/nonexistent/meta.db", "--dry-run")
    assert r.returncode == 2 and "no such database" in one_error_line(r, "gc")


def test_race_blob_seen_then_collected_then_manifest_forced_both_orders(make_gw_cluster,
                                                                        wharf_bin, store):
    # The gateway's own collector stays out of the way: only `wharf gc` collects here.
    c, gw, reg = start(make_gw_cluster, "race", gc_interval="3600", **store)

    # Order 1: the collector has decided the blobs are unreferenced; the client HEADs them
    # and commits its manifest; the collector's transaction re-decides and keeps them.
    layer = rnd(MiB + 11)
    body, blobs = image("race/one", [layer], "")
    for b in blobs:
        push_blob(reg, "race/one", b)
    files = set(chunk_ids(c))
    next_second()
    assert run_gc(wharf_bin, c, gw, "--dry-run", "--gc-grace", "0")["blobs"] == 2
    gc = PausedGc(wharf_bin, c, gw, "links-listed", "--gc-grace", "0")
    try:
        for b in blobs:
            assert requests.head(reg.url(f"/v2/race/one/blobs/{sha256_digest(b)}"),
                                 timeout=10).status_code == 200
        assert put_manifest(reg, "race/one", "v1", body).status_code == 201
        report = gc.resume()
    finally:
        gc.close()
    assert (report["blob_links"], report["blobs"], report["chunks_deleted"]) == (0, 0, 0), report
    assert set(chunk_ids(c)) == files
    pull_verified(reg, "race/one", "v1", sha256_digest(body))

    # Order 2: the collection has committed; the blob is absent to HEAD and mount, the
    # manifest is refused with MANIFEST_BLOB_UNKNOWN, and the chunk files are still there
    # until the collector's garbage step. The client pushes again and succeeds.
    layer2 = rnd(MiB + 13)
    body2, blobs2 = image("race/two", [layer2], "")
    for b in blobs2:
        push_blob(reg, "race/two", b)
    files2 = set(chunk_ids(c))
    next_second()
    gc = PausedGc(wharf_bin, c, gw, "links-collected", "--gc-grace", "0")
    try:
        d2 = sha256_digest(layer2)
        assert requests.head(reg.url(f"/v2/race/two/blobs/{d2}"), timeout=10).status_code == 404
        m = requests.post(reg.url("/v2/race/other/blobs/uploads/"), timeout=10,
                          params={"mount": d2, "from": "race/two"})
        assert m.status_code == 202, f"mount of a collected blob: {m.status_code}"  # an upload
        r = put_manifest(reg, "race/two", "v1", body2)
        assert_oci_error(r, 400, "MANIFEST_BLOB_UNKNOWN", "manifest after the collection")
        assert set(chunk_ids(c)) == files2, "chunks are deleted only after the commit"
        report = gc.resume()
    finally:
        gc.close()
    assert report["blobs"] == 2, report
    assert set(chunk_ids(c)) == files, "the collected blobs' chunks left every member"
    for b in blobs2:
        push_blob_if_absent(reg, "race/two", b)
    assert put_manifest(reg, "race/two", "v1", body2).status_code == 201
    pull_verified(reg, "race/two", "v1", sha256_digest(body2))
    pull_verified(reg, "race/one", "v1", sha256_digest(body))



def admin_gc(gw) -> dict:
    r = requests.get(f"http://{gw.addr}/admin/gc", timeout=60)
    assert r.status_code == 200, f"GET /admin/gc: {r.status_code} {r.text[:300]}"
    return r.json()


def test_admin_view_shows_bytes_stored_and_reclaimable(make_gw_cluster, wharf_bin, store):
    # Only `wharf gc` collects (paused between its steps); the gateway's view uses its own
    # grace (0: every unreferenced blob of a past second is reclaimable).
    c, gw, reg = start(make_gw_cluster, "admin", gc_interval="3600",
                       extra=["--gc-grace", "0s"], **store)
    empty = admin_gc(gw)
    assert empty["stored"] == {"blobs": 0, "blob_bytes": 0, "manifests": 0, "manifest_bytes": 0,
                               "files": 0, "file_bytes": 0, "bytes": 0}, empty
    assert empty["reclaimable"]["bytes"] == 0 and empty["settings"]["grace_seconds"] == 0, empty

    keep_layers = [rnd(MiB + 3), rnd(70_000)]
    dk, keep_body = push(reg, "adm/keep", "v1", keep_layers)
    x_layers = [rnd(2 * MiB + 1), rnd(300_000)]
    before_x = set(chunk_ids(c))
    dx, x_body = push(reg, "adm/x", "v1", x_layers)
    x_chunks = set(chunk_ids(c)) - before_x
    keep_bytes = sum(len(b) for b in image("adm/keep", keep_layers, "")[1])
    x_bytes = sum(len(b) for b in image("adm/x", x_layers, "")[1])
    next_second()
    view = admin_gc(gw)
    assert view["stored"] == {"blobs": 6, "blob_bytes": keep_bytes + x_bytes, "manifests": 2,
                              "manifest_bytes": len(keep_body) + len(x_body), "files": 0,
                              "file_bytes": 0,
                              "bytes": keep_bytes + x_bytes + len(keep_body) + len(x_body)}, view
    assert view["reclaimable"]["bytes"] == 0, "every blob is referenced"

    # Deleting x makes its three blobs reclaimable; they are still stored.
    assert requests.delete(reg.url(f"/v2/adm/x/manifests/{dx}"), timeout=10).status_code == 202
    next_second()
    view = admin_gc(gw)
    assert (view["stored"]["blobs"], view["stored"]["blob_bytes"]) == (6, keep_bytes + x_bytes)
    assert view["stored"]["manifests"] == 1, view
    r = view["reclaimable"]
    assert (r["blob_links"], r["blobs"], r["blob_bytes"]) == (3, 3, x_bytes), view
    assert (r["garbage_chunks"], r["garbage_bytes"], r["bytes"]) == (0, 0, x_bytes), view

    # Between the collection of the blobs and the deletion of their chunks: no longer stored,
    # their chunks waiting as garbage, still reclaimable.
    gc = PausedGc(wharf_bin, c, gw, "links-collected", "--gc-grace", "0")
    try:
        view = admin_gc(gw)
        assert (view["stored"]["blobs"], view["stored"]["blob_bytes"]) == (3, keep_bytes), view
        r = view["reclaimable"]
        assert (r["blobs"], r["blob_bytes"]) == (0, 0), view
        assert (r["garbage_chunks"], r["garbage_bytes"]) == (len(x_chunks), x_bytes), view
        assert r["bytes"] == x_bytes, view
        report = gc.resume()
    finally:
        gc.close()
    assert (report["blobs"], report["bytes_deleted"]) == (3, x_bytes), report
    view = admin_gc(gw)
    assert view["stored"]["blob_bytes"] == keep_bytes and view["reclaimable"]["bytes"] == 0, view
    assert view["last_round"] is None, "the gateway itself ran no round"
    pull_verified(reg, "adm/keep", "v1", dk)

def test_stress_pushes_and_deletes_while_the_collector_runs(make_gw_cluster):
    """A few pushers (images sharing layers), two deleters (tags and manifests), the
    collector every 0.2s with a 1s grace and untagged manifests collected at once. At the end
    every acknowledged, undeleted image pulls in full, and after the collector's rounds the
    chunk files on the members are exactly those of live blobs."""
    c, gw, reg = start(make_gw_cluster, "stress", gc_interval="0.2",
                       extra=["--gc-grace", "1s", "--gc-untagged-after", "0"])
    base = [rnd(random.randint(50_000, 1_300_000)) for _ in range(6)]
    lock = threading.Lock()
    acked: dict[tuple[str, str], tuple[str, bytes]] = {}  # (repo, tag) -> (digest, body)
    deleted: set[tuple[str, str]] = set()
    errors: list[str] = []
    stop = threading.Event()
    retries = [0]

    def pusher(n: int):
        rng = random.Random(n)
        i = 0
        while not stop.is_set():
            repo = f"stress/r{rng.randint(0, 2)}"
            tag = f"p{n}-{i}"
            i += 1
            layers = rng.sample(base, 2) + [rnd(rng.randint(1000, 200_000))]
            body, blobs = image(repo, layers, tag)
            for attempt in range(20):
                try:
                    for b in blobs:
                        push_blob_if_absent(reg, repo, b)
                    r = put_manifest(reg, repo, tag, body)
                except (AssertionError, requests.RequestException) as e:
                    with lock:
                        errors.append(f"push {repo}:{tag}: {e}")
                    return
                if r.status_code == 201:
                    with lock:
                        acked[(repo, tag)] = (sha256_digest(body), body)
                    break
                if r.status_code == 400 and "MANIFEST_BLOB_UNKNOWN" in r.text:
                    retries[0] += 1  # collected meanwhile: push the blobs again
                    continue
                with lock:
                    errors.append(f"put {repo}:{tag}: {r.status_code} {r.text[:200]}")
                return
            else:
                with lock:
                    errors.append(f"{repo}:{tag}: still refused after 20 attempts")
                return

    def deleter(n: int):
        rng = random.Random(100 + n)
        while not stop.is_set():
            time.sleep(0.4)  # slower than the pushers: live images accumulate
            with lock:
                candidates = [k for k in acked if k not in deleted]
                if len(candidates) < 5:
                    continue
                key = rng.choice(candidates)
                deleted.add(key)
            repo, tag = key
            ref = tag if rng.random() < 0.5 else acked[key][0]
            r = requests.delete(reg.url(f"/v2/{repo}/manifests/{ref}"), timeout=30)
            if r.status_code != 202:
                with lock:
                    errors.append(f"delete {repo}:{ref}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=deleter, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(25)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:5]
    live = {k: v for k, v in acked.items() if k not in deleted}
    assert len(acked) >= 20 and len(deleted) >= 5, (len(acked), len(deleted))
    for (repo, tag), (digest, _) in live.items():
        pull_verified(reg, repo, tag, digest)

    # Two more full rounds after the grace period: exactly the live blobs' chunks remain.
    time.sleep(1.5)
    runs = wc.metric(gw.addr, "wharf_gc_runs_total")
    wait_until(lambda: wc.metric(gw.addr, "wharf_gc_runs_total") >= runs + 3, 30, "3 rounds")
    want = live_chunks(meta_path(gw))
    files = chunk_ids(c)
    assert set(files) == want, \
        f"{len(set(files) - want)} garbage files, {len(want - set(files))} lost"
    assert all(len(m) == 2 for m in files.values()), "every chunk on both members"
    con = sqlite3.connect(str(meta_path(gw)), timeout=10)
    try:
        stored = {r[0] for r in con.execute("SELECT digest FROM blobs")}
        manifests = con.execute("SELECT COUNT(*) FROM manifests").fetchone()[0]
    finally:
        con.close()
    needed = set()
    for (repo, tag), (digest, body) in live.items():
        m = json.loads(body)
        needed |= {d["digest"] for d in [m["config"], *m["layers"]]}
    assert stored == needed, f"{len(stored - needed)} unreferenced blobs, {len(needed - stored)} lost"
    assert manifests == len(live)
    for (repo, tag), (digest, _) in list(live.items())[:10]:
        pull_verified(reg, repo, tag, digest)
    print(f"stress: {len(acked)} pushed, {len(deleted)} deleted, {retries[0]} manifest retries, "
          f"{len(files)} chunk files left")
