"""Access control on the gateway, end to end with real clients (issue 10, "Who is calling" and
"What they may do"): `wharf up` started with an htpasswd file made by `htpasswd -B`, an access
policy, and for the token tests a key made by `openssl` (the gateway's own issuer) plus the
public key of an "external issuer" whose tokens the test signs itself.

    alice: pull/push/delete on a/*, push on public/**      bob: pull/push on b/*
    anonymous: pull on public/**                             ops: admin (GET /admin/gc)

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_auth.py
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from cluster import wait_until
from registry_env import LayoutWriter, RegistryCluster, sha256_digest, tar_layer

SKOPEO = shutil.which("skopeo")
PODMAN = shutil.which("podman")
HTPASSWD = shutil.which("htpasswd")
OPENSSL = shutil.which("openssl")
ISSUER = "wharf-test"
SERVICE = "wharf-test-svc"
ALICE = ("alice", "alice-pw")
BOB = ("bob", "bob-pw")
OPS = ("ops", "ops-pw")

POLICY = """
rules:
  - repositories: ["a/*"]
    users: [alice]
    actions: [pull, push, delete]
  - repositories: ["public/**"]
    users: [alice]
    actions: [push]
  - repositories: ["b/*"]
    users: [bob]
    actions: [pull, push]
  - repositories: ["public/**"]
    anonymous: true
    actions: [pull]
  - users: [ops]
    actions: [admin]
"""


def run(argv, timeout=300, check=True, env=None) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, env=env)
    if check:
        assert r.returncode == 0, f"{' '.join(argv)}: exit {r.returncode}\n{r.stderr[-2000:]}"
    return r


def skopeo(*args, check=True, timeout=300):
    if not SKOPEO:
        pytest.skip("skopeo is not installed")
    return run([SKOPEO, "--insecure-policy", *args], check=check, timeout=timeout)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Files:
    """htpasswd (bcrypt, by htpasswd -B), the policy, and keys made by openssl."""

    def __init__(self, root: Path):
        if not HTPASSWD or not OPENSSL:
            pytest.skip("htpasswd (apache2-utils) and openssl are needed")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.htpasswd = root / "htpasswd"
        run([HTPASSWD, "-B", "-b", "-c", str(self.htpasswd), *ALICE])
        run([HTPASSWD, "-B", "-b", str(self.htpasswd), *BOB])
        run([HTPASSWD, "-B", "-b", str(self.htpasswd), *OPS])
        self.policy = root / "access.yaml"
        self.policy.write_text(POLICY)
        self.own_key = self.ec_key("own")
        self.ext_key = self.ec_key("ext")
        self.ext_pub = root / "ext.pub"
        run([OPENSSL, "pkey", "-in", str(self.ext_key), "-pubout", "-out", str(self.ext_pub)])
        self.other_key = self.ec_key("other")

    def ec_key(self, name: str) -> Path:
        p = self.root / f"{name}.pem"
        run([OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(p)])
        return p

    def common_flags(self) -> list[str]:
        return ["--htpasswd", str(self.htpasswd), "--access", str(self.policy)]


def sign_es256(key_path: Path, header: dict, claims: dict) -> str:
    """A compact JWS signed by the test (the external issuer), with python3-cryptography."""
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    except ImportError:
        pytest.skip("python3-cryptography is needed to sign test tokens")
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    signed = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    r, s = decode_dss_signature(key.sign(signed.encode(), ec.ECDSA(hashes.SHA256())))
    return signed + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def start_up(wharf_bin: str, root: Path, extra: list[str]):
    c = RegistryCluster(wharf_bin, root)
    try:
        up = c.add_up(extra=extra)
        wait_until(lambda: requests.get(f"http://{up.addr}/healthz", timeout=2).status_code == 200,
                   30, "wharf up healthy")
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        c.close()
        raise
    return c, up


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return Files(tmp_path_factory.mktemp("auth-files"))


@pytest.fixture(scope="module")
def basic_reg(wharf_bin, files, tmp_path_factory):
    """htpasswd + policy: Basic challenges."""
    c, up = start_up(wharf_bin, tmp_path_factory.mktemp("basic"),
                     files.common_flags() + ["--max-login-failures", "1000"])
    yield up.addr
    c.close()


@pytest.fixture(scope="module")
def token_reg(wharf_bin, files, tmp_path_factory):
    """htpasswd + policy + the gateway's own token issuer + an external issuer's key."""
    c, up = start_up(wharf_bin, tmp_path_factory.mktemp("token"),
                     files.common_flags() + [
                         "--token-key", str(files.own_key), "--token-issuer", ISSUER,
                         "--token-service", SERVICE, "--token-public-key",
                         f"ext1={files.ext_pub}", "--max-login-failures", "1000"])
    yield up.addr
    c.close()


class Client:
    """Registry calls with requests, as one caller (auth: (user, pw), a Bearer token, None)."""

    def __init__(self, addr: str, auth=None):
        self.addr = addr
        self.s = requests.Session()
        if isinstance(auth, tuple):
            self.s.auth = auth
        elif isinstance(auth, str):
            self.s.headers["Authorization"] = "Bearer " + auth

    def url(self, path: str) -> str:
        return f"http://{self.addr}{path}"

    def get(self, path, **kw):
        return self.s.get(self.url(path), timeout=30, **kw)

    def request(self, method, path, **kw):
        return self.s.request(method, self.url(path), timeout=30, **kw)

    def push_blob(self, repo: str, data: bytes) -> requests.Response:
        return self.request("POST", f"/v2/{repo}/blobs/uploads/?digest={sha256_digest(data)}",
                            data=data)

    def mount(self, repo: str, digest: str, source=None) -> requests.Response:
        q = f"mount={digest}" + (f"&from={source}" if source else "")
        return self.request("POST", f"/v2/{repo}/blobs/uploads/?{q}")

    def push_image(self, repo: str, tag: str) -> str:
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = os.urandom(3000)
        for blob in (config, layer):
            r = self.push_blob(repo, blob)
            assert r.status_code == 201, (r.status_code, r.text)
        m = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": sha256_digest(config), "size": len(config)},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                    "digest": sha256_digest(layer), "size": len(layer)}]})
        r = self.request("PUT", f"/v2/{repo}/manifests/{tag}", data=m,
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 201, (r.status_code, r.text)
        return sha256_digest(layer)


def codes(r: requests.Response) -> list[str]:
    try:
        return [e["code"] for e in r.json()["errors"]]
    except Exception:
        return []


def failures(addr: str, reason: str) -> float:
    text = requests.get(f"http://{addr}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("wharf_gateway_auth_failures_total") and f'reason="{reason}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# ------------------------------------------------------------------------- start and files


def test_bad_files_stop_the_start_with_one_line(wharf_bin, files, tmp_path):
    md5 = tmp_path / "md5.htpasswd"
    run([HTPASSWD, "-m", "-b", "-c", str(md5), "carol", "pw"])  # MD5, not bcrypt
    for argv in (
            [wharf_bin, "up", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
             "--cluster-port", "0", "--htpasswd", str(md5)],
            [wharf_bin, "gateway", "--listen", "127.0.0.1:0", "--master", "127.0.0.1:1",
             "--meta", f"sqlite:{tmp_path / 'm.db'}", "--htpasswd", str(md5)]):
        r = run(argv, timeout=30, check=False)
        assert r.returncode != 0
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and "--htpasswd" in lines[0] and "carol" in lines[0], r.stderr
    assert not (tmp_path / "d").exists()  # wharf up checked before creating anything
    bad_policy = tmp_path / "bad.yaml"
    bad_policy.write_text("rules: [{repositories: ['a/*'], users: [x], actions: [pul]}]\n")
    r = run([wharf_bin, "up", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
             "--cluster-port", "0", "--access", str(bad_policy)], timeout=30, check=False)
    assert r.returncode != 0 and "--access" in r.stderr and "pul" in r.stderr, r.stderr


# ------------------------------------------------------------------------------- Basic auth


def test_base_endpoint_challenges(basic_reg):
    r = Client(basic_reg).get("/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="wharf"'
    assert codes(r) == ["UNAUTHORIZED"]
    assert Client(basic_reg, ALICE).get("/v2/").status_code == 200
    before = failures(basic_reg, "bad_password")
    r = Client(basic_reg, ("alice", "wrong")).get("/v2/")
    assert r.status_code == 401 and codes(r) == ["UNAUTHORIZED"]
    assert failures(basic_reg, "bad_password") == before + 1
    assert Client(basic_reg, ("mallory", "x")).get("/v2/").status_code == 401
    # ops routes stay open
    assert Client(basic_reg).get("/healthz").status_code == 200
    assert Client(basic_reg).get("/metrics").status_code == 200


def test_policy_decides_push_pull_delete(basic_reg):
    alice, bob, anon = Client(basic_reg, ALICE), Client(basic_reg, BOB), Client(basic_reg)
    alice.push_image("a/app", "v1")
    assert alice.get("/v2/a/app/manifests/v1").status_code == 200
    r = bob.push_blob("a/app", b"not yours")
    assert r.status_code == 403 and codes(r) == ["DENIED"]
    r = bob.get("/v2/a/app/manifests/v1")
    assert r.status_code == 403 and codes(r) == ["DENIED"]
    for path in ("/v2/a/app/tags/list", "/v2/a/app/referrers/" + sha256_digest(b"x")):
        assert bob.get(path).status_code == 403, path
        assert alice.get(path).status_code == 200, path
        r = anon.get(path)
        assert r.status_code == 401 and codes(r) == ["UNAUTHORIZED"], path
    bob.push_image("b/app", "v1")
    r = alice.request("DELETE", "/v2/b/app/manifests/v1")
    assert r.status_code == 403
    r = bob.request("DELETE", "/v2/b/app/manifests/v1")  # bob has no delete on b/*
    assert r.status_code == 403 and codes(r) == ["DENIED"]


def test_anonymous_pull_only_where_the_policy_allows(basic_reg, tmp_path):
    Client(basic_reg, ALICE).push_image("public/base", "v1")
    Client(basic_reg, ALICE).push_image("a/private", "v1")
    out = tmp_path / "pub"
    skopeo("copy", "--src-tls-verify=false", f"docker://{basic_reg}/public/base:v1",
           f"dir:{out}")
    assert (out / "manifest.json").exists()
    r = skopeo("copy", "--src-tls-verify=false", f"docker://{basic_reg}/a/private:v1",
               f"dir:{tmp_path / 'priv'}", check=False)
    assert r.returncode != 0
    anon = Client(basic_reg)
    assert anon.get("/v2/public/base/manifests/v1").status_code == 200
    r = anon.push_blob("public/base", b"anonymous write")
    assert r.status_code == 401 and "Basic" in r.headers["WWW-Authenticate"]


def test_catalog_lists_only_what_the_caller_may_pull(basic_reg):
    alice, bob = Client(basic_reg, ALICE), Client(basic_reg, BOB)
    alice.push_image("a/cat1", "v1")
    alice.push_image("public/cat", "v1")
    bob.push_image("b/cat2", "v1")

    def catalog(c, n=None):
        r = c.get("/v2/_catalog" + (f"?n={n}" if n else ""))
        assert r.status_code == 200, r.text
        return r.json()["repositories"]

    seen_alice, seen_bob, seen_anon = catalog(alice), catalog(bob), catalog(Client(basic_reg))
    assert "a/cat1" in seen_alice and "public/cat" in seen_alice
    assert not any(r.startswith("b/") for r in seen_alice)
    assert "b/cat2" in seen_bob and "public/cat" in seen_bob
    assert not any(r.startswith("a/") for r in seen_bob)
    assert seen_anon and all(r.startswith("public/") for r in seen_anon)
    # pages of one name still walk every visible repository
    page = catalog(alice, 1)
    assert len(page) == 1 and page[0] == seen_alice[0]


def test_mount_rules(basic_reg):
    alice, bob = Client(basic_reg, ALICE), Client(basic_reg, BOB)
    secret = b"bob's layer " + os.urandom(16)
    assert bob.push_blob("b/secret", secret).status_code == 201
    digest = sha256_digest(secret)
    # pull on `from` is needed: without it a normal upload opens (202), nothing is linked
    r = alice.mount("a/m", digest, "b/secret")
    assert r.status_code == 202, r.text
    assert alice.get(f"/v2/a/m/blobs/{digest}").status_code == 404
    # without `from`, a digest only b/ links is not linked either
    r = alice.mount("a/m", digest)
    assert r.status_code == 202, r.text
    assert alice.get(f"/v2/a/m/blobs/{digest}").status_code == 404
    # a blob the caller can pull is mounted, with and without `from`
    mine = b"alice's layer " + os.urandom(16)
    assert alice.push_blob("a/src", mine).status_code == 201
    d2 = sha256_digest(mine)
    assert alice.mount("a/m", d2, "a/src").status_code == 201
    assert alice.get(f"/v2/a/m/blobs/{d2}").content == mine
    assert alice.mount("a/m2", d2).status_code == 201
    # push on the target is needed too
    r = bob.mount("a/m3", d2, "a/src")
    assert r.status_code == 403 and codes(r) == ["DENIED"]



def test_admin_views_need_the_admin_action(basic_reg):
    """Every /admin/ path, known or not, whatever the method: anonymous 401 with the
    challenge, a user the policy gives no admin 403 DENIED, the admin user through."""
    anon, alice, ops = Client(basic_reg), Client(basic_reg, ALICE), Client(basic_reg, OPS)
    denied_before = failures(basic_reg, "denied")
    for method, path, admins_status in (("GET", "/admin/gc", 200), ("HEAD", "/admin/gc", 200),
                                        ("POST", "/admin/gc", 405), ("GET", "/admin/else", 404)):
        r = anon.request(method, path)
        assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
        assert r.headers["WWW-Authenticate"] == 'Basic realm="wharf"', (method, path)
        if method != "HEAD":
            assert codes(r) == ["UNAUTHORIZED"], (method, path, r.text[:200])
        r = alice.request(method, path)
        assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
        if method != "HEAD":
            assert codes(r) == ["DENIED"], (method, path, r.text[:200])
        r = ops.request(method, path)
        assert r.status_code == admins_status, (method, path, r.status_code, r.text[:200])
    wait_until(lambda: ops.get("/admin/gc").json()["lease"]["held_here"], 15,
               "wharf up's gateway holding the background lease")
    view = ops.get("/admin/gc").json()
    assert view["lease"]["name"] == "background", view
    assert {"stored", "reclaimable", "last_round", "settings"} <= set(view), view
    # ops may administer, not read repositories: admin is not a repository action.
    assert ops.get("/v2/a/app/tags/list").status_code == 403
    r = ops.get("/v2/_catalog")
    assert r.status_code == 200 and not [n for n in r.json()["repositories"]
                                         if not n.startswith("public/")], r.text
    # Wrong password for the admin user: 401, counted as such.
    r = Client(basic_reg, ("ops", "wrong")).get("/admin/gc")
    assert r.status_code == 401 and codes(r) == ["UNAUTHORIZED"]
    assert failures(basic_reg, "denied") >= denied_before + 4

def test_hostile_authorization_headers_are_401(basic_reg):
    segs = lambda n: ".".join(b64url(b'{"alg":"ES256"}') for _ in range(n))  # noqa: E731
    hostile = [
        "Basic " + "A" * 20000, "Basic !!!", "Basic " + b64url(b"no-colon"), "Basic",
        "Bearer " + segs(2), "Bearer " + segs(9),
        "Bearer " + b64url(b"{bad json") + "." + b64url(b"{}") + "." + b64url(b"s"),
        "Digest x=1", "Bearer a!b",
    ]
    for h in hostile:
        r = requests.get(f"http://{basic_reg}/v2/a/x/tags/list", headers={"Authorization": h},
                         timeout=10)
        assert r.status_code == 401, (h[:40], r.status_code, r.text)
    # Up to the request head's 64 KiB limit the header reaches the auth filter: 401.
    for h in ("Basic " + "A" * 60000, "Bearer " + "a" * 60000, "x" * 60000):
        r = requests.get(f"http://{basic_reg}/v2/a/x/tags/list", headers={"Authorization": h},
                         timeout=10)
        assert r.status_code == 401, (h[:10], r.status_code, r.text[:200])
        assert codes(r) == ["UNAUTHORIZED"]
    # 64 KiB and more: larger than the server takes in a request head, refused by the server
    # before any filter runs (400, with the connection closed), never a 500
    r = requests.get(f"http://{basic_reg}/v2/", headers={"Authorization": "Basic " + "A" * 65536},
                     timeout=10)
    assert r.status_code == 400, r.status_code
    assert Client(basic_reg, ALICE).get("/v2/").status_code == 200  # still serving


def test_htpasswd_and_policy_are_reread_when_they_change(basic_reg, files):
    carol = Client(basic_reg, ("carol", "carol-pw"))
    assert carol.get("/v2/").status_code == 401
    run([HTPASSWD, "-B", "-b", str(files.htpasswd), "carol", "carol-pw"])
    wait_until(lambda: carol.get("/v2/").status_code == 200, 15, "carol can log in",
               interval=0.3)
    assert carol.get("/v2/c/app/tags/list").status_code == 403
    tmp = files.policy.with_suffix(".new")
    tmp.write_text(POLICY + """  - repositories: ["c/*"]
    users: [carol]
    actions: [pull, push]
""")
    tmp.rename(files.policy)  # as editors and config management tools replace files
    wait_until(lambda: carol.push_blob("c/app", b"carol's").status_code == 201, 15,
               "carol may push to c/*", interval=0.3)


def test_podman_login_push_pull_and_skopeo_creds(basic_reg, tmp_path):
    push_pull_with_clients(basic_reg, tmp_path, "a/pod")


# ------------------------------------------------------------------------------ tokens


def get_token(addr: str, scopes: list[str], auth=None, service=SERVICE) -> requests.Response:
    params = [("service", service)] + [("scope", s) for s in scopes]
    return requests.get(f"http://{addr}/v2/token", params=params, auth=auth, timeout=10)


def test_token_endpoint_grants_only_what_the_policy_allows(token_reg):
    r = Client(token_reg).get("/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == (
        f'Bearer realm="http://{token_reg}/v2/token",service="{SERVICE}"')
    r = Client(token_reg).get("/v2/a/x/manifests/v1", headers={})
    assert r.headers["WWW-Authenticate"] == (
        f'Bearer realm="http://{token_reg}/v2/token",service="{SERVICE}",'
        f'scope="repository:a/x:pull"')
    r = get_token(token_reg, ["repository:a/x:pull,push", "repository:b/x:pull,push"], ALICE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0 and body["issued_at"]
    claims = jwt_claims(body["token"])
    assert claims["iss"] == ISSUER and claims["sub"] == "alice"
    assert claims["access"] == [{"type": "repository", "name": "a/x", "actions": ["pull", "push"]}]
    # the token for a/* pushing to b/x: 403 DENIED
    tok = Client(token_reg, body["token"])
    assert tok.push_blob("a/x", b"ok with a token").status_code == 201
    r = tok.push_blob("b/x", b"not allowed")
    assert r.status_code == 403 and codes(r) == ["DENIED"]
    # wrong password, account of someone else
    r = get_token(token_reg, ["repository:a/x:pull"], ("alice", "wrong"))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
    r = requests.get(f"http://{token_reg}/v2/token",
                     params={"service": SERVICE, "account": "bob", "scope": "repository:a/x:pull"},
                     auth=ALICE, timeout=10)
    assert r.status_code == 401
    # anonymous: only the anonymous grants
    r = get_token(token_reg, ["repository:public/x:pull,push", "repository:a/x:pull"])
    assert r.status_code == 200
    assert jwt_claims(r.json()["token"])["access"] == [
        {"type": "repository", "name": "public/x", "actions": ["pull"]}]
    assert get_token(token_reg, ["repository:a/x:pull"], ALICE, "other").status_code == 400



def test_admin_views_with_tokens(token_reg, files):
    """Admin is no repository action: a token's access claim cannot grant it; the policy
    decides for the token's subject."""
    r = Client(token_reg).get("/admin/gc")
    assert r.status_code == 401 and codes(r) == ["UNAUTHORIZED"]
    assert r.headers["WWW-Authenticate"] == (
        f'Bearer realm="http://{token_reg}/v2/token",service="{SERVICE}"')
    for who, want in ((OPS, 200), (ALICE, 403)):
        r = get_token(token_reg, ["repository:a/x:pull"], who)
        assert r.status_code == 200, r.text
        r = Client(token_reg, r.json()["token"]).get("/admin/gc")
        assert r.status_code == want, (who[0], r.status_code, r.text[:200])
        if want == 403:
            assert codes(r) == ["DENIED"]
    # An external issuer's token names its subject: ops is admin, ext-user is not, whatever
    # its access claim lists.
    hdr = {"typ": "JWT", "alg": "ES256", "kid": "ext1"}
    claim = [{"type": "registry", "name": "admin", "actions": ["admin", "*"]}]
    for sub, want in (("ops", 200), ("ext-user", 403)):
        tok = sign_es256(files.ext_key, hdr, ext_claims(sub=sub, access=claim))
        r = Client(token_reg, tok).get("/admin/gc")
        assert r.status_code == want, (sub, r.status_code, r.text[:200])

def ext_claims(**over) -> dict:
    now = int(time.time())
    c = {"iss": ISSUER, "sub": "ext-user", "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
         "iat": now, "jti": os.urandom(8).hex(),
         "access": [{"type": "repository", "name": "a/ext", "actions": ["pull", "push"]}]}
    c.update(over)
    return c


def test_external_issuer_tokens(token_reg, files):
    hdr = {"typ": "JWT", "alg": "ES256", "kid": "ext1"}
    good = sign_es256(files.ext_key, hdr, ext_claims())
    assert Client(token_reg, good).push_blob("a/ext", b"external").status_code == 201
    r = Client(token_reg, good).push_blob("a/other", b"x")
    assert r.status_code == 403 and codes(r) == ["DENIED"]
    now = int(time.time())
    header, payload, sig = good.split(".")
    tampered_payload = b64url(json.dumps(ext_claims(sub="root")).encode())
    refused = {
        "other key": sign_es256(files.other_key, hdr, ext_claims()),
        "expired": sign_es256(files.ext_key, hdr, ext_claims(exp=now - 600)),
        "not yet valid": sign_es256(files.ext_key, hdr, ext_claims(nbf=now + 600)),
        "wrong audience": sign_es256(files.ext_key, hdr, ext_claims(aud="someone-else")),
        "wrong issuer": sign_es256(files.ext_key, hdr, ext_claims(iss="evil")),
        "alg none": b64url(json.dumps({"alg": "none", "kid": "ext1"}).encode()) + "." +
        payload + ".",
        "tampered payload": header + "." + tampered_payload + "." + sig,
        "tampered signature": header + "." + payload + "." + sig[:-4] +
        ("AAAA" if sig[-4:] != "AAAA" else "BBBB"),
        "unknown kid": sign_es256(files.ext_key, {**hdr, "kid": "nope"}, ext_claims()),
    }
    before = failures(token_reg, "bad_token")
    for what, token in refused.items():
        r = Client(token_reg, token).get("/v2/a/ext/tags/list")
        assert r.status_code == 401, (what, r.status_code, r.text)
        assert codes(r) == ["UNAUTHORIZED"], what
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"], what
    assert failures(token_reg, "bad_token") >= before + len(refused)


def test_token_flow_with_podman_and_skopeo(token_reg, tmp_path):
    push_pull_with_clients(token_reg, tmp_path, "a/tok")


# ------------------------------------------------------------------ real clients, both modes


def podman_cmd(root: Path) -> list[str]:
    return [PODMAN, "--root", str(root / "root"), "--runroot", str(root / "run"),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend",
            "none"]


def push_pull_with_clients(addr: str, tmp_path: Path, repo: str):
    """skopeo --dest-creds/--src-creds, then podman login, pull, push, pull; and a wrong
    password and a denied repository refused."""
    lay = LayoutWriter(tmp_path / "oci")
    layer = lay.add_bytes(tar_layer({"etc/hello.txt": os.urandom(2000)}))
    lay.tag(lay.add_image([layer]), "img")
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:alice-pw",
           f"oci:{tmp_path / 'oci'}:img", f"docker://{addr}/{repo}:v1")
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:wrong",
               f"oci:{tmp_path / 'oci'}:img", f"docker://{addr}/{repo}:bad", check=False)
    assert r.returncode != 0
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:bob-pw",
               f"oci:{tmp_path / 'oci'}:img", f"docker://{addr}/{repo}:bob", check=False)
    assert r.returncode != 0
    out = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", "--src-creds", "alice:alice-pw",
           f"docker://{addr}/{repo}:v1", f"dir:{out}")
    assert (out / "manifest.json").exists()
    if not PODMAN:
        pytest.skip("podman is not installed")
    short = Path(tempfile.mkdtemp(prefix="wharf-pa-", dir="/tmp"))
    try:
        p = podman_cmd(short)
        env = dict(os.environ, REGISTRY_AUTH_FILE=str(short / "auth.json"))
        probe = run([*p, "images"], timeout=60, check=False, env=env)
        if probe.returncode != 0:
            pytest.skip(f"podman cannot run here: {probe.stderr.strip()[-300:]}")
        r = run([*p, "login", "--tls-verify=false", "-u", "alice", "-p", "wrong", addr],
                timeout=60, check=False, env=env)
        assert r.returncode != 0
        run([*p, "login", "--tls-verify=false", "-u", "alice", "-p", "alice-pw", addr],
            timeout=60, env=env)
        run([*p, "pull", "--tls-verify=false", f"{addr}/{repo}:v1"], env=env)
        run([*p, "tag", f"{addr}/{repo}:v1", f"{addr}/{repo}-pushed:v2"], env=env)
        run([*p, "push", "--tls-verify=false", f"{addr}/{repo}-pushed:v2"], env=env)
        run([*p, "rmi", "-a", "-f"], env=env)
        run([*p, "pull", "--tls-verify=false", f"{addr}/{repo}-pushed:v2"], env=env)
        run([*p, "tag", f"{addr}/{repo}-pushed:v2", f"{addr}/b/denied:v1"], env=env)
        r = run([*p, "push", "--tls-verify=false", f"{addr}/b/denied:v1"], check=False, env=env)
        assert r.returncode != 0
        run([*p, "rmi", "-a", "-f"], env=env)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    tags = Client(addr, ALICE).get(f"/v2/{repo}-pushed/tags/list")
    if tags.status_code == 401:  # a token gateway: use a token for the check
        tok = get_token(addr, [f"repository:{repo}-pushed:pull"], ALICE).json()["token"]
        tags = Client(addr, tok).get(f"/v2/{repo}-pushed/tags/list")
    assert tags.status_code == 200 and tags.json()["tags"] == ["v2"], tags.text


# --------------------------------------------------------------- read-only and the throttle


def test_read_only_and_login_throttle(wharf_bin, files, tmp_path):
    c, up = start_up(wharf_bin, tmp_path / "ro",
                     files.common_flags() + ["--read-only", "--max-login-failures", "3"])
    try:
        alice = Client(up.addr, ALICE)
        for method, path in (("POST", "/v2/a/x/blobs/uploads/"), ("PUT", "/v2/a/x/manifests/v1"),
                             ("DELETE", "/v2/a/x/manifests/v1"), ("POST", "/files")):
            r = alice.request(method, path, data=b"x")
            assert r.status_code == 405, (method, path, r.status_code)
            assert codes(r) == ["UNSUPPORTED"] and "read-only" in r.text
        assert alice.get("/v2/_catalog").status_code == 200  # reads go on
        assert alice.get("/v2/a/x/tags/list").status_code == 404  # (nothing there)
        # the throttle: past 3 failures a minute from one address, 429 with Retry-After
        wrong = Client(up.addr, ("alice", "wrong"))
        for _ in range(3):
            assert wrong.get("/v2/").status_code == 401
        r = wrong.get("/v2/")
        assert r.status_code == 429 and codes(r) == ["TOOMANYREQUESTS"]
        assert int(r.headers["Retry-After"]) >= 1
        assert alice.get("/v2/").status_code == 429  # even the right password waits
        assert failures(up.addr, "throttled") >= 2
    finally:
        c.close()
