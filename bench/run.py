#!/usr/bin/python3
"""wharf beside the reference registry (distribution 2.8), in one run.

Starts on 127.0.0.1 the two wharf deployments — a cluster of separate processes (1 master,
2 groups x 2 chunkservers, 1 gateway) and `wharf up` (the same daemons in one process) — and
Debian's docker-registry, runs every workload alternately (cluster, up, reference, cluster, ...)
for BENCH_ROUNDS rounds (default 3), and prints a markdown table of the medians with their
min-max spread (a row whose spread is over 2x is marked noisy), the CPU seconds (user + system)
the servers spent per GiB moved, and peak memory, written to bench/results/latest.md.

Environment: BUILD_DIR (default build), BENCH_QUICK=1 (small sizes), BENCH_ROUNDS,
BENCH_BUSY=1 (a CPU hog pinned to core 0 for the run: the "busy machine" variant, written to
bench/results/busy.md), BENCH_DIR (scratch directory parent, default /tmp), BENCH_OUT,
BENCH_ROWS (comma-separated row groups, default "registry,auth,site": "registry" is the table
against the reference registry, "auth" the open gateway beside a Bearer-token one and a TLS
one, see bench/auth_rows.py; `BENCH_ROWS=auth BENCH_QUICK=1 make bench` takes about two
minutes and is written to bench/results/auth.md; "site" a site cache over the cluster and
replication to the reference, see bench/site_rows.py, alone written to bench/results/site.md).
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

import auth_rows
import site_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("BUILD_DIR", "build"))
WHARF = os.path.join(BUILD, "wharf")
LOADGEN = os.path.join(BUILD, "wharf-loadgen")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BUSY = os.environ.get("BENCH_BUSY", "") not in ("", "0")
SYSTEMS = ("wharf", "wharf-up", "reference")  # in the order each workload runs
ROW_GROUPS = [g for g in os.environ.get("BENCH_ROWS", "registry,auth,site").split(",") if g]
if not ROW_GROUPS or set(ROW_GROUPS) - {"registry", "auth", "site"}:
    raise SystemExit(f"BENCH_ROWS: comma-separated registry|auth|site, not {ROW_GROUPS}")
OUT = os.environ.get("BENCH_OUT", os.path.join(
    ROOT, "bench/results",
    "busy.md" if BUSY else "latest.md" if "registry" in ROW_GROUPS
    else "auth.md" if ROW_GROUPS == ["auth"] else "site.md" if ROW_GROUPS == ["site"]
    else "partial.md"))

# Sizes: full per the benchmark issue; quick for development.
BIG = "128MiB" if QUICK else "1GiB"
MANY = 16 if QUICK else 64
SMALL = 300 if QUICK else 2000
RPS_SECS = 3 if QUICK else 10
SKOPEO_LAYERS = 8 if QUICK else 64

procs = []  # (name, Popen)
owner = {}  # name -> system ("wharf", "wharf-up", "reference")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name, args, logdir, system=None):
    f = open(os.path.join(logdir, name + ".log"), "w")
    p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append((name, p))
    if system:
        owner[name] = system
    return p


def cpu_seconds(system):
    """User + system CPU seconds used so far by the processes of `system`."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for name, p in procs:
        if owner.get(name) != system:
            continue
        try:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except OSError:
            pass
    return total


def start_hog(work):
    """BENCH_BUSY: one core kept busy (pinned to core 0) for at most two hours."""
    return start("hog", ["timeout", "7200", "taskset", "-c", "0", "/usr/bin/python3", "-c",
                         "while True: pass"], os.path.join(work, "logs"))


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
    start("master", [WHARF, "master", "--listen", m, "--data", f"{work}/w/master"] + common, logdir,
          "wharf")
    for g in ("g1", "g2"):
        for member in ("a", "b"):
            mid = f"{g}-{member}"
            d = f"{work}/w/{mid}"
            os.makedirs(d, exist_ok=True)
            start(mid, [WHARF, "chunkserver", "--group", g, "--id", mid, "--listen",
                        f"127.0.0.1:{free_port()}", "--dir", d, "--master", m, "--reserve", "0"]
                  + common, logdir, "wharf")
    gw = f"127.0.0.1:{free_port()}"
    start("gateway", [WHARF, "gateway", "--listen", gw, "--master", m, "--meta",
                      f"sqlite:{work}/w/meta.db", "--chunk-size", "16MiB"] + common, logdir,
          "wharf")
    # Ready when a file can be stored (all four members registered and writable).
    wait_http(f"http://{gw}/files", (201,), "wharf gateway", data=b"warm-up")
    return gw, m


def start_auth_gateways(work, master):
    """The three gateways of the auth rows (bench/auth_rows.py) on the cluster of `master`,
    each with one image pushed. They share the cluster gateway's store: a cluster serves one
    namespace, and its masters refuse a gateway on another store."""
    d = auth_rows.make_material(f"{work}/auth")
    targets = {}
    for variant in auth_rows.GATEWAYS:
        addr = f"127.0.0.1:{free_port()}"
        name = f"gw-{variant}"
        p = start(name, [WHARF, "gateway", "--listen", addr, "--master", master, "--meta",
                         f"sqlite:{work}/w/meta.db", "--chunk-size", "16MiB",
                         "--access-log", "off", "--log-level", "warn"]
                  + auth_rows.gateway_args(variant, d), os.path.join(work, "logs"))
        t = auth_rows.Target(variant, addr, d)
        t.proc = p
        targets[variant] = t
    deadline = time.time() + 60
    for t in targets.values():
        while True:
            try:
                t.setup()
                break
            except Exception as e:  # noqa: BLE001 - not up yet
                if time.time() > deadline:
                    raise SystemExit(f"auth gateway {t.variant} did not come up: {e}")
                time.sleep(0.3)
    targets["header"] = auth_rows.header_target(targets, d)
    return targets


def start_wharf_up(work):
    gw = f"127.0.0.1:{free_port()}"
    os.makedirs(f"{work}/up", exist_ok=True)
    start("up", [WHARF, "up", "--data", f"{work}/up/data", "--listen", gw, "--cluster-port", "0",
                 "--reserve", "0", "--chunk-size", "16MiB", "--access-log", "off",
                 "--log-level", "warn"], os.path.join(work, "logs"), "wharf-up")
    wait_http(f"http://{gw}/files", (201,), "wharf up", data=b"warm-up")
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
    start("reference", ["/usr/bin/docker-registry", "serve", cfg], os.path.join(work, "logs"),
          "reference")
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
    if system != "reference":
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
    # Two such writers at once (a group's two members), total MB/s / 2: the two-copy bound.
    t0 = time.monotonic()
    dds = [subprocess.Popen(["dd", "if=/dev/zero", f"of={work}/dd.test{i}", "bs=16M",
                             f"count={count}", "oflag=dsync"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL) for i in range(2)]
    ok = all(d.wait() == 0 for d in dds)
    secs = time.monotonic() - t0
    out["disk2"] = 2 * count * (16 << 20) / secs / 1e6 / 2 if ok and secs > 0 else None
    for i in range(2):
        if os.path.exists(f"{work}/dd.test{i}"):
            os.unlink(f"{work}/dd.test{i}")
    # The pattern of the 8-concurrent push rows on this one disk: 16 writers (8 chunks x 2
    # copies) of new 16 MiB files, each written, fdatasynced, renamed into place and its
    # directory fsynced, as a chunkserver does; total / 2.
    j = loadgen("disk-chunks", "--dir", f"{work}/disk-chunks", "--count", MANY * 2,
                "--size", "16MiB", "--conc", 16)[0]
    out["chunks16"] = j["MBps"] / 2
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


def size_bytes(text):
    m = re.fullmatch(r"(\d+)(KiB|MiB|GiB)", text)
    return int(m.group(1)) << {"KiB": 10, "MiB": 20, "GiB": 30}[m.group(2)]


# Bytes a workload moves through the server (push + pull), for CPU seconds per GiB.
MOVED = {
    "big": 2 * size_bytes(BIG),
    "chunked": size_bytes(BIG),
    "many": 2 * MANY * (16 << 20),
    "skopeo": 2 * SKOPEO_LAYERS * (16 << 20),
    "files-big": 2 * size_bytes(BIG),
}


def cell(vals):
    """median [min–max] of a row's rounds, and whether the spread is over 2x."""
    if not vals:
        return "n/a", False
    lo, hi, mid = min(vals), max(vals), statistics.median(vals)
    noisy = lo > 0 and hi / lo > 2
    return (f"{fmt(mid)} [{fmt(lo)}–{fmt(hi)}]" if len(vals) > 1 else fmt(mid)), noisy


def ratio(w, r):
    return f"{w / r:.2f}×" if w and r else "—"


def run_rounds(work, targets, results, cpu, errors):
    for rnd in range(ROUNDS):
        per = {sys_: dict(workloads(work, t, rnd, sys_)) for sys_, t in targets.items()}
        for key in per["wharf"]:
            for sys_ in SYSTEMS:
                fn = per[sys_].get(key)
                if fn is None:
                    continue
                c0 = cpu_seconds(sys_)
                try:
                    lines = fn()
                except Exception as e:  # noqa: BLE001 - a failed workload is a row "n/a"
                    errors.append(f"round {rnd} {sys_} {key}: {e}")
                    log(errors[-1])
                    continue
                if key in MOVED:
                    cpu.setdefault((key, sys_), []).append(
                        (cpu_seconds(sys_) - c0) / (MOVED[key] / (1 << 30)))
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


def table(results, cpu, mem, lim):
    med = {k: statistics.median(v) for k, v in results.items() if v}
    lines = ["| workload | wharf cluster | wharf up | reference | cluster ÷ ref | up ÷ ref | |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for label, key, _, unit in ROWS:
        cells, noisy = [], False
        for sys_ in SYSTEMS:
            c, n = cell(results.get((key, sys_)))
            cells.append(c)
            noisy = noisy or n
        if key.split("/")[0] in ("files-small", "files-big"):
            cells[2] = "— (no file API)"
        r = med.get((key, "reference"))
        lines.append(f"| {label} ({unit}) | {' | '.join(cells)} | "
                     f"{ratio(med.get((key, 'wharf')), r)} | {ratio(med.get((key, 'wharf-up')), r)}"
                     f" | {'noisy' if noisy else ''} |")
    lines.append("| **CPU seconds (user + system) of the servers per GiB moved** | | | | | | |")
    for key, what in (("big", f"push + pull 1 × {BIG}"), ("chunked", f"chunked push 1 × {BIG}"),
                      ("many", f"push + pull {MANY} × 16 MiB"),
                      ("skopeo", f"skopeo push + pull {SKOPEO_LAYERS} × 16 MiB"),
                      ("files-big", f"file API put + get 1 × {BIG}")):
        cells = [cell(cpu.get((key, sys_)))[0] for sys_ in SYSTEMS]
        if key == "files-big":
            cells[2] = "—"
        m = {sys_: statistics.median(cpu[(key, sys_)]) for sys_ in SYSTEMS if cpu.get((key, sys_))}
        # for CPU, lower is better: ratio = reference / wharf
        lines.append(f"| CPU s/GiB, {what} | {' | '.join(cells)} | "
                     f"{ratio(m.get('reference'), m.get('wharf'))} | "
                     f"{ratio(m.get('reference'), m.get('wharf-up'))} | |")

    def mib(k):
        return None if k is None else k / 1024

    gw, up, ref = mib(mem.get("gateway")), mib(mem.get("up")), mib(mem.get("reference"))
    wharf_all = [mib(v) for n, v in mem.items() if owner.get(n) == "wharf" and v is not None]
    cs = [mib(mem.get(n)) for n in ("g1-a", "g1-b", "g2-a", "g2-b") if mem.get(n)]
    lines.append(f"| peak memory VmHWM, gateway / `wharf up` vs reference (MiB) | {fmt(gw)} | "
                 f"{fmt(up)} | {fmt(ref)} | {(ref / gw if gw and ref else 0):.2f}× | "
                 f"{(ref / up if up and ref else 0):.2f}× | |")
    lines.append(f"| peak memory VmHWM, all 6 cluster processes vs reference (MiB) | "
                 f"{fmt(sum(wharf_all))} | | {fmt(ref)} | "
                 f"{(ref / sum(wharf_all) if wharf_all and ref else 0):.2f}× | | |")
    lines.append(f"| (chunkservers {', '.join(fmt(c) for c in cs)}; master "
                 f"{fmt(mib(mem.get('master')))} MiB) | | | | | | |")
    lines.append(f"| limit: SHA-256, one core, 16 KiB blocks (MB/s) | {fmt(lim['sha256'])} | | | | | |")
    lines.append(f"| limit: loopback TCP, one stream (MB/s) | {fmt(lim['tcp'])} | | | | | |")
    if lim["sha256"] and lim["tcp"]:
        # The client receives and hashes on one thread, in turn: a pull of one blob cannot beat
        # the time to do both to every byte, whatever the server does.
        serial = 1 / (1 / lim["sha256"] + 1 / lim["tcp"])
        lines.append(f"| limit: one client stream that receives and SHA-256s every byte in turn, "
                     f"1 ÷ (1/SHA-256 + 1/TCP) (MB/s) | {fmt(serial)} | | | | | |")
        fr = [f"{(med.get(('big/pull', sys_)) or 0) / serial:.0%}" for sys_ in SYSTEMS]
        lines.append(f"| pull 1 × {BIG} as a fraction of the one-stream client bound | "
                     f"{' | '.join(fr)} | | | |")
    lines.append(f"| limit: sequential disk write, sync per 16 MiB (MB/s) | {fmt(lim['disk'])} "
                 f"| | | | | |")
    lines.append(f"| limit: two concurrent writers, sync per 16 MiB, total ÷ 2 (MB/s) | "
                 f"{fmt(lim['disk2'])} | | | | | |")
    lines.append(f"| limit: 16 writers of new 16 MiB chunk files (write, fdatasync, rename, "
                 f"directory fsync), total ÷ 2 (MB/s) | {fmt(lim.get('chunks16'))} | | | | | |")
    for bound, what in (("disk2", "two-writer"), ("chunks16", "16-writer chunk-file")):
        if lim.get(bound):
            fr = [f"{(med.get(('many/push-mono', sys_)) or 0) / lim[bound]:.0%}"
                  for sys_ in SYSTEMS[:2]]
            lines.append(f"| push {MANY} × 16 MiB as a fraction of the {what} bound | "
                         f"{' | '.join(fr)} | | | | |")
    for key, what in (("big/push-mono", "monolithic"), ("chunked/push-chunked", "chunked")):
        if lim["sha256"]:
            fr = [f"{(med.get((key, sys_)) or 0) / lim['sha256']:.0%}" for sys_ in SYSTEMS]
            lines.append(f"| push ({what}) as a fraction of the SHA-256 limit | "
                         f"{' | '.join(fr)} | | | |")
    return lines


def main():
    for b in (WHARF, LOADGEN) if set(ROW_GROUPS) & {"registry", "site"} else (WHARF,):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b} missing: build first (make build)")
    parent = os.environ.get("BENCH_DIR", "/tmp")
    work = tempfile.mkdtemp(prefix="wharf-bench-", dir=parent)
    os.makedirs(os.path.join(work, "logs"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results = {}  # (key, system) -> [values]
    cpu = {}  # (workload key, system) -> [CPU seconds per GiB moved]
    errors = []
    t_start = time.monotonic()
    auth_rps, auth_cpu = {}, {}
    site_results = {}
    try:
        lim = limits(work) if "registry" in ROW_GROUPS else None
        log(f"limits: {lim}")
        gw, master = start_wharf(work)
        if "auth" in ROW_GROUPS:
            auth_targets = start_auth_gateways(work, master)
            log("auth gateways: " + ", ".join(f"{v} {t.addr}" for v, t in auth_targets.items()))
        if set(ROW_GROUPS) & {"registry", "site"}:
            ref = start_reference(work)
        if "registry" in ROW_GROUPS:
            targets = {"wharf": gw, "wharf-up": start_wharf_up(work), "reference": ref}
            log(f"wharf gateway {targets['wharf']}, wharf up {targets['wharf-up']}, "
                f"reference {targets['reference']}, work {work}")
        if "site" in ROW_GROUPS:
            site_addrs = site_rows.start(sys.modules[__name__], work, gw, ref)
            log(f"site {site_addrs['site']}, replication source {site_addrs['source']}")
        if BUSY:
            start_hog(work)
        if "registry" in ROW_GROUPS:
            run_rounds(work, targets, results, cpu, errors)
        if "auth" in ROW_GROUPS:
            auth_rps, auth_cpu = auth_rows.run_rounds(auth_targets, ROUNDS, RPS_SECS, work, log,
                                                      errors)
        if "site" in ROW_GROUPS:
            site_results = site_rows.run_rounds(sys.modules[__name__], site_addrs, gw, ref,
                                                ROUNDS, work, log, errors)
        mem = {name: vm_hwm_kib(p) for name, p in procs if name != "hog"}
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)

    lines = table(results, cpu, mem, lim) if "registry" in ROW_GROUPS else []
    auth_lines = auth_rows.table(auth_rps, auth_cpu, cell) if "auth" in ROW_GROUPS else []
    mi = machine()
    rounds_txt = "\n".join(
        f"- {key} {sys_}: " + ", ".join(fmt(v) for v in vals)
        for (key, sys_), vals in sorted(results.items()))
    ref_version = cmd(['docker-registry', '--version'])
    busy_note = ("\n**Busy machine: a CPU hog (a Python busy loop) was pinned to core 0 for the "
                 "whole run.**") if BUSY else ""
    title = "wharf benchmark" if "registry" in ROW_GROUPS else \
        f"wharf benchmark, {' and '.join(ROW_GROUPS)} rows"
    text = f"""# {title}{" (quick mode)" if QUICK else ""}{" — busy machine" if BUSY else ""}

{mi['date']} · {mi['cpu']} · {mi['cores']} cores · Linux {mi['kernel']} · {ROUNDS} rounds,
median [min–max] shown · {time.monotonic() - t_start:.0f} s.{busy_note}
"""
    if "registry" in ROW_GROUPS:
        text += f"""
Alternating wharf cluster, `wharf up` and reference per workload.
wharf cluster: 1 master, 2 groups × 2 chunkservers, 1 gateway (16 MiB chunks, SQLite
metadata), each a separate process. `wharf up`: the same daemons in one process. Reference:
Debian's docker-registry (distribution {ref_version.split()[-1] if ref_version else '?'}),
filesystem storage, in-memory blob descriptor cache. Client: `wharf-loadgen` (keep-alive pool,
one thread; every pulled byte is SHA-256 verified), all on 127.0.0.1, sharing the same cores.

**wharf writes every chunk to both members of a group, fsynced, while the reference writes each
blob once (and does not fsync): wharf does twice the disk work.** MB/s = 10^6 bytes/s.
Ratio = wharf / reference (> 1 is better for wharf); for memory and CPU, reference / wharf.
A row is marked noisy when its max is over twice its min in some column. CPU seconds: user +
system of the servers' processes (all six for the cluster) during the workload, divided by the
bytes the workload pushed and pulled.

{chr(10).join(lines)}

Values per round:
{rounds_txt}
"""
    if "auth" in ROW_GROUPS:
        auth_rounds = "\n".join(
            f"- {kind} {variant}: " + ", ".join(fmt(v) for v in vals)
            for (kind, variant), vals in sorted(auth_rps.items()))
        text += f"""
## Security: the same gateway open, with a Bearer token, over TLS

Three gateways on the wharf cluster, alternating per run: open (plain HTTP, no access
control), token (`--htpasswd` + `--token-key`: every request carries one pull token of the
gateway's own issuer), TLS (`--tls-cert`/`--tls-key`, EC P-256). {RPS_SECS} s per run.

{chr(10).join(auth_lines)}

Values per round (req/s):
{auth_rounds}
"""
    if "site" in ROW_GROUPS:
        site_rounds = "\n".join(
            f"- {key} {side}: " + ", ".join(fmt(v) for v in vals)
            for (key, side), vals in sorted(site_results.items()))
        text += f"""
## Beyond one site: a site cache over the cluster, replication to the reference

{chr(10).join(site_rows.table(sys.modules[__name__], site_results))}

Values per round (MB/s):
{site_rounds}
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
