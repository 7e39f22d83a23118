"""Inventory hosts resolved to targets: where each host's deploy root and venv cache are."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path

from orchestrator.hosts import resolve_targets
from orchestrator.inventory import load_inventory
from orchestrator.lab import Lab, LabHost
from tests.unit.conftest import APPLICATION

Write = Callable[[str, str], Path]


def lab_of(tmp_path: Path, hosts: int) -> Lab:
    """A lab as lab.up records it, with hosts h1..hN (each its own folder)."""
    return Lab(
        prefix="rq",
        subnet="10.213.99.0/24",
        bridge="rq-br",
        bridge_address="10.213.99.1",
        state_dir=tmp_path / "lab",
        key_file=tmp_path / "lab" / "id_ed25519",
        known_hosts=tmp_path / "lab" / "known_hosts",
        user="root",
        hosts=tuple(
            LabHost(
                f"rq-h{i}", f"10.213.99.{i + 1}", f"rq-h{i}", 22, None, f"/var/tmp/l/rq/rq-h{i}"
            )
            for i in range(1, hosts + 1)
        ),
    )


def test_each_lab_host_has_a_venv_cache_of_its_own_beside_its_deploy_roots(
    tmp_path: Path, app_dir: Path, write_yaml: Write
) -> None:
    """Lab hosts stand for separate machines: never one cache for two of them, however
    their filesystem is shared; the cache stays the host's where the root is set."""
    text = (
        "name: shop\nlab: true\nhosts:\n  - {name: h1, roles: [db, server]}\n"
        "  - {name: h2, roles: [client], deploy_root: /srv/elsewhere}\n" + APPLICATION
    )
    inventory = load_inventory(write_yaml("shop.yaml", text))
    targets = resolve_targets(inventory, lab_of(tmp_path, 2))
    assert {name: (t.deploy_root, t.venv_cache) for name, t in targets.items()} == {
        "h1": ("/var/tmp/l/rq/rq-h1/shop", "/var/tmp/l/rq/rq-h1/.venvs"),
        "h2": ("/srv/elsewhere", "/var/tmp/l/rq/rq-h2/.venvs"),
    }


def test_an_ssh_or_local_host_caches_venvs_per_user_wherever_its_deploy_root_is(
    app_dir: Path, write_yaml: Write
) -> None:
    text = (
        "name: shop\nhosts:\n"
        "  - {name: db1, address: 192.0.2.10, user: deploy, roles: [db]}\n"
        "  - {name: web1, address: 192.0.2.11, user: deploy, roles: [server],"
        " deploy_root: /srv/shop}\n"
        "  - {name: me, connection: local, roles: [client]}\n" + APPLICATION
    )
    targets = resolve_targets(load_inventory(write_yaml("shop.yaml", text)), None)
    me = getpass.getuser()
    assert {name: (t.deploy_root, t.venv_cache) for name, t in targets.items()} == {
        "db1": ("/var/tmp/readiness-deploy/shop", "/var/tmp/readiness-deploy/.venvs"),
        "web1": ("/srv/shop", "/var/tmp/readiness-deploy/.venvs"),
        "me": (f"/var/tmp/readiness-{me}/shop", f"/var/tmp/readiness-{me}/.venvs"),
    }
