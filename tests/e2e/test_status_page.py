"""The gateway's status page (/ui/) and its gauges, end to end (issue 13, "A status page" and
"Metrics"): a cluster of two groups, a pushed image and a file, then /metrics shows the stored
counts and every member's capacity, and headless Chromium (Debian's `chromium`) opens /ui/,
takes a screenshot and dumps the DOM, which shows every group and the pushed repository and
tag. With an access policy, an anonymous caller without pull rights gets the 401 challenge and
a user sees only the repositories they may pull.

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_status_page.py
"""

import html
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
import requests

import cluster as wc
from cluster import wait_until
from gateway_env import make_gw_cluster, post_file  # noqa: F401 (fixture)
from registry_env import Registry, push_image

CHROMIUM = shutil.which("chromium")
# bcrypt of "secret" (cost 5), as the unit tests use.
HTPASSWD = "alice:$2y$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwqK\n"
# Anonymous callers may push anywhere but pull nowhere; alice pulls a/**.
POLICY = """
rules:
  - repositories: ["**"]
    anonymous: true
    actions: [push]
  - repositories: ["a/**"]
    users: [alice]
    actions: [pull]
"""


def start(make_gw_cluster, name: str, **gw_opts):
    c = make_gw_cluster(name)
    c.start_topology(masters=1, groups={"g1": 2, "g2": 2})
    c.wait_cluster_ready()
    gw = c.add_gateway(**gw_opts)
    return c, gw, Registry("wharf", gw, c)


def chromium(args: list[str], tmp: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    if not CHROMIUM:
        pytest.skip("chromium is not installed (scripts/install-deps.sh installs it)")
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp / 'chromium-profile'}", *args]
    r = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, f"chromium exit {r.returncode}: {r.stderr[-2000:]!r}"
    return r


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, after checking its signature and IHDR chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, "first chunk is not IHDR"
    body = data[16:16 + length]
    (crc,) = struct.unpack(">I", data[16 + length:20 + length])
    assert zlib.crc32(kind + body) == crc, "IHDR CRC mismatch"
    return struct.unpack(">II", body[:8])


def metrics(addr: str) -> dict[str, float]:
    r = wc.http_get(addr, "/metrics")
    r.raise_for_status()
    return wc.parse_metrics(r.text)


def test_status_page_in_chromium_and_gauges(make_gw_cluster, tmp_path):
    c, gw, reg = start(make_gw_cluster, "ui")
    layers = [b"layer one " * 3000, b"layer two " * 100]
    push_image(reg, "ui/app", "v1", layers)
    assert post_file(gw.addr, b"a file for the totals").status_code == 201

    # /metrics: the stats loop counts what the store holds (config + 2 layers, 1 manifest,
    # 1 file) and sets every member's and group's capacity from the cluster map.
    def counted():
        m = metrics(gw.addr)
        ok = (m.get('wharf_gateway_stored_objects{kind="blob"}') == 3
              and m.get('wharf_gateway_stored_objects{kind="manifest"}') == 1
              and m.get('wharf_gateway_stored_objects{kind="file"}') == 1
              and m.get("wharf_gateway_stored_tags") == 1)
        return m if ok else None

    m = wait_until(counted, 30, "stored totals in /metrics", interval=0.5)
    assert m['wharf_gateway_stored_bytes{kind="blob"}'] >= sum(len(l) for l in layers)
    assert m['wharf_gateway_stored_bytes{kind="file"}'] == len(b"a file for the totals")
    assert m["wharf_gateway_stored_repositories"] == 1
    for cs in c.all_chunkservers():
        labels = f'{{group="{cs.group}",member="{cs.member_id}"}}'
        assert m.get("wharf_gateway_member_capacity_bytes" + labels, 0) > 0, labels
        assert 0 < m.get("wharf_gateway_member_free_bytes" + labels, 0) <= \
            m["wharf_gateway_member_capacity_bytes" + labels], labels
    for g in ("g1", "g2"):
        assert m[f'wharf_gateway_group_capacity_bytes{{group="{g}"}}'] > 0
        assert m[f'wharf_gateway_group_writable{{group="{g}"}}'] == 1

    # The page itself, as a browser gets it.
    url = f"http://{gw.addr}/ui/"
    r = requests.get(url, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert requests.get(f"http://{gw.addr}/ui", timeout=10, allow_redirects=False
                        ).headers.get("Location", "").endswith("/ui/")
    assert requests.get(f"http://{gw.addr}/ui/nothing", timeout=10).status_code == 404
    assert requests.post(url, timeout=10).status_code == 405
    assert requests.get(url, params={"last": '"><script>'}, timeout=10).status_code == 400

    # Headless Chromium: the DOM it built, and a screenshot.
    dom = chromium(["--dump-dom", url], tmp_path).stdout.decode("utf-8", "replace")
    text = html.unescape(dom)
    for g in ("g1", "g2"):
        assert f"group {g}" in text, f"group {g} not on the page"
    for cs in c.all_chunkservers():
        assert cs.member_id in text, cs.member_id
    assert "ui/app" in text and ">v1<" in dom
    assert 'id="stored-blobs">3<' in dom
    shot = tmp_path / "ui.png"
    chromium([f"--screenshot={shot}", "--window-size=1280,900", url], tmp_path)
    data = shot.read_bytes()
    assert png_size(data) == (1280, 900)
    assert len(data) > 10_000, f"screenshot of {len(data)} bytes: blank?"


def test_status_page_respects_the_access_policy(make_gw_cluster, tmp_path):
    (tmp_path / "htpasswd").write_text(HTPASSWD)
    (tmp_path / "access.yaml").write_text(POLICY)
    c, gw, reg = start(make_gw_cluster, "auth",
                       extra=["--htpasswd", str(tmp_path / "htpasswd"),
                              "--access", str(tmp_path / "access.yaml")])
    push_image(reg, "a/mine", "v1", [b"mine"])  # anonymous may push
    push_image(reg, "b/theirs", "v2", [b"theirs"])
    url = f"http://{gw.addr}/ui/"

    anon = requests.get(url, timeout=10)
    assert anon.status_code == 401
    assert anon.headers["WWW-Authenticate"].startswith("Basic ")
    assert "ui/" not in anon.text and "g1" not in anon.text
    assert requests.get(url, auth=("alice", "wrong"), timeout=10).status_code == 401

    page = requests.get(url, auth=("alice", "secret"), timeout=10)
    assert page.status_code == 200
    assert "a/mine" in page.text and "b/theirs" not in page.text
    assert "signed in as alice" in page.text
    assert "group g1" in page.text and "group g2" in page.text
