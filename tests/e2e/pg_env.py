"""A private PostgreSQL server for the end-to-end tests (the Python twin of
tests/support/pg_server.h).

    def test_x(pg_url):            # a fresh, empty database on the session's server
        gw = c.add_gateway(meta=pg_url)

The server is started once per pytest session (initdb into a temp dir, the postmaster on a free
port, listening on a Unix socket in that dir only), as `nobody` when run as root, and stopped
at the end of the session, even on failure: a watchdog shell holding a pipe from this process
stops it if pytest itself is killed. Missing binaries fail the tests that need them, with the
reason (never a quiet skip).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import pytest

import cluster as wc

USER = "wharf"


def find_bindir() -> Optional[str]:
    """Where initdb/pg_ctl/postgres are: $WHARF_PG_BINDIR, `pg_config --bindir`, or the newest
    /usr/lib/postgresql/*/bin (Debian keeps them off PATH)."""
    def has_tools(d: str) -> bool:
        return all(os.access(os.path.join(d, t), os.X_OK) for t in ("initdb", "pg_ctl", "postgres"))

    env = os.environ.get("WHARF_PG_BINDIR")
    if env:
        return env if has_tools(env) else None
    try:
        d = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                           timeout=10).stdout.strip()
        if d and has_tools(d):
            return d
    except (OSError, subprocess.SubprocessError):
        pass
    found = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if has_tools(d)]
    found.sort(key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0)
    return found[-1] if found else None


class PgServer:
    def __init__(self, bindir: str):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="wharf-pg-e2e-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.log = self.root / "server.log"
        self.port = 0
        self.next_db = 0
        self.running = False
        self.run_as: list[str] = []
        self.sock.mkdir()
        self.log.touch()
        if os.geteuid() == 0:
            pw = pwd.getpwnam("nobody")
            for p in (self.root, self.sock, self.log):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            self.run_as = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                           "--clear-groups", "--"]
        # The watchdog: stops the server and removes the dir once our end of the pipe closes.
        r, self._watch_w = os.pipe()
        stop = " ".join(self.run_as + [f"'{bindir}/pg_ctl'", "-D", f"'{self.data}'", "-m",
                                       "immediate", "stop"])
        self._watchdog = subprocess.Popen(
            ["sh", "-c", f"read _; {stop} >/dev/null 2>&1; rm -rf '{self.root}'"], stdin=r,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(r)

    def _tool(self, *args: str, timeout: float = 120):
        with open(self.log, "a") as log:
            r = subprocess.run(self.run_as + [os.path.join(self.bindir, args[0]), *args[1:]],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({r.returncode}): {self.log.read_text()[-1500:]}")

    def start(self):
        self._tool("initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8",
                   "--no-locale", "--no-sync")
        last: Optional[Exception] = None
        for _ in range(3):
            self.port = wc.free_port()
            opts = (f"-p {self.port} -k {self.sock} -c listen_addresses= -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
            try:
                self._tool("pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"),
                           "-w", "-t", "60", "-o", opts, "start")
                self.running = True
                return self
            except RuntimeError as e:
                last = e
        raise RuntimeError(f"postgres did not start: {last}")

    def start_again(self):
        """Starts the stopped server again, on the same port and socket."""
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses= -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._tool("pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-w",
                   "-t", "60", "-o", opts, "start")
        self.running = True

    def url(self, db: str) -> str:
        return f"postgres://{USER}@/{db}?host={self.sock}&port={self.port}"

    def psql(self, db: str, sql: str) -> str:
        """Runs sql with psql (next to the server's binaries, else on PATH); its output."""
        psql = os.path.join(self.bindir, "psql")
        if not os.access(psql, os.X_OK):
            psql = shutil.which("psql") or "psql"
        r = subprocess.run([psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.sock),
                            "-p", str(self.port), "-U", USER, "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"psql {sql!r}: {r.stderr}"
        return r.stdout.strip()

    def fresh_database(self) -> str:
        self.next_db += 1
        db = f"e2e{self.next_db}"
        self.psql("postgres", f"CREATE DATABASE {db}")
        return self.url(db)

    def stop_server(self):
        """Stops the server, keeping its data (start_again starts it again)."""
        if self.running:
            try:
                self._tool("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            except (RuntimeError, subprocess.SubprocessError):
                pass
            self.running = False

    def stop(self):
        """Stops the server for good and removes its dir."""
        self.stop_server()
        if self._watch_w is not None:
            os.close(self._watch_w)  # the watchdog removes the dir
            self._watch_w = None
            try:
                self._watchdog.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()


@pytest.fixture(scope="session")
def pg_server():
    bindir = find_bindir()
    if not bindir:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: not in "
                    "$WHARF_PG_BINDIR, `pg_config --bindir` nor /usr/lib/postgresql/*/bin; "
                    "install Debian's postgresql (scripts/install-deps.sh)", pytrace=False)
    server = PgServer(bindir)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """The url of a fresh, empty database on the session's server."""
    return pg_server.fresh_database()
