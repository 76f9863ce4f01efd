"""HTTP-level tests of the OCI Distribution API v1.1 on wharf: every endpoint, every error
code, hostile input.

The module shares one `wharf up` (1 MiB chunks, so blobs of a few MiB span several chunks);
each test works in its own repositories. Tests needing their own processes (restart, an
unwritable cluster) make them.

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_registry_http.py
"""

import json
import os
import socket
import threading
import time

import pytest
import requests

from cluster import wait_until
from gateway_env import MiB
from registry_env import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Registry,
                          RegistryCluster, absolute, assert_oci_error, close_registry,
                          config_blob, image_manifest, index_manifest,
                          oci_error_codes, patch_chunk, push_blob, push_image, put_manifest,
                          sha256_digest, sha512_digest, start_upload, start_wharf_up,
                          with_query)
from registry_env import wharf_registry  # noqa: F401 - fixture

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")


def rnd(n: int) -> bytes:
    return os.urandom(n)


def get(reg, path, **kw):
    return requests.get(reg.url(path), timeout=30, **kw)


def head(reg, path, **kw):
    return requests.head(reg.url(path), timeout=30, **kw)


def raw_request(addr: str, data: bytes, read: bool = True, timeout: float = 10.0) -> bytes:
    """Sends raw bytes on a fresh connection; returns what the server answers until it closes
    or the timeout passes."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except OSError:  # the server closed early (e.g. a header over the limit)
            pass
        if not read:
            return b""
        out = b""
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:  # the server already closed the connection
            pass
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), f"not an HTTP response: {raw[:200]!r}"
    return int(raw[9:12])


# ------------------------------------------------------------------------------------ base


def test_base_endpoint(wharf_registry):
    r = get(wharf_registry, "/v2/")
    assert r.status_code == 200 and r.json() == {}
    assert r.headers.get(API_VERSION[0]) == API_VERSION[1]
    r = head(wharf_registry, "/v2/")
    assert r.status_code == 200 and r.headers.get(API_VERSION[0]) == API_VERSION[1]
    r = get(wharf_registry, "/v2")
    assert r.status_code == 200
    r = requests.post(wharf_registry.url("/v2/"), timeout=10)
    assert_oci_error(r, 405, "UNSUPPORTED", "POST /v2/")
    # every /v2 response carries the API version, errors too
    assert r.headers.get(API_VERSION[0]) == API_VERSION[1]
    r = get(wharf_registry, "/v2/nope")
    assert r.status_code == 404 and r.headers.get(API_VERSION[0]) == API_VERSION[1]


# ----------------------------------------------------------------------- monolithic / GET


def test_monolithic_push_and_pull(wharf_registry):
    reg = wharf_registry
    data = rnd(3 * MiB + 12345)  # spans four 1 MiB chunks
    d = sha256_digest(data)
    r = requests.post(reg.url("/v2/mono/app/blobs/uploads/"), params={"digest": d}, data=data,
                      timeout=60)
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(f"/v2/mono/app/blobs/{d}")
    assert r.headers["Docker-Content-Digest"] == d
    r = get(reg, f"/v2/mono/app/blobs/{d}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["Docker-Content-Digest"] == d
    assert r.headers["ETag"] == f'"{d}"'
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert int(r.headers["Content-Length"]) == len(data)
    r = head(reg, f"/v2/mono/app/blobs/{d}")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) == len(data)
    assert r.headers["Docker-Content-Digest"] == d


def test_blob_ranges(wharf_registry):
    reg = wharf_registry
    data = rnd(2 * MiB + 777)
    d = push_blob(reg, "ranges", data)
    path = f"/v2/ranges/blobs/{d}"
    for first, last in [(0, 0), (10, 99), (MiB - 5, MiB + 5), (MiB, 2 * MiB + 776),
                        (2 * MiB, 2 * MiB + 776)]:
        r = get(reg, path, headers={"Range": f"bytes={first}-{last}"})
        assert r.status_code == 206, (first, last, r.status_code)
        assert r.content == data[first:last + 1]
        assert r.headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
    r = get(reg, path, headers={"Range": "bytes=-100"})
    assert r.status_code == 206 and r.content == data[-100:]
    r = get(reg, path, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert r.headers.get("Content-Range") == f"bytes */{len(data)}"
    r = get(reg, path, headers={"Range": "bytes=garbage"})
    assert r.status_code == 200 and r.content == data


def test_blob_unknown_and_bad_digest(wharf_registry):
    reg = wharf_registry
    missing = sha256_digest(b"never pushed " + rnd(8))
    for m in (get, head):
        r = m(reg, f"/v2/unknown/blobs/{missing}")
        assert_oci_error(r, 404, "BLOB_UNKNOWN", f"{m.__name__} unknown blob")
    for bad in ("sha256:abc", "sha256:" + "A" * 64, "md5:" + "0" * 32, "sha256", "x" * 300,
                "sha256:" + "g" * 64, "sha512:" + "0" * 64):
        r = get(reg, f"/v2/unknown/blobs/{bad}")
        assert_oci_error(r, 400, "DIGEST_INVALID", f"GET blob {bad[:20]}")
    # a blob stored for another repository is unknown here until pushed or mounted here
    data = rnd(1000)
    d = push_blob(reg, "linked/one", data)
    assert_oci_error(get(reg, f"/v2/linked/two/blobs/{d}"), 404, "BLOB_UNKNOWN", "other repo")
    r = requests.post(reg.url("/v2/linked/one/blobs/" + d), timeout=10)
    assert_oci_error(r, 405, "UNSUPPORTED", "POST on a blob")


def test_blob_delete(wharf_registry):
    reg = wharf_registry
    data = rnd(5000)
    d = push_blob(reg, "del/a", data)
    push_blob(reg, "del/b", data)
    r = requests.delete(reg.url(f"/v2/del/a/blobs/{d}"), timeout=10)
    assert r.status_code == 202, r.text
    assert_oci_error(get(reg, f"/v2/del/a/blobs/{d}"), 404, "BLOB_UNKNOWN", "after delete")
    assert get(reg, f"/v2/del/b/blobs/{d}").content == data  # still linked in b
    r = requests.delete(reg.url(f"/v2/del/a/blobs/{d}"), timeout=10)
    assert_oci_error(r, 404, "BLOB_UNKNOWN", "second delete")
    r = requests.delete(reg.url("/v2/del/a/blobs/sha256:nothex"), timeout=10)
    assert_oci_error(r, 400, "DIGEST_INVALID", "delete bad digest")


# -------------------------------------------------------------------------- chunked uploads


def test_chunked_upload_with_content_range(wharf_registry):
    reg = wharf_registry
    data = rnd(2 * MiB + 100)
    d = sha256_digest(data)
    r = requests.post(reg.url("/v2/chunked/blobs/uploads/"), timeout=10)
    assert r.status_code == 202
    loc = absolute(reg, r.headers["Location"])
    uuid = r.headers["Docker-Upload-UUID"]
    assert uuid in loc and r.headers["Range"] == "0-0"
    pieces = [data[:MiB + 3], data[MiB + 3:MiB + 3 + 5000], data[MiB + 5003:]]
    off = 0
    for p in pieces[:2]:
        r = patch_chunk(loc, p, start=off)
        assert r.status_code == 202, r.text
        off += len(p)
        assert r.headers["Range"] == f"0-{off - 1}"
        assert r.headers["Docker-Upload-UUID"] == uuid
        loc = absolute(reg, r.headers["Location"])
    r = requests.get(loc, timeout=10)
    assert r.status_code == 204 and r.headers["Range"] == f"0-{off - 1}"
    assert r.headers["Docker-Upload-UUID"] == uuid
    # the last chunk with the PUT
    r = requests.put(with_query(loc, digest=d), data=pieces[2],
                     headers={"Content-Range": f"{off}-{len(data) - 1}"}, timeout=30)
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(f"/v2/chunked/blobs/{d}")
    assert r.headers["Docker-Content-Digest"] == d
    assert get(reg, f"/v2/chunked/blobs/{d}").content == data
    # the session is gone
    assert_oci_error(requests.get(loc, timeout=10), 404, "BLOB_UPLOAD_UNKNOWN", "after PUT")


def test_streamed_patch_and_put_without_body(wharf_registry):
    reg = wharf_registry
    data = rnd(3 * MiB + 1)
    d = sha256_digest(data)
    loc = start_upload(reg, "streamed")

    def gen():  # chunked transfer encoding, no Content-Length, no Content-Range
        for i in range(0, len(data), 256 * 1024):
            yield data[i:i + 256 * 1024]

    r = requests.patch(loc, data=gen(), timeout=60)
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == f"0-{len(data) - 1}"
    loc = absolute(reg, r.headers["Location"])
    r = requests.put(with_query(loc, digest=d), timeout=30)
    assert r.status_code == 201, r.text
    assert get(reg, f"/v2/streamed/blobs/{d}").content == data


def test_out_of_order_and_malformed_chunks(wharf_registry):
    reg = wharf_registry
    data = rnd(40000)
    loc = start_upload(reg, "ooo")
    r = patch_chunk(loc, data[:10000], start=0)
    assert r.status_code == 202
    for bad in ("5000-14999", "20000-29999", "0-9999"):
        r = patch_chunk(loc, data[10000:20000], content_range=bad)
        assert_oci_error(r, 416, None, f"Content-Range {bad}")
        assert r.headers["Range"] == "0-9999", r.headers
        assert "Location" in r.headers
    for bad in ("abc", "10000-", "-5", "10000-9999", "bytes 10000-19999/5",
                "99999999999999999999-1"):
        r = patch_chunk(loc, data[10000:20000], content_range=bad)
        assert_oci_error(r, 416, None, f"malformed Content-Range {bad}")
    # Content-Range length and body length disagree
    r = patch_chunk(loc, data[10000:15000], content_range="10000-19999")
    assert r.status_code in (400, 416), r.status_code
    assert oci_error_codes(r), r.text
    # the session is intact and can go on
    r = requests.get(loc, timeout=10)
    assert r.status_code == 204 and r.headers["Range"] == "0-9999"
    r = patch_chunk(loc, data[10000:], content_range=f"bytes 10000-{len(data) - 1}/{len(data)}")
    assert r.status_code == 202, r.text
    r = requests.put(with_query(loc, digest=sha256_digest(data)), timeout=30)
    assert r.status_code == 201, r.text
    assert get(reg, f"/v2/ooo/blobs/{sha256_digest(data)}").content == data


def test_put_body_must_match_content_range(wharf_registry):
    # A PUT that closes an upload with a body is held to its Content-Range as a PATCH is:
    # a streamed (chunked, no Content-Length) body shorter than the range is SIZE_INVALID and
    # nothing is stored, even when the digest matches the bytes sent.
    reg = wharf_registry
    data = rnd(30000)
    loc = start_upload(reg, "putrange")
    assert patch_chunk(loc, data[:10000], start=0).status_code == 202
    d = sha256_digest(data)

    def gen():
        yield data[10000:]

    r = requests.put(with_query(loc, digest=d), data=gen(),
                     headers={"Content-Range": f"10000-{len(data) + 999}"}, timeout=30)
    assert_oci_error(r, 400, "SIZE_INVALID", "PUT body shorter than its Content-Range")
    assert_oci_error(head(reg, f"/v2/putrange/blobs/{d}"), 404, None, "blob after bad PUT")
    # the session is intact, as after such a PATCH, and can still be closed
    r = requests.get(loc, timeout=10)
    assert r.status_code == 204 and r.headers["Range"] == "0-9999", r.headers
    r = requests.put(with_query(loc, digest=d), data=data[10000:],
                     headers={"Content-Range": f"10000-{len(data) - 1}"}, timeout=30)
    assert r.status_code == 201, r.text
    assert get(reg, f"/v2/putrange/blobs/{d}").content == data


def test_digest_mismatch_commits_nothing(wharf_registry):
    reg = wharf_registry
    data = rnd(MiB + 10)
    wrong = sha256_digest(b"something else")
    loc = start_upload(reg, "mismatch")
    assert patch_chunk(loc, data, start=0).status_code == 202
    r = requests.put(with_query(loc, digest=wrong), timeout=30)
    assert_oci_error(r, 400, "DIGEST_INVALID", "PUT with a wrong digest")
    assert_oci_error(requests.get(loc, timeout=10), 404, "BLOB_UPLOAD_UNKNOWN", "session")
    for dg in (wrong, sha256_digest(data)):
        assert_oci_error(head(reg, f"/v2/mismatch/blobs/{dg}"), 404, None, "blob after mismatch")
    # monolithic
    r = requests.post(reg.url("/v2/mismatch/blobs/uploads/"), params={"digest": wrong},
                      data=data, timeout=30)
    assert_oci_error(r, 400, "DIGEST_INVALID", "monolithic wrong digest")
    assert_oci_error(head(reg, f"/v2/mismatch/blobs/{wrong}"), 404, None, "blob")
    # PUT without digest / with a malformed one
    loc = start_upload(reg, "mismatch")
    assert_oci_error(requests.put(loc, timeout=10), 400, "DIGEST_INVALID", "PUT no digest")
    assert_oci_error(requests.put(with_query(loc, digest="sha256:zz"), timeout=10), 400,
                     "DIGEST_INVALID", "PUT bad digest")
    r = requests.post(reg.url("/v2/mismatch/blobs/uploads/"), params={"digest": "nope"},
                      data=b"x", timeout=10)
    assert_oci_error(r, 400, "DIGEST_INVALID", "monolithic bad digest")


def test_empty_blob(wharf_registry):
    reg = wharf_registry
    d = sha256_digest(b"")
    r = requests.post(reg.url("/v2/empty/m/blobs/uploads/"), params={"digest": d}, data=b"",
                      timeout=10)
    assert r.status_code == 201, r.text
    r = get(reg, f"/v2/empty/m/blobs/{d}")
    assert r.status_code == 200 and r.content == b"" and r.headers["Content-Length"] == "0"
    loc = start_upload(reg, "empty/c")
    r = requests.put(with_query(loc, digest=d), timeout=10)
    assert r.status_code == 201, r.text
    assert head(reg, f"/v2/empty/c/blobs/{d}").status_code == 200


def test_sha512_digests(wharf_registry):
    reg = wharf_registry
    data = rnd(MiB + 99)
    d = sha512_digest(data)
    r = requests.post(reg.url("/v2/sha512/blobs/uploads/"), params={"digest": d}, data=data,
                      timeout=30)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d
    assert get(reg, f"/v2/sha512/blobs/{d}").content == data
    # a chunked upload closed with a sha512 digest
    data2 = rnd(2 * MiB + 5)
    loc = start_upload(reg, "sha512")
    assert patch_chunk(loc, data2[:MiB], start=0).status_code == 202
    r = requests.put(with_query(loc, digest=sha512_digest(data2)), data=data2[MiB:], timeout=30)
    assert r.status_code == 201, r.text
    assert get(reg, f"/v2/sha512/blobs/{sha512_digest(data2)}").content == data2


def test_upload_cancel_and_unknown_sessions(wharf_registry):
    reg = wharf_registry
    loc = start_upload(reg, "cancel/me")
    assert patch_chunk(loc, b"abc", start=0).status_code == 202
    r = requests.delete(loc, timeout=10)
    assert r.status_code == 204, r.text
    for m in ("GET", "PATCH", "PUT", "DELETE"):
        r = requests.request(m, with_query(loc, digest=sha256_digest(b"abc")), data=b"x",
                             timeout=10)
        assert_oci_error(r, 404, "BLOB_UPLOAD_UNKNOWN", f"{m} cancelled session")
    for bad in ("0" * 32, "not-an-id", "x.y", "A" * 32, "0" * 500):
        r = requests.get(reg.url(f"/v2/cancel/me/blobs/uploads/{bad}"), timeout=10)
        assert_oci_error(r, 404, "BLOB_UPLOAD_UNKNOWN", f"upload id {bad[:20]}")
    # a session used through another repository's URL
    loc = start_upload(reg, "cancel/a")
    other = loc.replace("/cancel/a/", "/cancel/b/")
    assert_oci_error(requests.get(other, timeout=10), 404, "BLOB_UPLOAD_UNKNOWN", "other repo")
    r = requests.post(loc, timeout=10)
    assert_oci_error(r, 405, "UNSUPPORTED", "POST on a session")


def test_upload_survives_gateway_restart(wharf_bin, tmp_path):
    reg = start_wharf_up(wharf_bin, tmp_path / "restart")
    try:
        data = rnd(2 * MiB + 3)
        loc = start_upload(reg, "resume/me")
        r = patch_chunk(loc, data[:MiB + 1], start=0)
        assert r.status_code == 202
        reg.proc.kill9()
        reg.proc.start(timeout=30, keep_port=True)
        wait_until(lambda: get(reg, "/v2/").status_code == 200, 30, "up again")
        r = requests.get(loc, timeout=10)
        assert r.status_code == 204, r.text
        off = int(r.headers["Range"].split("-")[1]) + 1
        assert off == MiB + 1
        r = patch_chunk(loc, data[off:], start=off)
        assert r.status_code == 202, r.text
        r = requests.put(with_query(loc, digest=sha256_digest(data)), timeout=30)
        assert r.status_code == 201, r.text
        assert get(reg, f"/v2/resume/me/blobs/{sha256_digest(data)}").content == data
    finally:
        close_registry(reg)


# ----------------------------------------------------------------------------------- mount


def test_cross_repository_mount(wharf_registry):
    reg = wharf_registry
    data = rnd(MiB + 7)
    d = push_blob(reg, "mount/src", data)
    r = requests.post(reg.url("/v2/mount/dst/blobs/uploads/"),
                      params={"mount": d, "from": "mount/src"}, timeout=10)
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(f"/v2/mount/dst/blobs/{d}")
    assert r.headers["Docker-Content-Digest"] == d
    assert get(reg, f"/v2/mount/dst/blobs/{d}").content == data
    # the source does not have it: an ordinary upload session instead
    missing = sha256_digest(rnd(10))
    r = requests.post(reg.url("/v2/mount/dst/blobs/uploads/"),
                      params={"mount": missing, "from": "mount/src"}, timeout=10)
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["Location"]
    # an invalid source name is just a failed mount
    r = requests.post(reg.url("/v2/mount/dst/blobs/uploads/"),
                      params={"mount": d, "from": "Bad Name"}, timeout=10)
    assert r.status_code == 202
    r = requests.post(reg.url("/v2/mount/dst/blobs/uploads/"),
                      params={"mount": "sha256:bad", "from": "mount/src"}, timeout=10)
    assert_oci_error(r, 400, "DIGEST_INVALID", "mount bad digest")
    # without `from`: automatic content discovery
    r = requests.post(reg.url("/v2/mount/auto/blobs/uploads/"), params={"mount": d}, timeout=10)
    assert r.status_code in (201, 202)
    if r.status_code == 201:
        assert get(reg, f"/v2/mount/auto/blobs/{d}").content == data


def chunk_files(reg: Registry) -> set[str]:
    root = reg.proc.data_dir
    return {p.name for p in root.rglob("*") if p.is_file() and "chunks" in p.parts
            and len(p.name) >= 16 and all(c in "0123456789abcdef" for c in p.name)}


def test_blobs_are_deduplicated(wharf_registry):
    reg = wharf_registry
    data = rnd(3 * MiB)
    d = push_blob(reg, "dedup/r0", data)
    time.sleep(0.5)
    before = chunk_files(reg)
    for i in range(1, 10):
        push_blob(reg, f"dedup/r{i}", data)
    for i in range(10):
        assert get(reg, f"/v2/dedup/r{i}/blobs/{d}").content == data
    # each repeated push wrote chunks that became garbage at commit: GC removes them, and
    # the data stored for the blob is the first push's (2 members x 3 chunks)
    wait_until(lambda: chunk_files(reg) <= before | set(), 60,
               "garbage chunks of the deduplicated pushes collected", interval=1)


# ------------------------------------------------------------------------------- manifests


def test_manifest_put_get_head_by_tag_and_digest(wharf_registry):
    reg = wharf_registry
    layers = [rnd(1000), rnd(MiB + 5)]
    digest, body = push_image(reg, "man/app", "v1", layers)
    r = put_manifest(reg, "man/app", "v1", body)  # idempotent re-put
    assert r.status_code == 201
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Location"].endswith(f"/v2/man/app/manifests/{digest}")
    for ref in ("v1", digest):
        r = get(reg, f"/v2/man/app/manifests/{ref}",
                headers={"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"})
        assert r.status_code == 200 and r.content == body  # byte-exact
        assert r.headers["Content-Type"] == OCI_MANIFEST
        assert r.headers["Docker-Content-Digest"] == digest
        assert r.headers["ETag"] == f'"{digest}"'
        r = head(reg, f"/v2/man/app/manifests/{ref}")
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(body)
        assert r.headers["Docker-Content-Digest"] == digest
    # PUT by digest; byte-exact: the same JSON formatted differently is another manifest
    body2 = json.dumps(json.loads(body), separators=(",", ":")).encode()
    d2 = sha256_digest(body2)
    r = put_manifest(reg, "man/app", d2, body2)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == d2
    assert get(reg, f"/v2/man/app/manifests/{d2}").content == body2
    r = put_manifest(reg, "man/app", digest, body2)
    assert_oci_error(r, 400, "DIGEST_INVALID", "PUT under another digest")
    # a moved tag
    d3, _ = push_image(reg, "man/app", "v1", [rnd(100)])
    assert get(reg, "/v2/man/app/manifests/v1").headers["Docker-Content-Digest"] == d3


def test_docker_manifests_and_indexes(wharf_registry):
    reg = wharf_registry
    d_amd, b_amd = push_image(reg, "man/multi", None, [rnd(300)], media_type=DOCKER_MANIFEST)
    d_arm, b_arm = push_image(reg, "man/multi", None, [rnd(300)], arch="arm64",
                              media_type=DOCKER_MANIFEST)
    assert get(reg, f"/v2/man/multi/manifests/{d_amd}").headers["Content-Type"] == DOCKER_MANIFEST
    lst = index_manifest([(b_amd, "amd64"), (b_arm, "arm64")], media_type=DOCKER_LIST)
    r = put_manifest(reg, "man/multi", "list", lst, DOCKER_LIST)
    assert r.status_code == 201, r.text
    r = get(reg, "/v2/man/multi/manifests/list")
    assert r.headers["Content-Type"] == DOCKER_LIST and r.content == lst
    # OCI index of OCI manifests
    d1, b1 = push_image(reg, "man/multi", None, [rnd(200)])
    idx = index_manifest([(b1, "amd64")])
    r = put_manifest(reg, "man/multi", "index", idx, OCI_INDEX)
    assert r.status_code == 201, r.text
    assert get(reg, "/v2/man/multi/manifests/index").headers["Content-Type"] == OCI_INDEX
    # an index whose child is not in the repository
    ghost = image_manifest(config_blob(), [rnd(10)])
    bad = index_manifest([(b1, "amd64"), (ghost, "arm64")])
    r = put_manifest(reg, "man/multi", "bad", bad, OCI_INDEX)
    assert_oci_error(r, 400, None, "index with an unknown child")
    assert set(oci_error_codes(r)) & {"MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNKNOWN"}
    # the child exists in another repository only
    r = put_manifest(reg, "man/other", "x", idx, OCI_INDEX)
    assert_oci_error(r, 400, "MANIFEST_BLOB_UNKNOWN", "index child in another repo")


def test_manifest_validation_errors(wharf_registry):
    reg = wharf_registry
    cfg = config_blob()
    layer = rnd(100)
    push_blob(reg, "man/val", cfg)
    # a layer that was never pushed
    body = image_manifest(cfg, [layer])
    r = put_manifest(reg, "man/val", "t", body)
    assert_oci_error(r, 400, "MANIFEST_BLOB_UNKNOWN", "unknown layer")
    detail = r.json()["errors"][0].get("detail")
    assert detail == {"digest": sha256_digest(layer)}, detail
    # pushed to another repository: still unknown here; after a mount it is fine
    push_blob(reg, "man/val-src", layer)
    assert_oci_error(put_manifest(reg, "man/val", "t", body), 400, "MANIFEST_BLOB_UNKNOWN",
                     "layer in another repo")
    r = requests.post(reg.url("/v2/man/val/blobs/uploads/"),
                      params={"mount": sha256_digest(layer), "from": "man/val-src"}, timeout=10)
    assert r.status_code == 201
    assert put_manifest(reg, "man/val", "t", body).status_code == 201
    cases = {
        "not json": b"{not json",
        "empty": b"",
        "array": b"[]",
        "unknown media type": json.dumps({"schemaVersion": 2, "mediaType": "text/plain"}).encode(),
        "no config": json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                 "layers": []}).encode(),
        "bad digest": json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                  "config": {"mediaType": "a/b", "digest": "sha256:1",
                                             "size": 1}, "layers": []}).encode(),
        "deep nesting": b'{"a":' * 10000 + b"1" + b"}" * 10000,
        "duplicate keys": (b'{"schemaVersion":2,"mediaType":"%s","mediaType":"%s"}'
                           % (OCI_MANIFEST.encode(), OCI_INDEX.encode())),
        "invalid utf-8": b'{"schemaVersion":2,"mediaType":"\xff\xfe"}',
        "schema 1": json.dumps({"schemaVersion": 1, "name": "x", "tag": "y"}).encode(),
    }
    for what, b in cases.items():
        r = put_manifest(reg, "man/val", "t2", b)
        assert_oci_error(r, 400, "MANIFEST_INVALID", what)
    # Content-Type and mediaType disagree
    r = put_manifest(reg, "man/val", "t2", body, media_type=OCI_INDEX)
    assert_oci_error(r, 400, "MANIFEST_INVALID", "Content-Type vs mediaType")
    # too large: refused without reading it all
    huge = b'{"schemaVersion":2,"x":"' + b"a" * (5 * MiB) + b'"}'
    r = put_manifest(reg, "man/val", "huge", huge)
    assert r.status_code == 413 and oci_error_codes(r), (r.status_code, r.text[:200])
    # bad references
    assert_oci_error(put_manifest(reg, "man/val", "-bad", body), 400, "MANIFEST_INVALID", "tag")
    assert_oci_error(put_manifest(reg, "man/val", "t" * 129, body), 400, "MANIFEST_INVALID",
                     "long tag")
    assert_oci_error(put_manifest(reg, "man/val", "sha256:abc", body), 400, "DIGEST_INVALID",
                     "digest reference")
    assert get(reg, "/v2/man/val/manifests/t2").status_code == 404


def test_manifest_unknown_and_delete(wharf_registry):
    reg = wharf_registry
    for ref in ("nope", sha256_digest(b"nope")):
        for m in (get, head):
            assert_oci_error(m(reg, f"/v2/man/del/manifests/{ref}"), 404, "MANIFEST_UNKNOWN",
                             f"{m.__name__} {ref}")
    assert_oci_error(get(reg, "/v2/man/del/manifests/sha256:xyz"), 400, "DIGEST_INVALID", "bad")
    d, body = push_image(reg, "man/del", "a", [rnd(10)])
    assert put_manifest(reg, "man/del", "b", body).status_code == 201
    # by tag: the tag goes, the manifest stays
    r = requests.delete(reg.url("/v2/man/del/manifests/a"), timeout=10)
    assert r.status_code == 202, r.text
    assert_oci_error(get(reg, "/v2/man/del/manifests/a"), 404, "MANIFEST_UNKNOWN", "deleted tag")
    assert get(reg, f"/v2/man/del/manifests/{d}").status_code == 200
    assert get(reg, "/v2/man/del/manifests/b").status_code == 200
    # by digest: the manifest and its other tags go
    r = requests.delete(reg.url(f"/v2/man/del/manifests/{d}"), timeout=10)
    assert r.status_code == 202, r.text
    assert_oci_error(get(reg, f"/v2/man/del/manifests/{d}"), 404, "MANIFEST_UNKNOWN", "deleted")
    assert_oci_error(get(reg, "/v2/man/del/manifests/b"), 404, "MANIFEST_UNKNOWN", "its tag")
    r = requests.delete(reg.url(f"/v2/man/del/manifests/{d}"), timeout=10)
    assert_oci_error(r, 404, "MANIFEST_UNKNOWN", "second delete")
    r = requests.post(reg.url("/v2/man/del/manifests/a"), timeout=10)
    assert_oci_error(r, 405, "UNSUPPORTED", "POST manifest")


# ------------------------------------------------------------------------- tags and catalog


def follow_pages(reg: Registry, path: str, key: str, n: int) -> list[list[str]]:
    pages = []
    url = reg.url(f"{path}?n={n}")
    for _ in range(1000):
        r = requests.get(url, timeout=10)
        assert r.status_code == 200, r.text
        pages.append(r.json()[key])
        link = r.headers.get("Link")
        if not link:
            return pages
        assert link.startswith("<") and link.endswith('>; rel="next"'), link
        url = reg.url(link[1:link.index(">")])
    raise AssertionError("pagination did not end")


def test_tags_list_and_pagination(wharf_registry):
    reg = wharf_registry
    _, body = push_image(reg, "tags/app", "latest", [rnd(10)])
    tags = ["latest", "v1", "v1.0", "v2", "V3", "a_b", "z-9", "0"]
    for t in tags[1:]:
        assert put_manifest(reg, "tags/app", t, body).status_code == 201
    r = get(reg, "/v2/tags/app/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": "tags/app", "tags": sorted(tags)}
    assert "Link" not in r.headers
    pages = follow_pages(reg, "/v2/tags/app/tags/list", "tags", 3)
    assert [len(p) for p in pages] == [3, 3, 2]
    assert sum(pages, []) == sorted(tags)
    r = get(reg, "/v2/tags/app/tags/list?n=2&last=v1")
    assert r.json()["tags"] == ["v1.0", "v2"]
    r = get(reg, "/v2/tags/app/tags/list?n=0")
    assert r.status_code == 200 and r.json()["tags"] == []
    r = get(reg, "/v2/tags/app/tags/list?last=zzz")
    assert r.status_code == 200 and r.json()["tags"] == []
    for bad in ("-1", "abc", "1e3", "%20"):
        r = get(reg, f"/v2/tags/app/tags/list?n={bad}")
        assert r.status_code == 400 and oci_error_codes(r), (bad, r.status_code)
    assert_oci_error(get(reg, "/v2/tags/none/tags/list"), 404, "NAME_UNKNOWN", "unknown repo")
    # a repository with blobs but no manifest exists, with no tags
    push_blob(reg, "tags/blobonly", b"x")
    r = get(reg, "/v2/tags/blobonly/tags/list")
    assert r.status_code == 200 and r.json()["tags"] == []


def test_catalog(wharf_registry):
    reg = wharf_registry
    for name in ("cat/a", "cat/b", "cat/c/d"):
        push_blob(reg, name, name.encode())
    r = get(reg, "/v2/_catalog")
    assert r.status_code == 200
    repos = r.json()["repositories"]
    assert {"cat/a", "cat/b", "cat/c/d"} <= set(repos)
    assert repos == sorted(repos)
    pages = follow_pages(reg, "/v2/_catalog", "repositories", 2)
    assert sum(pages, []) == repos and all(len(p) <= 2 for p in pages)
    r = get(reg, "/v2/_catalog?n=1&last=cat/a")
    assert r.json()["repositories"] == ["cat/b"]
    assert r.headers["Link"].startswith("</v2/_catalog?n=1&last=cat")
    assert get(reg, "/v2/_catalog?n=x").status_code == 400


# ------------------------------------------------------------------------------- referrers


def test_referrers_and_subject(wharf_registry):
    reg = wharf_registry
    repo = "refs/app"
    subj_digest, subj_body = push_image(reg, repo, "v1", [rnd(50)])
    subject = {"mediaType": OCI_MANIFEST, "digest": subj_digest, "size": len(subj_body)}
    empty = b"{}"
    push_blob(reg, repo, empty)
    sig = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "artifactType": "application/vnd.example.sig",
                      "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                 "digest": sha256_digest(empty), "size": 2},
                      "layers": [{"mediaType": "application/vnd.oci.empty.v1+json",
                                  "digest": sha256_digest(empty), "size": 2}],
                      "subject": subject,
                      "annotations": {"org.example.signer": "alice"}}).encode()
    sbom_cfg = b'{"sbom":true}'
    push_blob(reg, repo, sbom_cfg)
    sbom = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.example.sbom",
                                  "digest": sha256_digest(sbom_cfg), "size": len(sbom_cfg)},
                       "layers": [], "subject": subject}).encode()
    for body in (sig, sbom):
        r = put_manifest(reg, repo, sha256_digest(body), body)
        assert r.status_code == 201, r.text
        assert r.headers["OCI-Subject"] == subj_digest
    r = get(reg, f"/v2/{repo}/referrers/{subj_digest}")
    assert r.status_code == 200 and r.headers["Content-Type"] == OCI_INDEX
    idx = r.json()
    assert idx["schemaVersion"] == 2 and idx["mediaType"] == OCI_INDEX
    by_digest = {m["digest"]: m for m in idx["manifests"]}
    assert set(by_digest) == {sha256_digest(sig), sha256_digest(sbom)}
    s = by_digest[sha256_digest(sig)]
    assert s["artifactType"] == "application/vnd.example.sig"
    assert s["annotations"] == {"org.example.signer": "alice"}
    assert s["size"] == len(sig) and s["mediaType"] == OCI_MANIFEST
    assert by_digest[sha256_digest(sbom)]["artifactType"] == "application/vnd.example.sbom"
    r = get(reg, f"/v2/{repo}/referrers/{subj_digest}",
            params={"artifactType": "application/vnd.example.sig"})
    assert r.headers.get("OCI-Filters-Applied") == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [sha256_digest(sig)]
    # unknown subject, unknown repository: an empty index
    for path in (f"/v2/{repo}/referrers/{sha256_digest(b'x')}",
                 f"/v2/refs/none/referrers/{subj_digest}"):
        r = get(reg, path)
        assert r.status_code == 200 and r.json()["manifests"] == []
    assert_oci_error(get(reg, f"/v2/{repo}/referrers/sha256:1"), 400, "DIGEST_INVALID", "bad")
    # a manifest whose subject does not exist is accepted (OCI v1.1)
    ghost = dict(subject, digest=sha256_digest(b"ghost"))
    body = json.loads(sig)
    body["subject"] = ghost
    body = json.dumps(body).encode()
    r = put_manifest(reg, repo, sha256_digest(body), body)
    assert r.status_code == 201 and r.headers["OCI-Subject"] == ghost["digest"]
    # deleting a referrer removes it from the list
    r = requests.delete(reg.url(f"/v2/{repo}/manifests/{sha256_digest(sbom)}"), timeout=10)
    assert r.status_code == 202
    r = get(reg, f"/v2/{repo}/referrers/{subj_digest}")
    assert [m["digest"] for m in r.json()["manifests"]] == [sha256_digest(sig)]


# --------------------------------------------------------------------------- hostile input


BAD_NAMES = ["UPPER/case", "a..b", "a//b", "-a", "a-", "a/", "_a", "a" * 256, "a%2Fb",
             "%2e%2e/x", "a b", "a:b", "é"]


def test_invalid_names(wharf_registry):
    reg = wharf_registry
    d = sha256_digest(b"x")
    for name in BAD_NAMES:
        for method, path in (("GET", f"/v2/{name}/tags/list"),
                             ("GET", f"/v2/{name}/manifests/latest"),
                             ("HEAD", f"/v2/{name}/blobs/{d}"),
                             ("POST", f"/v2/{name}/blobs/uploads/"),
                             ("PUT", f"/v2/{name}/manifests/latest")):
            r = requests.request(method, reg.url(path), timeout=10, data=b"{}")
            if r.status_code == 404 and method != "HEAD" and not oci_error_codes(r):
                pytest.fail(f"{method} {path!r}: 404 without an OCI error body")
            assert r.status_code in (400, 404), (name, method, r.status_code)
            if r.status_code == 400 and method != "HEAD":
                assert "NAME_INVALID" in oci_error_codes(r), (name, method, r.text)


def test_truncated_and_malformed_bodies(wharf_registry):
    reg = wharf_registry
    addr = reg.addr
    # a monolithic upload whose body stops early: nothing is stored
    data = rnd(100000)
    d = sha256_digest(data)
    req = (f"POST /v2/trunc/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\n"
           f"Content-Length: {len(data)}\r\n\r\n").encode() + data[:5000]
    raw_request(addr, req, read=False)
    time.sleep(0.3)
    assert head(reg, f"/v2/trunc/blobs/{d}").status_code == 404
    # a PATCH that stops early leaves the session where it was
    loc = start_upload(reg, "trunc")
    assert patch_chunk(loc, data[:1000], start=0).status_code == 202
    path = loc.split(addr, 1)[1]
    req = (f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Range: 1000-1999\r\n"
           f"Content-Length: 1000\r\n\r\n").encode() + data[1000:1500]
    raw_request(addr, req, read=False)
    time.sleep(0.5)
    r = requests.get(loc, timeout=10)
    assert r.status_code == 204 and r.headers["Range"] == "0-999", r.headers
    assert patch_chunk(loc, data[1000:], start=1000).status_code == 202
    assert requests.put(with_query(loc, digest=d), timeout=10).status_code == 201
    # broken chunked encoding
    req = (f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           "zz\r\nhello\r\n0\r\n\r\n").encode()
    out = raw_request(addr, req)
    assert not out or status_of(out) < 500, out[:300]
    # a manifest body cut short
    req = (b"PUT /v2/trunc/manifests/t HTTP/1.1\r\nHost: x\r\nContent-Type: " +
           OCI_MANIFEST.encode() + b"\r\nContent-Length: 500\r\n\r\n{\"schemaVersion\":2")
    raw_request(addr, req, read=False)
    # garbage requests
    for junk in (b"GARBAGE\r\n\r\n", b"GET /v2/" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n",
                 b"GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                 b"BREW /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n\r\n"):
        out = raw_request(addr, junk)
        assert not out or status_of(out) < 500, (junk[:40], out[:200])
    assert get(reg, "/v2/").status_code == 200  # still alive


def test_no_500_for_hostile_queries(wharf_registry):
    reg = wharf_registry
    d = push_blob(reg, "hostile/q", b"q")
    paths = [
        "/v2/hostile/q/tags/list?n=99999999999999999999999",
        "/v2/hostile/q/tags/list?n=5&last=%ff%fe",
        "/v2/_catalog?last=%00%01",
        f"/v2/hostile/q/referrers/{d}?artifactType=%ff",
        "/v2/hostile/q/blobs/uploads/?mount=%00&from=%00",
        f"/v2/hostile/q/blobs/{d}?x=%zz",
        "/v2/hostile/q/manifests/%ff",
        "/v2/hostile/q/manifests/" + "a" * 5000,
        "/v2/hostile/q/blobs/sha256:" + "0" * 10000,
    ]
    for p in paths:
        for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            r = requests.request(m, reg.url(p), timeout=10)
            assert r.status_code < 500, (m, p, r.status_code, r.text[:200])


def test_concurrent_pushes_of_one_blob(wharf_registry):
    reg = wharf_registry
    data = rnd(2 * MiB + 1)
    d = sha256_digest(data)
    results = []

    def push(i):
        r = requests.post(reg.url(f"/v2/conc/r{i}/blobs/uploads/"), params={"digest": d},
                          data=data, timeout=60)
        results.append(r.status_code)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 8
    for i in range(8):
        assert get(reg, f"/v2/conc/r{i}/blobs/{d}").content == data
    # two PATCHes racing on one session: one wins, the other gets 416, the bytes are whole
    loc = start_upload(reg, "conc/race")
    out = []
    chunk = rnd(MiB)
    ts = [threading.Thread(target=lambda: out.append(patch_chunk(loc, chunk, start=0)))
          for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    codes = sorted(r.status_code for r in out)
    assert codes in ([202, 416], [202, 202]), codes  # 202+202 only if strictly sequential
    r = requests.get(loc, timeout=10)
    if codes == [202, 416]:
        assert r.headers["Range"] == f"0-{MiB - 1}"
        assert requests.put(with_query(loc, digest=sha256_digest(chunk)),
                            timeout=10).status_code == 201


def test_unavailable_cluster_is_503(wharf_bin, tmp_path):
    """A gateway whose cluster has no writable group answers uploads with 503 + JSON."""
    c = RegistryCluster(wharf_bin, tmp_path / "nogroups")
    try:
        c.add_masters(1)
        gw = c.add_gateway(healthy=False)
        reg = Registry("wharf", gw, c)
        r = requests.post(reg.url("/v2/x/blobs/uploads/"), params={"digest": sha256_digest(b"a")},
                          data=b"a", timeout=30)
        assert_oci_error(r, 503, "UNAVAILABLE", "monolithic push with no writable group")
        loc = start_upload(reg, "x")
        # A PATCH smaller than a chunk is coalesced: kept in the upload's row in the metadata
        # store (durable, so 202) until a chunk's worth has come.
        r = patch_chunk(loc, b"abc", start=0)
        assert r.status_code == 202, (r.status_code, r.text)
        loc = absolute(reg, r.headers["Location"])
        # A chunk's worth (the gateway's chunk size is 1 MiB) needs a group: 503, and the
        # session keeps what it had.
        r = patch_chunk(loc, b"b" * MiB, start=3)
        assert_oci_error(r, 503, "UNAVAILABLE", "PATCH with no writable group")
        assert requests.get(loc, timeout=10).headers["Range"] == "0-2"
        assert get(reg, "/v2/").status_code == 200
    finally:
        c.close()
