"""The host's cache of built virtualenvs, end to end (issue 13): two inventories with
different names, so two deploy roots, deploy the same application onto the same lab
host. The second is sent no wheels and builds nothing: both of its virtualenvs are
links to the ones built for the first, and its layers run through them (the server's
pytest, and a client step that checks its venv is the root's link into the cache).

The lab (prefix ``rc``, one host) is the CLI's own, and always removed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import lab_unavailable
from tests.e2e.support import BROKER_APPLICATION, Run, lab_section, lab_workdir, run_readiness

pytestmark = pytest.mark.e2e

PREFIX = "rc"
SUBNET = "10.213.86.0/24"
INVENTORY = (
    lab_section(PREFIX, SUBNET, 1)
    + "hosts:\n  - {name: h1, roles: [db, server, client]}\n"
    + BROKER_APPLICATION
)
# Cheap layers that still use both venvs: the broker's plain-Python tests on the server's,
# and a client step that fails unless its venv is the deploy root's link (the root in
# every command line) leading into the host's cache.
SUITE = """\
layers:
  - name: python-unit
    role: server
    command: >-
      python -m pytest brokercalc/tests -p no:django -p no:cacheprovider
      --junitxml="$READINESS_JUNIT"
  - step: client-venv
    role: client
    command: |
      set -e
      test -L "$VIRTUAL_ENV"
      case $(readlink "$VIRTUAL_ENV") in */.venvs/*) ;; *) exit 1 ;; esac
      test "$(python -c 'import sys, pytest; print(sys.prefix)')" = "$VIRTUAL_ENV"
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = lab_unavailable()
    if reason:
        pytest.fail(f"end-to-end tests need a lab: {reason}")
    with lab_workdir(tmp_path_factory.mktemp("venv-cache"), PREFIX) as work:
        (work / "cheap.yaml").write_text(SUITE)
        yield work


def code_entry(run: Run) -> dict[str, Any]:
    """The record's entry of the code push (the server's; the client's shares its push)."""
    servers: list[dict[str, Any]] = [d for d in run.record["deploy"] if d["component"] == "server"]
    (server,) = servers
    return server


def test_a_second_deploy_root_on_the_host_links_the_venvs_of_the_first(workdir: Path) -> None:
    suite = f"--suite={workdir / 'cheap.yaml'}"
    first = run_readiness(workdir, "rc-first", INVENTORY, suite)
    assert first.code == 0 and first.record["verdict"] == "ready", first.diagnostics()

    second = run_readiness(workdir, "rc-second", INVENTORY, suite)

    assert second.code == 0 and second.record["verdict"] == "ready", second.diagnostics()
    build = second.record["build"]
    venvs = {build["server_wheelhouse"], build["client_wheelhouse"]}
    server = code_entry(second)
    assert sorted(server["linked"]) == sorted(venvs), server
    assert not [part for part in server["sent"] if part.startswith("wheels-")], server
    assert server["installer"] is None and server["round_trips"] == 1, server
    assert server["bytes_sent"] < 1_000_000, server  # the code; the wheels are ~15 MB
    assert "venvs linked from the host's cache" in second.output
    layers = {layer["name"]: layer["status"] for layer in second.record["layers"]}
    assert layers == {"python-unit": "passed", "client-venv": "passed"}, layers
