"""The torture test: a mixed workload on a real multi-process cluster while a driver kills -9
random processes and starts them again, one master once with its data dir wiped and one
chunkserver once with its disk wiped.

Workload (threads, for WHARF_TORTURE_SECONDS, default 60): image pushes (layers shared between
images, so deduplication and mounts are exercised), file puts, verified pulls of what was
acknowledged, deletes of tags, manifests and files; the gateway's collector runs in short rounds.

Driver: one process down at a time (the promise is "every member of a group holds every
acknowledged chunk", so one failure at a time must never lose a write): a random master,
chunkserver or the gateway is killed with SIGKILL, left down for a moment, and started again on
the same address. Before the chunkserver is wiped, the test waits until its group is fully
replicated (else wiping it could legitimately lose the only copy of a chunk whose second copy is
still being repaired).

At the end (every process running again):
  * every group's members hold the same chunks (under-replicated = 0) within the repair interval;
  * every acknowledged, not deleted, write reads back with its digest verified (images pull in
    full: manifest, config and every layer; files by SHA-256);
  * a 200 with wrong bytes at any time during the run is a failure, never tolerated;
  * after more collector rounds the chunk files on the members are exactly the chunks the
    metadata store lists (no garbage, nothing lost), each on both members of its group.

The figures (operations, kills, acknowledged writes checked, under-replicated chunks at the end)
are printed; run with -s to see them.

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_torture.py -s
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import requests

import cluster as wc
from cluster import wait_until
from gateway_env import make_gw_cluster  # noqa: F401 - a fixture
from gateway_env import files_url
from registry_env import OCI_MANIFEST, Registry, config_blob, image_manifest, sha256_digest

SECONDS = float(os.environ.get("WHARF_TORTURE_SECONDS", "60"))
REPAIR_INTERVAL = "1s"  # chunkserver anti-entropy period for the test
GC_GRACE = "2s"
KiB = 1 << 10


class Corrupt(AssertionError):
    """A read answered 200 with bytes that are not the ones written."""


# --------------------------------------------------------------------------------- helpers


def meta_path(gw) -> Path:
    return Path(gw.opts["meta"].removeprefix("sqlite:"))


def ledger_chunks(db: Path) -> tuple[set[str], set[str]]:
    """(chunks of committed blobs and files, chunks of upload sessions). The second may or may
    not be on disk: an upload records a chunk before it writes it, and a gateway killed in
    between leaves the intent only (collected with the session)."""
    con = sqlite3.connect(str(db), timeout=30)
    try:
        rows = con.execute("SELECT id, owner FROM chunks").fetchall()
    finally:
        con.close()
    committed = {cid for cid, owner in rows if owner.startswith(("blob:", "file:"))}
    uploads = {cid for cid, owner in rows if owner.startswith("upload:")}
    return committed, uploads


def chunk_set(c, cs) -> set[str]:
    """The chunk ids a member's inventory lists."""
    return {ch["id"] for ch in wc.inventory(cs.addr, limit=1000, key=c.key)[0]}


def group_inventories(c) -> dict[str, dict[str, set[str]]]:
    """group -> member name -> chunk ids it holds (from each member's inventory)."""
    return {g: {cs.name: chunk_set(c, cs) for cs in members}
            for g, members in c.chunkservers.items()}


def under_replicated(c) -> int:
    """Chunks some member of their group lacks (counted once per missing copy)."""
    missing = 0
    for members in group_inventories(c).values():
        union = set().union(*members.values())
        missing += sum(len(union - have) for have in members.values())
    return missing


class Workload:
    """The clients. Every op has its own short timeout; an error while processes are being
    killed is expected and only counted; what was acknowledged is recorded."""

    def __init__(self, reg: Registry, gw, seed: int = 1):
        self.reg = reg
        self.gw = gw
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.rng = random.Random(seed)
        self.shared = [os.urandom(self.rng.randint(64 * KiB, 700 * KiB)) for _ in range(5)]
        self.images: dict[tuple[str, str], tuple[str, bytes]] = {}  # (repo, tag) -> (digest, body)
        self.files: dict[str, tuple[str, int]] = {}  # id -> (sha256 hex, size)
        self.deleted_images: set[tuple[str, str]] = set()
        self.deleted_files: set[str] = set()
        self.uncertain_images: set[tuple[str, str]] = set()  # a delete with no answer
        self.uncertain_files: set[str] = set()
        self.ops = Counter()
        self.corrupt: list[str] = []

    # --- ops

    def _blob(self, repo: str, data: bytes):
        d = sha256_digest(data)
        if requests.head(self.reg.url(f"/v2/{repo}/blobs/{d}"), timeout=10).status_code == 200:
            return
        r = requests.post(self.reg.url(f"/v2/{repo}/blobs/uploads/"), params={"digest": d},
                          data=data, headers={"Content-Type": "application/octet-stream"},
                          timeout=30)
        if r.status_code != 201:
            raise RuntimeError(f"blob push {r.status_code}")

    def push_image(self, rng: random.Random, n: int, i: int):
        repo = f"torture/r{rng.randint(0, 3)}"
        tag = f"t{n}-{i}"
        layers = rng.sample(self.shared, 2) + [os.urandom(rng.randint(1, 400 * KiB))]
        cfg = config_blob("amd64", [sha256_digest(x) for x in layers], extra=f"{repo}:{tag}")
        body = image_manifest(cfg, layers)
        for b in [cfg, *layers]:
            self._blob(repo, b)
        r = requests.put(self.reg.url(f"/v2/{repo}/manifests/{tag}"), data=body,
                         headers={"Content-Type": OCI_MANIFEST}, timeout=30)
        if r.status_code != 201:
            raise RuntimeError(f"manifest put {r.status_code}")
        with self.lock:
            self.images[(repo, tag)] = (sha256_digest(body), body)
        self.ops["image pushes acknowledged"] += 1

    def put_file(self, rng: random.Random):
        data = os.urandom(rng.randint(0, 900 * KiB))
        r = requests.post(files_url(self.gw.addr), data=data, timeout=30)
        if r.status_code != 201:
            raise RuntimeError(f"file put {r.status_code}")
        fid = r.json()["id"]
        with self.lock:
            self.files[fid] = (hashlib.sha256(data).hexdigest(), len(data))
        self.ops["file puts acknowledged"] += 1

    def read_one(self, rng: random.Random):
        with self.lock:
            imgs = [k for k in self.images if k not in self.deleted_images
                    and k not in self.uncertain_images]
            fids = [k for k in self.files if k not in self.deleted_files
                    and k not in self.uncertain_files]
        if imgs and (not fids or rng.random() < 0.5):
            key = rng.choice(imgs)
            self.check_image(key, during_run=True)
        elif fids:
            self.check_file(rng.choice(fids), during_run=True)

    def delete_one(self, rng: random.Random):
        with self.lock:
            imgs = [k for k in self.images if k not in self.deleted_images
                    and k not in self.uncertain_images]
            fids = [k for k in self.files if k not in self.deleted_files
                    and k not in self.uncertain_files]
            if len(imgs) < 6 or len(fids) < 6:
                return
            if rng.random() < 0.6:
                key = rng.choice(imgs)
                self.uncertain_images.add(key)
                fid = None
            else:
                fid = rng.choice(fids)
                self.uncertain_files.add(fid)
                key = None
        if key is not None:
            repo, tag = key
            ref = tag if rng.random() < 0.5 else self.images[key][0]
            r = requests.delete(self.reg.url(f"/v2/{repo}/manifests/{ref}"), timeout=30)
            if r.status_code == 202:
                with self.lock:
                    self.deleted_images.add(key)
                    self.uncertain_images.discard(key)
                self.ops["image deletes acknowledged"] += 1
        else:
            r = requests.delete(files_url(self.gw.addr, fid), timeout=30)
            if r.status_code in (200, 204):
                with self.lock:
                    self.deleted_files.add(fid)
                    self.uncertain_files.discard(fid)
                self.ops["file deletes acknowledged"] += 1

    # --- verification

    def _fail(self, what: str, during_run: bool):
        if during_run:
            raise RuntimeError(what)  # a refusal while processes die: counted, not fatal
        raise AssertionError(what)

    def check_image(self, key: tuple[str, str], during_run: bool = False):
        repo, tag = key
        digest, _ = self.images[key]
        r = requests.get(self.reg.url(f"/v2/{repo}/manifests/{tag}"), timeout=30,
                         headers={"Accept": OCI_MANIFEST})
        if r.status_code != 200:
            self._fail(f"pull {repo}:{tag}: {r.status_code} {r.text[:200]}", during_run)
        if sha256_digest(r.content) != digest:
            raise Corrupt(f"{repo}:{tag}: manifest bytes differ")
        m = json.loads(r.content)
        for desc in [m["config"], *m["layers"]]:
            b = requests.get(self.reg.url(f"/v2/{repo}/blobs/{desc['digest']}"), timeout=60)
            if b.status_code != 200:
                self._fail(f"{repo} blob {desc['digest']}: {b.status_code}", during_run)
            if len(b.content) != desc["size"] or sha256_digest(b.content) != desc["digest"]:
                if during_run and len(b.content) < desc["size"]:
                    raise RuntimeError("cut short")  # a connection closed mid-body: a refusal
                raise Corrupt(f"{repo} blob {desc['digest']}: {len(b.content)} bytes, wrong")
        self.ops["images verified"] += 1

    def check_file(self, fid: str, during_run: bool = False):
        want, size = self.files[fid]
        r = requests.get(files_url(self.gw.addr, fid), timeout=60)
        if r.status_code != 200:
            self._fail(f"file {fid}: {r.status_code} {r.text[:200]}", during_run)
        if len(r.content) != size or hashlib.sha256(r.content).hexdigest() != want:
            if during_run and len(r.content) < size:
                raise RuntimeError("cut short")
            raise Corrupt(f"file {fid}: {len(r.content)} bytes of {size}, wrong")
        self.ops["files verified"] += 1

    # --- threads

    def run(self, kind: str, n: int):
        rng = random.Random(1000 * n + hash(kind) % 1000)
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                if kind == "pusher":
                    self.push_image(rng, n, i)
                elif kind == "filer":
                    self.put_file(rng)
                elif kind == "reader":
                    self.read_one(rng)
                else:
                    time.sleep(0.3)
                    self.delete_one(rng)
            except Corrupt as e:
                with self.lock:
                    self.corrupt.append(str(e))
            except (RuntimeError, requests.RequestException, ValueError, KeyError):
                self.ops[f"{kind} errors"] += 1
                time.sleep(0.1)


class Driver:
    """Kills one process at a time and starts it again; the wipes happen once each."""

    def __init__(self, c, gw, seconds: float, seed: int = 7):
        self.c = c
        self.gw = gw
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.kills = Counter()
        self.log: list[str] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def _pause(self, lo: float, hi: float):
        self.stop.wait(self.rng.uniform(lo, hi))

    def _kill_and_restart(self, p, wipe: bool = False):
        t = time.monotonic()
        what = f"{p.name}{' (wiped)' if wipe else ''}"
        if p is self.gw:
            p.kill9()
            self._pause(0.3, 1.5)
            self.c.restart_gateway(p, timeout=30)
        elif isinstance(p, wc.ChunkServer):
            vid = p.member_id
            p.kill9()
            self._pause(0.3, 2.0)
            self.c.restart(p, wipe=wipe, id=vid, timeout=30)
        else:
            p.kill9()
            self._pause(0.3, 2.0)
            self.c.restart(p, wipe=wipe, timeout=30)
        self.kills[p.role + (" wiped" if wipe else "")] += 1
        self.log.append(f"{time.monotonic() - t:5.1f}s down+up {what}")

    def _fully_replicated(self, group: str, timeout: float):
        def equal():
            inv = {cs.name: chunk_set(self.c, cs) for cs in self.c.chunkservers[group]}
            union = set().union(*inv.values())
            return all(have == union for have in inv.values())

        wait_until(equal, timeout, f"group {group} fully replicated before the wipe",
                   interval=0.5)

    def run(self):
        try:
            victims = [*self.c.masters, *self.c.all_chunkservers(), self.gw]
            wipe_master_at = self.seconds * 0.3
            wipe_cs_at = self.seconds * 0.6
            start = time.monotonic()
            wiped_master = wiped_cs = False
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                self._pause(1.5, 4.0)
                if self.stop.is_set():
                    break
                elapsed = time.monotonic() - start
                if not wiped_master and elapsed >= wipe_master_at:
                    wiped_master = True
                    self._kill_and_restart(self.rng.choice(self.c.masters), wipe=True)
                elif not wiped_cs and elapsed >= wipe_cs_at:
                    wiped_cs = True
                    victim = self.rng.choice(self.c.all_chunkservers())
                    self._fully_replicated(victim.group, 60)
                    self._kill_and_restart(victim, wipe=True)
                else:
                    self._kill_and_restart(self.rng.choice(victims))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def test_torture_kills_and_wipes_under_a_mixed_workload(make_gw_cluster):
    c = make_gw_cluster("torture", scrub_interval=3600)
    c.start_topology(masters=2, groups={"g1": 2, "g2": 2},
                     extra=["--repair-interval", REPAIR_INTERVAL])
    c.wait_cluster_ready()
    gw = c.add_gateway(chunk_size="256KiB", gc_interval="0.5",
                       extra=["--gc-grace", GC_GRACE, "--member-timeout", "3s",
                              "--upload-expiry", "20s", "--upload-stale", "5s"])
    reg = Registry("wharf", gw, c)

    work = Workload(reg, gw)
    driver = Driver(c, gw, SECONDS)
    threads = [threading.Thread(target=work.run, args=(k, n), daemon=True)
               for k, n in [("pusher", 0), ("pusher", 1), ("filer", 0), ("filer", 1),
                            ("reader", 0), ("deleter", 0)]]
    killer = threading.Thread(target=driver.run, daemon=True)
    t0 = time.monotonic()
    for t in [*threads, killer]:
        t.start()
    killer.join(timeout=SECONDS + 180)
    work.stop.set()
    for t in threads:
        t.join(timeout=90)
    run_s = time.monotonic() - t0
    print("\ntorture: driver log:\n  " + "\n  ".join(driver.log))
    assert driver.error is None, f"driver failed: {driver.error!r}"
    assert not work.corrupt, f"corrupt reads during the run: {work.corrupt[:5]}"

    # Everything up again.
    for p in c.procs:
        if not p.alive():
            p.start(timeout=30, keep_port=True)
    c.wait_cluster_ready(timeout=60)

    # Repair: every chunk on every member of its group.
    t_repair = time.monotonic()
    wait_until(lambda: under_replicated(c) == 0, 60, "under-replicated chunks = 0", interval=0.5)
    repair_s = time.monotonic() - t_repair
    for cs in c.all_chunkservers():
        m = wc.parse_metrics(wc.http_get(cs.addr, "/metrics", key=c.key).text)
        assert m.get("wharf_chunkserver_chunks_missing", 0) == 0, f"{cs.name} reports missing"

    # Every acknowledged write that was not deleted reads back, verified.
    live_images = [k for k in work.images
                   if k not in work.deleted_images and k not in work.uncertain_images]
    live_files = [k for k in work.files
                  if k not in work.deleted_files and k not in work.uncertain_files]
    for key in live_images:
        work.check_image(key)
    for fid in live_files:
        work.check_file(fid)
    # Deleted ones are gone.
    for repo, tag in list(work.deleted_images)[:20]:
        r = requests.get(reg.url(f"/v2/{repo}/manifests/{tag}"), timeout=30,
                         headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 404, f"deleted {repo}:{tag} still answers {r.status_code}"

    # No garbage: after the grace period and more collector rounds the members hold exactly
    # the chunks the metadata store lists, each on both members of its group.
    time.sleep(2.5)
    runs = wc.metric(gw.addr, "wharf_gc_runs_total")
    wait_until(lambda: wc.metric(gw.addr, "wharf_gc_runs_total") >= runs + 3, 60, "3 GC rounds")

    def exact():
        committed, uploads = ledger_chunks(meta_path(gw))
        files = {cid: [cs for cs, _ in where] for cid, where in c.chunk_files().items()}
        garbage = set(files) - committed - uploads
        lost = committed - set(files)
        single = [cid for cid in committed & set(files) if len(files[cid]) != 2]
        # Sessions a killed gateway left expire (--upload-expiry 20s, --upload-stale 5s).
        pending = uploads & set(files)
        done = not garbage and not lost and not single and not pending
        return done, (len(garbage), len(lost), len(single), len(pending))

    last: list = [None]

    def no_garbage():
        done, last[0] = exact()
        return done

    try:
        wait_until(no_garbage, 90, "chunk files == the ledger's chunks", interval=1)
    except wc.Timeout:
        raise AssertionError(
            f"(garbage, lost, single-copy, upload-owned) chunks: {last[0]}") from None
    files_left = len(c.chunk_files())
    c.assert_no_crash()
    print(f"torture: {run_s:.0f}s run, {sum(driver.kills.values())} kills {dict(driver.kills)}; "
          f"ops {dict(work.ops)}; checked at the end: {len(live_images)} images, "
          f"{len(live_files)} files; under-replicated at the end: 0 (repaired in "
          f"{repair_s:.1f}s); {files_left} chunk files, no garbage")
    assert work.ops["image pushes acknowledged"] >= 10 and work.ops["file puts acknowledged"] >= 10
    assert sum(driver.kills.values()) >= 8
