#!/usr/bin/python3
"""wharf beside the reference registry (distribution 2.8), in one run.

Starts on 127.0.0.1 a wharf cluster (1 master, 2 groups x 2 chunkservers, 1 gateway; separate
processes) and Debian's docker-registry, runs every workload alternately (wharf, reference,
wharf, reference, ...) for BENCH_ROUNDS rounds (default 3), and prints a markdown table of the
medians, written to bench/results/latest.md.

Environment: BUILD_DIR (default build), BENCH_QUICK=1 (small sizes), BENCH_ROUNDS,
BENCH_DIR (scratch directory parent, default /tmp), BENCH_OUT (default bench/results/latest.md).
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("BUILD_DIR", "build"))
WHARF = os.path.join(BUILD, "wharf")
LOADGEN = os.path.join(BUILD, "wharf-loadgen")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "bench/results/latest.md"))

# Sizes: full per the benchmark issue; quick for development.
BIG = "128MiB" if QUICK else "1GiB"
MANY = 16 if QUICK else 64
SMALL = 300 if QUICK else 2000
RPS_SECS = 3 if QUICK else 10
SKOPEO_LAYERS = 8 if QUICK else 64

procs = []  # (name, Popen)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name, args, logdir):
    f = open(os.path.join(logdir, name + ".log"), "w")
    p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append((name, p))
    return p


def stop_all():
    for _, p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + 10
    for _, p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def vm_hwm_kib(p):
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def wait_http(url, ok, what, timeout=60, data=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
            with urllib.request.urlopen(req, timeout=5) as r:
                if r.status in ok:
                    return
                last = r.status
        except Exception as e:  # noqa: BLE001 - anything means "not yet"
            last = e
        time.sleep(0.3)
    raise SystemExit(f"{what} did not come up: {last}")


def start_wharf(work):
    logdir = os.path.join(work, "logs")
    m = f"127.0.0.1:{free_port()}"
    common = ["--log-level", "warn"]
    start("master", [WHARF, "master", "--listen", m, "--data", f"{work}/w/master"] + common, logdir)
    for g in ("g1", "g2"):
        for member in ("a", "b"):
            mid = f"{g}-{member}"
            d = f"{work}/w/{mid}"
            os.makedirs(d, exist_ok=True)
            start(mid, [WHARF, "chunkserver", "--group", g, "--id", mid, "--listen",
                        f"127.0.0.1:{free_port()}", "--dir", d, "--master", m, "--reserve", "0"]
                  + common, logdir)
    gw = f"127.0.0.1:{free_port()}"
    start("gateway", [WHARF, "gateway", "--listen", gw, "--master", m, "--meta",
                      f"sqlite:{work}/w/meta.db", "--chunk-size", "16MiB"] + common, logdir)
    # Ready when a file can be stored (all four members registered and writable).
    wait_http(f"http://{gw}/files", (201,), "wharf gateway", data=b"warm-up")
    return gw


def start_reference(work):
    port = free_port()
    cfg = os.path.join(work, "registry.yml")
    with open(cfg, "w") as f:
        f.write(f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {work}/ref
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
""")
    start("reference", ["/usr/bin/docker-registry", "serve", cfg], os.path.join(work, "logs"))
    wait_http(f"http://127.0.0.1:{port}/v2/", (200,), "reference registry")
    return f"127.0.0.1:{port}"


def loadgen(*args):
    r = subprocess.run([LOADGEN, *map(str, args)], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen {args}: exit {r.returncode}: {r.stderr.strip()}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def skopeo(work, target, rnd, seed, system):
    """skopeo copy of a SKOPEO_LAYERS x 16 MiB image, push then pull (end to end)."""
    src = f"{work}/oci-{rnd}"
    if not os.path.exists(src):
        loadgen("gen-oci", "--dir", src, "--count", SKOPEO_LAYERS, "--size", "16MiB",
                "--seed", seed)
    total = SKOPEO_LAYERS * 16 << 20
    ref = f"docker://{target}/bench/skopeo-{rnd}:bench"
    env = dict(os.environ, HOME=f"{work}/home-{system}")  # no shared blob-info cache
    t0 = time.monotonic()
    subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{src}:bench", ref],
                   check=True, env=env, timeout=900)
    push = time.monotonic() - t0
    dst = f"{work}/pulled-{system}-{rnd}"
    t0 = time.monotonic()
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", ref, f"oci:{dst}:bench"],
                   check=True, env=env, timeout=900)
    pull = time.monotonic() - t0
    shutil.rmtree(dst, ignore_errors=True)
    return [{"workload": "skopeo-push", "MBps": total / push / 1e6, "errors": 0},
            {"workload": "skopeo-pull", "MBps": total / pull / 1e6, "errors": 0}]


# (row label, workload key in the loadgen output, metric, unit)
ROWS = [
    (f"push 1 × {BIG} blob, monolithic (POST + PUT)", "big/push-mono", "MBps", "MB/s"),
    (f"push 1 × {BIG} blob, chunked in 16 MiB PATCHes", "chunked/push-chunked", "MBps", "MB/s"),
    (f"pull 1 × {BIG} blob (digest verified)", "big/pull", "MBps", "MB/s"),
    (f"push {MANY} × 16 MiB blobs, 8 concurrent", "many/push-mono", "MBps", "MB/s"),
    (f"pull {MANY} × 16 MiB blobs, 8 concurrent", "many/pull", "MBps", "MB/s"),
    (f"push {SMALL} × 4 KiB blobs, 16 concurrent", "small/push-mono", "ops_per_s", "blobs/s"),
    (f"pull {SMALL} × 4 KiB blobs, 16 concurrent", "small/pull", "ops_per_s", "blobs/s"),
    ("manifest GET by tag, 32 connections", "rps-manifest/manifest-get", "ops_per_s", "req/s"),
    ("blob HEAD, 32 connections", "rps-head/blob-head", "ops_per_s", "req/s"),
    (f"skopeo copy {SKOPEO_LAYERS} × 16 MiB image, push", "skopeo/skopeo-push", "MBps", "MB/s"),
    (f"skopeo copy {SKOPEO_LAYERS} × 16 MiB image, pull", "skopeo/skopeo-pull", "MBps", "MB/s"),
    (f"file API put {SMALL} × 4 KiB, 16 concurrent", "files-small/file-put", "ops_per_s", "files/s"),
    (f"file API get {SMALL} × 4 KiB, 16 concurrent", "files-small/file-get", "ops_per_s", "files/s"),
    (f"file API put 1 × {BIG}", "files-big/file-put", "MBps", "MB/s"),
    (f"file API get 1 × {BIG}", "files-big/file-get", "MBps", "MB/s"),
]


def workloads(work, target, rnd, system):
    """Yields (key, function returning loadgen JSON lines). Seeds differ per round so every
    push is new content to both systems."""
    s = 1000 * (rnd + 1)
    yield "big", lambda: loadgen("push", "--target", target, "--repo", f"bench/big-{rnd}",
                                 "--mode", "mono", "--size", BIG, "--seed", s, "--pull")
    yield "chunked", lambda: loadgen("push", "--target", target, "--repo", f"bench/chunked-{rnd}",
                                     "--mode", "chunked", "--chunk", "16MiB", "--size", BIG,
                                     "--seed", s + 1)
    yield "many", lambda: loadgen("push", "--target", target, "--repo", f"bench/many-{rnd}",
                                  "--count", MANY, "--size", "16MiB", "--conc", 8, "--seed", s + 2,
                                  "--pull")
    yield "small", lambda: loadgen("push", "--target", target, "--repo", f"bench/small-{rnd}",
                                   "--count", SMALL, "--size", "4KiB", "--conc", 16,
                                   "--seed", s + 3, "--pull")
    for kind in ("manifest", "head"):
        yield f"rps-{kind}", lambda kind=kind: loadgen(
            "rps", "--target", target, "--repo", f"bench/rps-{rnd}", "--kind", kind,
            "--seconds", RPS_SECS, "--conns", 32, "--seed", s + 4)
    yield "skopeo", lambda: skopeo(work, target, rnd, s + 5, system)
    if system == "wharf":
        yield "files-small", lambda: loadgen("files", "--target", target, "--count", SMALL,
                                             "--size", "4KiB", "--conc", 16, "--seed", s + 6)
        yield "files-big", lambda: loadgen("files", "--target", target, "--size", BIG,
                                           "--seed", s + 7)


def cmd(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=120).stdout
    except Exception:  # noqa: BLE001
        return ""


def limits(work):
    out = {}
    # SHA-256 of one core, 16 KiB blocks (machine-readable output: +F:n:name:bytes_per_s).
    o = cmd(["taskset", "-c", "0", "openssl", "speed", "-mr", "-seconds", "3", "-bytes", "16384",
             "-evp", "sha256"])
    m = re.search(r"^\+F:\d+:[^:]+:([\d.]+)", o, re.M)
    out["sha256"] = float(m.group(1)) / 1e6 if m else None
    out["tcp"] = loadgen("tcp-loop", "--size", "1GiB" if QUICK else "4GiB")[0]["MBps"]
    # Sequential write with a sync per 16 MiB block (a chunk's worth), like a chunkserver.
    count = 8 if QUICK else 32
    r = subprocess.run(["dd", "if=/dev/zero", f"of={work}/dd.test", "bs=16M", f"count={count}",
                        "oflag=dsync"], capture_output=True, text=True)
    m = re.search(r"^(\d+) bytes.*copied, ([\d.,]+) s", r.stderr, re.M)
    out["disk"] = int(m.group(1)) / float(m.group(2).replace(",", ".")) / 1e6 if m else None
    os.unlink(f"{work}/dd.test")
    return out


def machine():
    model = next((line.split(":", 1)[1].strip() for line in cmd(["lscpu"]).splitlines()
                  if line.startswith("Model name")), "?")
    return {"cpu": model, "cores": os.cpu_count(), "kernel": os.uname().release,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def fmt(v):
    if v is None:
        return "n/a"
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"


def main():
    for b in (WHARF, LOADGEN):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b} missing: build first (make build)")
    parent = os.environ.get("BENCH_DIR", "/tmp")
    work = tempfile.mkdtemp(prefix="wharf-bench-", dir=parent)
    os.makedirs(os.path.join(work, "logs"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results = {}  # (key, system) -> [values]
    errors = []
    t_start = time.monotonic()
    try:
        lim = limits(work)
        log(f"limits: {lim}")
        targets = {"wharf": start_wharf(work), "reference": start_reference(work)}
        log(f"wharf gateway {targets['wharf']}, reference {targets['reference']}, work {work}")
        for rnd in range(ROUNDS):
            per = {sys_: dict(workloads(work, t, rnd, sys_)) for sys_, t in targets.items()}
            for key in per["wharf"]:
                for sys_ in ("wharf", "reference"):
                    fn = per[sys_].get(key)
                    if fn is None:
                        continue
                    try:
                        lines = fn()
                    except Exception as e:  # noqa: BLE001 - a failed workload is a row "n/a"
                        errors.append(f"round {rnd} {sys_} {key}: {e}")
                        log(errors[-1])
                        continue
                    for j in lines:
                        if j.get("errors"):
                            errors.append(f"round {rnd} {sys_} {key}/{j['workload']}: "
                                          f"{j['errors']} errors, first: {j.get('first_error')}")
                            log(errors[-1])
                            continue
                        val = j.get("ops_per_s") if key.startswith(("small", "rps", "files-small")) \
                            else j.get("MBps")
                        results.setdefault((f"{key}/{j['workload']}", sys_), []).append(val)
                        log(f"round {rnd} {sys_:9} {key}/{j['workload']}: {fmt(val)}")
            shutil.rmtree(f"{work}/oci-{rnd}", ignore_errors=True)
        mem = {name: vm_hwm_kib(p) for name, p in procs}
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in results.items() if v}
    lines = ["| workload | wharf | reference | ratio |", "|---|---:|---:|---:|"]
    for label, key, _, unit in ROWS:
        w, r = med.get((key, "wharf")), med.get((key, "reference"))
        ratio = f"{w / r:.2f}×" if w and r else "—"
        ref = fmt(r) if key.split("/")[0] not in ("files-small", "files-big") else "— (no file API)"
        lines.append(f"| {label} ({unit}) | {fmt(w)} | {ref} | {ratio} |")

    def mib(k):
        return None if k is None else k / 1024

    gw, ref = mib(mem.get("gateway")), mib(mem.get("reference"))
    wharf_all = [mib(v) for n, v in mem.items() if n != "reference" and v is not None]
    cs = [mib(mem.get(n)) for n in ("g1-a", "g1-b", "g2-a", "g2-b") if mem.get(n)]
    lines.append(f"| peak memory VmHWM, gateway vs reference (MiB) | {fmt(gw)} | {fmt(ref)} | "
                 f"{(ref / gw if gw and ref else 0):.2f}× |")
    lines.append(f"| peak memory VmHWM, all 6 wharf processes vs reference (MiB) | "
                 f"{fmt(sum(wharf_all))} | {fmt(ref)} | "
                 f"{(ref / sum(wharf_all) if wharf_all and ref else 0):.2f}× |")
    lines.append(f"| (chunkservers {', '.join(fmt(c) for c in cs)}; master "
                 f"{fmt(mib(mem.get('master')))} MiB) | | | |")
    lines.append(f"| limit: SHA-256, one core, 16 KiB blocks (MB/s) | {fmt(lim['sha256'])} | | |")
    lines.append(f"| limit: loopback TCP, one stream (MB/s) | {fmt(lim['tcp'])} | | |")
    lines.append(f"| limit: sequential disk write, sync per 16 MiB (MB/s) | {fmt(lim['disk'])} | | |")
    for key, what in (("big/push-mono", "monolithic"), ("chunked/push-chunked", "chunked")):
        w, r = med.get((key, "wharf")), med.get((key, "reference"))
        if lim["sha256"]:
            lines.append(f"| push ({what}) as a fraction of the SHA-256 limit | "
                         f"{(w or 0) / lim['sha256']:.0%} | {(r or 0) / lim['sha256']:.0%} | |")
    mi = machine()
    rounds_txt = "\n".join(
        f"- {key} {sys_}: " + ", ".join(fmt(v) for v in vals)
        for (key, sys_), vals in sorted(results.items()))
    text = f"""# wharf benchmark{" (quick mode)" if QUICK else ""}

{mi['date']} · {mi['cpu']} · {mi['cores']} cores · Linux {mi['kernel']} · {ROUNDS} rounds,
alternating wharf and reference per workload, median shown · {time.monotonic() - t_start:.0f} s.

wharf: 1 master, 2 groups × 2 chunkservers, 1 gateway (16 MiB chunks, SQLite metadata), each a
separate process. Reference: Debian's docker-registry (distribution {cmd(['docker-registry', '--version']).split()[-1] if cmd(['docker-registry', '--version']) else '?'}),
filesystem storage, in-memory blob descriptor cache. Client: `wharf-loadgen` (keep-alive pool,
one thread; every pulled byte is SHA-256 verified), all on 127.0.0.1, sharing the same cores.

**wharf writes every chunk to both members of a group, fsynced, while the reference writes each
blob once (and does not fsync): wharf does twice the disk work.** MB/s = 10^6 bytes/s.
Ratio = wharf / reference (> 1 is better for wharf); for memory, reference / wharf.

{chr(10).join(lines)}

Values per round:
{rounds_txt}
"""
    if errors:
        text += "\nErrors (rows affected show the median of the rounds that succeeded, or n/a):\n" + \
            "\n".join(f"- {e}" for e in errors) + "\n"
    print(text)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    log(f"written {OUT}")


if __name__ == "__main__":
    main()
