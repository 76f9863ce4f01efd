"""pytest wiring for the end-to-end suite: the binary, cluster fixtures, log tails on failure.

Run: WHARF_BIN=build/wharf /usr/bin/python3 -m pytest tests/e2e
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import cluster as wc  # noqa: E402


@pytest.fixture(scope="session")
def wharf_bin() -> str:
    b = wc.wharf_bin()
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail(f"wharf binary not found or not executable: {b} (set WHARF_BIN)", pytrace=False)
    return b


@pytest.fixture
def make_cluster(wharf_bin, tmp_path, request):
    """Factory for clusters private to one test; all of them are killed when the test ends."""
    made = []
    request.node._wharf_clusters = made

    def make(name: str = "c", **kw) -> wc.Cluster:
        c = wc.Cluster(wharf_bin, tmp_path / name, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture(scope="module")
def shared_cluster(wharf_bin, tmp_path_factory):
    """Two masters, groups g1 and g2 of two chunkservers each, shared by a module's tests."""
    c = wc.Cluster(wharf_bin, tmp_path_factory.mktemp("shared"))
    try:
        c.start_topology(masters=2, groups={"g1": 2, "g2": 2})
        c.wait_cluster_ready()
    except BaseException:
        sys.stderr.write("\n" + c.log_tails() + "\n")
        c.close()
        raise
    yield c
    c.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and wc.ACTIVE_CLUSTERS:
        # the clusters this test used (its private ones and the shared one), else every live one
        mine = list(getattr(item, "_wharf_clusters", []))
        shared = getattr(item, "funcargs", {}).get("shared_cluster")
        if shared is not None:
            mine.append(shared)
        mine = [c for c in mine if c in wc.ACTIVE_CLUSTERS] or wc.ACTIVE_CLUSTERS
        tails = "\n".join(c.log_tails(60) for c in mine)
        rep.sections.append((f"wharf process logs (tail, {rep.when})", tails))


def pytest_sessionfinish(session, exitstatus):
    for c in list(wc.ACTIVE_CLUSTERS):
        c.close()
    wc._kill_all_at_exit()
