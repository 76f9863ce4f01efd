"""The rows of `make bench` beyond one site (row group "site"): a site cache over the wharf
cluster, and replication to the reference registry.

Two more `wharf up` processes beside the benchmark's cluster and reference:

  site    `wharf up --site-upstream http://<cluster gateway>` (sync write-through): its own
          one-process cluster, fetching on a miss from the cluster and keeping what it fetched
  source  `wharf up --replicate FILE` with one push rule `bench/rep-*` -> the reference registry

Per round, for N x 16 MiB blobs (8 concurrent) and for one big blob, pushed to the cluster
(the centre) by wharf-loadgen: a pull from the centre directly, then the first pull through the
site (every blob a miss: fetched from the centre, streamed to the client while it is written
into the site's cluster), then, once the machine's dirty pages are flushed (sync), a second
pull through the site (served from its own cluster).
The same loadgen pulls every time, verifying each byte's SHA-256.

Replication: an image of N x 16 MiB layers pushed to the source; the clock runs from the
manifest PUT's acknowledgement (the push event) to the moment /admin/replication shows the
job done. The baseline is what an operator runs without replication rules: `skopeo copy` of an
image of the same size from the same source to the reference.
"""
import json
import os
import statistics
import subprocess
import time
import urllib.request

PULLS = ("centre", "site-miss", "site-hit")


def start(run, work, centre, reference):
    """Starts the site and the replication source; `run` is bench/run.py (start, free_port,
    wait_http, WHARF). Returns {"site": addr, "source": addr}."""
    os.makedirs(f"{work}/site", exist_ok=True)
    os.makedirs(f"{work}/source", exist_ok=True)
    rules = f"{work}/source/replicate.yml"
    with open(rules, "w") as f:
        f.write(f"""concurrency: 4
rules:
  - name: to-reference
    repositories: ["bench/rep-*"]
    targets: ["http://{reference}"]
""")
    addrs = {}
    for name, extra in (("site", ["--site-upstream", f"http://{centre}"]),
                        ("source", ["--replicate", rules])):
        addr = f"127.0.0.1:{run.free_port()}"
        run.start(name, [run.WHARF, "up", "--data", f"{work}/{name}/data", "--listen", addr,
                         "--cluster-port", "0", "--reserve", "0", "--chunk-size", "16MiB",
                         "--access-log", "off", "--log-level", "warn"] + extra,
                  os.path.join(work, "logs"), name)
        addrs[name] = addr
    # Ready when a file can be stored (the one-process cluster's members are writable).
    for name, addr in addrs.items():
        run.wait_http(f"http://{addr}/files", (201,), f"{name} wharf up", data=b"warm-up")
    return addrs


def _replication_done(source, want_done):
    """The push target's done count once nothing is pending or running, else None."""
    with urllib.request.urlopen(f"http://{source}/admin/replication?n=1", timeout=10) as r:
        body = json.load(r)
    t = body["targets"][0]
    if t.get("failed"):
        raise RuntimeError(f"replication job failed: {t}")
    if t["pending"] == 0 and t["running"] == 0 and t["done"] >= want_done:
        return t["done"]
    return None


def run_rounds(run, addrs, centre, reference, rounds, work, log, errors):
    """Returns {(row key, side): [MB/s per round]}: row keys "many"/"big" with sides PULLS, and
    "replicate" with sides "rules" and "skopeo"."""
    out = {}
    many, big = run.MANY, run.BIG

    def add(key, side, val):
        out.setdefault((key, side), []).append(val)
        log(f"round {rnd} site {key} {side}: {run.fmt(val)}")

    for rnd in range(rounds):
        s = 1000 * (rnd + 1) + 500
        for key, count, size, conc in (("many", many, "16MiB", 8), ("big", 1, big, 1)):
            repo = f"bench/site-{key}-{rnd}"
            common = ["--repo", repo, "--count", count, "--size", size, "--conc", conc,
                      "--seed", s + (key == "big")]
            try:
                run.loadgen("push", "--target", centre, *common)
                for side, target in (("centre", centre), ("site-miss", addrs["site"]),
                                     ("site-hit", addrs["site"])):
                    if side == "site-hit":
                        # "Already cached" means written some time ago: flush what the miss
                        # just wrote first, so its writeback is not counted in this pull.
                        os.sync()
                    j = run.loadgen("pull", "--target", target, *common)[0]
                    if j.get("errors"):
                        raise RuntimeError(f"{side}: {j['errors']} errors, first: "
                                           f"{j.get('first_error')}")
                    add(key, side, j["MBps"])
            except Exception as e:  # noqa: BLE001 - a failed workload is a row "n/a"
                errors.append(f"round {rnd} site {key}: {e}")
                log(errors[-1])
        try:
            bytes_ = many * (16 << 20)
            run.loadgen("push", "--target", addrs["source"], "--repo", f"bench/rep-{rnd}",
                        "--count", many, "--size", "16MiB", "--conc", 8, "--seed", s + 2,
                        "--tag", "bench")
            t0 = time.monotonic()
            deadline = t0 + 600
            while _replication_done(addrs["source"], rnd + 1) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("replication did not finish in 600 s")
                time.sleep(0.05)
            add("replicate", "rules", bytes_ / (time.monotonic() - t0) / 1e6)
            # The same image size by hand: skopeo from the same source to the reference.
            run.loadgen("push", "--target", addrs["source"], "--repo", f"bench/manual-{rnd}",
                        "--count", many, "--size", "16MiB", "--conc", 8, "--seed", s + 3,
                        "--tag", "bench")
            env = dict(os.environ, HOME=f"{work}/home-site")
            t0 = time.monotonic()
            subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false",
                            "--dest-tls-verify=false",
                            f"docker://{addrs['source']}/bench/manual-{rnd}:bench",
                            f"docker://{reference}/bench/manual-{rnd}:bench"],
                           check=True, env=env, timeout=900, capture_output=True)
            add("replicate", "skopeo", bytes_ / (time.monotonic() - t0) / 1e6)
        except Exception as e:  # noqa: BLE001
            errors.append(f"round {rnd} site replicate: {e}")
            log(errors[-1])
    return out


def table(run, results):
    many, big = run.MANY, run.BIG
    med = {k: statistics.median(v) for k, v in results.items() if v}

    def ratio(a, b):
        return f"{a / b:.2f}×" if a and b else "—"

    lines = ["| workload (MB/s) | centre directly | first pull through the site (miss) | "
             "site, cached | miss ÷ centre | cached ÷ centre | |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for key, label in (("many", f"pull {many} × 16 MiB blobs, 8 concurrent"),
                       ("big", f"pull 1 × {big} blob")):
        cells, noisy = [], False
        for side in PULLS:
            c, n = run.cell(results.get((key, side)))
            cells.append(c)
            noisy = noisy or n
        c = med.get((key, "centre"))
        lines.append(f"| {label} | {' | '.join(cells)} | {ratio(med.get((key, 'site-miss')), c)} "
                     f"| {ratio(med.get((key, 'site-hit')), c)} | {'noisy' if noisy else ''} |")
    lines.append("")
    lines.append("| replication to the reference (MB/s) | push rule (`--replicate`) | "
                 "`skopeo copy` by hand | rule ÷ skopeo | |")
    lines.append("|---|---:|---:|---:|---|")
    cr, nr = run.cell(results.get(("replicate", "rules")))
    cs, ns = run.cell(results.get(("replicate", "skopeo")))
    lines.append(f"| an image of {many} × 16 MiB layers, from a `wharf up` | {cr} | {cs} | "
                 f"{ratio(med.get(('replicate', 'rules')), med.get(('replicate', 'skopeo')))} | "
                 f"{'noisy' if nr or ns else ''} |")
    lines.append("")
    lines.append("The site is a `wharf up --site-upstream` over the wharf cluster (the centre); "
                 "the centre's rows are the same loadgen pulling from the cluster's gateway. "
                 "A miss streams each blob from the centre to the client while writing it into "
                 "the site's own cluster (two fsynced copies there too); the cached pull runs "
                 "after a sync, so the miss's writeback is not measured in it. Replication MB/s: "
                 "image bytes ÷ (job done − manifest PUT acknowledged); skopeo: the same bytes "
                 "÷ the whole `skopeo copy`.")
    return lines
