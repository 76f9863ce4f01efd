"""Garbage collection under load, through two gateways on one PostgreSQL.

Pusher threads push images that share layers (a pool of shared layers, one layer and a config of
their own), through both gateways, over the HTTP API: HEAD each blob, push it when absent, then
the manifest by tag; a manifest answered MANIFEST_BLOB_UNKNOWN (the collector took a blob the
client had seen, which the store allows once the grace is over) is pushed again, blobs and all.
Deleter threads delete tags and manifests of acknowledged images. The collector runs in short
rounds (--gc-interval 250ms, --gc-grace 1s, --gc-untagged-after 1s) in whichever gateway holds
the lease. At the end:
  - every manifest that was acknowledged and not deleted pulls in full through both gateways,
    every digest verified;
  - after two more collection passes (`wharf gc`, grace 0), the chunk files on the members are
    exactly the chunks of the live blobs: nothing lost, no garbage.
Bounded in time: STRESS_SECONDS of load (about a minute in all on two cores).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time

import requests

import cluster as wc
from gateway_env import make_gw_cluster  # noqa: F401 - fixture
from gateway_env import run_wharf
from pg_env import pg_server  # noqa: F401 - fixture
from registry_env import (OCI_MANIFEST, Registry, config_blob, image_manifest, put_manifest,
                          sha256_digest)

STRESS_SECONDS = float(os.environ.get("WHARF_GC_STRESS_SECONDS", "35"))
PUSHERS = 3
DELETERS = 2
REPOS = ["stress/a", "stress/b", "stress/c"]
SHARED_LAYERS = 8


class Ledger:
    """What the clients know: acknowledged images, and which of them were deleted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live: dict[tuple[str, str], tuple[str, bytes]] = {}  # (repo, tag) -> manifest
        self.pushes = 0
        self.push_retries = 0
        self.tag_deletes = 0
        self.manifest_deletes = 0
        self.errors: list[str] = []

    def take_one(self, rnd: random.Random):
        """Removes and returns a random live image (it is about to be deleted)."""
        with self.lock:
            if len(self.live) < 4:
                return None
            key = rnd.choice(list(self.live))
            return key, self.live.pop(key)


def push_blob_if_absent(reg: Registry, repo: str, data: bytes) -> None:
    digest = sha256_digest(data)
    head = requests.head(reg.url(f"/v2/{repo}/blobs/{digest}"), timeout=30)
    if head.status_code == 200:
        return  # the race the store must close: seen now, maybe collected before the manifest
    r = requests.post(reg.url(f"/v2/{repo}/blobs/uploads/"), params={"digest": digest},
                      data=data, headers={"Content-Type": "application/octet-stream"},
                      timeout=60)
    assert r.status_code == 201, f"push blob to {repo}: {r.status_code} {r.text[:300]}"


def pusher(i: int, regs: list[Registry], shared: list[bytes], ledger: Ledger, stop: float):
    rnd = random.Random(i)
    n = 0
    while time.monotonic() < stop:
        reg = regs[n % len(regs)]
        repo = rnd.choice(REPOS)
        tag = f"p{i}-{n}"
        n += 1
        layers = [*rnd.sample(shared, 2), os.urandom(rnd.randint(20_000, 120_000))]
        cfg = config_blob("amd64", [sha256_digest(x) for x in layers], extra=tag)
        body = image_manifest(cfg, layers)
        for attempt in range(5):
            try:
                for b in [cfg, *layers]:
                    push_blob_if_absent(reg, repo, b)
                r = put_manifest(reg, repo, tag, body)
            except (requests.RequestException, AssertionError) as e:
                with ledger.lock:
                    ledger.errors.append(f"push {repo}:{tag}: {e}")
                break
            if r.status_code == 201:
                assert r.headers["Docker-Content-Digest"] == sha256_digest(body)
                with ledger.lock:
                    ledger.live[(repo, tag)] = (sha256_digest(body), body)
                    ledger.pushes += 1
                break
            codes = [e["code"] for e in r.json().get("errors", [])] if r.text else []
            if r.status_code == 400 and "MANIFEST_BLOB_UNKNOWN" in codes:
                with ledger.lock:
                    ledger.push_retries += 1
                continue
            with ledger.lock:
                ledger.errors.append(f"put manifest {repo}:{tag}: {r.status_code} {r.text[:200]}")
            break
        else:
            with ledger.lock:
                ledger.errors.append(f"{repo}:{tag}: MANIFEST_BLOB_UNKNOWN five times in a row")


def deleter(i: int, regs: list[Registry], ledger: Ledger, stop: float):
    rnd = random.Random(100 + i)
    while time.monotonic() < stop:
        got = ledger.take_one(rnd)
        if got is None:
            time.sleep(0.05)
            continue
        (repo, tag), (digest, _) = got
        reg = rnd.choice(regs)
        by_tag = rnd.random() < 0.5
        ref = tag if by_tag else digest
        r = requests.delete(reg.url(f"/v2/{repo}/manifests/{ref}"), timeout=30)
        with ledger.lock:
            if r.status_code != 202:
                ledger.errors.append(f"delete {repo}:{ref}: {r.status_code} {r.text[:200]}")
            elif by_tag:
                ledger.tag_deletes += 1
            else:
                ledger.manifest_deletes += 1
        time.sleep(rnd.uniform(0, 0.05))


def pull_verified(reg: Registry, repo: str, tag: str, digest: str) -> list[str]:
    """Pulls repo:tag in full through reg, verifying every digest; returns the blob digests."""
    r = requests.get(reg.url(f"/v2/{repo}/manifests/{tag}"), timeout=30,
                     headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, f"pull {repo}:{tag} via {reg.addr}: {r.status_code} {r.text}"
    assert sha256_digest(r.content) == digest, f"{repo}:{tag}: manifest digest"
    m = json.loads(r.content)
    blobs = [m["config"]["digest"], *[layer["digest"] for layer in m["layers"]]]
    for d in blobs:
        b = requests.get(reg.url(f"/v2/{repo}/blobs/{d}"), timeout=60)
        assert b.status_code == 200, f"blob {d} of {repo}:{tag} via {reg.addr}: {b.status_code}"
        assert "sha256:" + hashlib.sha256(b.content).hexdigest() == d, f"{repo}:{tag}: blob {d}"
    return blobs


def gc_pass(wharf_bin, c, url) -> dict:
    r = run_wharf(wharf_bin, "gc", "--meta", url, "--master", c.master_addrs, "--gc-grace", "0s",
                  "--gc-untagged-after", "0s", "--json", timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return json.loads(r.stdout)


def sum_metric(gws, name: str) -> float:
    return sum(wc.metric(g.addr, name) for g in gws)


def test_gc_under_pushes_and_deletes_through_two_gateways(make_gw_cluster, pg_server, wharf_bin):  # noqa: F811,E501
    url = pg_server.fresh_database()
    db = url.split("@/", 1)[1].split("?")[0]
    c = make_gw_cluster("stress")
    c.start_topology(masters=1, groups={"g1": 2, "g2": 2})
    c.wait_cluster_ready()
    gc_flags = ["--gc-grace", "1s", "--gc-untagged-after", "1s"]
    gws = [c.add_gateway(n, meta=url, chunk_size="32KiB", gc_interval="250ms", extra=gc_flags)
           for n in ("gwA", "gwB")]
    regs = [Registry("wharf", g, c) for g in gws]
    shared = [os.urandom(random.randint(40_000, 150_000)) for _ in range(SHARED_LAYERS)]
    ledger = Ledger()
    t0 = time.monotonic()
    stop = t0 + STRESS_SECONDS
    threads = [threading.Thread(target=pusher, args=(i, regs, shared, ledger, stop))
               for i in range(PUSHERS)]
    threads += [threading.Thread(target=deleter, args=(i, regs, ledger, stop))
                for i in range(DELETERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=STRESS_SECONDS + 120)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    assert not ledger.errors, ledger.errors[:10]
    load_s = time.monotonic() - t0
    rounds = sum_metric(gws, "wharf_gc_runs_total")
    freed_blobs = wc.parse_metrics("\n".join(
        requests.get(f"http://{g.addr}/metrics", timeout=10).text for g in gws))
    blobs_freed = sum(v for k, v in freed_blobs.items()
                      if k.startswith("wharf_gc_items_freed_total{") and 'kind="blob"' in k)
    # The collector must have run again and again while the load went on (its interval is 250 ms;
    # how many rounds fit depends on how busy the machine is, so this is a floor, not a rate).
    assert rounds >= 5, f"the collector ran only {rounds} rounds in {load_s:.0f} s of load"
    assert ledger.pushes > 20 and ledger.tag_deletes + ledger.manifest_deletes > 10, vars(ledger)

    # Two more passes: what the deletes left behind goes, and what is live stays.
    passes = [gc_pass(wharf_bin, c, url) for _ in range(2)]
    live_blobs: set[str] = set()
    for (repo, tag), (digest, _) in sorted(ledger.live.items()):
        for reg in regs:
            live_blobs.update(pull_verified(reg, repo, tag, digest))

    # The chunk files on the members are exactly those of the live blobs.
    owners = ",".join(f"'blob:{d}'" for d in sorted(live_blobs))
    rows = pg_server.psql(db, "SELECT c.grp || ' ' || c.id FROM chunk_lists l JOIN chunks c ON "
                              f"c.id = l.chunk_id WHERE l.owner IN ({owners})")
    expected: dict[str, set[str]] = {}
    for line in rows.splitlines():
        grp, cid = line.split()
        expected.setdefault(grp, set()).add(cid)
    assert pg_server.psql(db, "SELECT count(*) FROM uploads") == "0"
    assert pg_server.psql(db, "SELECT count(*) FROM chunks WHERE owner = ''") == "0", \
        "garbage chunks left in the ledger after two passes"
    assert pg_server.psql(db, "SELECT count(*) FROM chunks") == str(
        sum(len(s) for s in expected.values())), "ledger rows that no live blob lists"
    files = c.chunk_files()
    for cs in c.all_chunkservers():
        on_disk = {cid for cid, where in files.items() if any(m is cs for m, _ in where)}
        want = expected.get(cs.group, set())
        lost, garbage = want - on_disk, on_disk - want
        assert not lost, f"{cs.name}: {len(lost)} chunks of live blobs missing"
        assert not garbage, f"{cs.name}: {len(garbage)} chunk files no live blob owns"

    print(f"\ngc stress: {load_s:.0f}s of load, {ledger.pushes} images pushed "
          f"({ledger.push_retries} manifest retries after MANIFEST_BLOB_UNKNOWN), "
          f"{ledger.tag_deletes} tags and {ledger.manifest_deletes} manifests deleted, "
          f"{int(rounds)} GC rounds freed {int(blobs_freed)} blobs; final passes freed "
          f"{[p['blobs'] for p in passes]} blobs, {[p['chunks_deleted'] for p in passes]} chunks; "
          f"{len(ledger.live)} images and {len(live_blobs)} blobs live, "
          f"{sum(len(s) for s in expected.values())} chunks on "
          f"{len(c.all_chunkservers())} members")
