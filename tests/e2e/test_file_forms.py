"""multipart/form-data uploads to the file API, as a web form or `curl -F` sends them: each file
part is stored with its content type and file name, served back with them; a broken form
answers 400 and keeps nothing.

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e/test_file_forms.py
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import json

import pytest
import requests

from registry_env import wharf_registry  # noqa: F401 - fixture

CURL = shutil.which("curl")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def curl_form(url: str, *fields: str) -> tuple[int, dict]:
    if not CURL:
        pytest.skip("curl is not installed")
    argv = [CURL, "-sS", "-o", "-", "-w", "\n%{http_code}"]
    for f in fields:
        argv += ["-F", f]
    r = subprocess.run([*argv, url], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code), json.loads(body) if body.strip() else {}


def stored_files(reg) -> int:
    """Rows of the gateway's files table (its SQLite store, read beside it)."""
    db = sqlite3.connect(f"file:{reg.proc.data_dir / 'meta.db'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT count(*) FROM files").fetchone()[0]
    finally:
        db.close()


def counter(reg, name: str) -> float:
    text = requests.get(reg.url("/metrics"), timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_curl_form_with_two_files_and_a_field(wharf_registry, tmp_path):
    reg = wharf_registry
    photo = os.urandom(3 * 1024 * 1024 + 17)  # several 1 MiB chunks, binary
    (tmp_path / "photo.jpg").write_bytes(photo)
    (tmp_path / "notes.txt").write_bytes(b"line one\r\n--not a boundary\r\n")
    code, out = curl_form(reg.url("/files"), f"file=@{tmp_path / 'photo.jpg'};type=image/jpeg",
                          "caption=my holiday",
                          f"doc=@{tmp_path / 'notes.txt'};filename=../../renamed notes.txt")
    assert code == 201, out
    files = out["files"]
    assert [f["name"] for f in files] == ["photo.jpg", "renamed notes.txt"]
    assert [f["field"] for f in files] == ["file", "doc"]
    assert files[0]["size"] == len(photo) and files[0]["digest"] == sha256(photo)
    assert files[0]["content_type"] == "image/jpeg"
    assert files[1]["content_type"] == "text/plain"
    for f, want in zip(files, [photo, b"line one\r\n--not a boundary\r\n"]):
        r = requests.get(reg.url(f"/files/{f['id']}"), timeout=60)
        assert r.status_code == 200
        assert r.content == want, f"{f['name']} is not byte-identical"
        assert r.headers["Content-Type"] == f["content_type"]
        assert r.headers["ETag"] == f'"{f["digest"]}"'
        assert r.headers["Content-Disposition"] == f'inline; filename="{f["name"]}"'
    # And with curl itself, to a file.
    out_file = tmp_path / "back.jpg"
    subprocess.run([CURL, "-sSf", "-o", str(out_file), reg.url(f"/files/{files[0]['id']}")],
                   check=True, timeout=60)
    assert out_file.read_bytes() == photo
    # A plain POST still stores its body as one file, without a name.
    r = requests.post(reg.url("/files"), data=b"raw", headers={"Content-Type": "text/plain"},
                      timeout=10)
    assert r.status_code == 201
    r = requests.get(reg.url(f"/files/{r.json()['id']}"), timeout=10)
    assert r.content == b"raw" and "Content-Disposition" not in r.headers


def test_non_ascii_file_name(wharf_registry, tmp_path):
    reg = wharf_registry
    p = tmp_path / "été.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    code, out = curl_form(reg.url("/files"), f"pic=@{p}")
    assert code == 201, out
    (f,) = out["files"]
    assert f["name"] == "été.png"
    r = requests.get(reg.url(f"/files/{f['id']}"), timeout=10)
    assert r.content == p.read_bytes()
    assert r.headers["Content-Disposition"] == \
        "inline; filename=\"__t__.png\"; filename*=UTF-8''%C3%A9t%C3%A9.png"


def raw_post(reg, content_type: str, body: bytes) -> tuple[int, dict]:
    """POST /files with exactly `body` (requests would not send a broken form)."""
    host, port = reg.addr.rsplit(":", 1)
    head = (f"POST /files HTTP/1.1\r\nHost: {reg.addr}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    payload = data.split(b"\r\n\r\n", 1)[1]
    return status, json.loads(payload) if payload.strip() else {}


def part(boundary: str, name: str, filename: str, data: bytes) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data + b"\r\n"


@pytest.mark.parametrize("what,content_type,body,status", [
    ("no boundary parameter", "multipart/form-data", b"--x\r\n", 400),
    ("a boundary over 70 characters", "multipart/form-data; boundary=" + "b" * 71, b"", 400),
    ("no closing delimiter", "multipart/form-data; boundary=XyZ",
     part("XyZ", "a", "a.bin", os.urandom(200_000)) + part("XyZ", "b", "b.bin", b"second"), 400),
    ("truncated in the second part", "multipart/form-data; boundary=XyZ",
     part("XyZ", "a", "a.bin", os.urandom(200_000)) + part("XyZ", "b", "b.bin", b"x" * 100)[:60],
     400),
    ("a part header bomb", "multipart/form-data; boundary=XyZ",
     part("XyZ", "a", "a.bin", b"first") + b"--XyZ\r\nX-Bomb: " + b"a" * 100_000, 413),
    ("the wrong boundary", "multipart/form-data; boundary=other",
     part("XyZ", "a", "a.bin", b"first") + b"--XyZ--\r\n", 400),
    ("no file part", "multipart/form-data; boundary=XyZ",
     b"--XyZ\r\nContent-Disposition: form-data; name=note\r\n\r\nhi\r\n--XyZ--\r\n", 400),
])
def test_broken_forms_store_nothing(wharf_registry, what, content_type, body, status):
    reg = wharf_registry
    before = stored_files(reg)
    failed = counter(reg, "wharf_gateway_file_uploads_failed_total")
    got, out = raw_post(reg, content_type, body)
    assert got == status, (what, got, out)
    assert out["error"]["code"] and out["error"]["message"], out
    assert stored_files(reg) == before, f"{what}: a file was kept"
    assert counter(reg, "wharf_gateway_file_uploads_failed_total") == failed + 1
    # The gateway goes on serving.
    assert requests.get(reg.url("/healthz"), timeout=10).status_code == 200
