"""What an operator runs into at start: a metadata store that cannot be written, flags
checked without starting (--check-config), `wharf up` taking the gateway's flags and config
keys."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
import requests

import cluster as wc
from gateway_env import make_gw_cluster  # noqa: F401  (fixture)
from pg_env import pg_server  # noqa: F401  (fixture)


def _one_line_error(res: subprocess.CompletedProcess, role: str) -> str:
    assert res.returncode != 0, f"exit 0; stdout {res.stdout!r} stderr {res.stderr!r}"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {res.stderr!r}"
    assert lines[0].startswith(f"wharf {role}:"), lines[0]
    return lines[0]


def _make_immutable(path: Path):
    """chattr +i `path`, or skip the test saying why it cannot be made read-only here (root
    ignores file modes, so chmod would not do)."""
    res = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"chattr +i is not supported here ({res.stderr.strip()}): cannot make "
                    f"{path} read-only for root")


def test_read_only_meta_db_stops_the_gateway_at_start(make_gw_cluster):
    # Before: the gateway started on it and the first write answered 500.
    c = make_gw_cluster("romenta")
    c.start_topology(masters=1, groups={"g1": 2})
    c.wait_cluster_ready()
    gw = c.add_gateway()
    gw.stop()
    meta = gw.workdir / "meta.db"
    assert meta.is_file()
    _make_immutable(meta)
    try:
        try:  # the store really is read-only now, even for root
            db = sqlite3.connect(str(meta))
            db.execute("UPDATE schema_version SET version = version")
            db.commit()
            db.close()
            pytest.skip("chattr +i did not make meta.db read-only on this file system")
        except sqlite3.OperationalError:
            pass
        try:
            res = subprocess.run(gw.argv(), capture_output=True, text=True, timeout=20,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail("the gateway started (and ran) on a read-only meta.db")
        line = _one_line_error(res, "gateway")
        assert "not writable" in line and "meta.db" in line, line
        assert "UPDATE" not in line and "schema_version" not in line, f"SQL in: {line}"
    finally:
        subprocess.run(["chattr", "-i", str(meta)])
    # Writable again: it starts.
    gw.start()
    r = requests.post(wc.url(gw.addr, "/files"), data=b"hello", timeout=10)
    assert r.status_code == 201, r.text


def test_check_config_validates_without_starting(wharf_bin, tmp_path):
    def run(*args) -> subprocess.CompletedProcess:
        return subprocess.run([wharf_bin, *args], capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)

    data = tmp_path / "up-data"
    res = run("up", "--data", str(data), "--max-manifest", "1MiB", "--check-config")
    assert res.returncode == 0 and "wharf up: configuration ok" in res.stdout, res
    assert not data.exists(), "--check-config created the data dir"

    meta = tmp_path / "gw" / "meta.db"
    res = run("gateway", "--meta", f"sqlite:{meta}", "--master", "127.0.0.1:1",
              "--listen", f"127.0.0.1:{wc.free_port()}", "--check-config")
    assert res.returncode == 0 and "configuration ok" in res.stdout, res
    assert not meta.parent.exists()

    key = wc.make_key_file(tmp_path / "cluster.key")
    res = run("master", "--data", str(tmp_path / "m"), "--cluster-key", str(key),
              "--check-config")
    assert res.returncode == 0, res
    assert not (tmp_path / "m").exists()
    res = run("chunkserver", "--group", "g1", "--dir", str(tmp_path / "d"), "--master",
              "127.0.0.1:7000", "--cluster-key", str(key), "--check-config")
    assert res.returncode == 0, res
    assert not (tmp_path / "d").exists()

    # each problem: one line, non-zero
    bad = [
        ("master", ["master", "--check-config"]),  # no --data
        ("master", ["master", "--data", str(tmp_path / "m"), "--cluster-key",
                    str(tmp_path / "nokey"), "--check-config"]),
        ("chunkserver", ["chunkserver", "--dir", str(tmp_path / "d"), "--master", "h:1",
                         "--check-config"]),  # no --group
        ("gateway", ["gateway", "--master", "127.0.0.1:1", "--check-config"]),  # no --meta
        ("gateway", ["gateway", "--meta", f"sqlite:{meta}", "--htpasswd",
                     str(tmp_path / "nofile"), "--check-config"]),
        ("gateway", ["gateway", "--meta", f"sqlite:{meta}", "--tls-cert",
                     str(tmp_path / "nocert"), "--tls-key", str(tmp_path / "nokey"),
                     "--check-config"]),
        ("up", ["up", "--data", str(data), "--inflight", "0", "--check-config"]),
        ("up", ["up", "--data", str(data), "--cluster-key", str(tmp_path / "nokey"),
                "--check-config"]),
    ]
    for role, args in bad:
        _one_line_error(run(*args), role)
    assert not data.exists()


def test_up_takes_gateway_flags_and_config_keys(make_gw_cluster, tmp_path):
    # Before: wharf up refused --max-manifest (and so its config key) and --upload-expiry.
    cfg = tmp_path / "up.yaml"
    cfg.write_text("max_manifest: 2KiB\nupload_expiry: 2h\nwritable_wait: 1s\n")
    log = tmp_path / "access.log"
    c = make_gw_cluster("upflags")
    up = c.add_up(start=False)
    up.opts["extra"] = ["--config", str(cfg), "--access-log", str(log), "--inflight", "2",
                        "--reserve", "64MiB", "--chunk-size", "1MiB"]
    up.start(timeout=40)
    big = b'{"schemaVersion": 2, "pad": "' + b"x" * 4096 + b'"}'
    r = requests.put(wc.url(up.addr, "/v2/team/app/manifests/v1"), data=big,
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                     timeout=10)
    assert r.status_code == 413, (r.status_code, r.text)  # max_manifest from the file
    wc.wait_until(lambda: log.is_file() and "/v2/team/app/manifests/v1" in log.read_text(), 10,
                  "the request in --access-log FILE")


def test_postgres_role_that_may_only_read_stops_the_gateway_at_start(wharf_bin, pg_server,
                                                                      tmp_path):
    # A role that can connect, create in the schema and read every table, but not write them:
    # before, the gateway started on it and its first push failed.
    from gateway_env import one_error_line, run_wharf
    url = pg_server.fresh_database()
    db = url.split("@/")[1].split("?")[0]
    r = run_wharf(wharf_bin, "gc", "--meta", url, "--dry-run", timeout=60)  # migrates
    assert r.returncode == 0, r.stderr
    pg_server.psql(db, "CREATE ROLE reader_" + db + " LOGIN; "
                   f"GRANT USAGE, CREATE ON SCHEMA public TO reader_{db}; "
                   f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader_{db}")
    reader = url.replace("postgres://wharf@", f"postgres://reader_{db}@")
    try:
        r = run_wharf(wharf_bin, "gateway", "--listen", f"127.0.0.1:{wc.free_port()}",
                      "--master", "127.0.0.1:1", "--meta", reader, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the gateway started on a store its role may only read")
    line = one_error_line(r, "gateway")
    assert "not writable" in line, line
