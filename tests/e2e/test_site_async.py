"""Site mode with `--site-write async`: a push to the site is acknowledged once stored there and
shipped to the upstream through the durable queue in the site's metadata store.

  centre down     ->  pushes to site A still succeed (201) and queue; A serves them itself
  centre up       ->  the queue drains (wharf_gateway_site_queue_depth 0, GET /admin/queue);
                      the centre holds every blob, manifest and tag byte-identical; site B
                      (another `wharf up` over the centre) pulls the image byte-identical
  kill -9 A mid-drain (the centre behind a throttling proxy, so the drain takes seconds)
                  ->  restarted on the same data dir, A takes its claims back, the queue
                      resumes, nothing is lost, and a tag pushed twice ends at its last value
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from cluster import HOST, closing, free_port, metric, wait_until
from registry_env import OCI_MANIFEST, RegistryCluster, Registry, push_image, sha256_digest
from test_site import layer, pull_image, start_up


class ThrottlingProxy:
    """A TCP proxy to `upstream` that forwards the client's bytes at most `rate` bytes/s (the
    answers unthrottled): a slow link to the centre, so a drain takes long enough to interrupt."""

    def __init__(self, port: int, upstream: str, rate: int):
        self.port, self.rate = port, rate
        host, p = upstream.rsplit(":", 1)
        self.upstream = (host, int(p))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, port))
        self.sock.listen(64)
        self.closed = False
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, self.rate),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, 0), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, rate: int):
        piece = 16 << 10
        try:
            while True:
                data = src.recv(piece)
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass


def queue_view(reg: Registry, **params) -> dict:
    r = requests.get(reg.url("/admin/queue"), params=params, timeout=10)
    assert r.status_code == 200, f"/admin/queue: {r.status_code} {r.text}"
    return r.json()


def depth(reg: Registry) -> float:
    return metric(reg.addr, "wharf_gateway_site_queue_depth")


def manifest_at(reg: Registry, repo: str, ref: str) -> requests.Response:
    return requests.get(reg.url(f"/v2/{repo}/manifests/{ref}"), headers={"Accept": OCI_MANIFEST},
                        timeout=30)


def assert_centre_holds(centre: Registry, repo: str, body: bytes, layers: list[bytes]):
    digest = sha256_digest(body)
    r = manifest_at(centre, repo, digest)
    assert r.status_code == 200 and r.content == body, f"centre {repo}@{digest}: {r.status_code}"
    for l in layers:
        b = requests.get(centre.url(f"/v2/{repo}/blobs/{sha256_digest(l)}"), timeout=60)
        assert b.status_code == 200 and b.content == l, f"centre blob {sha256_digest(l)}"


@pytest.fixture
def cluster(wharf_bin, tmp_path):
    yield from closing(RegistryCluster(wharf_bin, tmp_path))


def test_async_push_with_the_centre_down_then_the_queue_drains(cluster):
    centre_proc = cluster.add_up(name="centre", start=False)  # its address is known, it is down
    centre = Registry("wharf", centre_proc, cluster)
    a = start_up(cluster, "site_a", ["--site-upstream", f"http://{centre.addr}",
                                     "--site-write", "async", "--site-tag-ttl", "1s"])
    assert queue_view(a)["mode"] == "async"

    # The centre is down. A HEAD of a blob A lacks (what a client asks before it uploads) is a
    # plain 404, so pushes go on; a GET still says the upstream is unreachable.
    absent = sha256_digest(b"never pushed anywhere")
    assert requests.head(a.url(f"/v2/team/app/blobs/{absent}"), timeout=60).status_code == 404
    assert requests.get(a.url(f"/v2/team/app/blobs/{absent}"), timeout=60).status_code == 503
    # Pushes succeed, and A serves them itself (the tag too).
    layers = [layer(11, 2 << 20), layer(12, 300_000)]
    digest, body = push_image(a, "team/app", "v1", layers)
    manifest, blobs = pull_image(a, "team/app", "v1")
    assert manifest == body and all(blobs[sha256_digest(l)] == l for l in layers)
    wait_until(lambda: depth(a) == 5, 10, "5 items queued (config, 2 layers, manifest, tag)")
    # The queue tried and keeps the items pending with the upstream's error.
    view = wait_until(lambda: (v := queue_view(a)) and any(i["last_error"] for i in v["items"])
                      and v, 30, "an attempt against the stopped centre")
    assert view["pending"] + view["running"] == 5 and view["failed"] == 0
    assert {i["kind"] for i in view["items"]} == {"blob", "manifest", "tag"}
    assert metric(a.addr, "wharf_gateway_site_queue_oldest_seconds") >= 0

    # The centre comes up: the queue drains by itself (backoff is capped at 30 s).
    centre_proc.start(timeout=30, keep_port=True)
    wait_until(lambda: requests.get(centre.url("/v2/"), timeout=2).status_code == 200, 30,
               "centre serving")
    wait_until(lambda: depth(a) == 0, 90, "the queue drained")
    view = queue_view(a)
    assert (view["pending"], view["running"], view["failed"], view["done"]) == (0, 0, 0, 5)
    assert metric(a.addr, "wharf_gateway_site_queue_shipped_total") >= 5
    assert_centre_holds(centre, "team/app", body, layers)
    r = manifest_at(centre, "team/app", "v1")
    assert r.status_code == 200 and r.content == body

    # Site B, another `wharf up` over the same centre, pulls it byte-identical.
    b = start_up(cluster, "site_b", ["--site-upstream", f"http://{centre.addr}"])
    manifest, blobs = pull_image(b, "team/app", "v1")
    assert manifest == body
    for l in layers:
        assert blobs[sha256_digest(l)] == l

    # In sync mode (B) there is no queue to show, but the view answers.
    assert queue_view(b)["mode"] == "sync"
    assert requests.get(a.url("/admin/queue"), params={"state": "bogus"},
                        timeout=10).status_code == 400


def test_kill_during_the_drain_resumes_and_loses_nothing(cluster):
    centre_proc = cluster.add_up(name="centre", start=False)
    centre = Registry("wharf", centre_proc, cluster)
    proxy_port = free_port()
    a = start_up(cluster, "site_a", ["--site-upstream", f"http://{HOST}:{proxy_port}",
                                     "--site-write", "async"])

    # Pushed while the centre is down: a first image under v1 and v0, then v1 moved to a second
    # image (the queue holds v1 once; shipped, it must end at the second image).
    first_layers = [layer(20 + i, 1 << 20) for i in range(12)]
    first_digest, first_body = push_image(a, "team/big", "v0", first_layers)
    r = requests.put(a.url(f"/v2/team/big/manifests/v1"), data=first_body,
                     headers={"Content-Type": OCI_MANIFEST}, timeout=60)
    assert r.status_code == 201, r.text
    second_layers = [layer(40 + i, 1 << 20) for i in range(12)]
    second_digest, second_body = push_image(a, "team/big", "v1", second_layers)
    wait_until(lambda: depth(a) > 0, 10, "items queued")
    queued = queue_view(a)
    total = queued["pending"] + queued["running"]
    # 24 layers + 2 configs + 2 manifests + 2 tags.
    assert total == 30, queued

    # The centre comes up behind a link of 1 MiB/s per connection: each worker takes about a
    # second per layer, shipping ~24 MiB several seconds.
    centre_proc.start(timeout=30, keep_port=True)
    proxy = ThrottlingProxy(proxy_port, centre.addr, 1 << 20)
    try:
        # Kill A in the middle of the drain: some items shipped, some not, some running.
        view = wait_until(lambda: (v := queue_view(a))["done"] >= 3 and v, 120,
                          "the drain under way")
        a.proc.kill9()
        assert view["pending"] + view["running"] > 0, f"the drain ended before the kill: {view}"

        # Restarted on the same data dir and address: it takes its claims back and resumes.
        a.proc.start(timeout=30, keep_port=True)
        wait_until(lambda: requests.get(a.url("/v2/"), timeout=2).status_code == 200, 30,
                   "site A serving again")
        wait_until(lambda: depth(a) == 0, 120, "the queue drained after the restart")
        recovered = metric(a.addr, "wharf_gateway_site_queue_recovered_total")
        view = queue_view(a)
        assert (view["pending"], view["running"], view["failed"]) == (0, 0, 0), view
        assert view["done"] == total, view
    finally:
        proxy.close()

    # Nothing lost, nothing changed: every blob and manifest at the centre byte-identical, each
    # tag at the value it had last at A (v1 not moved back to the first image).
    assert_centre_holds(centre, "team/big", first_body, first_layers)
    assert_centre_holds(centre, "team/big", second_body, second_layers)
    v0 = manifest_at(centre, "team/big", "v0")
    assert v0.status_code == 200 and v0.headers["Docker-Content-Digest"] == first_digest
    v1 = manifest_at(centre, "team/big", "v1")
    assert v1.status_code == 200 and v1.headers["Docker-Content-Digest"] == second_digest
    assert v1.content == second_body
    # What the killed A left running was taken back at its restart (every worker spends seconds
    # per item on the throttled link, so the kill found some of them mid-item).
    assert recovered >= 1

    # Site B pulls the final v1 from the centre byte-identical.
    b = start_up(cluster, "site_b", ["--site-upstream", f"http://{centre.addr}"])
    manifest, blobs = pull_image(b, "team/big", "v1")
    assert manifest == second_body
    for l in second_layers:
        assert blobs[sha256_digest(l)] == l
