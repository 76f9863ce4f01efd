#!/usr/bin/python3
"""The systemd units of docs/deploy.md: every ExecStart= command line parses and validates
(`wharf <role> ... --check-config` exits 0). systemd's ${CREDENTIALS_DIRECTORY} is a temp dir
holding the credentials the unit loads (a cluster key, a self-signed TLS pair).

usage: check_deploy_units.py WHARF_BIN docs/deploy.md
"""

import os
import re
import shlex
import subprocess
import sys
import tempfile


def exec_starts(text: str) -> list[str]:
    """Each ExecStart= of the ```ini blocks, continuation lines joined."""
    out = []
    for block in re.findall(r"```ini\n(.*?)```", text, re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("ExecStart="):
                cmd = line[len("ExecStart="):]
                while cmd.endswith("\\"):
                    i += 1
                    cmd = cmd[:-1] + " " + lines[i].strip()
                out.append(cmd)
            i += 1
    return out


def main() -> int:
    wharf, doc = sys.argv[1], sys.argv[2]
    with open(doc) as f:
        cmds = exec_starts(f.read())
    roles = {shlex.split(c)[1] for c in cmds}
    if not {"master", "chunkserver", "gateway"} <= roles:
        print(f"{doc}: expected units for master, chunkserver and gateway, found {roles}")
        return 1
    failures = 0
    with tempfile.TemporaryDirectory() as creds:
        key = os.path.join(creds, "cluster.key")
        with open(key, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.chmod(key, 0o600)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                        "/CN=registry.example.com", "-keyout",
                        os.path.join(creds, "server.key"), "-out",
                        os.path.join(creds, "server.pem")], check=True, capture_output=True)
        users = "alice:$2y$05$M/QslQseAwMLfuBlOkujjOCeYAUn/RI6iJXl2/SOZN0u8fbPtw2CS\n"  # secret
        policy = "rules:\n  - repositories: [\"**\"]\n    users: [alice]\n    actions: [pull]\n"
        for name, body in (("htpasswd", users), ("access.yaml", policy)):
            with open(os.path.join(creds, name), "w") as f:
                f.write(body)
        for cmd in cmds:
            cmd = cmd.replace("${CREDENTIALS_DIRECTORY}", creds)
            # files the doc keeps under /etc/wharf (not credentials) are made in the temp dir
            cmd = cmd.replace("/etc/wharf/", creds + "/")
            argv = shlex.split(cmd)
            if argv[0] != "/usr/local/bin/wharf":
                print(f"unexpected binary in ExecStart: {cmd}")
                failures += 1
                continue
            argv[0] = wharf
            r = subprocess.run(argv + ["--check-config"], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            ok = r.returncode == 0 and "configuration ok" in r.stdout
            print(("ok   " if ok else "FAIL ") + " ".join(argv[1:3]) + " ...")
            if not ok:
                print(f"  exit {r.returncode}: {r.stderr.strip()}\n  command: {cmd}")
                failures += 1
    print(f"{len(cmds)} ExecStart lines, {failures} failing")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
