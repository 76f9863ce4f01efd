"""Pull-through cache (`--proxy NAME=URL`): a `wharf up` in front of Debian's `docker-registry`
(the reference, standing in for Docker Hub or quay.io, which these machines cannot reach).

  pull  cache/team/app:v1  ->  fetched from the upstream's team/app, streamed and stored;
                               the second pull fetches nothing (the fetch counter stands still)
                               and goes on with the upstream stopped
  push  cache/...          ->  405 UNSUPPORTED; other repositories take pushes as always
  --proxy NAME=DEAD --proxy NAME=LIVE   ->  failover to the next upstream, counted
  an upstream with htpasswd auth        ->  --proxy-user / --proxy-password-file
  20 concurrent pulls of an uncached image  ->  one upstream GET per blob (single flight)
  a tag moved upstream                  ->  seen after --proxy-tag-ttl; with the upstream
                                            down a tag is 503, or its last lookup with
                                            --proxy-serve-stale
"""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from cluster import closing, free_port, metric, wait_until
from registry_env import (OCI_MANIFEST, ReferenceRegistryProc, Registries, Registry,
                          assert_oci_error, push_image, push_image_two_step, sha256_digest)

SKOPEO = shutil.which("skopeo")
FETCHES = "wharf_site_upstream_fetches_total"


def layer(seed: int, size: int) -> bytes:
    block = bytes((seed * 13 + i) % 251 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


class AuthReferenceProc(ReferenceRegistryProc):
    """The reference registry, with htpasswd (bcrypt) Basic auth once `auth` is set."""

    def __init__(self, cluster, name, workdir, htpasswd):
        super().__init__(cluster, name, workdir)
        self.htpasswd = htpasswd
        self.auth = False
        self.build_args = AuthReferenceProc._auth_args

    @staticmethod
    def _auth_args(p: "AuthReferenceProc") -> list[str]:
        args = ReferenceRegistryProc._args(p)
        if p.auth:
            with open(p.config, "a") as f:
                f.write(f"auth:\n  htpasswd:\n    realm: test\n    path: {p.htpasswd}\n")
        return args

    def wait_healthy(self, timeout: float = 15.0):
        want = 401 if self.auth else 200  # /v2/ without credentials

        def ok():
            try:
                return requests.get(f"http://{self.addr}/v2/", timeout=1).status_code == want
            except requests.RequestException:
                return False

        wait_until(ok, timeout, f"{self.name} answering /v2/")


@pytest.fixture
def env(wharf_bin, tmp_path):
    yield from closing(Registries(wharf_bin, tmp_path))


def get_manifest(reg: Registry, repo: str, ref: str, auth=None) -> requests.Response:
    return requests.get(reg.url(f"/v2/{repo}/manifests/{ref}"), headers={"Accept": OCI_MANIFEST},
                        auth=auth, timeout=60)


def pull(reg: Registry, repo: str, ref: str) -> tuple[bytes, dict[str, bytes]]:
    r = get_manifest(reg, repo, ref)
    assert r.status_code == 200, f"{repo}:{ref}: {r.status_code} {r.text}"
    blobs = {}
    for d in [r.json()["config"], *r.json()["layers"]]:
        b = requests.get(reg.url(f"/v2/{repo}/blobs/{d['digest']}"), timeout=120)
        assert b.status_code == 200, f"blob {d['digest']}: {b.status_code} {b.text[:300]}"
        assert sha256_digest(b.content) == d["digest"]
        blobs[d["digest"]] = b.content
    return r.content, blobs


def test_pull_through_caches_and_survives_the_upstream_going_away(env):
    upstream = env.reference("upstream")
    layers = [layer(1, 3 << 20), layer(2, 100_000)]
    digest, body = push_image_two_step(upstream, "team/app", "v1", layers)
    w = env.wharf("proxy", ["--proxy", f"cache=http://{upstream.addr}", "--proxy-tag-ttl", "1s"])

    manifest, blobs = pull(w, "cache/team/app", "v1")
    assert manifest == body
    for l in layers:
        assert blobs[sha256_digest(l)] == l
    # The manifest, the config and two layers were fetched on miss (a blob is counted once
    # it is stored, which may be a moment after its last byte reached the client).
    wait_until(lambda: metric(w.addr, FETCHES) == 4, 10, "4 fetches counted")
    fetched = metric(w.addr, FETCHES)

    # The second pull is served from the cache: nothing more is fetched.
    assert pull(w, "cache/team/app", "v1") == (manifest, blobs)
    assert metric(w.addr, FETCHES) == fetched

    # A real client pulls the same image through the cache.
    if SKOPEO:
        out = env.tmp / "skopeo-out"
        subprocess.run([SKOPEO, "--insecure-policy", "copy", "--src-tls-verify=false",
                        f"docker://{w.addr}/cache/team/app:v1", f"dir:{out}"],
                       check=True, capture_output=True, timeout=300)
        assert (out / "manifest.json").read_bytes() == body
        for l in layers:
            assert (out / sha256_digest(l).split(":")[1]).read_bytes() == l

    # The upstream goes away: content by digest is still served; a tag looked up more than
    # --proxy-tag-ttl ago is a 503 (no --proxy-serve-stale), naming the proxy and its upstream.
    upstream.proc.stop()
    assert pull(w, "cache/team/app", digest) == (manifest, blobs)
    wait_until(lambda: get_manifest(w, "cache/team/app", "v1").status_code != 200, 30,
               "the tag's lookup expired")
    r = get_manifest(w, "cache/team/app", "v1")
    assert_oci_error(r, 503, "UNAVAILABLE")
    assert "proxy cache upstream" in r.text and upstream.addr in r.text
    # What the upstream never had is a 503 as well (it cannot be told missing from down).
    r = requests.get(w.url(f"/v2/cache/team/app/blobs/{sha256_digest(b'never')}"), timeout=60)
    assert_oci_error(r, 503, "UNAVAILABLE")


def test_pushes_and_deletes_to_a_proxied_name_are_refused(env):
    upstream = env.reference("upstream")
    digest, body = push_image_two_step(upstream, "team/app", "v1", [layer(3, 5000)])
    w = env.wharf("proxy", ["--proxy", f"cache=http://{upstream.addr}"])
    blob = b"pushed to the cache"
    attempts = [
        ("POST", "/v2/cache/team/app/blobs/uploads/", {"digest": sha256_digest(blob)}, blob),
        ("POST", "/v2/cache/team/app/blobs/uploads/",
         {"mount": sha256_digest(blob), "from": "local/app"}, b""),
        ("PUT", "/v2/cache/team/app/manifests/v2", None, body),
        ("DELETE", f"/v2/cache/team/app/manifests/{digest}", None, b""),
    ]
    for method, path, params, data in attempts:
        r = requests.request(method, w.url(path), params=params, data=data,
                             headers={"Content-Type": OCI_MANIFEST}, timeout=30)
        assert_oci_error(r, 405, "UNSUPPORTED", f"{method} {path}")
        assert "pull-through cache of --proxy cache" in r.text, r.text
    assert metric(w.addr, "wharf_gateway_proxy_refused_total") == len(attempts)
    # Nothing reached the upstream: v2 is not there.
    assert get_manifest(upstream, "team/app", "v2").status_code == 404
    # Other repositories of the same gateway take pushes as always, and keep them local.
    d2, b2 = push_image(w, "local/app", "v1", [layer(4, 7000)])
    assert get_manifest(w, "local/app", "v1").content == b2
    assert get_manifest(upstream, "local/app", "v1").status_code == 404
    # And the proxied name still pulls.
    assert get_manifest(w, "cache/team/app", "v1").content == body


def test_failover_to_the_next_upstream(env):
    upstream = env.reference("upstream")
    digest, body = push_image_two_step(upstream, "team/app", "v1", [layer(5, 1 << 20)])
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    w = env.wharf("proxy", ["--proxy", f"cache=http://{dead}",
                            "--proxy", f"cache=http://{upstream.addr}"])
    manifest, blobs = pull(w, "cache/team/app", "v1")
    assert manifest == body
    assert metric(w.addr, "wharf_upstream_failovers_total") >= 1
    # A second repository: the dead upstream is tried last for a while, so no new failover
    # is needed for it.
    d2, b2 = push_image_two_step(upstream, "team/other", "v1", [layer(6, 2000)])
    before = metric(w.addr, "wharf_upstream_failovers_total")
    assert pull(w, "cache/team/other", "v1")[0] == b2
    assert metric(w.addr, "wharf_upstream_failovers_total") == before


def test_an_upstream_with_credentials(env, tmp_path):
    if not shutil.which("htpasswd"):
        pytest.skip("htpasswd (apache2-utils) is not installed")
    htpasswd = tmp_path / "htpasswd"
    line = subprocess.run(["htpasswd", "-Bbn", "puller", "s3cret"], check=True,
                          capture_output=True, text=True).stdout.strip()
    htpasswd.write_text(line + "\n")
    upstream = env.reference("upstream", proc_cls=AuthReferenceProc, htpasswd=htpasswd)
    layers = [layer(7, 300_000)]
    digest, body = push_image_two_step(upstream, "team/app", "v1", layers)
    # The same storage, now behind auth: anonymous pulls are refused.
    upstream.proc.stop()
    upstream.proc.auth = True
    upstream.proc.start(keep_port=True)
    assert get_manifest(upstream, "team/app", "v1").status_code == 401
    assert get_manifest(upstream, "team/app", "v1", auth=("puller", "s3cret")).content == body
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    w = env.wharf("proxy", ["--proxy", f"cache=http://{upstream.addr}",
                            "--proxy-user", "cache=puller", "--proxy-password-file",
                            f"cache={pw}"])
    manifest, blobs = pull(w, "cache/team/app", "v1")
    assert manifest == body and blobs[sha256_digest(layers[0])] == layers[0]

    # Wrong credentials: the upstream's refusal is the gateway's clear 5xx, never a 200.
    bad = tmp_path / "bad"
    bad.write_text("wrong\n")
    w2 = env.wharf("proxy2", ["--proxy", f"cache=http://{upstream.addr}",
                              "--proxy-user", "cache=puller", "--proxy-password-file",
                              f"cache={bad}"])
    r = get_manifest(w2, "cache/team/app", "v1")
    assert r.status_code >= 500 and "proxy cache upstream" in r.text, f"{r.status_code} {r.text}"


def test_tags_follow_the_upstream_and_serve_stale(env):
    upstream = env.reference("upstream")
    d1, b1 = push_image_two_step(upstream, "team/app", "v1", [layer(8, 4000)])
    w = env.wharf("proxy", ["--proxy", f"cache=http://{upstream.addr}", "--proxy-tag-ttl", "1s",
                            "--proxy-serve-stale"])
    assert get_manifest(w, "cache/team/app", "v1").content == b1
    # The tag moves upstream: the cache follows once its lookup is older than the TTL.
    d2, b2 = push_image_two_step(upstream, "team/app", "v1", [layer(9, 4000)])
    assert d2 != d1
    wait_until(lambda: get_manifest(w, "cache/team/app", "v1").content == b2, 30,
               "the moved tag seen through the cache")
    # The upstream goes away: with --proxy-serve-stale the last lookup is served.
    upstream.proc.stop()
    r = get_manifest(w, "cache/team/app", "v1")
    assert r.status_code == 200 and r.content == b2
    # A tag never looked up is still a 503: there is nothing stale to serve.
    assert_oci_error(get_manifest(w, "cache/team/app", "never"), 503, "UNAVAILABLE")


def test_bad_proxy_flags_are_one_line(wharf_bin, tmp_path):
    for args, want in [
        (["--proxy", "cache"], "--proxy: want NAME=VALUE"),
        (["--proxy", "cache=ftp://h:1"], "want NAME=http://HOST:PORT"),
        (["--proxy-user", "cache=u"], "no --proxy cache=URL"),
        (["--proxy", "cache=http://127.0.0.1:1", "--proxy-user", "cache=u",
          "--proxy-password-file", f"cache={tmp_path / 'missing'}"], "cannot read it"),
    ]:
        r = subprocess.run([wharf_bin, "up", "--data", str(tmp_path / "d"), "--listen",
                            f"127.0.0.1:{free_port()}", *args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0, args
        err = r.stderr.strip()
        assert want in err, f"{args}: {err}"


def upstream_blob_gets(reg: Registry, repo: str) -> dict[str, int]:
    """The reference's access log: GETs of each blob of `repo` it answered."""
    counts: dict[str, int] = {}
    for line in reg.proc.log_path.read_text().splitlines():
        m = re.search(rf'"GET /v2/{re.escape(repo)}/blobs/(sha256:[0-9a-f]{{64}}) ', line)
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def test_concurrent_pulls_of_an_uncached_image_fetch_each_blob_once(env):
    upstream = env.reference("upstream")
    layers = [layer(10 + i, (1 << 20) + i * 4096) for i in range(3)]
    digest, body = push_image_two_step(upstream, "team/big", "v1", layers)
    w = env.wharf("proxy", ["--proxy", f"cache=http://{upstream.addr}"])
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: pull(w, "cache/team/big", "v1"), range(20)))
    for manifest, blobs in results:
        assert manifest == body
        for l in layers:
            assert blobs[sha256_digest(l)] == l
    # Every blob (3 layers and the config) was fetched from the upstream exactly once.
    want = {sha256_digest(l) for l in layers} | set(results[0][1])
    wait_until(lambda: set(upstream_blob_gets(upstream, "team/big")) == want, 10,
               "the upstream's access log lines")
    assert upstream_blob_gets(upstream, "team/big") == {d: 1 for d in want}
