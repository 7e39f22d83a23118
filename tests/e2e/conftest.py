"""Lab fixtures for end-to-end tests: a real lab (namespaces, bridge, OpenSSH).

The session-scoped ``lab`` fixture brings up a lab with its own prefix and subnet (so it
coexists with a user's ``rdy`` lab) in a temporary state folder, and always tears it
down, even when a test fails. Tests that break the lab on purpose must repair it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.lab import Lab, lab_down, lab_up

E2E_PREFIX = "rt"
E2E_SUBNET = "10.213.72.0/24"
E2E_HOSTS = 4


def lab_unavailable() -> str | None:
    """Why a lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("ip", "sshd", "ssh-keygen"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            return f"the lab needs {tool}"
    if not Path("/proc/self/ns/net").exists():
        return "no network namespaces"
    return None


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Parent of the state folders of test labs (what READINESS_LAB_DIR would be)."""
    return tmp_path_factory.mktemp("labs")


@pytest.fixture(scope="session")
def lab_lock() -> Iterator[None]:
    """One test session at a time owns the test prefixes (rt, and ru/rv made by the tests).

    Without it, a second concurrent session's clean-up of leftovers would tear down the
    first session's lab, which uses the same names.
    """
    path = Path(tempfile.gettempdir()) / f"readiness-e2e-lab-{E2E_PREFIX}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def lab(lab_root: Path, lab_lock: None) -> Iterator[Lab]:
    reason = lab_unavailable()
    if reason:
        # Never a skip: `make test` installs what the lab needs and CI runs as root, so a
        # missing piece is a broken set-up that must show, not a silently smaller run.
        pytest.fail(f"end-to-end tests need a lab: {reason} (run `make test` as root)")
    state_dir = lab_root / E2E_PREFIX
    deploy_base = lab_root / "deploy"
    # Leftovers of an interrupted earlier session carry the same prefix: clear them.
    lab_down(prefix=E2E_PREFIX, state_dir=state_dir)
    try:
        yield lab_up(
            hosts=E2E_HOSTS,
            prefix=E2E_PREFIX,
            subnet=E2E_SUBNET,
            state_dir=state_dir,
            deploy_base=deploy_base,
        )
    finally:
        lab_down(prefix=E2E_PREFIX, state_dir=state_dir)
