"""End-to-end tests of the chunk cluster: masters + chunkservers as real processes.

Topology unless a test says otherwise: two masters (peers), groups g1 and g2 of two
chunkservers each, heartbeat 0.5 s, scrub interval 1 s. The tests using `shared_cluster`
run in file order and share one cluster: the non-destructive ones first, then the ones that
kill members (3 -> 4 restores it), then the one that kills a master.
"""

import http.client
import json
import os
import random
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

import cluster as wc
from cluster import (checksum_of, error_code, get_chunk, inventory, metric, new_chunk_id,
                     put_chunk, wait_until)

HB = 0.5               # heartbeat interval used by the harness
DETECT = 3 * HB + 1.5  # "within three heartbeat intervals" + slack for scheduling
STATES = {"syncing", "active", "readonly", "offline"}

rng = random.Random(int.from_bytes(os.urandom(4), "little"))


def random_body(lo: int = 64 << 10, hi: int = 2 << 20) -> bytes:
    return os.urandom(rng.randint(lo, hi))


# --------------------------------------------------------------------------- shape helpers


def check_status_shape(st: dict):
    """The exact status shape of the contract (no missing keys, no extra keys, right types)."""
    assert isinstance(st, dict) and set(st) == {"version", "groups"}, f"status keys: {st!r:.400}"
    assert isinstance(st["version"], int) and not isinstance(st["version"], bool)
    assert isinstance(st["groups"], list)
    for g in st["groups"]:
        assert set(g) == {"id", "writable", "under_replicated", "removed", "members"}, \
            f"group keys: {sorted(g)}"
        assert isinstance(g["id"], str) and isinstance(g["writable"], bool)
        assert isinstance(g["under_replicated"], int) and g["under_replicated"] >= 0, g
        assert isinstance(g["removed"], list) and all(isinstance(x, str) for x in g["removed"])
        assert isinstance(g["members"], list)
        for m in g["members"]:
            assert set(m) == {"id", "addr", "state", "capacity", "free", "chunks", "missing"}, \
                f"member keys: {sorted(m)}"
            assert isinstance(m["id"], str) and m["id"]
            assert isinstance(m["addr"], str) and re.fullmatch(r"[^:]+:\d+", m["addr"]), m
            assert m["state"] in STATES, m
            for k in ("capacity", "free", "chunks", "missing"):
                assert isinstance(m[k], int) and not isinstance(m[k], bool) and m[k] >= 0, m


def summary(st: dict) -> dict:
    """What must not change when nothing happened: groups, writability, members, states."""
    return {g["id"]: (g["writable"], sorted((m["id"], m["addr"], m["state"]) for m in g["members"]))
            for g in st["groups"]}


def assert_error(resp, status: int, code: str, what: str):
    assert resp.status_code == status, \
        f"{what}: expected {status} {code}, got {resp.status_code} {resp.text[:300]!r}"
    try:
        body = resp.json()
    except ValueError:
        pytest.fail(f"{what}: error body is not JSON: {resp.text[:300]!r}")
    assert isinstance(body.get("error"), dict), f"{what}: error shape {body!r}"
    assert body["error"].get("code") == code, f"{what}: expected code {code}, got {body!r}"
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], \
        f"{what}: error message missing: {body!r}"


def labeled_metric(addr: str, name: str, **labels) -> float:
    text = wc.http_get(addr, "/metrics").text
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
            found = True
    assert found, f"metric {name}{labels} not exported by {addr}"
    return total


def put_everywhere(members, chunk_id: str, data: bytes):
    for cs in members:
        r = put_chunk(cs.addr, chunk_id, data)
        assert r.status_code == 201, f"PUT {chunk_id} to {cs.name}: {r.status_code} {r.text[:300]}"


def inv_set(cs) -> set:
    chunks, _ = inventory(cs.addr, limit=1000)
    return {(c["id"], c["size"], c["checksum"]) for c in chunks}


def raw_http(addr: str, request: bytes, shut_write: bool = True, timeout: float = 5.0) -> bytes:
    """Sends bytes on a fresh TCP connection, optionally half-closes, returns what came back."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    data = b""
    try:
        s.sendall(request)
        if shut_write:
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            data += b
    finally:
        s.close()
    return data


def exact_path_request(addr: str, method: str, path: str, body: bytes = b"", headers=None):
    """An HTTP request with the path sent byte for byte (no client-side normalisation)."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        hdrs = {"Content-Length": str(len(body))} if method in ("PUT", "POST") else {}
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        payload = r.read()
        return r.status, payload
    finally:
        conn.close()


# ====================================================================== shared cluster tests


def test_1_cluster_comes_up(shared_cluster):
    c = shared_cluster
    by_id = {cs.member_id: cs for cs in c.all_chunkservers()}
    assert len(by_id) == 4, f"member ids not unique: {list(by_id)}"

    for m in c.masters:
        assert wc.http_get(m.addr, "/healthz").status_code == 200
        st = m.status()
        check_status_shape(st)
        assert {g["id"] for g in st["groups"]} == {"g1", "g2"}, f"{m.name}: {st}"
        for g in st["groups"]:
            assert g["writable"] is True, f"{m.name}: group {g['id']} not writable: {g}"
            assert len(g["members"]) == 2, f"{m.name}: {g}"
            for mem in g["members"]:
                cs = by_id.get(mem["id"])
                assert cs is not None, f"{m.name}: unknown member {mem}"
                assert cs.group == g["id"] and mem["addr"] == cs.addr, f"{m.name}: {mem} vs {cs}"
                assert mem["state"] == "active", f"{m.name}: {mem}"
                assert mem["capacity"] > 0 and 0 <= mem["free"] <= mem["capacity"], mem
        r = wc.http_get(m.addr, "/v1/map")
        assert r.status_code == 200, r.text
        r.json()  # must be JSON
        assert labeled_metric(m.addr, "wharf_master_groups_writable") == 2
        assert labeled_metric(m.addr, "wharf_master_members", state="active") == 4

        p = m.placement(size=1 << 20)
        assert p.status_code == 200, p.text
        pj = p.json()
        assert pj["group"] in ("g1", "g2") and isinstance(pj["version"], int), pj
        want = sorted((cs.member_id, cs.addr) for cs in c.chunkservers[pj["group"]])
        assert sorted((x["id"], x["addr"]) for x in pj["members"]) == want, pj

    for cs in c.all_chunkservers():
        st = cs.status()
        assert set(st) >= {"id", "group", "addr", "state", "capacity", "free", "reserve",
                           "chunks"}, f"{cs.name} status: {st}"
        assert st["group"] == cs.group and st["addr"] == cs.addr and st["state"] == "active", st
        assert wc.http_get(cs.addr, "/healthz").status_code == 200
        metric(cs.addr, "wharf_chunkserver_scrub_corrupt_total")  # /metrics answers

    # wharf status --json: exactly the status shape, same content as the master's answer
    res = c.run_cli("status", "--master", c.master_addrs, "--json")
    assert res.returncode == 0, f"rc={res.returncode} stderr={res.stderr!r}"
    cli = json.loads(res.stdout)
    check_status_shape(cli)
    assert summary(cli) == summary(c.masters[0].status())

    # the table lists every group and member
    res = c.run_cli("status", "--master", c.master_addrs)
    assert res.returncode == 0, f"rc={res.returncode} stderr={res.stderr!r}"
    out = res.stdout
    for g in ("g1", "g2"):
        assert g in out, out
    for mid, cs in by_id.items():
        line = next((l for l in out.splitlines() if mid in l), None)
        assert line is not None, f"member {mid} missing from table:\n{out}"
        assert cs.addr in line and "active" in line, f"table row for {mid}: {line!r}"


def test_2_chunk_api(shared_cluster):
    c = shared_cluster
    stored = {}  # id -> (group, data)
    for g in ("g1", "g2"):
        members = c.chunkservers[g]
        for _ in range(4):
            cid, data = new_chunk_id(), random_body()
            put_everywhere(members, cid, data)
            stored[cid] = (g, data)

    for cid, (g, data) in stored.items():
        for cs in c.chunkservers[g]:
            r = get_chunk(cs.addr, cid)
            assert r.status_code == 200, f"{cs.name} GET {cid}: {r.status_code}"
            assert r.content == data, f"{cs.name} GET {cid}: body differs"
            assert r.headers.get("X-Wharf-Checksum") == checksum_of(data), r.headers
            assert int(r.headers["Content-Length"]) == len(data)

            n = len(data)
            for rng_hdr, lo, hi in ((f"bytes=100-1099", 100, 1099),
                                    (f"bytes=0-0", 0, 0),
                                    (f"bytes={n - 10}-", n - 10, n - 1),
                                    (f"bytes=-7", n - 7, n - 1),
                                    (f"bytes={n - 5}-{n + 100}", n - 5, n - 1)):
                r = get_chunk(cs.addr, cid, headers={"Range": rng_hdr})
                assert r.status_code == 206, f"{cs.name} Range {rng_hdr}: {r.status_code}"
                assert r.content == data[lo:hi + 1], f"{cs.name} Range {rng_hdr}: wrong bytes"
                assert r.headers.get("Content-Range") == f"bytes {lo}-{hi}/{n}", r.headers
                assert int(r.headers["Content-Length"]) == hi - lo + 1
            for bad in (f"bytes={n}-", f"bytes={n + 100}-{n + 200}"):
                r = get_chunk(cs.addr, cid, headers={"Range": bad})
                assert r.status_code == 416, f"{cs.name} Range {bad} (size {n}): {r.status_code}"

            h = wc.requests.head(wc.url(cs.addr, f"/v1/chunks/{cid}"), timeout=5)
            assert h.status_code == 200 and h.content == b""
            assert h.headers.get("X-Wharf-Checksum") == checksum_of(data)
            assert int(h.headers["Content-Length"]) == len(data)

    # inventory pagination, limit=3: sorted, unique, pages <= 3, covers what we stored
    for cs in c.all_chunkservers():
        chunks, pages = inventory(cs.addr, limit=3)
        assert all(len(p) <= 3 for p in pages), [len(p) for p in pages]
        ids = [x["id"] for x in chunks]
        assert ids == sorted(ids) and len(ids) == len(set(ids)), f"{cs.name}: {ids}"
        assert len(pages) >= 2, f"{cs.name}: expected several pages with limit=3: {pages}"
        mine = {cid: d for cid, (g, d) in stored.items() if g == cs.group}
        got = {x["id"]: x for x in chunks}
        for cid, d in mine.items():
            assert cid in got, f"{cs.name}: {cid} missing from inventory"
            assert got[cid]["size"] == len(d) and got[cid]["checksum"] == checksum_of(d), got[cid]
            assert isinstance(got[cid]["mtime"], int)
        assert not (set(got) & {cid for cid, (g, _) in stored.items() if g != cs.group})

    cs = c.chunkservers["g2"][0]
    def chunk_tree():
        return sorted(str(p) for d in cs.dirs for p in (d / "chunks").rglob("*"))

    before = chunk_tree()

    # hostile chunk ids
    body = b"x" * 1000
    good_ck = checksum_of(body)
    bad_ids = ["..%2F..%2Fetc%2Fpasswd", "..%2F..%2F" + "a" * 26, "%2E%2E%2F" * 3 + "b" * 23,
               "a" * 31, "a" * 33, "A" * 32, "0123456789ABCDEF0123456789abcdef", "g" * 32,
               "a" * 31 + "%00"]
    for bid in bad_ids:
        st, payload = exact_path_request(cs.addr, "PUT", f"/v1/chunks/{bid}", body,
                                         {"X-Wharf-Checksum": good_ck})
        assert st == 400, f"PUT bad id {bid!r}: {st} {payload[:200]!r}"
        assert json.loads(payload)["error"]["code"] == "invalid_argument", payload
        st, payload = exact_path_request(cs.addr, "GET", f"/v1/chunks/{bid}")
        assert st in (400, 404), f"GET bad id {bid!r}: {st} {payload[:200]!r}"

    # missing / malformed checksum
    cid = new_chunk_id()
    assert_error(put_chunk(cs.addr, cid, body, checksum=None), 400, "invalid_argument",
                 "PUT without checksum")
    for bad_ck in ("xxh3:zz", "xxh3:" + good_ck[5:20], "md5:" + good_ck[5:], good_ck[5:],
                   "xxh3:" + good_ck[5:] + "0", ""):
        assert_error(put_chunk(cs.addr, cid, body, checksum=bad_ck), 400, "invalid_argument",
                     f"PUT with malformed checksum {bad_ck!r}")

    # wrong checksum: refused, nothing left anywhere under the data dir
    assert_error(put_chunk(cs.addr, cid, body, checksum=checksum_of(b"other")), 400,
                 "digest_mismatch", "PUT with wrong checksum")
    assert get_chunk(cs.addr, cid).status_code == 404
    wait_until(lambda: not cs.files_named(cid), 3, f"no file left for {cid}")

    # short body: Content-Length larger than what is sent, then the socket is closed
    cid2 = new_chunk_id()
    part = os.urandom(1000)
    head = (f"PUT /v1/chunks/{cid2} HTTP/1.1\r\nHost: {cs.addr}\r\n"
            f"Content-Length: 200000\r\nX-Wharf-Checksum: {checksum_of(part)}\r\n\r\n").encode()
    resp = raw_http(cs.addr, head + part, shut_write=True)
    if resp:
        status_line = resp.split(b"\r\n", 1)[0]
        assert b" 400 " in status_line + b" ", f"short body answered {status_line!r}"
    wait_until(lambda: get_chunk(cs.addr, cid2).status_code == 404 and not cs.files_named(cid2),
               5, f"short body for {cid2} leaves nothing behind")

    # nothing written anywhere by all of the above
    after = chunk_tree()
    assert after == before, f"chunk files changed: {set(after) ^ set(before)}"
    escaped = [p for p in c.root.parent.rglob("*") if p.name in ("passwd", "etc")]
    assert not escaped, f"path traversal wrote outside the chunk store: {escaped}"

    # idempotent re-put (200), conflicting re-put (409), content intact
    cid, (g, data) = next((k, v) for k, v in stored.items() if v[0] == "g2")
    r = put_chunk(cs.addr, cid, data)
    assert r.status_code == 200, f"idempotent re-put: {r.status_code} {r.text[:200]}"
    assert_error(put_chunk(cs.addr, cid, os.urandom(len(data))), 409, "conflict",
                 "conflicting re-put, same size")
    assert_error(put_chunk(cs.addr, cid, os.urandom(1000)), 409, "conflict",
                 "conflicting re-put, other size")
    assert get_chunk(cs.addr, cid).content == data

    # delete (on both members, so the group stays consistent)
    cid3, d3 = new_chunk_id(), os.urandom(70000)
    put_everywhere(c.chunkservers["g2"], cid3, d3)
    for m in c.chunkservers["g2"]:
        r = wc.requests.delete(wc.url(m.addr, f"/v1/chunks/{cid3}"), timeout=5)
        assert r.status_code == 204, f"DELETE: {r.status_code} {r.text[:200]}"
        assert get_chunk(m.addr, cid3).status_code == 404
        r = wc.requests.delete(wc.url(m.addr, f"/v1/chunks/{cid3}"), timeout=5)
        assert r.status_code == 404, f"second DELETE: {r.status_code}"

    for m in c.all_chunkservers():
        assert wc.http_get(m.addr, "/healthz").status_code == 200, f"{m.name} unhealthy"


def test_5_scrubber_repairs_corruption(shared_cluster):
    c = shared_cluster
    victim, peer = c.chunkservers["g2"]
    cid, data = new_chunk_id(), random_body(256 << 10, 1 << 20)
    put_everywhere([victim, peer], cid, data)

    corrupt0 = metric(victim.addr, "wharf_chunkserver_scrub_corrupt_total")
    repairs0 = metric(victim.addr, "wharf_chunkserver_repairs_total")

    path = victim.chunk_path(cid)
    assert path is not None, f"chunk file of {cid} not found under {victim.dirs}"
    raw = bytearray(path.read_bytes())
    assert len(raw) == 32 + len(data) and bytes(raw[32:]) == data, "unexpected chunk file layout"
    off = 32 + len(data) // 2
    raw[off] ^= 0xFF
    with open(path, "r+b") as f:  # in place: same inode, as a bit flip on disk would be
        f.seek(off)
        f.write(bytes([raw[off]]))

    wait_until(lambda: metric(victim.addr, "wharf_chunkserver_scrub_corrupt_total") > corrupt0,
               15, "wharf_chunkserver_scrub_corrupt_total to increase")
    wait_until(lambda: metric(victim.addr, "wharf_chunkserver_repairs_total") > repairs0,
               15, "wharf_chunkserver_repairs_total to increase")

    r = get_chunk(victim.addr, cid)
    assert r.status_code == 200 and r.content == data, "repaired chunk does not read back"
    assert r.headers.get("X-Wharf-Checksum") == checksum_of(data)
    path = victim.chunk_path(cid)
    assert path is not None and path.read_bytes()[32:] == data, "file on disk not repaired"
    assert get_chunk(peer.addr, cid).content == data
    log = victim.log_path.read_text(errors="replace").splitlines()
    assert any(cid in l and ("repair" in l.lower() or "corrupt" in l.lower()) for l in log), \
        "the corruption/repair of the chunk is not logged (no log line naming it)"


def test_3_kill_chunkserver(shared_cluster):
    c = shared_cluster
    keep, victim = c.chunkservers["g1"]
    vid = victim.member_id
    for _ in range(3):
        put_everywhere([keep, victim], new_chunk_id(), random_body())

    t0 = time.monotonic()
    victim.kill9()

    def degraded():
        for m in c.masters:
            st = m.status()
            mem = c.member_in(st, vid)
            if mem is None or mem["state"] == "active" or c.group_in(st, "g1")["writable"]:
                return False
        return True

    wait_until(degraded, DETECT, f"both masters: {vid} not active and g1 not writable")
    detected = time.monotonic() - t0

    for m in c.masters:
        st = m.status()
        check_status_shape(st)
        assert c.group_in(st, "g2")["writable"] is True, f"{m.name}: g2 lost writability: {st}"
        assert c.member_in(st, keep.member_id)["state"] == "active", st
        for _ in range(10):
            p = m.placement(size=1 << 20)
            assert p.status_code == 200, p.text
            assert p.json()["group"] == "g2", f"{m.name}: placement chose {p.json()}"
        p = m.placement(size=1 << 20, policy="round_robin")
        assert p.status_code == 200 and p.json()["group"] == "g2", p.text
        assert labeled_metric(m.addr, "wharf_master_groups_writable") == 1

    # offline after three intervals
    remaining = max(0.5, DETECT + 1.0 - (time.monotonic() - t0))
    for m in c.masters:
        c.wait_member_state(m, vid, lambda s: s == "offline", remaining, "offline")
    print(f"not-active detected after {detected:.2f}s")


def test_4_restart_wiped_member_syncs(shared_cluster):
    c = shared_cluster
    keep, victim = c.chunkservers["g1"]
    vid = victim.member_id
    if victim.alive():  # test 3 did not run: bring the cluster to its end state
        for _ in range(3):
            put_everywhere([keep, victim], new_chunk_id(), random_body())
        victim.kill9()
        for m in c.masters:
            c.wait_member_state(m, vid, lambda s: s != "active", DETECT, "not active")

    # chunks the returning member has never seen
    extra = {}
    for _ in range(3):
        cid, d = new_chunk_id(), random_body()
        r = put_chunk(keep.addr, cid, d)
        assert r.status_code == 201, r.text
        extra[cid] = d
    want = inv_set(keep)
    assert len(want) >= 3

    c.restart(victim, wipe=True, id=vid)
    for m in c.masters:
        c.wait_member_state(m, vid, lambda s: s == "active", 30, "active after sync")
    # active means done syncing: the inventory must be complete the moment it is active
    got = inv_set(victim)
    assert got == want, (f"inventories differ: missing {sorted(want - got)[:5]}, "
                         f"extra {sorted(got - want)[:5]}")
    assert victim.status()["id"] == vid
    for cid, d in extra.items():
        r = get_chunk(victim.addr, cid)
        assert r.status_code == 200 and r.content == d, f"synced chunk {cid} differs"
        assert victim.chunk_path(cid) is not None
    for m in c.masters:
        c.wait_group_writable(m, "g1", True, DETECT)
        st = m.status()
        assert [x["id"] for x in c.group_in(st, "g1")["members"]].count(vid) == 1, st


def test_6_kill_master(shared_cluster):
    c = shared_cluster
    m1, m2 = c.masters
    c.wait_cluster_ready(masters=[m2], timeout=30)
    before = summary(m2.status())
    m1.kill9()

    # observe m2 over more than three heartbeat intervals: nothing changes
    deadline = time.monotonic() + 4 * HB + 0.5
    while time.monotonic() < deadline:
        st = m2.status()
        assert summary(st) == before, f"m2's view changed after m1 died:\n{before}\n{summary(st)}"
        time.sleep(0.1)
    r = wc.http_get(m2.addr, "/v1/map")
    assert r.status_code == 200
    p = m2.placement(size=1 << 20)
    assert p.status_code == 200 and p.json()["group"] in ("g1", "g2"), p.text

    res = c.run_cli("status", "--master", c.master_addrs, "--json")
    assert res.returncode == 0, f"status with one master down: rc={res.returncode} {res.stderr!r}"
    assert summary(json.loads(res.stdout)) == before

    # the restarted master rebuilds the same view from heartbeats
    c.restart(m1)
    wait_until(lambda: summary(m1.status()) == before, 10, "restarted m1 converges on m2's view")


# ===================================================================== private-cluster tests


def test_7_reserve(make_cluster):
    c = make_cluster("reserve")
    c.add_masters(1)
    a = c.add_chunkserver("g1", reserve="0")
    b = c.add_chunkserver("g1", reserve="0")
    c.wait_cluster_ready()
    m = c.masters[0]
    stored = {}
    for _ in range(5):
        cid, d = new_chunk_id(), random_body(64 << 10, 512 << 10)
        put_everywhere([a, b], cid, d)
        stored[cid] = d

    def settled(cs):
        return wait_until(lambda: cs.status()["state"] != "syncing", 20, f"{cs.name} done syncing")

    for cs, reserve in ((a, "100%"), (b, "1000TiB")):
        c.restart(cs, reserve=reserve)
        settled(cs)
        # once the master has heard from it again, g1 stays unwritable
        t_end = time.monotonic() + 4 * HB + 0.5
        while time.monotonic() < t_end:
            g = c.group_in(m.status(), "g1")
            assert g["writable"] is False, f"g1 writable with {cs.name} under reserve {reserve}: {g}"
            time.sleep(0.1)
        st = cs.status()
        assert st["reserve"] >= st["free"], f"{cs.name} reserve {reserve}: {st}"
        cid = new_chunk_id()
        assert_error(put_chunk(cs.addr, cid, os.urandom(100000)), 507, "no_space",
                     f"PUT to {cs.name} under reserve {reserve}")
        assert get_chunk(cs.addr, cid).status_code == 404
        assert not cs.files_named(cid)
        for sid, d in stored.items():
            r = get_chunk(cs.addr, sid)
            assert r.status_code == 200 and r.content == d, f"{cs.name}: stored chunk {sid}"

    p = m.placement(size=1 << 20)
    assert p.status_code == 503, f"placement with no writable group: {p.status_code} {p.text}"
    assert isinstance(p.json().get("error"), dict), p.text


def _one_line_error(res: subprocess.CompletedProcess, role: str, what: str):
    """None if `res` is a proper config error, else a description of what is wrong."""
    if res.returncode == 0:
        return f"{what}: exit code 0 (stderr {res.stderr!r})"
    lines = res.stderr.strip().splitlines()
    if len(lines) != 1:
        return f"{what}: expected one stderr line, got {len(lines)}: {res.stderr!r}"
    if not lines[0].startswith(f"wharf {role}:"):
        return f"{what}: line does not start with 'wharf {role}:': {lines[0]!r}"
    return None


def test_8a_bad_flags_one_line_error(make_cluster, tmp_path):
    c = make_cluster("flags")
    d = tmp_path / "x"
    d.mkdir()
    port = wc.free_port()
    cs_ok = ["--group", "g1", "--listen", f"127.0.0.1:{port}", "--dir", str(d / "cs"),
             "--master", "127.0.0.1:1"]
    m_ok = ["--listen", f"127.0.0.1:{port}", "--data", str(d / "m")]
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("no_such_option: 1\n")
    cases = [
        ("master", ["master", *m_ok, "--bogus-flag"]),
        ("master", ["master", "--listen", "nope", "--data", str(d / "m")]),
        ("master", ["master", *m_ok, "--policy", "banana"]),
        ("master", ["master", *m_ok, "--chunk-size", "banana"]),
        ("master", ["master", *m_ok, "--chunk-size", "2TiB"]),     # over the 1 GiB chunk cap
        ("master", ["master", *m_ok, "--chunk-size", "1.5MiB"]),   # fractions are refused
        ("master", ["master", *m_ok, "--chunk-size", "16mb"]),     # MB or MiB? refused
        ("master", ["master", *m_ok, "--config", str(bad_yaml)]),
        ("master", ["master", *m_ok, "--config", str(tmp_path / "missing.yaml")]),
        ("chunkserver", ["chunkserver", *cs_ok, "--bogus-flag"]),
        ("chunkserver", ["chunkserver", *cs_ok, "--reserve", "banana"]),
        ("chunkserver", ["chunkserver", *cs_ok[:2], "--listen", "nope", *cs_ok[4:]]),
        ("chunkserver", ["chunkserver", *cs_ok, "--heartbeat", "banana"]),
        ("chunkserver", ["chunkserver", *cs_ok, "--max-chunk", "4KB"]),
        ("chunkserver", ["chunkserver", *cs_ok, "--sync", "never"]),
        ("chunkserver", ["chunkserver", *cs_ok, "--config", str(bad_yaml)]),
        ("chunkserver", ["chunkserver", *cs_ok, "--config", str(tmp_path / "missing.yaml")]),
        ("status", ["status", "--bogus-flag"]),
    ]
    problems = []
    for role, args in cases:
        what = "wharf " + " ".join(args)
        try:
            res = c.run_cli(*args, timeout=10)
        except subprocess.TimeoutExpired:
            problems.append(f"{what}: did not exit within 10 s (it should refuse to start)")
            continue
        p = _one_line_error(res, role, what)
        if p:
            problems.append(p)
    assert not problems, "config errors not reported as one line + non-zero exit:\n" + \
        "\n".join(problems)


def test_8b_yaml_config_file(make_cluster, tmp_path):
    c = make_cluster("config")
    # a master whose data dir comes from the file; the flag's --listen wins over the file's
    m_file_port, m_port = wc.free_port(), wc.free_port()
    mdata = tmp_path / "mdata"
    mcfg = tmp_path / "master.yaml"
    mcfg.write_text(f"listen: 127.0.0.1:{m_file_port}\ndata: {mdata}\n")
    m = wc.Master(c, "mcfg", c.root / "mcfg", fixed_port=m_port)
    m.build_args = lambda p: ["--config", str(mcfg), "--listen", p.addr]
    c.masters.append(m)
    m.start(keep_port=True)
    assert mdata.is_dir(), "master did not use `data` from the config file"

    # a chunkserver: group, heartbeat, reserve, dir, master and id from the file;
    # --id and --listen given as flags win
    cs_file_port = wc.free_port()
    cfg = tmp_path / "cs.yaml"
    cfg.write_text(f"group: gfile\nheartbeat: 0.5\nreserve: 5%\nid: id-from-file\n"
                   f"listen: 127.0.0.1:{cs_file_port}\ndir:\n  - {tmp_path / 'csdata'}\n"
                   f"master: {m.addr}\n")
    cs = wc.ChunkServer(c, "cscfg", None, c.root / "cscfg")
    cs.build_args = lambda p: ["--config", str(cfg), "--id", "id-from-flag", "--listen", p.addr]
    c.chunkservers["gfile"] = [cs]
    cs.start(keep_port=True)
    st = cs.status()
    assert st["id"] == "id-from-flag", f"flag --id must win over the file: {st}"
    assert st["group"] == "gfile" and st["addr"] == cs.addr, st
    assert abs(st["reserve"] - 0.05 * st["capacity"]) <= 0.01 * st["capacity"], \
        f"reserve 5% from the file not applied: {st}"
    assert (tmp_path / "csdata").is_dir(), "dir from the file not used"
    c.wait_member_state(m, "id-from-flag", lambda s: s == "active", 10, "active")
    # heartbeat 0.5 s from the file: a death is noticed well before the default 2 s would allow
    t0 = time.monotonic()
    cs.kill9()
    c.wait_member_state(m, "id-from-flag", lambda s: s != "active", 1.5 * HB + 1.0,
                        "not active (heartbeat 0.5 from the config file)")
    print(f"config-file heartbeat: death noticed after {time.monotonic() - t0:.2f}s")


def test_9_restarted_master_knows_degraded_group(make_cluster):
    c = make_cluster("persist")
    (m,) = c.add_masters(1)
    a = c.add_chunkserver("g1")
    b = c.add_chunkserver("g1")
    c.wait_cluster_ready()
    aid, bid = a.member_id, b.member_id

    b.kill9()
    m.kill9()
    m.start(keep_port=True)
    st = m.status()  # the first answer of the restarted master
    check_status_shape(st)
    g1 = c.group_in(st, "g1")
    assert g1 is not None, f"restarted master forgot group g1: {st}"
    assert g1["writable"] is False, f"restarted master thinks g1 writable: {st}"
    mem = c.member_in(st, bid)
    assert mem is not None and mem["state"] == "offline", f"missing member {bid} not offline: {st}"

    # the surviving member comes back through heartbeats; g1 stays degraded
    c.wait_member_state(m, aid, lambda s: s == "active", DETECT, "active")
    st = m.status()
    assert c.group_in(st, "g1")["writable"] is False, st
    assert c.member_in(st, bid)["state"] == "offline", st
    assert m.placement(size=1 << 20).status_code == 503

    c.restart(b)
    c.wait_group_writable(m, "g1", True, 20)


def test_10_member_rm_refuses_a_live_member_and_status_tells(make_cluster):
    """Decommissioning is `wharf member rm`: refused while the member is heard from (unless
    --force); `wharf status` marks the degraded group, hides an offline member's stale numbers,
    and says when it is pointed at something that is not a master."""
    c = make_cluster("decommission")
    (m,) = c.add_masters(1)
    a = c.add_chunkserver("g1")
    b = c.add_chunkserver("g1")
    c.wait_cluster_ready()
    aid, bid = a.member_id, b.member_id

    res = c.run_cli("member", "rm", bid, "--master", m.addr)
    assert res.returncode != 0, f"a live member was removed: {res.stdout!r}"
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wharf member: ") and "offline" in err[0], err
    assert c.member_in(m.status(), bid) is not None, "refused removal still removed the member"

    # the status table of a healthy cluster: no DEGRADED, the version in the header line
    res = c.run_cli("status", "--master", m.addr)
    assert res.returncode == 0 and "DEGRADED" not in res.stdout, res.stdout
    assert "(wharf " in res.stdout.splitlines()[0], res.stdout

    b.kill9()
    c.wait_member_state(m, bid, lambda s: s == "offline", DETECT + 2 * HB, "offline")
    res = c.run_cli("status", "--master", m.addr)
    assert res.returncode == 0, res.stderr
    assert "DEGRADED (1 of 2 members active)" in res.stdout, res.stdout
    row = next(line for line in res.stdout.splitlines() if line.strip().startswith(bid))
    assert row.split()[-3:] == ["-", "-", "-"], f"stale numbers shown for an offline member: {row}"

    res = c.run_cli("member", "rm", bid, "--master", m.addr)
    assert res.returncode == 0, res.stderr
    st = m.status()
    assert c.member_in(st, bid) is None and c.member_in(st, aid) is not None, st
    assert c.group_in(st, "g1")["writable"] is True, f"g1 not writable without {bid}: {st}"
    res = c.run_cli("member", "rm", bid, "--master", m.addr)
    assert res.returncode != 0 and "unknown member" in res.stderr, res.stderr

    # pointed at a chunkserver: one line saying what it is
    res = c.run_cli("status", "--master", a.addr)
    err = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(err) == 1 and "is a chunkserver, not a master" in err[0], err

    # --force removes a member that is not offline yet (killed just now: it would heartbeat
    # itself back in as a new member if it were still running)
    a.kill9()
    res = c.run_cli("member", "rm", aid, "--master", m.addr)
    assert res.returncode != 0 and "offline" in res.stderr, "removed without --force"
    res = c.run_cli("member", "rm", aid, "--force", "--master", m.addr)
    assert res.returncode == 0, res.stderr
    assert c.member_in(m.status(), aid) is None


def test_11_version(make_cluster):
    c = make_cluster("version")
    (m,) = c.add_masters(1)
    res = c.run_cli("--version")
    assert res.returncode == 0 and re.fullmatch(r"wharf \d+\.\d+\.\d+\n", res.stdout), res.stdout
    version = res.stdout.split()[1]
    r = wc.http_get(m.addr, "/v1/status")
    assert r.headers.get("X-Wharf-Version") == version, r.headers
