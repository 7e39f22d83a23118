"""Inventory validation: good files load; each bad one is refused naming file, line, field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.exceptions import ConfigError
from orchestrator.inventory import load_inventory, resolve
from tests.unit.conftest import APPLICATION, CLUSTER, SINGLE

Write = Callable[[str, str], Path]


def test_single_lab_inventory_loads(app_dir: Path, write_yaml: Write) -> None:
    inv = load_inventory(write_yaml("single.yaml", SINGLE))
    assert inv.name == "single"
    assert inv.lab is not None
    (host,) = inv.hosts
    assert host.connection == "lab" and host.roles == ("db", "server", "client")
    assert inv.application.source == app_dir.resolve()
    assert inv.application.server_mode == "testserver"
    assert inv.application.client_source == "tests_it"
    assert inv.database.mode == "managed"
    assert inv.db_host is not None and inv.db_host.name == "h1"


def test_ssh_inventory_loads_with_one_host_per_role(app_dir: Path, write_yaml: Write) -> None:
    inv = load_inventory(write_yaml("cluster.yaml", CLUSTER))
    assert [h.connection for h in inv.hosts] == ["ssh"] * 3
    assert [h.name for h in inv.with_role("server")] == ["web1"]
    assert inv.host("cl1").address == "cl1.example.org"


def test_the_database_engine_defaults_to_mariadb(app_dir: Path, write_yaml: Write) -> None:
    assert load_inventory(write_yaml("single.yaml", SINGLE)).database.engine == "mariadb"
    explicit = SINGLE + "database: {engine: mariadb}\n"
    assert load_inventory(write_yaml("explicit.yaml", explicit)).database.engine == "mariadb"


def test_inventory_names_resolve_under_inventories(tmp_path: Path) -> None:
    assert resolve("single", root=tmp_path) == tmp_path / "inventories" / "single.yaml"
    assert resolve("./x.yaml", root=tmp_path) == Path("x.yaml")
    with pytest.raises(ConfigError):
        resolve("bad name;rm", root=tmp_path)


BAD_CASES = {
    "unknown key": (
        SINGLE.replace("    roles:", "    rolez: [db]\n    roles:"),
        4,
        "hosts[0].rolez",
    ),
    "wrong type": (SINGLE.replace("  - name: h1", "  - name: 42"), 3, "hosts[0].name"),
    "missing role": (SINGLE.replace("[db, server, client]", "[db, server]"), 3, "hosts"),
    "unknown role": (SINGLE.replace("[db, server, client]", "[db, web]"), 4, "hosts[0].roles"),
    "duplicate host": (
        SINGLE.replace("hosts:\n", "hosts:\n  - {name: h1, roles: [client]}\n"),
        4,
        "hosts[1].name",
    ),
    "address on a lab host": (
        SINGLE.replace("  - name: h1\n", "  - name: h1\n    address: 10.0.0.1\n"),
        4,
        "hosts[0].address",
    ),
    "shell in an address": (
        CLUSTER.replace("192.0.2.11", "'$(touch /tmp/pwned)'"),
        3,
        "hosts[1].address",
    ),
    "hostile deploy root": (
        CLUSTER.replace("roles: [db]}", "roles: [db], deploy_root: '/tmp/x; rm -rf /'}"),
        2,
        "hosts[0].deploy_root",
    ),
    "inline password": (
        CLUSTER + "database:\n  password: hunter2\n",
        12,
        "database.password",
    ),
    "existing db without env": (CLUSTER + "database:\n  mode: existing\n", 12, "database.host_env"),
    "path escaping the app": (
        SINGLE.replace("fixtures: [fixtures.json]", "fixtures: [../../etc/passwd]"),
        9,
        "application.fixtures",
    ),
    "missing requirements": (
        SINGLE.replace("requirements: requirements.txt", "requirements: nope.txt"),
        8,
        "application.requirements",
    ),
    "lab connection without lab": (
        CLUSTER.replace("user: deploy, roles: [db]", "connection: lab, roles: [db]"),
        2,
        "hosts[0].connection",
    ),
    "two servers": (
        CLUSTER.replace("roles: [client]}", "roles: [client, server]}"),
        2,
        "hosts",
    ),
    "env bypassing the overlay": (
        SINGLE + "  env: {DJANGO_SETTINGS_MODULE: mysite.prod}\n",
        11,
        "application.env",
    ),
    "root as the app's database user": (
        SINGLE + "database: {user: root}\n",
        11,
        "database.user",
    ),
    "unknown database engine": (
        SINGLE + "database: {engine: oracle}\n",
        11,
        "database.engine",
    ),
    "ssh host without address": (
        "hosts:\n  - {name: a, roles: [db, server, client]}\n" + APPLICATION,
        2,
        "hosts[0].address",
    ),
}


@pytest.mark.parametrize("text,line,field", BAD_CASES.values(), ids=BAD_CASES.keys())
def test_bad_inventories_name_file_line_and_field(
    app_dir: Path, write_yaml: Write, text: str, line: int, field: str
) -> None:
    path = write_yaml("inv.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line {line}, field '{field}': "), message
    assert "\n" not in message


def test_yaml_syntax_errors_and_python_tags_are_config_errors(
    app_dir: Path, write_yaml: Write
) -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_inventory(write_yaml("a.yaml", SINGLE.replace("roles: [db,", "roles: [db,,{")))
    with pytest.raises(ConfigError, match="line 1"):
        load_inventory(write_yaml("b.yaml", "!!python/object:os.system\n" + SINGLE))


def test_application_without_manage_py_is_refused(app_dir: Path, write_yaml: Write) -> None:
    (app_dir / "manage.py").unlink()
    with pytest.raises(ConfigError, match="not a Django project"):
        load_inventory(write_yaml("single.yaml", SINGLE))


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["single", "cluster", "example-hosts"])
def test_shipped_inventories_and_their_suite_validate(name: str) -> None:
    from orchestrator.plan import build_plan
    from orchestrator.suite import load_suite
    from orchestrator.suite import resolve as resolve_suite

    inv = load_inventory(REPO / "inventories" / f"{name}.yaml")
    suite = load_suite(resolve_suite(inv.suite, root=REPO))
    plan = build_plan(inv, suite)
    assert [s.layer.name for s in plan.layers] == ["django-unit", "python-unit", "rest-integration"]
    expected = "all-on-one" if name == "single" else "distributed"
    assert plan.topology == expected


def test_fixtures_may_be_django_labels_or_existing_files(app_dir: Path, write_yaml: Write) -> None:
    inv = load_inventory(write_yaml("l.yaml", SINGLE.replace("[fixtures.json]", "[initial]")))
    assert inv.application.fixtures == ("initial",)
    with pytest.raises(ConfigError, match="does not exist"):
        load_inventory(write_yaml("m.yaml", SINGLE.replace("[fixtures.json]", "[missing.json]")))
