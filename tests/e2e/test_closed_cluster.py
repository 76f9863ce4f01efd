"""A closed cluster (issue 10): every internal request carries the cluster-key proof.

One module cluster with a key: a master, group g1 of two chunkservers and a gateway, all
started with --cluster-key. Rogue chunkservers (no key, another key) try to join; unsigned,
wrongly signed, stale and replayed requests try to delete chunks and forget members. None of
them changes anything; the gateway's pushes and pulls go on.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
import time

import pytest
import requests

import cluster as wc
from cluster import wait_until
from gateway_env import (MiB, GatewayCluster, _remove_chunk_data, assert_reads_back, files_url,
                         post_file, run_wharf)
from gateway_env import make_gw_cluster  # noqa: F401 - a fixture


@pytest.fixture(scope="module")
def closed(wharf_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("closed")
    key = wc.make_key_file(root / "cluster.key")
    c = GatewayCluster(wharf_bin, root, key_file=key, scrub_interval=3600)
    try:
        c.start_topology(masters=1, groups={"g1": 2})
        c.wait_cluster_ready()
        c.add_gateway(chunk_size="1MiB", gc_interval=1)
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        c.close()
        raise
    yield c
    c.close()
    _remove_chunk_data(c)


def failures(addr: str, component: str, reason: str) -> float:
    r = wc.http_get(addr, "/metrics")  # open without a key
    assert r.status_code == 200, r.text[:300]
    m = wc.parse_metrics(r.text)
    return sum(v for k, v in m.items()
               if k.startswith(f"wharf_{component}_auth_failures_total{{")
               and f'reason="{reason}"' in k)


def signed_delete(c: GatewayCluster, cs: wc.ChunkServer, chunk_id: str, headers: dict):
    return requests.delete(wc.url(cs.addr, f"/v1/chunks/{chunk_id}"), headers=headers, timeout=10)


def test_unsigned_requests_get_401_and_are_counted(closed):
    m = closed.masters[0]
    cs = closed.chunkservers["g1"][0]
    before = failures(m.addr, "master", "missing")
    for path in ("/v1/status", "/v1/map", "/v1/placement?size=1", "/nowhere"):
        r = wc.http_get(m.addr, path)
        assert r.status_code == 401, f"unsigned GET {path}: {r.status_code} {r.text[:200]}"
    assert failures(m.addr, "master", "missing") == before + 4
    for path in ("/v1/status", "/v1/chunks", f"/v1/chunks/{wc.new_chunk_id()}"):
        r = wc.http_get(cs.addr, path)
        assert r.status_code == 401, f"unsigned GET {path} on {cs.name}: {r.status_code}"
    # The probes stay open; a signed request passes.
    assert wc.http_get(m.addr, "/healthz").status_code == 200
    assert wc.http_get(cs.addr, "/metrics").status_code == 200
    assert wc.http_get(m.addr, "/v1/status", key=closed.key).status_code == 200
    # Another key's signature is no proof.
    other = os.urandom(32).hex().encode()
    sig_before = failures(m.addr, "master", "signature")
    assert wc.http_get(m.addr, "/v1/status", key=other).status_code == 401
    assert failures(m.addr, "master", "signature") == sig_before + 1


def test_rogue_chunkservers_never_join_and_get_no_writes(closed, tmp_path):
    m = closed.masters[0]
    gw = closed.gateways[0]
    other_key = wc.make_key_file(tmp_path / "other.key")
    missing0 = failures(m.addr, "master", "missing")
    sig0 = failures(m.addr, "master", "signature")
    keyless = closed.add_chunkserver("g1", name="rogue-open", id="rogue-open", cluster_key=None)
    other = closed.add_chunkserver("g1", name="rogue-other", id="rogue-other",
                                   cluster_key=str(other_key))
    newgroup = closed.add_chunkserver("g9", name="rogue-g9", id="rogue-g9", cluster_key=None)
    rogues = [keyless, other, newgroup]
    # Their heartbeats reach the master and are refused.
    wait_until(lambda: failures(m.addr, "master", "missing") >= missing0 + 4
               and failures(m.addr, "master", "signature") >= sig0 + 2, 20,
               "the rogues' heartbeats to be refused")
    st = m.status()
    for r in rogues:
        assert closed.member_in(st, r.opts["id"]) is None, f"{r.name} is in the map: {st}"
    assert closed.group_in(st, "g9") is None
    g1 = closed.group_in(st, "g1")
    assert g1["writable"] and len(g1["members"]) == 2, g1
    # `wharf status` (with the key) does not show them either.
    out = run_wharf(closed.bin, "status", "--master", m.addr, "--cluster-key",
                    str(closed.key_file), timeout=30)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    for cs in closed.chunkservers["g1"][:2]:
        assert cs.member_id in text, text
    assert "rogue" not in text, text
    # Pushes go on, to the real members only.
    data = os.urandom(3 * MiB + 7)
    r = post_file(gw.addr, data)
    assert r.status_code == 201, r.text
    assert_reads_back(gw.addr, r.json()["id"], hashlib.sha256(data).hexdigest(), len(data))
    assert wc.inventory(keyless.addr)[0] == []
    assert wc.inventory(other.addr, key=wc.read_key(other_key))[0] == []
    assert wc.inventory(newgroup.addr)[0] == []
    for r_ in rogues:
        r_.stop()
    closed.chunkservers["g1"] = [cs for cs in closed.chunkservers["g1"] if cs not in rogues]
    closed.chunkservers.pop("g9", None)


def test_unsigned_stale_and_replayed_deletes_delete_nothing(closed):
    cs = closed.chunkservers["g1"][0]
    key = closed.key
    cid = wc.new_chunk_id()
    data = os.urandom(4096)
    assert wc.put_chunk(cs.addr, cid, data, key=key).status_code == 201
    path = f"/v1/chunks/{cid}"

    def still_there(what: str):
        g = wc.get_chunk(cs.addr, cid, key=key)
        assert g.status_code == 200 and g.content == data, \
            f"after {what}: chunk gone ({g.status_code})"

    # Unsigned, signed with another key, signed for another chunk, stale, future-dated.
    attempts = {
        "unsigned": {},
        "other key": wc.sign(os.urandom(32).hex().encode(), "DELETE", path, host=cs.addr),
        "other chunk": wc.sign(key, "DELETE", f"/v1/chunks/{wc.new_chunk_id()}", host=cs.addr),
        "other method": wc.sign(key, "GET", path, host=cs.addr),
        "stale": wc.sign(key, "DELETE", path, date_ms=int(time.time() * 1000) - 600_000,
                         host=cs.addr),
        "future": wc.sign(key, "DELETE", path, date_ms=int(time.time() * 1000) + 600_000,
                          host=cs.addr),
        "hostile": {"X-Wharf-Date": "9" * 5000, "X-Wharf-Nonce": "zz",
                    "X-Wharf-Signature": "\u00ff" * 10},
    }
    for what, headers in attempts.items():
        r = signed_delete(closed, cs, cid, headers)
        assert r.status_code == 401, f"{what} DELETE: {r.status_code} {r.text[:200]}"
        still_there(what + " DELETE")
    # A genuine DELETE works once; the same request replayed deletes nothing.
    genuine = wc.sign(key, "DELETE", path, host=cs.addr)
    assert signed_delete(closed, cs, cid, genuine).status_code == 204
    assert wc.get_chunk(cs.addr, cid, key=key).status_code == 404
    assert wc.put_chunk(cs.addr, cid, data, key=key).status_code == 201
    replays0 = failures(cs.addr, "chunkserver", "replay")
    r = signed_delete(closed, cs, cid, genuine)
    assert r.status_code == 401, f"replayed DELETE: {r.status_code} {r.text[:200]}"
    assert failures(cs.addr, "chunkserver", "replay") == replays0 + 1
    still_there("the replayed DELETE")
    # An unsigned PUT stores nothing.
    cid2 = wc.new_chunk_id()
    assert wc.put_chunk(cs.addr, cid2, data).status_code == 401
    assert wc.get_chunk(cs.addr, cid2, key=key).status_code == 404
    # A PUT whose body differs from its signed checksum stores nothing.
    h = wc.sign(key, "PUT", f"/v1/chunks/{cid2}", wc.checksum_of(data), host=cs.addr)
    r = requests.put(wc.url(cs.addr, f"/v1/chunks/{cid2}"), data=data[:-1] + b"x", headers=h,
                     timeout=10)
    assert r.status_code == 400, r.text
    assert wc.get_chunk(cs.addr, cid2, key=key).status_code == 404


def test_a_delete_signed_for_one_member_deletes_nothing_on_another(closed):
    """A chunk DELETE captured on its way to member A, replayed to member B of the same group
    within the window (B's nonce cache never saw it): B refuses it, with B's Host or with A's,
    and counts it."""
    a, b = closed.chunkservers["g1"][:2]
    key = closed.key
    cid = wc.new_chunk_id()
    data = os.urandom(4096)
    for cs in (a, b):
        assert wc.put_chunk(cs.addr, cid, data, key=key).status_code == 201
    path = f"/v1/chunks/{cid}"
    captured = wc.sign(key, "DELETE", path, host=a.addr)
    assert requests.delete(wc.url(a.addr, path), headers=captured, timeout=10).status_code == 204
    assert wc.get_chunk(a.addr, cid, key=key).status_code == 404
    sig0 = failures(b.addr, "chunkserver", "signature")
    recv0 = failures(b.addr, "chunkserver", "receiver")
    # Sent to B as it is (Host: B's address).
    r = requests.delete(wc.url(b.addr, path), headers=captured, timeout=10)
    assert r.status_code == 401, f"replay to B: {r.status_code} {r.text[:200]}"
    # Sent to B with A's Host, so that the signed authority matches.
    r = requests.delete(wc.url(b.addr, path), headers={**captured, "Host": a.addr}, timeout=10)
    assert r.status_code == 401, f"replay to B with A's Host: {r.status_code} {r.text[:200]}"
    g = wc.get_chunk(b.addr, cid, key=key)
    assert g.status_code == 200 and g.content == data, f"B lost the chunk ({g.status_code})"
    assert failures(b.addr, "chunkserver", "signature") == sig0 + 1
    assert failures(b.addr, "chunkserver", "receiver") == recv0 + 1
    # B's own DELETE still works.
    assert requests.delete(wc.url(b.addr, path), headers=wc.sign(key, "DELETE", path, host=b.addr),
                           timeout=10).status_code == 204


def test_unsigned_member_removal_changes_nothing(closed):
    m = closed.masters[0]
    victim = closed.chunkservers["g1"][1]
    for headers in ({}, wc.sign(os.urandom(32).hex().encode(), "DELETE",
                                f"/v1/members/{victim.member_id}?force=1", host=m.addr)):
        r = requests.delete(wc.url(m.addr, f"/v1/members/{victim.member_id}?force=1"),
                            headers=headers, timeout=10)
        assert r.status_code == 401, r.text
    # `wharf member rm` without the key is refused too, and says why.
    out = run_wharf(closed.bin, "member", "rm", victim.member_id, "--force", "--master", m.addr,
                    timeout=30)
    assert out.returncode != 0
    st = m.status()
    assert closed.member_in(st, victim.member_id) is not None
    assert closed.group_in(st, "g1")["writable"]
    # A heartbeat forged without the key registers nothing.
    body = (b'{"group": "g1", "id": "forged", "addr": "127.0.0.1:1", "state": "active", '
            b'"capacity": 1000000000000, "free": 1000000000000, "reserve": 0, '
            b'"interval_ms": 1000}')
    r = requests.post(wc.url(m.addr, "/v1/heartbeat"), data=body, timeout=10)
    assert r.status_code == 401
    assert closed.member_in(m.status(), "forged") is None
    # Signed, but the body is not the one the signature covers.
    h = wc.sign(closed.key, "POST", "/v1/heartbeat", wc.checksum_of(b"{}"), host=m.addr)
    r = requests.post(wc.url(m.addr, "/v1/heartbeat"), data=body, headers=h, timeout=10)
    assert r.status_code == 400, r.text
    assert closed.member_in(m.status(), "forged") is None


def test_push_and_pull_through_the_gateway(closed):
    gw = closed.gateways[0]
    data = os.urandom(2 * MiB + 3)
    r = post_file(gw.addr, data)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    assert_reads_back(gw.addr, fid, hashlib.sha256(data).hexdigest(), len(data))
    # An OCI blob too (monolithic upload).
    blob = os.urandom(MiB + 1)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    r = requests.post(f"http://{gw.addr}/v2/closed/app/blobs/uploads/?digest={digest}",
                      data=blob, timeout=60)
    assert r.status_code == 201, r.text
    g = requests.get(f"http://{gw.addr}/v2/closed/app/blobs/{digest}", timeout=60)
    assert g.status_code == 200 and g.content == blob
    # The delete reaches the chunkservers (signed by the gateway's collector).
    assert requests.delete(files_url(gw.addr, fid), timeout=30).status_code == 204
    assert requests.get(files_url(gw.addr, fid), timeout=30).status_code == 404


def test_bad_key_files_stop_the_daemon_with_one_line(wharf_bin, tmp_path):
    cases = {
        "absent": (tmp_path / "nope.key", "cannot open"),
        "short": (wc.make_key_file(tmp_path / "short.key", b"x" * 31), "too short"),
        "shared": (wc.make_key_file(tmp_path / "shared.key"), "chmod 600"),
    }
    os.chmod(cases["shared"][0], 0o644)
    for role in ("master", "chunkserver", "gateway"):
        extra = {"master": ["--data", str(tmp_path / "m")],
                 "chunkserver": ["--group", "g1", "--dir", str(tmp_path / "d"), "--master",
                                 "127.0.0.1:1"],
                 "gateway": ["--master", "127.0.0.1:1", "--meta",
                             f"sqlite:{tmp_path / 'meta.db'}"]}[role]
        for what, (path, want) in cases.items():
            out = run_wharf(wharf_bin, role, "--listen", f"127.0.0.1:{wc.free_port()}",
                            "--cluster-key", str(path), *extra, timeout=20)
            err = out.stderr.decode().strip()
            assert out.returncode != 0, f"{role} started with a {what} key"
            assert want in err and str(path) in err, f"{role}, {what} key: {err!r}"
            assert len(err.splitlines()) == 1, f"{role}, {what} key: not one line: {err!r}"


def test_wharf_up_makes_a_private_key_and_closes_its_cluster(make_gw_cluster, wharf_bin):
    c = make_gw_cluster("up")
    up = c.add_up(timeout=40)
    key_file = up.data_dir / "cluster.key"
    mode = stat.S_IMODE(key_file.stat().st_mode)
    assert mode == 0o600, f"cluster.key mode {mode:o}"
    assert len(wc.read_key(key_file)) >= 32
    log = up.log_path.read_text(errors="replace")
    found = re.search(r"master\s+(127\.0\.0\.1:\d+)", log)
    assert found, log[-1500:]
    master = found.group(1)
    assert wc.http_get(master, "/v1/status").status_code == 401
    out = run_wharf(wharf_bin, "status", "--master", master, timeout=30)
    assert out.returncode != 0 and b"--cluster-key" in out.stderr, out.stderr
    out = run_wharf(wharf_bin, "status", "--master", master, "--cluster-key", str(key_file),
                    timeout=30)
    assert out.returncode == 0, out.stderr
    assert b"g1-a" in out.stdout and b"g2-b" in out.stdout, out.stdout
    # Pushes work through its gateway.
    data = os.urandom(MiB + 9)
    r = post_file(up.addr, data)
    assert r.status_code == 201, r.text
    assert_reads_back(up.addr, r.json()["id"], hashlib.sha256(data).hexdigest(), len(data))
    # A restart keeps the key (the same secret).
    secret = wc.read_key(key_file)
    up.stop()
    up.start(timeout=40, keep_port=True)
    assert wc.read_key(key_file) == secret


def test_an_open_cluster_warns_once_per_process(make_cluster):
    c = make_cluster("open")
    c.start_topology(masters=1, groups={"g1": 1})
    c.wait_cluster_ready()
    for p in c.procs:
        n = p.log_path.read_text(errors="replace").count("no --cluster-key")
        assert n == 1, f"{p.name}: {n} warnings about the missing cluster key"
