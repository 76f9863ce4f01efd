"""Replication rules (`--replicate FILE`): a `wharf up` copying what is pushed to it to Debian's
`docker-registry` and to a second wharf (push rules), and copying from a registry on its own
(pull rules).

  push team/app:v1 here   ->  queued before the push is acknowledged, shipped to each target
                              (blobs, then the manifest, then the tag); skopeo pulls it from
                              the targets byte-identical
  a target down at first  ->  the job waits and retries; the target gets it once it is up
  a target refusing       ->  the job fails after its attempts, with its error, in
                              GET /admin/replication
  tags: ["v*"]            ->  only matching tags are replicated
  mode: pull              ->  the source's matching repositories and tags appear here, and
                              follow a moved tag
  delete: true            ->  a manifest deleted here (by digest, or a tag) is deleted at the
                              targets; rules without it leave the targets' copies alone
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import requests

from cluster import closing, free_port, metric, wait_until
from registry_env import (OCI_MANIFEST, Registries, Registry, push_image, push_image_two_step,
                          sha256_digest)

SKOPEO = shutil.which("skopeo")


def layer(seed: int, size: int) -> bytes:
    block = bytes((seed * 17 + i) % 251 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


class Env(Registries):
    def rules(self, name: str, doc: dict) -> str:
        path = self.tmp / f"{name}.yaml"
        path.write_text(json.dumps(doc))  # JSON is YAML
        return str(path)


@pytest.fixture
def env(wharf_bin, tmp_path):
    yield from closing(Env(wharf_bin, tmp_path))


def manifest_of(reg: Registry, repo: str, ref: str) -> requests.Response:
    return requests.get(reg.url(f"/v2/{repo}/manifests/{ref}"), headers={"Accept": OCI_MANIFEST},
                        timeout=30)


def has_manifest(reg: Registry, repo: str, ref: str, body: bytes) -> bool:
    try:
        r = manifest_of(reg, repo, ref)
    except requests.RequestException:
        return False
    return r.status_code == 200 and r.content == body


def admin(reg: Registry, **params) -> dict:
    r = requests.get(reg.url("/admin/replication"), params=params, timeout=30)
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    return r.json()


def skopeo_pull(reg: Registry, ref: str, out) -> None:
    subprocess.run([SKOPEO, "--insecure-policy", "copy", "--src-tls-verify=false",
                    f"docker://{reg.addr}/{ref}", f"dir:{out}"], check=True, capture_output=True,
                   timeout=300)


def test_push_rules_copy_to_the_reference_and_to_another_wharf(env):
    ref = env.reference("dr-ref")
    other = env.wharf("dr-wharf")
    rules = env.rules("rules", {
        "rules": [{"name": "to-dr", "repositories": ["team/**"],
                   "targets": [f"http://{ref.addr}", {"url": f"http://{other.addr}"}]}],
        "retry": {"initial": "1s", "max": "2s"},
    })
    src = env.wharf("src", ["--replicate", rules])
    digest0, body0 = push_image(src, "elsewhere/app", "v1", [layer(0, 5000)])
    layers = [layer(1, 3 << 20), layer(2, 70_000)]
    digest, body = push_image(src, "team/app", "v1", layers)

    for target in (ref, other):
        wait_until(lambda: has_manifest(target, "team/app", "v1", body), 60,
                   f"team/app:v1 replicated to {target.proc.name}")
        assert manifest_of(target, "team/app", digest).content == body
        if SKOPEO:
            out = env.tmp / f"pulled-{target.proc.name}"
            skopeo_pull(target, "team/app:v1", out)
            assert (out / "manifest.json").read_bytes() == body
            for l in layers:
                assert (out / sha256_digest(l).split(":")[1]).read_bytes() == l
        # Repositories no rule names stay here.
        assert manifest_of(target, "elsewhere/app", "v1").status_code == 404

    # The jobs are done, per target; bytes were counted.
    def all_done():
        view = admin(src)
        return all(t["pending"] == 0 and t["running"] == 0 and t["done"] >= 2
                   for t in view["targets"])
    wait_until(all_done, 30, "the replication jobs done")
    view = admin(src)
    assert sorted(t["url"] for t in view["targets"]) == sorted(
        [f"http://{ref.addr}", f"http://{other.addr}"])
    for t in view["targets"]:
        assert t["failed"] == 0
        kinds = {(i["kind"], i["repository"], i["tag"] or i["digest"]) for i in t["items"]}
        assert ("manifest", "team/app", digest) in kinds and ("tag", "team/app", "v1") in kinds
    assert metric(src.addr, "wharf_replication_queue_bytes_total") >= 2 * sum(map(len, layers))
    one = admin(src, target=f"http://{ref.addr}", state="done", n=1)
    assert len(one["targets"]) == 1 and len(one["targets"][0]["items"]) == 1
    assert one["targets"][0]["next_last"] is not None
    assert requests.get(src.url("/admin/replication"), params={"target": "http://nowhere:1"},
                        timeout=10).status_code == 404
    assert requests.get(src.url("/admin/replication"), params={"state": "bogus"},
                        timeout=10).status_code == 400

    # A tag moved here moves there.
    digest2, body2 = push_image(src, "team/app", "v1", [layer(3, 9000)])
    for target in (ref, other):
        wait_until(lambda: has_manifest(target, "team/app", "v1", body2), 60,
                   f"the moved tag replicated to {target.proc.name}")


def test_a_target_down_at_first_gets_it_once_up_and_a_refusing_one_fails(env):
    later = env.reference("later", start=False)  # its port is chosen, nothing listens yet
    refusing = env.wharf("refusing", ["--read-only"])
    rules = env.rules("rules", {
        "rules": [{"name": "later", "repositories": ["**"], "targets": [f"http://{later.addr}"]},
                  {"name": "refusing", "repositories": ["team/**"],
                   "targets": [f"http://{refusing.addr}"]}],
        "retry": {"attempts": 2, "initial": "1s", "max": "2s"},
    })
    src = env.wharf("src", ["--replicate", rules])
    digest, body = push_image(src, "team/app", "v1", [layer(4, 200_000)])

    def state_of(url):
        return next(t for t in admin(src)["targets"] if t["url"] == url)

    # The down target's jobs wait, with the error of their last attempt.
    wait_until(lambda: any(i["attempts"] >= 1 and i["last_error"]
                           for i in state_of(f"http://{later.addr}")["items"]), 30,
               "a failed attempt to the down target")
    assert state_of(f"http://{later.addr}")["failed"] == 0  # unreachable: retried, never given up
    # The refusing target (read-only: 405 to every write) fails its jobs after 2 attempts.
    wait_until(lambda: state_of(f"http://{refusing.addr}")["failed"] >= 1, 60,
               "the refused job failed")
    failed = admin(src, target=f"http://{refusing.addr}", state="failed")["targets"][0]["items"]
    assert failed and all(i["state"] == "failed" and "405" in i["last_error"] for i in failed), \
        failed
    wait_until(lambda: metric(src.addr, "wharf_replication_queue_failed") >= 1, 10,
               "the failed gauge (updated every second)")

    # The down target comes up: it gets the image.
    later.proc.start()
    wait_until(lambda: has_manifest(later, "team/app", "v1", body), 60,
               "team/app:v1 replicated once the target is up")
    wait_until(lambda: state_of(f"http://{later.addr}")["pending"] == 0, 30, "jobs done")


def test_a_tag_filter_replicates_only_matching_tags(env):
    ref = env.reference("dr")
    rules = env.rules("rules", {
        "rules": [{"name": "releases", "repositories": ["team/*"], "tags": ["v*"],
                   "targets": [f"http://{ref.addr}"]}],
    })
    src = env.wharf("src", ["--replicate", rules])
    _, latest = push_image(src, "team/app", "latest", [layer(5, 4000)])
    _, v2 = push_image(src, "team/app", "v2", [layer(6, 4000)])
    wait_until(lambda: has_manifest(ref, "team/app", "v2", v2), 60, "v2 replicated")
    assert manifest_of(ref, "team/app", "latest").status_code == 404


def test_pull_rules_copy_from_a_source_and_follow_its_tags(env):
    source = env.reference("source")
    layers = [layer(7, 1 << 20), layer(8, 3000)]
    digest, body = push_image_two_step(source, "mirror/base", "v1", layers)
    push_image_two_step(source, "private/x", "v1", [layer(9, 100)])
    rules = env.rules("rules", {
        "rules": [{"name": "mirror", "mode": "pull", "interval": "1s",
                   "repositories": ["mirror/**"], "targets": [f"http://{source.addr}"]}],
    })
    w = env.wharf("mirror", ["--replicate", rules])
    wait_until(lambda: has_manifest(w, "mirror/base", "v1", body), 60, "mirror/base:v1 pulled")
    for l in layers:
        b = requests.get(w.url(f"/v2/mirror/base/blobs/{sha256_digest(l)}"), timeout=60)
        assert b.status_code == 200 and b.content == l
    assert manifest_of(w, "private/x", "v1").status_code == 404  # no rule names it
    # The source's tag moves: the copy follows.
    d2, body2 = push_image_two_step(source, "mirror/base", "v1", [layer(10, 5000)])
    wait_until(lambda: has_manifest(w, "mirror/base", "v1", body2), 60, "the moved tag pulled")
    state = admin(w)["pull_rules"]
    assert len(state) == 1 and state[0]["rule"] == "mirror" and state[0]["copied"] >= 2
    assert state[0]["last_error"] == ""


def test_delete_true_replicates_deletes_and_rules_without_it_keep_copies(env):
    ref = env.reference("del-ref")
    other = env.wharf("del-wharf")
    rules = env.rules("rules", {
        "rules": [{"name": "mirror", "repositories": ["team/**"], "delete": True,
                   "targets": [f"http://{ref.addr}", f"http://{other.addr}"]},
                  {"name": "keep", "repositories": ["keep/**"], "targets": [f"http://{ref.addr}"]}],
        "retry": {"attempts": 2, "initial": "1s", "max": "1s"},
    })
    src = env.wharf("src", ["--replicate", rules])
    d1, b1 = push_image(src, "team/app", "v1", [layer(11, 6000)])
    d2, b2 = push_image(src, "team/app", "v2", [layer(12, 7000)])
    dk, bk = push_image(src, "keep/app", "v1", [layer(13, 8000)])
    for target, repo, tag, body in ((ref, "team/app", "v1", b1), (ref, "team/app", "v2", b2),
                                    (other, "team/app", "v1", b1), (other, "team/app", "v2", b2),
                                    (ref, "keep/app", "v1", bk)):
        wait_until(lambda: has_manifest(target, repo, tag, body), 60,
                   f"{repo}:{tag} replicated to {target.proc.name}")

    def settled():
        return all(t["pending"] == 0 and t["running"] == 0 for t in admin(src)["targets"])

    # A manifest deleted here by digest goes at both targets; its sibling stays.
    r = requests.delete(src.url(f"/v2/team/app/manifests/{d1}"), timeout=30)
    assert r.status_code == 202, r.text
    for target in (ref, other):
        wait_until(lambda: manifest_of(target, "team/app", d1).status_code == 404, 60,
                   f"team/app@{d1} deleted at {target.proc.name}")
        assert has_manifest(target, "team/app", "v2", b2)
    # A rule without delete: the target keeps its copy.
    assert requests.delete(src.url(f"/v2/keep/app/manifests/{dk}"), timeout=30).status_code == 202
    wait_until(settled, 60, "the jobs after the deletes settled")
    assert has_manifest(ref, "keep/app", "v1", bk)
    view = {t["url"]: t for t in admin(src)["targets"]}
    for target in (ref, other):
        items = view[f"http://{target.addr}"]["items"]
        assert any(i["kind"] == "delete" and i["digest"] == d1 and i["state"] == "done"
                   for i in items), items
        assert not any(i["kind"] == "delete" and i["repository"] == "keep/app" for i in items)

    # A tag deleted here goes at the other wharf (which deletes tags); the manifest stays there.
    assert requests.delete(src.url("/v2/team/app/manifests/v2"), timeout=30).status_code == 202
    wait_until(lambda: manifest_of(other, "team/app", "v2").status_code == 404, 60,
               "team/app:v2 untagged at the other wharf")
    assert manifest_of(other, "team/app", d2).status_code == 200

    # A deletion of something this registry never had is a 404 and reaches no target.
    never = "sha256:" + "0" * 64
    assert requests.delete(src.url(f"/v2/team/app/manifests/{never}"),
                           timeout=30).status_code == 404
    assert not any(i["kind"] == "delete" and i["digest"] == never
                   for t in admin(src)["targets"] for i in t["items"])

    # Pushed again after the delete: replicated again.
    push_image(src, "team/app", "v1", [layer(11, 6000)])
    for target in (ref, other):
        wait_until(lambda: has_manifest(target, "team/app", "v1", b1), 60,
                   f"team/app:v1 replicated again to {target.proc.name}")


@pytest.mark.parametrize("doc, want", [
    ("rules: [", "not valid YAML"),
    ("{}", "rules: expected a non-empty list"),
    ('{"rules": [{"name": "a", "repositories": ["x"]}]}', "rules[0]: a rule needs targets"),
    ('{"rules": [{"name": "a", "repositories": ["x"], "targets": ["ftp://h"]}]}',
     "rules[0].targets[0]: want http://HOST"),
    ('{"rules": [{"name": "a", "repositories": ["x"], "targets": ["http://h:1"], "mode": "both"}]}',
     "rules[0].mode: want push or pull"),
    ('{"rules": [{"name": "a", "repositories": ["x"], "targets": ["http://h:1"], "delete": "maybe"}]}',
     "rules[0].delete: want true or false"),
    ('{"rules": [{"name": "a", "mode": "pull", "repositories": ["x"], "targets": ["http://h:1"],'
     ' "delete": true}]}', "rules[0].delete: only push rules replicate deletes"),
])
def test_bad_rules_are_one_line_at_start(wharf_bin, tmp_path, doc, want):
    path = tmp_path / "rules.yaml"
    path.write_text(doc)
    r = subprocess.run([wharf_bin, "up", "--data", str(tmp_path / "d"), "--listen",
                        f"127.0.0.1:{free_port()}", "--cluster-port", "0", "--replicate",
                        str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert want in r.stderr, r.stderr
    assert f"--replicate {path}" in r.stderr, r.stderr
