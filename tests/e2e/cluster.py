"""Test harness for the wharf daemons: start masters and chunkservers as real processes.

Reusable by every end-to-end test (chunk cluster now, gateway/registry later):

    c = Cluster(wharf_bin, tmp_path)          # nothing runs yet
    c.start_topology(masters=2, groups={"g1": 2, "g2": 2})
    c.wait_cluster_ready()
    cs = c.chunkservers["g1"][0]
    c.kill9(cs); c.restart(cs, wipe=True)
    c.close()                                 # kills everything (also done at exit)

Every process runs in its own process group with stdout+stderr appended to
`<its dir>/<name>.log`; ports are picked at run time (and re-picked if the bind fails);
every wait is a poll with a deadline.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

import requests
import xxhash

DEFAULT_BIN = "/work/main/build/wharf"
HOST = "127.0.0.1"

# Every process ever started and not yet reaped; killed by close(), fixtures and atexit.
_LIVE: set["Process"] = set()
# Clusters not yet closed (the pytest hook prints their log tails on failure).
ACTIVE_CLUSTERS: list["Cluster"] = []


def wharf_bin() -> str:
    return os.environ.get("WHARF_BIN", DEFAULT_BIN)


# ----------------------------------------------------------------------------- utilities


class Timeout(AssertionError):
    pass


class Crashed(AssertionError):
    """A daemon that should be running has exited."""


def wait_until(pred: Callable[[], object], timeout: float, what: str, interval: float = 0.05,
               fatal: tuple = ()):
    """Polls pred() until it returns a truthy value (returned) or the deadline passes.

    Exceptions raised by pred count as "not yet" (the last one is shown on timeout), except
    those of the `fatal` types, which end the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    last_val: object = None
    while True:
        try:
            last_val = pred()
            if last_val:
                return last_val
        except fatal:
            raise
        except Exception as e:  # noqa: BLE001 - polling
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f"last exception: {last_exc!r}" if last_exc else f"last value: {last_val!r}"
            raise Timeout(f"timed out after {timeout:.1f}s waiting for {what} ({detail})")
        time.sleep(interval)


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def checksum_of(data: bytes) -> str:
    return "xxh3:%016x" % xxhash.xxh3_64_intdigest(data)


def new_chunk_id() -> str:
    return os.urandom(16).hex()


def url(addr: str, path: str) -> str:
    return f"http://{addr}{path}"


# ------------------------------------------------------------- the cluster key (closed cluster)


def make_key_file(path: Path, secret: Optional[bytes] = None) -> Path:
    """A key file as `wharf up` writes one: 64 hex characters, mode 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write((secret if secret is not None else os.urandom(32).hex().encode()) + b"\n")
    os.chmod(path, 0o600)
    return path


def read_key(path: Path) -> bytes:
    return Path(path).read_bytes().rstrip(b" \t\r\n")


def sign(secret: Optional[bytes], method: str, target: str, checksum: str = "",
         date_ms: Optional[int] = None, nonce: Optional[str] = None, *, host: str) -> dict:
    """The cluster-key proof headers (src/http/cluster_auth.h) for one request to `host` (the
    HOST:PORT it is sent to, its Host header); {} without a key. `target` is the path and query
    as sent."""
    if secret is None:
        return {}
    date = str(date_ms if date_ms is not None else int(time.time() * 1000))
    nonce = nonce or os.urandom(16).hex()
    msg = "\n".join(["wharf-cluster-v2", method, host, target, date, nonce, checksum]).encode()
    sig = hmac.new(secret, msg, hashlib.sha256).hexdigest()
    h = {"X-Wharf-Date": date, "X-Wharf-Nonce": nonce, "X-Wharf-Signature": sig}
    if checksum:
        h["X-Wharf-Checksum"] = checksum
    return h


def http_get(addr: str, path: str, timeout: float = 5.0, key: Optional[bytes] = None,
             **kw) -> requests.Response:
    if key is not None:
        kw["headers"] = {**kw.get("headers", {}), **sign(key, "GET", path, host=addr)}
    return requests.get(url(addr, path), timeout=timeout, **kw)


def get_json(addr: str, path: str, timeout: float = 5.0, key: Optional[bytes] = None):
    r = http_get(addr, path, timeout=timeout, key=key)
    r.raise_for_status()
    return r.json()


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {"name{labels}": value} and, summed over labels, {"name": total}."""
    out: dict[str, float] = {}
    sums: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            continue
        key, val = parts
        # a timestamp may follow the value: "name{...} 1 1700000000"
        if " " in key and not key.endswith("}"):
            key, val = key.rsplit(None, 1)[0], key.rsplit(None, 1)[1]
        try:
            v = float(val)
        except ValueError:
            continue
        out[key] = v
        name = key.split("{", 1)[0]
        sums[name] = sums.get(name, 0.0) + v
    for name, v in sums.items():
        out.setdefault(name, v)
    return out


def metric(addr: str, name: str) -> float:
    """Value of one metric (summed over its label sets); 0 if absent."""
    r = http_get(addr, "/metrics")
    r.raise_for_status()
    return parse_metrics(r.text).get(name, 0.0)


def closing(env):
    """A fixture's body for anything with log_tails() and close() (a Cluster, registry_env's
    Registries): yields `env`, prints its log tails when the test fails, closes it at the end."""
    try:
        yield env
    except BaseException:
        sys.stderr.write("\n" + env.log_tails() + "\n")
        raise
    finally:
        env.close()


# ---------------------------------------------------------------------- chunkserver client


def put_chunk(addr: str, chunk_id: str, data: bytes, checksum: Optional[str] = "auto",
              timeout: float = 30.0, key: Optional[bytes] = None) -> requests.Response:
    headers = {"Content-Length": str(len(data))}
    if checksum == "auto":
        checksum = checksum_of(data)
    if checksum is not None:
        headers["X-Wharf-Checksum"] = checksum
    headers.update(sign(key, "PUT", f"/v1/chunks/{chunk_id}", checksum or "", host=addr))
    return requests.put(url(addr, f"/v1/chunks/{chunk_id}"), data=data, headers=headers,
                        timeout=timeout)


def get_chunk(addr: str, chunk_id: str, timeout: float = 30.0, key: Optional[bytes] = None,
              **kw) -> requests.Response:
    return http_get(addr, f"/v1/chunks/{chunk_id}", timeout=timeout, key=key, **kw)


def inventory(addr: str, limit: Optional[int] = None, max_pages: int = 100000,
              key: Optional[bytes] = None):
    """The full chunk list of a chunkserver, following `next` until null. Returns (chunks, pages)."""
    chunks, pages = [], []
    after = None
    for _ in range(max_pages):
        q = []
        if after is not None:
            q.append(f"after={after}")
        if limit is not None:
            q.append(f"limit={limit}")
        path = "/v1/chunks" + ("?" + "&".join(q) if q else "")
        r = http_get(addr, path, key=key)
        assert r.status_code == 200, f"GET {path} on {addr}: {r.status_code} {r.text[:300]}"
        body = r.json()
        assert set(body) >= {"chunks", "next"}, f"inventory page shape: {body!r:.300}"
        pages.append(body["chunks"])
        chunks.extend(body["chunks"])
        if body["next"] is None:
            return chunks, pages
        assert body["next"] != after, f"inventory pagination does not advance (next={after})"
        after = body["next"]
    raise AssertionError(f"inventory of {addr} did not end after {max_pages} pages")


def error_code(resp: requests.Response) -> Optional[str]:
    try:
        return resp.json()["error"]["code"]
    except Exception:  # noqa: BLE001
        return None


# ------------------------------------------------------------------------------ processes


class Process:
    """One wharf daemon. `opts` are rebuilt into flags at every (re)start."""

    def __init__(self, cluster: "Cluster", name: str, role: str, workdir: Path,
                 build_args: Callable[["Process"], list[str]], fixed_port: Optional[int] = None):
        self.cluster = cluster
        self.name = name
        self.role = role
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{name}.log"
        self.build_args = build_args
        self.port = fixed_port or free_port()
        self.opts: dict = {}
        self.popen: Optional[subprocess.Popen] = None
        self.starts = 0
        self.expected_up = False  # started and not deliberately killed

    @property
    def addr(self) -> str:
        return f"{HOST}:{self.port}"

    def argv(self) -> list[str]:
        return [self.cluster.bin, self.role, *self.build_args(self)]

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def _spawn(self):
        argv = self.argv()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts + 1} at {time.strftime('%H:%M:%S')}: "
                      f"{' '.join(argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=self.workdir,
                                          start_new_session=True, preexec_fn=_die_with_parent)
        self.starts += 1
        self.expected_up = True
        _LIVE.add(self)

    def start(self, timeout: float = 15.0, keep_port: bool = False):
        """Starts the process and waits for /healthz. Re-picks the port if the bind failed
        (unless keep_port: a restarted member keeps its address, we then retry the same port)."""
        assert not self.alive(), f"{self.name} already running"
        attempts = 0
        while True:
            attempts += 1
            self._spawn()
            try:
                self.wait_healthy(timeout)
                return self
            except Timeout:
                if self.alive():
                    raise
                tail = self.log_tail(20)
                bind_failed = any(w in tail.lower() for w in
                                  ("address already in use", "eaddrinuse", "bind"))
                if not bind_failed or attempts >= 5:
                    raise AssertionError(
                        f"{self.name} exited with {self.popen.returncode} at start; log:\n{tail}")
                if keep_port:
                    time.sleep(0.5)
                else:
                    self.port = free_port()

    def wait_healthy(self, timeout: float = 15.0):
        def ok():
            if not self.alive():
                raise Timeout(f"{self.name} exited with {self.popen.returncode}")
            return http_get(self.addr, "/healthz", timeout=1).status_code == 200

        deadline = time.monotonic() + timeout
        while True:
            try:
                if ok():
                    return
            except Timeout:
                raise
            except Exception:  # noqa: BLE001
                pass
            if time.monotonic() >= deadline:
                raise Timeout(f"{self.name} ({self.addr}) not healthy after {timeout}s")
            time.sleep(0.05)

    def kill9(self):
        self.expected_up = False
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _LIVE.discard(self)

    def stop(self, timeout: float = 5.0):
        """SIGTERM, then SIGKILL after `timeout`."""
        self.expected_up = False
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill9()

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def __repr__(self):
        return f"<{self.role} {self.name} {self.addr}>"


class Master(Process):
    def __init__(self, cluster, name, workdir, fixed_port=None):
        super().__init__(cluster, name, "master", workdir, Master._args, fixed_port)
        self.data_dir = workdir / "data"
        self.opts = {"peers": [], "extra": []}

    @staticmethod
    def _args(p: "Master") -> list[str]:
        a = ["--listen", p.addr, "--data", str(p.data_dir)]
        for peer in p.opts["peers"]:
            a += ["--peer", peer]
        for k in ("chunk_size", "policy", "log_level", "cluster_key"):
            v = p.opts.get(k, p.cluster.key_file if k == "cluster_key" else None)
            if v is not None:
                a += ["--" + k.replace("_", "-"), str(v)]
        return a + list(p.opts["extra"])

    def status(self, timeout: float = 5.0) -> dict:
        return get_json(self.addr, "/v1/status", timeout=timeout, key=self.cluster.key)

    def placement(self, size: int = 1 << 20, **params) -> requests.Response:
        q = "&".join([f"size={size}"] + [f"{k}={v}" for k, v in params.items()])
        return http_get(self.addr, f"/v1/placement?{q}", key=self.cluster.key)


class ChunkServer(Process):
    def __init__(self, cluster, name, group, workdir, fixed_port=None):
        super().__init__(cluster, name, "chunkserver", workdir, ChunkServer._args, fixed_port)
        self.group = group
        self._known_id = None
        self.dirs = [workdir / "d0"]
        self.opts = {"extra": []}

    @staticmethod
    def _args(p: "ChunkServer") -> list[str]:
        c = p.cluster
        a = ["--group", p.group] if p.group else []
        a += ["--listen", p.addr]
        for d in p.dirs:
            a += ["--dir", str(d)]
        a += ["--master", p.opts.get("masters") or ",".join(m.addr for m in c.masters)]
        o = {"heartbeat": c.heartbeat, "scrub_interval": c.scrub_interval,
             "scrub_rate": c.scrub_rate, "reserve": c.reserve, "log_level": c.log_level,
             "cluster_key": c.key_file}
        o.update({k: v for k, v in p.opts.items() if k not in ("extra", "masters")})
        for k in ("id", "reserve", "heartbeat", "scrub_interval", "scrub_rate", "log_level",
                  "cluster_key", "repair_interval", "repair_grace", "repair_rate"):
            if o.get(k) is not None:
                a += ["--" + k.replace("_", "-"), str(o[k])]
        return a + list(p.opts["extra"])

    @property
    def dir(self) -> Path:
        return self.dirs[0]

    def status(self, timeout: float = 5.0) -> dict:
        return get_json(self.addr, "/v1/status", timeout=timeout, key=self.cluster.key)

    @property
    def member_id(self) -> str:
        """The member id as pinned with --id, else as the chunkserver reported it (cached, so
        it is known while the process is down; a wipe without --id forgets it)."""
        if self.opts.get("id"):
            return self.opts["id"]
        if self._known_id is None:
            self._known_id = self.status()["id"]
        return self._known_id

    def chunk_path(self, chunk_id: str) -> Optional[Path]:
        for d in self.dirs:
            p = d / "chunks" / chunk_id[:2] / chunk_id
            if p.exists():
                return p
        return None

    def files_named(self, chunk_id: str) -> list[Path]:
        """Every file anywhere under the data dirs whose name contains chunk_id (incl. temp)."""
        out = []
        for d in self.dirs:
            if d.exists():
                out += [p for p in d.rglob("*") if chunk_id in p.name]
        return out


# -------------------------------------------------------------------------------- cluster


class Cluster:
    """key_file: every daemon gets --cluster-key with it (a closed cluster) and the helpers
    sign their requests with it; None: an open cluster."""

    def __init__(self, bin_path: str, root: Path, heartbeat: float = 0.5,
                 scrub_interval: Optional[float] = 1.0, scrub_rate: Optional[str] = "1GiB",
                 reserve: Optional[str] = "0", log_level: Optional[str] = None,
                 key_file: Optional[Path] = None):
        self.bin = bin_path
        self.key_file = key_file
        self.key: Optional[bytes] = read_key(key_file) if key_file is not None else None
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.heartbeat = heartbeat
        self.scrub_interval = scrub_interval
        self.scrub_rate = scrub_rate
        self.reserve = reserve
        self.log_level = log_level
        self.masters: list[Master] = []
        self.chunkservers: dict[str, list[ChunkServer]] = {}
        ACTIVE_CLUSTERS.append(self)

    # --- topology

    @property
    def procs(self) -> list[Process]:
        return [*self.masters, *(cs for g in self.chunkservers.values() for cs in g)]

    @property
    def master_addrs(self) -> str:
        return ",".join(m.addr for m in self.masters)

    def all_chunkservers(self) -> list[ChunkServer]:
        return [cs for g in self.chunkservers.values() for cs in g]

    def add_masters(self, n: int, start: bool = True, **opts) -> list[Master]:
        """Adds n masters that know each other as peers (ports chosen before any starts)."""
        new = []
        for _ in range(n):
            i = len(self.masters) + 1
            m = Master(self, f"m{i}", self.root / f"m{i}")
            m.opts.update(opts)
            self.masters.append(m)
            new.append(m)
        for m in self.masters:
            m.opts["peers"] = [o.addr for o in self.masters if o is not m]
        if start:
            for m in new:
                m.start()
        return new

    def add_chunkserver(self, group: str, start: bool = True, name: Optional[str] = None,
                        ndirs: int = 1, **opts) -> ChunkServer:
        members = self.chunkservers.setdefault(group, [])
        name = name or f"{group}-{chr(ord('a') + len(members))}"
        cs = ChunkServer(self, name, group, self.root / name)
        cs.dirs = [cs.workdir / f"d{i}" for i in range(ndirs)]
        cs.opts.update(opts)
        members.append(cs)
        if start:
            cs.start()
        return cs

    def start_topology(self, masters: int = 2, groups: Optional[dict[str, int]] = None,
                       **cs_opts):
        groups = {"g1": 2, "g2": 2} if groups is None else groups
        self.add_masters(masters)
        for g, n in groups.items():
            for _ in range(n):
                self.add_chunkserver(g, **cs_opts)
        return self

    # --- lifecycle

    def kill9(self, p: Process):
        p.kill9()

    def restart(self, p: Process, wipe: bool = False, timeout: float = 15.0, **opts):
        """(Re)starts p on the same address; wipe=True empties its data dir(s) first."""
        p.kill9()
        if wipe:
            if isinstance(p, ChunkServer) and not opts.get("id") and not p.opts.get("id"):
                p._known_id = None  # a wiped member without --id comes back as a new member
            for d in (p.dirs if isinstance(p, ChunkServer) else [p.data_dir]):
                shutil.rmtree(d, ignore_errors=True)
        p.opts.update(opts)
        return p.start(timeout=timeout, keep_port=True)

    def close(self):
        for p in self.procs:
            p.stop(timeout=2.0)
        if self in ACTIVE_CLUSTERS:
            ACTIVE_CLUSTERS.remove(self)

    def log_tails(self, n: int = 40) -> str:
        out = []
        for p in self.procs:
            state = ("running" if p.alive() else
                     f"CRASHED: exited {p.popen.returncode}" if p.expected_up else
                     f"exited {p.popen.returncode}" if p.popen else "never started")
            out.append(f"----- {p.name} ({p.role} {p.addr}, {state}) {p.log_path} -----")
            out.append(p.log_tail(n))
        return "\n".join(out)

    # --- queries

    def status(self, master: Optional[Master] = None) -> dict:
        return (master or self.masters[0]).status()

    @staticmethod
    def member_in(status: dict, member_id: str) -> Optional[dict]:
        for g in status["groups"]:
            for m in g["members"]:
                if m["id"] == member_id:
                    return m
        return None

    @staticmethod
    def group_in(status: dict, group: str) -> Optional[dict]:
        for g in status["groups"]:
            if g["id"] == group:
                return g
        return None

    def run_cli(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin, *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    # --- waits

    def wait_cluster_ready(self, masters: Optional[Iterable[Master]] = None, timeout: float = 20.0):
        """Every master that should be up sees every chunkserver that should be up active and
        all their groups writable (a process that crashed fails this at once)."""
        self.assert_no_crash()
        masters = list(masters) if masters is not None else [m for m in self.masters if m.expected_up]
        assert masters, "no master to ask"
        ids = {cs.member_id: cs.group for cs in self.all_chunkservers() if cs.expected_up}

        def ready(m: Master):
            self.assert_no_crash()
            st = m.status()
            for mid, g in ids.items():
                mem = self.member_in(st, mid)
                if mem is None or mem["state"] != "active":
                    return False
            for g in {g for g in ids.values()}:
                grp = self.group_in(st, g)
                if grp is None or not grp["writable"]:
                    return False
            return st

        for m in masters:
            wait_until(lambda: ready(m), timeout, f"{m.name}: all members active, groups writable",
                       fatal=(Crashed,))

    def crashed(self) -> list[Process]:
        """Processes that should be running but exited."""
        return [p for p in self.procs if p.expected_up and not p.alive()]

    def assert_no_crash(self):
        dead = self.crashed()
        if dead:
            raise Crashed("; ".join(f"{p.name} ({p.role}) exited with {p.popen.returncode}: "
                                    f"{p.log_tail(3)!r}" for p in dead))

    def wait_member_state(self, m: Master, member_id: str, pred: Callable[[str], bool],
                          timeout: float, what: str) -> dict:
        def check():
            self.assert_no_crash()
            st = m.status()
            mem = self.member_in(st, member_id)
            return st if mem is not None and pred(mem["state"]) else None

        return wait_until(check, timeout, f"{m.name}: member {member_id} {what}",
                          fatal=(Crashed,))

    def wait_group_writable(self, m: Master, group: str, writable: bool, timeout: float) -> dict:
        def check():
            self.assert_no_crash()
            st = m.status()
            g = self.group_in(st, group)
            return st if g is not None and g["writable"] == writable else None

        return wait_until(check, timeout, f"{m.name}: group {group} writable={writable}",
                          fatal=(Crashed,))


def _die_with_parent():
    """In the child: get SIGKILL if the test process dies, even by kill -9 (Linux only)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


def _kill_all_at_exit():
    for p in list(_LIVE):
        try:
            p.kill9()
        except Exception:  # noqa: BLE001
            pass


atexit.register(_kill_all_at_exit)


def _on_sigterm(signum, frame):
    _kill_all_at_exit()
    raise SystemExit(128 + signum)


if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass
