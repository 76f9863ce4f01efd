"""TLS on the gateway (issue 10): --tls-cert/--tls-key (a chain), --tls-client-ca, SIGHUP reload.

A CA, an intermediate CA and the certificates are made by `openssl` in the test. One module
cluster (a master, group g1 of two chunkservers) with a TLS gateway whose certificate file is
leaf + intermediate; real clients (requests, http.client, skopeo, curl) trust only the test's
CA.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

import cluster as wc
from cluster import wait_until
from gateway_env import (MiB, GatewayCluster, GatewayProc, UpProc, _remove_chunk_data,
                         run_wharf)
from gateway_env import make_gw_cluster  # noqa: F401 - a fixture
from registry_env import LayoutWriter, tar_layer

OPENSSL = shutil.which("openssl")
SKOPEO = shutil.which("skopeo")
CURL = shutil.which("curl")

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


def openssl(*args: str, cwd: Path):
    r = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr[-1500:]}"


class Pki:
    """root CA -> intermediate CA -> leaf certificates (EC P-256, valid two days)."""

    def __init__(self, d: Path):
        self.d = d
        d.mkdir(parents=True, exist_ok=True)
        self._key("ca")
        openssl("req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", "/CN=wharf test root CA", cwd=d)
        self.ca = d / "ca.pem"
        (d / "inter.ext").write_text("basicConstraints=critical,CA:TRUE,pathlen:0\n"
                                     "keyUsage=critical,keyCertSign,cRLSign\n")
        self._key("inter")
        openssl("req", "-new", "-key", "inter.key", "-out", "inter.csr", "-subj",
                "/CN=wharf test intermediate CA", cwd=d)
        openssl("x509", "-req", "-in", "inter.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "inter.pem", "-days", "2", "-extfile", "inter.ext",
                cwd=d)

    def _key(self, name: str):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                f"{name}.key", cwd=self.d)

    def leaf(self, name: str, cn: str, client: bool = False) -> tuple[Path, Path]:
        """(chain file = leaf + intermediate, key file) for a server or a client certificate."""
        d = self.d
        usage = "clientAuth" if client else "serverAuth"
        ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n" \
              f"extendedKeyUsage={usage}\n"
        if not client:
            ext += "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        (d / f"{name}.ext").write_text(ext)
        self._key(name)
        openssl("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/O=wharf tests/CN={cn}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "inter.pem", "-CAkey", "inter.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile",
                f"{name}.ext", cwd=d)
        chain = d / f"{name}.chain.pem"
        chain.write_bytes((d / f"{name}.crt").read_bytes() + (d / "inter.pem").read_bytes())
        return chain, d / f"{name}.key"


def https_ok(addr: str, ca: Path, cert=None, timeout: float = 2.0) -> bool:
    return requests.get(f"https://{addr}/healthz", verify=str(ca), cert=cert,
                        timeout=timeout).status_code == 200


class TlsGateway(GatewayProc):
    """A `wharf gateway` with TLS flags; its health is asked over HTTPS."""

    def __init__(self, cluster, name, workdir, ca: Path, client_cert=None):
        super().__init__(cluster, name, workdir)
        self.ca = ca
        self.client_cert = client_cert

    def wait_healthy(self, timeout: float = 15.0):
        def ok():
            if not self.alive():
                raise wc.Timeout(f"{self.name} exited with {self.popen.returncode}")
            return https_ok(self.addr, self.ca, self.client_cert, timeout=1)
        wait_until(ok, timeout, f"{self.name} healthy over HTTPS")


class TlsUp(UpProc):
    def __init__(self, cluster, name, workdir, ca: Path):
        super().__init__(cluster, name, workdir)
        self.ca = ca

    def wait_healthy(self, timeout: float = 15.0):
        def ok():
            if not self.alive():
                raise wc.Timeout(f"{self.name} exited with {self.popen.returncode}")
            return https_ok(self.addr, self.ca, timeout=1)
        wait_until(ok, timeout, f"{self.name} healthy over HTTPS")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls(wharf_bin, tmp_path_factory, pki):
    """(cluster, gateway, cert file, key file): the gateway serves leaf+intermediate."""
    root = tmp_path_factory.mktemp("tls")
    chain, key = pki.leaf("server", "wharf gateway")
    # The files the gateway reads (the reload test replaces their content).
    cert_file, key_file = root / "gw.pem", root / "gw.key"
    shutil.copy(chain, cert_file)
    shutil.copy(key, key_file)
    c = GatewayCluster(wharf_bin, root, scrub_interval=3600)
    try:
        c.start_topology(masters=1, groups={"g1": 2})
        c.wait_cluster_ready()
        gw = TlsGateway(c, "tlsgw", root / "tlsgw", pki.ca)
        gw.opts["extra"] = ["--tls-cert", str(cert_file), "--tls-key", str(key_file),
                            "--access-log", str(root / "tlsgw" / "access.log")]
        c.gateways.append(gw)
        gw.start()
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        c.close()
        raise
    yield c, gw, cert_file, key_file
    c.close()
    _remove_chunk_data(c)


def client_context(ca: Path, cert=None, max_version=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert:
        ctx.load_cert_chain(*cert)
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def test_https_push_pull_and_protocol_versions(tls, pki):
    c, gw, _, _ = tls
    data = os.urandom(2 * MiB + 5)
    r = requests.post(f"https://{gw.addr}/files", data=data, verify=str(pki.ca), timeout=60)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    g = requests.get(f"https://{gw.addr}/files/{fid}", verify=str(pki.ca), timeout=60)
    assert g.status_code == 200 and hashlib.sha256(g.content).digest() == \
        hashlib.sha256(data).digest()
    # Keep-alive: several requests on one TLS connection.
    host, port = gw.addr.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=client_context(pki.ca),
                                       timeout=10)
    for _ in range(3):
        conn.request("GET", "/v2/")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    assert conn.sock.version() in ("TLSv1.3", "TLSv1.2")
    conn.close()
    # TLS 1.2 is taken too.
    c12 = http.client.HTTPSConnection(host, int(port), timeout=10,
                                      context=client_context(pki.ca, max_version=ssl.TLSVersion.TLSv1_2))
    c12.request("GET", "/v2/")
    assert c12.getresponse().status == 200 and c12.sock.version() == "TLSv1.2"
    c12.close()
    # A client that does not trust the test CA refuses the gateway (the chain is not public).
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{gw.addr}/v2/", timeout=10)


def test_plain_http_to_the_tls_port_is_refused_cleanly(tls):
    _, gw, _, _ = tls
    r = requests.get(f"http://{gw.addr}/v2/", timeout=10)
    assert r.status_code == 400 and "HTTPS" in r.text, (r.status_code, r.text)
    assert r.headers.get("Connection", "").lower() == "close"
    # The gateway goes on serving.
    assert https_ok(gw.addr, gw.ca)


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_with_the_ca(tls, pki):
    _, gw, _, _ = tls
    r = subprocess.run([CURL, "-sS", "--fail", "--cacert", str(pki.ca), "--tlsv1.2",
                        f"https://{gw.addr}/v2/"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([CURL, "-sS", "--fail", f"https://{gw.addr}/v2/"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0, "curl trusted the gateway without the test CA"


@pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")
def test_skopeo_push_and_pull_over_tls(tls, pki, tmp_path):
    _, gw, _, _ = tls
    w = LayoutWriter(tmp_path / "oci")
    layers = [w.add_bytes(tar_layer({f"etc/f{i}": os.urandom(5000 + i)})) for i in range(2)]
    img = w.add_image(layers)
    w.tag(img, "v1")
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(pki.ca, certs / "ca.crt")
    ref = f"docker://{gw.addr}/tls/app:v1"

    def skopeo(*args):
        r = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"skopeo {' '.join(args)}: {r.stderr[-2000:]}"

    skopeo("copy", "--preserve-digests", "--dest-cert-dir", str(certs),
           f"oci:{tmp_path / 'oci'}:v1", ref)
    out = tmp_path / "out"
    skopeo("copy", "--src-cert-dir", str(certs), ref, f"dir:{out}")
    got = "sha256:" + hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    assert got == img["digest"]
    # Without the CA, skopeo refuses the certificate.
    r = subprocess.run([SKOPEO, "--insecure-policy", "inspect", ref], capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and "certificate" in r.stderr.lower(), r.stderr[-500:]


def peer_cert(addr: str, ca: Path) -> bytes:
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        with client_context(ca).wrap_socket(s, server_hostname=host) as t:
            return t.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate_without_dropping_connections(tls, pki):
    c, gw, cert_file, key_file = tls
    host, port = gw.addr.rsplit(":", 1)
    old = http.client.HTTPSConnection(host, int(port), context=client_context(pki.ca),
                                      timeout=10)
    old.request("GET", "/v2/")
    r = old.getresponse()
    r.read()
    assert r.status == 200
    old_sock = old.sock.getsockname()
    first = old.sock.getpeercert(binary_form=True)
    assert peer_cert(gw.addr, pki.ca) == first

    # A broken file and SIGHUP: the old certificate stays, nothing breaks.
    cert_bytes = cert_file.read_bytes()
    cert_file.write_text("not a certificate\n")
    os.kill(gw.popen.pid, signal.SIGHUP)
    wait_until(lambda: "tls reload failed" in gw.log_path.read_text(errors="replace"), 10,
               "the failed reload to be logged")
    assert peer_cert(gw.addr, pki.ca) == first
    cert_file.write_bytes(cert_bytes)

    # A new certificate and SIGHUP: new connections get it.
    chain, key = pki.leaf("server2", "wharf gateway reloaded")
    shutil.copy(key, key_file)
    shutil.copy(chain, cert_file)
    os.kill(gw.popen.pid, signal.SIGHUP)
    second = wait_until(lambda: (lambda p: p if p != first else None)(peer_cert(gw.addr, pki.ca)),
                        10, "a new connection to see the new certificate")
    assert second != first
    # The old keep-alive connection still works, on the same socket with the old certificate.
    old.request("GET", "/v2/")
    r = old.getresponse()
    r.read()
    assert r.status == 200
    assert old.sock.getsockname() == old_sock, "the old connection was re-established"
    assert old.sock.getpeercert(binary_form=True) == first
    old.close()
    assert c.crashed() == []


def test_client_certificates_are_required_with_a_client_ca(tls, pki, tmp_path):
    c, first, _, _ = tls
    chain, key = pki.leaf("server3", "wharf gateway mtls")
    client = pki.leaf("client", "ci-bot", client=True)
    gw = TlsGateway(c, "mtls", tmp_path / "mtls", pki.ca, client_cert=(str(client[0]),
                                                                        str(client[1])))
    gw.opts["meta"] = first.opts["meta"]  # a cluster serves one metadata store (its namespace)
    access = tmp_path / "mtls" / "access.log"
    gw.opts["extra"] = ["--tls-cert", str(chain), "--tls-key", str(key), "--tls-client-ca",
                        str(pki.ca), "--access-log", str(access)]
    c.gateways.append(gw)
    gw.start()
    # Without a certificate: refused at the handshake.
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        r = requests.get(f"https://{gw.addr}/v2/", verify=str(pki.ca), timeout=10)
        r.raise_for_status()
    # A certificate from another CA: refused too.
    other = Pki(tmp_path / "other-pki")
    stranger = other.leaf("stranger", "stranger", client=True)
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        r = requests.get(f"https://{gw.addr}/v2/", verify=str(pki.ca),
                         cert=(str(stranger[0]), str(stranger[1])), timeout=10)
        r.raise_for_status()
    # With one: served, and its verified subject is the request's TLS identity.
    r = requests.get(f"https://{gw.addr}/v2/", verify=str(pki.ca),
                     cert=(str(client[0]), str(client[1])), timeout=10)
    assert r.status_code == 200
    wait_until(lambda: 'tls_client="CN=ci-bot,O=wharf tests"' in access.read_text(errors="replace"),
               10, "the access log line with the client's subject")
    gw.stop()
    c.gateways.remove(gw)


def test_wharf_up_passes_the_tls_flags(make_gw_cluster, pki):
    c = make_gw_cluster("up")
    chain, key = pki.leaf("up", "wharf up")
    up = TlsUp(c, "up", c.root / "up", pki.ca)
    up.opts["extra"] = ["--tls-cert", str(chain), "--tls-key", str(key)]
    c.gateways.append(up)
    up.start(timeout=40)
    r = requests.post(f"https://{up.addr}/files", data=b"x" * 1000, verify=str(pki.ca),
                      timeout=30)
    assert r.status_code == 201, r.text
    os.kill(up.popen.pid, signal.SIGHUP)  # reloads, keeps running
    wait_until(lambda: "tls certificate reloaded" in up.log_path.read_text(errors="replace"), 10,
               "wharf up to reload its gateway's certificate")
    assert https_ok(up.addr, pki.ca)


def test_bad_tls_files_stop_the_gateway_with_one_line(wharf_bin, tmp_path, pki):
    chain, key = pki.leaf("bad", "bad")
    other_key = tmp_path / "other.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
            str(other_key), cwd=tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    cases = [
        (["--tls-cert", str(tmp_path / "absent.pem"), "--tls-key", str(key)], "--tls-cert"),
        (["--tls-cert", str(garbage), "--tls-key", str(key)], "--tls-cert"),
        (["--tls-cert", str(chain), "--tls-key", str(other_key)], "mismatch"),
        (["--tls-cert", str(chain)], "go together"),
        (["--tls-cert", str(chain), "--tls-key", str(key), "--tls-client-ca", str(garbage)],
         "--tls-client-ca"),
    ]
    for extra, want in cases:
        out = run_wharf(wharf_bin, "gateway", "--listen", f"127.0.0.1:{wc.free_port()}",
                        "--master", "127.0.0.1:1", "--meta", f"sqlite:{tmp_path / 'm.db'}",
                        *extra, timeout=30)
        # The error is one line (the metadata store, opened first, may log its own lines).
        errs = [l for l in out.stderr.decode().splitlines() if l.startswith("wharf gateway:")]
        assert out.returncode != 0, f"gateway started with {extra}"
        assert len(errs) == 1 and want in errs[0], f"{extra}: {out.stderr!r}"


PODMAN = shutil.which("podman")
HTPASSWD = shutil.which("htpasswd")

README_POLICY = """rules:
  - repositories: ["**"]
    users: [alice]
    actions: [pull, push, delete]
  - repositories: ["public/**"]
    anonymous: true
    actions: [pull]
"""


def test_readme_example_tls_htpasswd_policy_with_podman_and_skopeo(make_gw_cluster, pki,
                                                                   tmp_path):
    """The README's worked example: `wharf up` with TLS (a CA and certificate made by openssl),
    htpasswd and a policy; `podman login` then push and pull trusting only the CA; skopeo with
    --dest-creds/--src-creds and --dest-cert-dir/--src-cert-dir; anonymous pull only of
    public/**."""
    if not (SKOPEO and HTPASSWD):
        pytest.skip("skopeo and htpasswd (apache2-utils) are needed")
    htpasswd, policy = tmp_path / "htpasswd", tmp_path / "access.yaml"
    subprocess.run([HTPASSWD, "-B", "-b", "-c", str(htpasswd), "alice", "alice-pw"], check=True,
                   capture_output=True, timeout=60)
    policy.write_text(README_POLICY)
    c = make_gw_cluster("readme")
    chain, key = pki.leaf("readme", "wharf readme")
    up = TlsUp(c, "up", c.root / "up", pki.ca)
    up.opts["extra"] = ["--tls-cert", str(chain), "--tls-key", str(key), "--htpasswd",
                        str(htpasswd), "--access", str(policy)]
    c.gateways.append(up)
    up.start(timeout=40)
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(pki.ca, certs / "ca.crt")
    w = LayoutWriter(tmp_path / "oci")
    img = w.add_image([w.add_bytes(tar_layer({"etc/readme": os.urandom(3000)}))])
    w.tag(img, "v1")

    def run(argv, check=True, env=None):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL, env=env)
        if check:
            assert r.returncode == 0, f"{' '.join(argv)}: {r.stderr[-2000:]}"
        return r

    sk = [SKOPEO, "--insecure-policy"]
    run([*sk, "copy", "--preserve-digests", "--dest-cert-dir", str(certs), "--dest-creds",
         "alice:alice-pw", f"oci:{tmp_path / 'oci'}:v1", f"docker://{up.addr}/team/app:1.0"])
    run([*sk, "copy", "--dest-cert-dir", str(certs), "--dest-creds", "alice:alice-pw",
         f"oci:{tmp_path / 'oci'}:v1", f"docker://{up.addr}/public/base:1.0"])
    r = run([*sk, "copy", "--dest-cert-dir", str(certs), "--dest-creds", "alice:wrong",
             f"oci:{tmp_path / 'oci'}:v1", f"docker://{up.addr}/team/app:bad"], check=False)
    assert r.returncode != 0
    out = tmp_path / "out"
    run([*sk, "copy", "--src-cert-dir", str(certs), "--src-creds", "alice:alice-pw",
         f"docker://{up.addr}/team/app:1.0", f"dir:{out}"])
    assert "sha256:" + hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest() == \
        img["digest"]
    # Anonymous: public/** may be pulled, team/* not.
    run([*sk, "copy", "--src-cert-dir", str(certs), f"docker://{up.addr}/public/base:1.0",
         f"dir:{tmp_path / 'anon'}"])
    r = run([*sk, "copy", "--src-cert-dir", str(certs), f"docker://{up.addr}/team/app:1.0",
             f"dir:{tmp_path / 'anon2'}"], check=False)
    assert r.returncode != 0
    r = requests.get(f"https://{up.addr}/v2/team/app/tags/list", verify=str(pki.ca), timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
    if not PODMAN:
        pytest.skip("podman is not installed")
    short = Path(tempfile.mkdtemp(prefix="wharf-pt-", dir="/tmp"))
    try:
        p = [PODMAN, "--root", str(short / "root"), "--runroot", str(short / "run"),
             "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend",
             "none"]
        env = dict(os.environ, REGISTRY_AUTH_FILE=str(short / "auth.json"))
        probe = run([*p, "images"], check=False, env=env)
        if probe.returncode != 0:
            pytest.skip(f"podman cannot run here: {probe.stderr.strip()[-300:]}")
        cd = ["--cert-dir", str(certs)]
        r = run([*p, "login", *cd, "-u", "alice", "-p", "wrong", up.addr], check=False, env=env)
        assert r.returncode != 0
        run([*p, "login", *cd, "-u", "alice", "-p", "alice-pw", up.addr], env=env)
        run([*p, "pull", *cd, f"{up.addr}/team/app:1.0"], env=env)
        run([*p, "tag", f"{up.addr}/team/app:1.0", f"{up.addr}/team/app:2.0"], env=env)
        run([*p, "push", *cd, f"{up.addr}/team/app:2.0"], env=env)
        run([*p, "rmi", "-a", "-f"], env=env)
        run([*p, "pull", *cd, f"{up.addr}/team/app:2.0"], env=env)
        # Without the CA podman refuses the certificate.
        r = run([*p, "pull", f"{up.addr}/team/app:2.0"], check=False, env=env)
        assert r.returncode != 0 and "certificate" in r.stderr.lower(), r.stderr[-500:]
        run([*p, "rmi", "-a", "-f"], env=env)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    r = requests.get(f"https://{up.addr}/v2/team/app/tags/list", auth=("alice", "alice-pw"),
                     verify=str(pki.ca), timeout=10)
    assert r.status_code == 200 and sorted(r.json()["tags"]) == ["1.0", "2.0"], r.text


def test_token_flow_over_tls_names_an_https_realm(make_gw_cluster, pki, tmp_path):
    """The README's token setup over TLS: the Bearer challenge sends clients to
    https://HOST/v2/token (an http:// realm would send them in plain HTTP to the TLS port), and
    skopeo's token flow works with only the CA trusted."""
    if not (SKOPEO and HTPASSWD):
        pytest.skip("skopeo and htpasswd (apache2-utils) are needed")
    htpasswd, policy, token_key = tmp_path / "htpasswd", tmp_path / "access.yaml", \
        tmp_path / "token.key"
    subprocess.run([HTPASSWD, "-B", "-b", "-c", str(htpasswd), "alice", "alice-pw"], check=True,
                   capture_output=True, timeout=60)
    policy.write_text(README_POLICY)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
            str(token_key), cwd=tmp_path)
    c = make_gw_cluster("tok")
    chain, key = pki.leaf("tok", "wharf tokens")
    up = TlsUp(c, "up", c.root / "up", pki.ca)
    up.opts["extra"] = ["--tls-cert", str(chain), "--tls-key", str(key), "--htpasswd",
                        str(htpasswd), "--access", str(policy), "--token-key", str(token_key)]
    c.gateways.append(up)
    up.start(timeout=40)
    r = requests.get(f"https://{up.addr}/v2/", verify=str(pki.ca), timeout=10)
    assert r.status_code == 401
    realm = f"https://{up.addr}/v2/token"
    assert r.headers["WWW-Authenticate"].startswith(f'Bearer realm="{realm}"'), r.headers
    t = requests.get(realm, params={"service": "wharf", "scope": "repository:team/tok:pull,push"},
                     auth=("alice", "alice-pw"), verify=str(pki.ca), timeout=10)
    assert t.status_code == 200, t.text
    r = requests.get(f"https://{up.addr}/v2/team/tok/tags/list", verify=str(pki.ca),
                     headers={"Authorization": "Bearer " + t.json()["token"]}, timeout=10)
    assert r.status_code == 404, r.text  # allowed; nothing pushed yet
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(pki.ca, certs / "ca.crt")
    w = LayoutWriter(tmp_path / "oci")
    img = w.add_image([w.add_bytes(tar_layer({"etc/tok": os.urandom(3000)}))])
    w.tag(img, "v1")
    for args in (["--preserve-digests", "--dest-cert-dir", str(certs), "--dest-creds",
                  "alice:alice-pw",
                  f"oci:{tmp_path / 'oci'}:v1", f"docker://{up.addr}/team/tok:1.0"],
                 ["--src-cert-dir", str(certs), "--src-creds", "alice:alice-pw",
                  f"docker://{up.addr}/team/tok:1.0", f"dir:{tmp_path / 'out'}"]):
        r = subprocess.run([SKOPEO, "--insecure-policy", "copy", *args], capture_output=True,
                           text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"skopeo copy {args[-1]}: {r.stderr[-2000:]}"
    got = "sha256:" + hashlib.sha256((tmp_path / "out" / "manifest.json").read_bytes()).hexdigest()
    assert got == img["digest"]
