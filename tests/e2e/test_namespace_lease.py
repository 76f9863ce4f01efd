"""One namespace per cluster, and the background-work lease.

- Two gateways with separate SQLite files on one cluster: the second refuses to start, with one
  line and a non-zero exit, whichever master of the pair it asks; the masters keep the store id
  across a restart; `wharf gc` on the other store refuses too.
- Gateways sharing one PostgreSQL both start; exactly one holds the background lease (metrics,
  GET /admin/gc), and when it is killed with -9 another takes it over within a few seconds
  (measured and printed); garbage collection and upload expiry then run there, and only there.
"""

from __future__ import annotations

import json
import time

import requests

import cluster as wc
from cluster import wait_until
from gateway_env import make_gw_cluster  # noqa: F401 - fixture
from gateway_env import run_wharf
from pg_env import pg_server  # noqa: F401 - fixture

LEASE_TTL = 5  # the gateway's default background lease ttl (seconds)
# How long a takeover may take: the lease runs out (up to TTL + 1 s, whole unix seconds), then
# a survivor's next attempt (every TTL / 3); generous for two loaded cores.
TAKEOVER_BOUND = 15
UPLOAD_EXPIRY = 3  # --upload-expiry of the lease test's gateways (seconds)


def refusal_lines(gw) -> list[str]:
    return [ln for ln in gw.log_path.read_text(errors="replace").splitlines()
            if ln.startswith("wharf gateway: ")]


def namespace_of(master) -> str | None:
    return wc.get_json(master.addr, "/v1/namespace")["store_id"]


def test_second_store_on_one_cluster_refuses_to_start(make_gw_cluster, wharf_bin):
    c = make_gw_cluster("ns")
    c.start_topology(masters=2, groups={"g1": 2})
    c.wait_cluster_ready()
    m1, m2 = c.masters
    # A claims through m1 only: m2 learns the id from its peer.
    a = c.add_gateway("gwA", masters=m1.addr)
    served = namespace_of(m1)
    assert served and served.startswith("ms-"), served
    wait_until(lambda: namespace_of(m2) == served, 15, "m2 agreeing with its peer")
    files = [json.loads((m.data_dir / "namespace.json").read_text()) for m in (m1, m2)]
    assert [f["store_id"] for f in files] == [served, served], files

    # B has its own SQLite file and asks m2 only: refused, one line, exit != 0.
    b = c.add_gateway("gwB", start=False, masters=m2.addr)
    b._spawn()
    wait_until(lambda: not b.alive(), 20, "gwB refusing to start")
    b.expected_up = False
    assert b.popen.returncode != 0, b.log_tail()
    lines = refusal_lines(b)
    assert len(lines) == 1, b.log_tail()
    assert served in lines[0] and "refusing" in lines[0], lines[0]

    # The master keeps the id over a restart: B is still refused, A still welcome.
    c.restart(m1)
    c.restart(m2)
    assert namespace_of(m1) == served and namespace_of(m2) == served
    b.opts["masters"] = c.master_addrs
    b._spawn()
    wait_until(lambda: not b.alive(), 20, "gwB refusing to start again")
    b.expected_up = False
    assert b.popen.returncode != 0 and len(refusal_lines(b)) == 2, b.log_tail()
    c.restart_gateway(a)
    assert wc.metric(a.addr, "wharf_gateway_namespace_confirmed") == 1

    # wharf gc checks it as well.
    r = run_wharf(wharf_bin, "gc", "--meta", b.opts["meta"], "--master", c.master_addrs,
                  timeout=60)
    err = r.stderr.decode(errors="replace").strip().splitlines()
    assert r.returncode != 0 and len(err) == 1 and err[0].startswith("wharf gc: "), (r, err)
    assert served in err[0], err[0]
    r = run_wharf(wharf_bin, "gc", "--meta", a.opts["meta"], "--master", c.master_addrs,
                  timeout=60)
    assert r.returncode == 0, r.stderr


def lease_view(gw) -> dict:
    r = requests.get(f"http://{gw.addr}/admin/gc", timeout=30)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    return r.json()


def holders(gws) -> list[float]:
    return [wc.metric(g.addr, "wharf_gateway_background_lease_held") for g in gws]


def test_gateways_on_one_postgres_share_the_cluster_and_one_holds_the_lease(
        make_gw_cluster, pg_server):  # noqa: F811 - fixture
    url = pg_server.fresh_database()
    c = make_gw_cluster("lease")
    c.start_topology(masters=1, groups={"g1": 2})
    c.wait_cluster_ready()
    gws = [c.add_gateway(n, meta=url, gc_interval="200ms",
                         extra=["--upload-expiry", f"{UPLOAD_EXPIRY}s"])
           for n in ("gwA", "gwB", "gwC")]
    ids = {lease_view(g)["store_id"] for g in gws}
    assert len(ids) == 1 and namespace_of(c.masters[0]) in ids, ids
    wait_until(lambda: sorted(holders(gws)) == [0, 0, 1], 15, "one lease holder")
    held = holders(gws)
    holder = gws[held.index(1)]
    views = [lease_view(g) for g in gws]
    names = {v["lease"]["holder"] for v in views}
    assert names == {views[held.index(1)]["gateway"]}, views
    assert [v["lease"]["held_here"] for v in views] == [h == 1 for h in held], views
    # Only the holder collects.
    wait_until(lambda: lease_view(holder)["last_round"] is not None, 15, "the holder's GC round")
    others = [g for g in gws if g is not holder]
    assert all(lease_view(g)["last_round"] is None for g in others)
    assert all(wc.metric(g.addr, "wharf_gc_runs_total") == 0 for g in others)

    # An upload left idle on a survivor just before the holder dies: only a holder expires
    # it, and the old one is dead long before it is UPLOAD_EXPIRY seconds idle.
    upload = start_idle_upload(others[0])
    holder.kill9()
    t0 = time.monotonic()
    wait_until(lambda: sorted(holders(others)) == [0, 1], TAKEOVER_BOUND,
               "another gateway taking the lease over")
    took = time.monotonic() - t0
    print(f"\nlease taken over {took:.1f}s after kill -9 of its holder (ttl {LEASE_TTL}s, "
          f"renewed every {LEASE_TTL / 3:.1f}s)")
    new_holder, idle = (others if holders(others)[0] == 1 else others[::-1])
    view = lease_view(new_holder)
    assert view["lease"]["holder"] == view["gateway"] and view["lease"]["held_here"], view
    # The other survivor learns the new holder at its next attempt (every TTL / 3).
    wait_until(lambda: lease_view(idle)["lease"]["holder"] == view["gateway"], LEASE_TTL,
               "the other survivor naming the new holder")
    assert wc.metric(new_holder.addr, "wharf_gateway_background_lease_acquired_total") == 1

    # GC and upload expiry now run on the new holder, and only there.
    runs = wc.metric(new_holder.addr, "wharf_gc_runs_total")
    wait_until(lambda: wc.metric(new_holder.addr, "wharf_gc_runs_total") >= runs + 3, 15,
               "the new holder's GC rounds")
    assert lease_view(new_holder)["last_round"] is not None
    wait_until(lambda: requests.get(upload, timeout=10).status_code == 404,
               UPLOAD_EXPIRY + 15, "the idle upload expired by the new holder")
    t_expired = time.monotonic() - t0
    assert wc.metric(new_holder.addr, "wharf_gateway_gc_uploads_expired_total") == 1
    assert wc.metric(idle.addr, "wharf_gateway_gc_uploads_expired_total") == 0
    assert wc.metric(idle.addr, "wharf_gc_runs_total") == 0
    assert lease_view(idle)["last_round"] is None
    print(f"idle upload expired by the new holder {t_expired:.1f}s after the kill "
          f"(--upload-expiry {UPLOAD_EXPIRY}s)")


def start_idle_upload(gw) -> str:
    """A chunked upload with one PATCH of bytes on gw, left idle; its url."""
    r = requests.post(f"http://{gw.addr}/v2/lease/idle/blobs/uploads/", timeout=10)
    assert r.status_code == 202, f"{r.status_code} {r.text[:200]}"
    loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else f"http://{gw.addr}{loc}"
    r = requests.patch(loc, data=b"x" * 1000, timeout=10, headers={"Content-Range": "0-999"})
    assert r.status_code == 202, f"{r.status_code} {r.text[:200]}"
    assert requests.get(loc, timeout=10).status_code == 204
    return loc
