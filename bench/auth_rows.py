"""The security rows of `make bench` (row group "auth"): what a Bearer token and TLS cost.

Three gateways of the same binary on the same cluster, each with its own SQLite metadata and
`--access-log off`, differing only in what this measures:

  open   plain HTTP, no access control (the baseline)
  token  plain HTTP, `--htpasswd` + `--token-key` (the gateway's own issuer); every request
         carries `Authorization: Bearer <one pull token>` (what a client pulling does: it
         repeats the token it got), so after the first request each check is a cache hit
  tls    HTTPS (`--tls-cert/--tls-key`, an EC P-256 certificate), no access control

and a fourth client variant on the open gateway, `header`: the same requests carrying the token
variant's Authorization header, which the open gateway reads past. A token is several hundred
bytes the server must receive and parse whether or not it checks them; token ÷ header is the
cost of checking the token alone, token ÷ open that plus the cost of its bytes.

Manifest GET by tag (driven by wrk: C, epoll, two threads) and blob HEAD (driven by ab -i: wrk
cannot do HEAD), 32 keep-alive connections each, HTTPS through OpenSSL in both (neither
verifies the certificate, which is made here). The variants run
alternately within each round, so machine noise hits all three alike. Besides requests per
second, the gateway's CPU time (user + system, from /proc) per request is reported: on a small
machine the client and the server share the cores, and CPU per request is the cost the token
check or TLS adds to the server alone.
"""
import hashlib
import json
import os
import re
import shutil
import ssl
import statistics
import subprocess
import urllib.request

REPO = "bench/auth"
KINDS = (("manifest", "manifest GET by tag, 32 connections"),
         ("head", "blob HEAD, 32 connections"))
GATEWAYS = ("open", "token", "tls")  # a gateway process each
VARIANTS = ("open", "header", "token", "tls")  # header: the open gateway, the token's header
USER, PASSWORD = "bench", "bench-password"


def _run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}...: {r.stderr[-800:]}")
    return r.stdout


def make_material(d):
    """A token signing key, a self-signed server certificate for 127.0.0.1, an htpasswd."""
    os.makedirs(d, exist_ok=True)
    for tool in ("openssl", "htpasswd", "wrk", "ab"):
        if shutil.which(tool) is None:
            raise SystemExit(f"the auth rows need {tool} (apt-get install openssl apache2-utils wrk)")
    _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
          f"{d}/token.key"])
    _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-nodes", "-keyout", f"{d}/tls.key", "-out", f"{d}/tls.pem", "-days", "2", "-subj",
          "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
    _run(["htpasswd", "-B", "-b", "-c", f"{d}/htpasswd", USER, PASSWORD])
    return d


def gateway_args(variant, d):
    if variant == "token":
        return ["--htpasswd", f"{d}/htpasswd", "--token-key", f"{d}/token.key", "--token-ttl",
                "24h"]
    if variant == "tls":
        return ["--tls-cert", f"{d}/tls.pem", "--tls-key", f"{d}/tls.key"]
    return []


class Target:
    def __init__(self, variant, addr, d):
        self.variant = variant
        self.addr = addr
        self.scheme = "https" if variant == "tls" else "http"
        self.ctx = ssl.create_default_context(cafile=f"{d}/tls.pem") if variant == "tls" else None
        self.token = None
        self.proc = None  # the gateway's Popen, for its CPU time
        self.layer = None

    def url(self, path):
        return f"{self.scheme}://{self.addr}{path}"

    def request(self, method, path, data=None, headers=None):
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=h)
        with urllib.request.urlopen(req, timeout=30, context=self.ctx) as r:
            return r.status, dict(r.headers), r.read()

    def get_token(self, scope):
        import base64
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req = urllib.request.Request(
            self.url(f"/v2/token?service=wharf&scope={scope}"),
            headers={"Authorization": f"Basic {basic}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["token"]

    def push_blob(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, h, _ = self.request("POST", f"/v2/{REPO}/blobs/uploads/", data=b"")
        loc = h["Location"]
        loc = loc[loc.index("/v2/"):] if "://" in loc else loc
        sep = "&" if "?" in loc else "?"
        status, _, _ = self.request("PUT", f"{loc}{sep}digest={digest}", data=data,
                                    headers={"Content-Type": "application/octet-stream"})
        assert status == 201, status
        return digest, len(data)

    def setup(self):
        """Pushes one image (a 4 KiB layer) as REPO:bench; then holds a pull-only token."""
        if self.variant == "token":
            self.token = self.get_token(f"repository:{REPO}:pull,push")
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        cdig, clen = self.push_blob(config)
        ldig, llen = self.push_blob(os.urandom(4096))
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig,
                       "size": clen},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": ldig, "size": llen}]}).encode()
        status, _, _ = self.request("PUT", f"/v2/{REPO}/manifests/bench", data=manifest,
                                    headers={"Content-Type":
                                             "application/vnd.oci.image.manifest.v1+json"})
        assert status == 201, status
        self.layer = ldig
        if self.variant == "token":
            self.token = self.get_token(f"repository:{REPO}:pull")
        # The reads the rows make must succeed before they are timed.
        status, _, _ = self.request("GET", f"/v2/{REPO}/manifests/bench",
                                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert status == 200, status

    def cpu_seconds(self):
        tick = os.sysconf("SC_CLK_TCK")
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick


def header_target(targets, d):
    """The `header` variant: the open gateway's target, sending the token target's token."""
    open_t, token_t = targets["open"], targets["token"]
    t = Target("header", open_t.addr, d)
    t.proc, t.layer, t.token = open_t.proc, open_t.layer, token_t.token
    return t


def wrk(target, kind, seconds, work):
    """One timed run: (requests per second, gateway CPU microseconds per request, errors).
    Manifest GET through wrk; blob HEAD through ab (wrk waits for a HEAD response's body and
    hangs; ab -i knows HEAD), each with 32 keep-alive connections."""
    path = (f"/v2/{REPO}/manifests/bench" if kind == "manifest"
            else f"/v2/{REPO}/blobs/{target.layer}")
    headers = ["Accept: application/vnd.oci.image.manifest.v1+json"]
    if target.token:
        headers.append(f"Authorization: Bearer {target.token}")
    if kind == "manifest":
        args = ["wrk", "-t2", "-c32", f"-d{seconds}s"]
    else:
        args = ["ab", "-q", "-i", "-k", "-c", "32", "-t", str(seconds), "-n", "100000000"]
    for h in headers:
        args += ["-H", h]
    c0 = target.cpu_seconds()
    out = _run(args + [target.url(path)], timeout=seconds + 60)
    cpu = target.cpu_seconds() - c0
    errors = 0
    if kind == "manifest":
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        total = int(re.search(r"(\d+) requests in", out).group(1))
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if m:
            errors += int(m.group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
            errors += sum(int(x) for x in m.groups())
    else:
        rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
        total = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
        errors += int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
        m = re.search(r"Non-2xx responses:\s+(\d+)", out)
        if m:
            errors += int(m.group(1))
    return rps, (cpu / total * 1e6 if total else None), errors


def run_rounds(targets, rounds, seconds, work, log, errors):
    """{(kind, variant): [rps per round]}, {(kind, variant): [CPU µs per request]}."""
    rps, cpu = {}, {}
    for rnd in range(rounds):
        for kind, _ in KINDS:
            for variant in VARIANTS:
                t = targets[variant]
                try:
                    r, c, e = wrk(t, kind, seconds, work)
                except Exception as ex:  # noqa: BLE001 - a failed run is a cell "n/a"
                    errors.append(f"round {rnd} auth {kind} {variant}: {ex}")
                    log(errors[-1])
                    continue
                if e:
                    errors.append(f"round {rnd} auth {kind} {variant}: {e} errors")
                    log(errors[-1])
                    continue
                rps.setdefault((kind, variant), []).append(r)
                if c is not None:
                    cpu.setdefault((kind, variant), []).append(c)
                log(f"round {rnd} auth {kind:8} {variant:5}: {r:,.0f} req/s, "
                    f"gateway {c:.1f} µs CPU/req")
    return rps, cpu


def table(rps, cpu, cell):
    def ratio(a, b):
        return f"{a / b:.2f}×" if a and b else "—"

    lines = ["| workload | open gateway | open, token header sent | Bearer token | TLS | "
             "token ÷ open | token ÷ header sent | TLS ÷ open |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for what, data, unit, inverse in (("", rps, "req/s", False),
                                      ("gateway CPU per request, ", cpu, "µs", True)):
        for kind, label in KINDS:
            cells = [cell(data.get((kind, v)))[0] for v in VARIANTS]
            med = {v: statistics.median(data[(kind, v)]) for v in VARIANTS if data.get((kind, v))}
            o = med.get("open")
            lines.append(f"| {what}{label} ({unit}) | {' | '.join(cells)} | "
                         f"{ratio(med.get('token'), o)} | "
                         f"{ratio(med.get('token'), med.get('header'))} | "
                         f"{ratio(med.get('tls'), o)} |")
    lines.append("")
    lines.append("Ratios are variant ÷ open: for req/s < 1 means slower; for CPU per request > 1 "
                 "means more work per request. Manifest GET by wrk (2 threads), blob HEAD by "
                 "ab -i (one thread), 32 keep-alive connections each (TLS handshakes happen once "
                 "per connection, so the TLS rows measure record encryption, not handshakes); "
                 "every token request carries the same pull token. \"Open, token header sent\" "
                 "is the open gateway sent the token's Authorization header too (it reads past "
                 "it): token ÷ header sent is what checking the token costs, token ÷ open that "
                 "plus receiving and parsing its bytes.")
    return lines
