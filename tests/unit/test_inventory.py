"""Inventory validation: good files load; each bad one is refused naming file, line, field."""

from __future__ import annotations

import re
import shutil
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
    assert inv.application.client_source.value == "tests_it"
    assert inv.application.client_source.path == app_dir.resolve() / "tests_it"
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
    (app_dir / "shop" / "fixtures").mkdir(parents=True)
    (app_dir / "shop" / "fixtures" / "initial.json.gz").write_bytes(b"")
    inv = load_inventory(write_yaml("l.yaml", SINGLE.replace("[fixtures.json]", "[initial]")))
    assert [f.label for f in inv.application.fixtures] == ["initial"]
    with pytest.raises(ConfigError, match=r"'x/missing\.json': it is not a file in the app"):
        load_inventory(write_yaml("m.yaml", SINGLE.replace("[fixtures.json]", "[x/missing.json]")))


def test_a_fixture_label_django_cannot_find_is_a_config_error_before_any_deploy(
    app_dir: Path, write_yaml: Write
) -> None:
    (app_dir / "node_modules" / "fixtures").mkdir(parents=True)
    (app_dir / "node_modules" / "fixtures" / "nowhere.json").write_text("[]")  # not searched
    with pytest.raises(ConfigError) as caught:
        load_inventory(write_yaml("n.yaml", SINGLE.replace("[fixtures.json]", "[nowhere]")))
    assert caught.value.field == "application.fixtures"
    assert "no fixture 'nowhere': it is not a file in the application" in str(caught.value)


def test_a_label_with_its_extension_is_found_in_the_apps_fixtures_folders(
    app_dir: Path, write_yaml: Write
) -> None:
    (app_dir / "shop" / "fixtures").mkdir(parents=True)
    (app_dir / "shop" / "fixtures" / "initial_data.json").write_text("[]")
    text = SINGLE.replace("[fixtures.json]", "[initial_data.json]")
    (fixture,) = load_inventory(write_yaml("d.yaml", text)).application.fixtures
    assert (fixture.label, fixture.shipped) == ("initial_data.json", False)
    with pytest.raises(ConfigError, match=r"no fixture 'other\.json': it is not a file"):
        load_inventory(write_yaml("e.yaml", SINGLE.replace("[fixtures.json]", "[other.json]")))


# --------------------------------------------------------------------------- issue 8
# Each input that passed validation before (or crashed it), refused now with exit code 2
# and a one-line message naming the file, the line and the field.


def one_host(extra: str, roles: str = "[db, server, client]") -> str:
    return f"hosts:\n  - {{name: a, address: 192.0.2.10, roles: {roles}{extra}}}\n" + APPLICATION


ISSUE_8 = {
    # Paths are normalised before they are judged.
    "deploy_root /. is /": (one_host(', deploy_root: "/."'), 2, "hosts[0].deploy_root", "is /"),
    "deploy_root // is /": (one_host(', deploy_root: "//"'), 2, "hosts[0].deploy_root", "is /"),
    "deploy_root /./ is /": (one_host(", deploy_root: /./"), 2, "hosts[0].deploy_root", "is /"),
    "deploy_root with ..": (
        one_host(", deploy_root: /var/tmp/../etc"),
        2,
        "hosts[0].deploy_root",
        "'..'",
    ),
    "deploy_root /etc": (one_host(", deploy_root: /etc"), 2, "hosts[0].deploy_root", "system"),
    "deploy_root /var": (one_host(", deploy_root: /var//"), 2, "hosts[0].deploy_root", "system"),
    "deploy_root /var/tmp": (
        one_host(", deploy_root: /var/tmp"),
        2,
        "hosts[0].deploy_root",
        "system",
    ),
    "deploy_root in /usr": (
        one_host(", deploy_root: /usr/local/app"),
        2,
        "hosts[0].deploy_root",
        "system",
    ),
    "deploy_root in /proc": (
        one_host(", deploy_root: /proc/self"),
        2,
        "hosts[0].deploy_root",
        "system",
    ),
    "deploy_root ending in a newline": (
        one_host(r', deploy_root: "/tmp/x\n"'),
        2,
        "hosts[0].deploy_root",
        "absolute path",
    ),
    "deploy_root too long for the database socket": (
        one_host(", deploy_root: /var/tmp/" + "d" * 90),
        2,
        "hosts[0].deploy_root",
        "107 bytes",
    ),
    # Addresses that services would bind to must name one host.
    "address 0.0.0.0": (
        one_host("").replace("192.0.2.10", "0.0.0.0"),
        2,
        "hosts[0].address",
        "wildcard",
    ),
    "address ::": (one_host("").replace("192.0.2.10", "'::'"), 2, "hosts[0].address", "wildcard"),
    "address ::ffff:0.0.0.0": (
        one_host("").replace("192.0.2.10", "'::ffff:0.0.0.0'"),
        2,
        "hosts[0].address",
        "wildcard",
    ),
    "address multicast": (
        one_host("").replace("192.0.2.10", "224.0.0.1"),
        2,
        "hosts[0].address",
        "multicast",
    ),
    "address ipv6 multicast": (
        one_host("").replace("192.0.2.10", "'ff02::1'"),
        2,
        "hosts[0].address",
        "multicast",
    ),
    "address broadcast": (
        one_host("").replace("192.0.2.10", "255.255.255.255"),
        2,
        "hosts[0].address",
        "broadcast",
    ),
    "address '0' (0.0.0.0 to the resolver)": (
        one_host("").replace("192.0.2.10", "'0'"),
        2,
        "hosts[0].address",
        "legacy form",
    ),
    "address with an IPv6 zone carrying shell": (
        one_host("").replace("192.0.2.10", "'fe80::1%$(reboot)'"),
        2,
        "hosts[0].address",
        "zone",
    ),
    # The lab section is checked by the loader (and so by --dry-run).
    "lab prefix rp;id": (
        SINGLE.replace("lab: true", "lab: {prefix: 'rp;id'}"),
        1,
        "lab.prefix",
        "",
    ),
    "lab prefix with a newline": (
        SINGLE.replace("lab: true", r'lab: {prefix: "rdy\n"}'),
        1,
        "lab.prefix",
        "invalid lab prefix",
    ),
    "lab subnet 8.8.8.0/24": (
        SINGLE.replace("lab: true", "lab: {subnet: 8.8.8.0/24}"),
        1,
        "lab.subnet",
        "not a private range",
    ),
    "lab subnet 0.0.0.0/0": (
        SINGLE.replace("lab: true", "lab: {subnet: 0.0.0.0/0}"),
        1,
        "lab.subnet",
        "not a private range",
    ),
    "lab subnet 0.0.0.0/8 (private to Python, not RFC 1918)": (
        SINGLE.replace("lab: true", "lab: {subnet: 0.0.0.0/8}"),
        1,
        "lab.subnet",
        "not a private range",
    ),
    "lab subnet garbage": (
        SINGLE.replace("lab: true", "lab: {subnet: garbage}"),
        1,
        "lab.subnet",
        "invalid lab subnet",
    ),
    "lab subnet too small for the default 4 hosts": (
        SINGLE.replace("lab: true", "lab: {subnet: 10.0.0.0/30}"),
        1,
        "lab.subnet",
        "room for 1 hosts",
    ),
    "lab hosts fewer than the hosts named": (
        SINGLE.replace("lab: true", "lab: {hosts: 2}").replace("name: h1", "name: h3"),
        1,
        "lab.hosts",
        "h3",
    ),
    "lab host that is no lab host name": (
        SINGLE.replace("name: h1", "name: web"),
        3,
        "hosts[0].name",
        "not a lab host name",
    ),
    # Every pattern matches the whole value: '$' let a trailing newline through.
    "settings ending in a newline": (
        SINGLE.replace("mysite.settings", r'"mysite.settings\n"'),
        7,
        "application.settings",
        "",
    ),
    "database name ending in a newline": (
        SINGLE + 'database: {name: "app\\n"}\n',
        11,
        "database.name",
        "",
    ),
    "user ending in a newline": (
        one_host(r', user: "deploy\n"'),
        2,
        "hosts[0].user",
        "",
    ),
    "requirements ending in a newline": (
        SINGLE.replace("requirements: requirements.txt", r'requirements: "requirements.txt\n"'),
        8,
        "application.requirements",
        "",
    ),
    "env name ending in a newline": (
        SINGLE + '  env: {"A\\n": x}\n',
        11,
        "application.env",
        "",
    ),
    # Requirement, fixture and client paths stay inside the application.
    "requirements ../../../": (
        SINGLE.replace("requirements: requirements.txt", "requirements: ../../../etc/passwd"),
        8,
        "application.requirements",
        "inside the application",
    ),
    "requirements absolute and missing": (
        SINGLE.replace("requirements: requirements.txt", "requirements: /nonexistent/r.txt"),
        8,
        "application.requirements",
        "file /nonexistent/r.txt does not exist",
    ),
    "client source ..": (
        SINGLE.replace("{source: tests_it,", "{source: '..',"),
        10,
        "application.client.source",
        "inside the application",
    ),
    "client requirements ../": (
        SINGLE.replace("tests_it/requirements.txt", "../app/requirements.txt"),
        10,
        "application.client.requirements",
        "inside the application",
    ),
    # Ports of two components on one machine.
    "database port = server port on one host": (
        SINGLE + "database: {port: 8000}\n",
        11,
        "database.port",
        "both 8000",
    ),
    "server port = default database port on one host": (
        SINGLE.replace("  client:", "  server: {port: 3307}\n  client:"),
        10,
        "application.server.port",
        "both 3307",
    ),
    # Strings no path or argument can hold.
    "NUL in application.source": (
        SINGLE.replace("source: app", r'source: "app\0x"'),
        6,
        "application.source",
        "NUL",
    ),
    "5,000-character application.source": (
        SINGLE.replace("source: app", "source: " + "a" * 5000),
        6,
        "application.source",
        "bytes long",
    ),
    "unknown ~user in application.source": (
        SINGLE.replace("source: app", "source: '~nosuchuser/app'"),
        6,
        "application.source",
        "user this machine does not know",
    ),
    "lone surrogate in a value": (
        SINGLE.replace("settings: mysite.settings", r'settings: "\ud800"'),
        7,
        "application.settings",
        "surrogate",
    ),
    "5,000-digit integer": (
        SINGLE + "database: {port: 1" + "0" * 5000 + "}\n",
        11,
        "database.port",
        "invalid int",
    ),
}


@pytest.mark.parametrize("text,line,field,says", ISSUE_8.values(), ids=ISSUE_8.keys())
def test_issue_8_inputs_are_refused_naming_file_line_and_field(
    app_dir: Path, write_yaml: Write, text: str, line: int, field: str, says: str
) -> None:
    path = write_yaml("inv.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert message.startswith(f"{path}, line {line}, field '{field}': "), message
    assert says in message and "\n" not in message and len(message) < 600, message


def test_deploy_root_is_kept_normalised(app_dir: Path, write_yaml: Write) -> None:
    inv = load_inventory(write_yaml("inv.yaml", one_host(", deploy_root: /var/tmp//rdy/./x/")))
    assert inv.hosts[0].deploy_root == "/var/tmp/rdy/x"


def test_lab_prefix_subnet_and_size_that_fit_are_accepted(app_dir: Path, write_yaml: Write) -> None:
    text = SINGLE.replace("lab: true", "lab: {prefix: rt, subnet: 10.9.8.0/29, hosts: 3}")
    inv = load_inventory(write_yaml("inv.yaml", text.replace("name: h1", "name: rt-h3")))
    assert inv.lab is not None and (inv.lab.prefix, inv.lab.hosts) == ("rt", 3)


def test_db_and_server_on_two_hosts_of_one_address_may_not_share_a_port(
    app_dir: Path, write_yaml: Write
) -> None:
    text = (
        "hosts:\n"
        "  - {name: db1, address: 192.0.2.10, roles: [db]}\n"
        "  - {name: web1, address: 192.0.2.10, roles: [server, client]}\n"
        + APPLICATION
        + "database: {port: 8000}\n"
    )
    path = write_yaml("inv.yaml", text)
    with pytest.raises(ConfigError, match=r"line 10, field 'database\.port'.*'db1', 'web1'"):
        load_inventory(path)
    # On two machines, the same port is fine.
    load_inventory(
        write_yaml(
            "ok.yaml", text.replace("web1, address: 192.0.2.10", "web1, address: 192.0.2.11")
        )
    )


@pytest.mark.parametrize(
    "link,target,field",
    [
        ("requirements.txt", "/etc/passwd", "application.requirements"),
        ("fixtures.json", "/etc/hostname", "application.fixtures"),
        ("tests_it", "/", "application.client.source"),
    ],
)
def test_paths_leading_out_of_the_application_through_a_symlink_are_refused(
    app_dir: Path, write_yaml: Write, link: str, target: str, field: str
) -> None:
    """The resolved path is what pip and the bundler read: a symlink must not reach the
    whole control node."""
    if (app_dir / link).is_dir():
        shutil.rmtree(app_dir / link)
    else:
        (app_dir / link).unlink()
    (app_dir / link).symlink_to(target)
    text = SINGLE.replace(", requirements: tests_it/requirements.txt", "")
    with pytest.raises(ConfigError, match=rf"field '{re.escape(field)}'.*leads outside"):
        load_inventory(write_yaml("inv.yaml", text))


def test_requirement_includes_stay_inside_the_application_and_are_never_quoted(
    app_dir: Path, write_yaml: Write
) -> None:
    """`-r ../../../x` inside a requirement file reaches as far as the field itself would."""
    (app_dir / "requirements.txt").write_text("Django\n# shared\n-r ../../../etc/passwd\n")
    path = write_yaml("inv.yaml", SINGLE)
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 8, field 'application.requirements': ")
    assert f"{app_dir / 'requirements.txt'}, line 3," in message and "outside" in message
    assert "etc/passwd" not in message  # where the include points is the file's content
    (app_dir / "requirements.txt").write_text("--requirement=${HOME}/secrets.txt\n")
    with pytest.raises(ConfigError, match="environment variable") as info:
        load_inventory(path)
    assert "HOME" not in str(info.value)
    (app_dir / "base.txt").write_text("Django\n")
    (app_dir / "requirements.txt").write_text("-rbase.txt\n-c base.txt  # pins\n")
    (found,) = load_inventory(path).application.requirements
    assert (found.value, found.base) == ("requirements.txt", "application")


def test_a_suite_error_names_the_inventory_line_that_chose_the_suite(
    app_dir: Path, write_yaml: Write, tmp_path: Path
) -> None:
    from orchestrator.lifecycle import load_plan
    from orchestrator.plan import Options

    suite = write_yaml("bad-suite.yaml", "layers:\n  - {name: u, role: db, command: x}\n")
    inventory = write_yaml("inv.yaml", SINGLE + "suite: bad-suite.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_plan(tmp_path, str(inventory), None, Options(dry_run=True))
    assert str(info.value) == (
        f"{suite}, line 2, field 'layers[0].role': must be one of server, client; got 'db' "
        f"(the suite named by {inventory}, line 11, field 'suite')"
    )
    # A wrong name is the inventory's own error.
    inventory.write_text(SINGLE + "suite: 'no such suite'\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(inventory))}, line 11, field 'suite'"):
        load_plan(tmp_path, str(inventory), None, Options(dry_run=True))
    # Left out, the default suite is named by the top of the inventory.
    inventory.write_text(SINGLE)
    with pytest.raises(
        ConfigError, match=r"default\.yaml: file not found \(.*line 1, field 'suite'"
    ):
        load_plan(tmp_path, str(inventory), None, Options(dry_run=True))
    # A suite given on the command line is the user's own: no inventory line to add.
    with pytest.raises(ConfigError) as info:
        load_plan(tmp_path, str(inventory), str(suite), Options(dry_run=True))
    assert "named by" not in str(info.value)


@pytest.mark.parametrize(
    "suite,says",
    [
        ("/proc/self/environ", "is not a regular file"),
        ("a" * 5000 + ".yaml", "bytes long"),
        ("~nosuchuser/s.yaml", "user this machine does not know"),
    ],
)
def test_special_or_impossible_suite_paths_in_an_inventory_are_config_errors(
    app_dir: Path, write_yaml: Write, tmp_path: Path, suite: str, says: str
) -> None:
    from orchestrator.lifecycle import load_plan
    from orchestrator.plan import Options

    inventory = write_yaml("inv.yaml", SINGLE + f"suite: '{suite}'\n")
    with pytest.raises(ConfigError) as info:
        load_plan(tmp_path, str(inventory), None, Options(dry_run=True))
    assert says in str(info.value) and f"{inventory}, line 11, field 'suite'" in str(info.value)


def test_a_failed_pip_never_shows_the_requirement_lines(tmp_path: Path) -> None:
    """pip echoes the line it failed on; that can be a token. The error says only pip's
    exit code and where its output is kept, readable by this user alone."""
    from orchestrator.exceptions import InfrastructureError
    from orchestrator.wheelhouse import build_wheelhouse

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--no-index\nprivate-pkg-TOKEN-3f9a ==> 9.9 @@\n")
    with pytest.raises(InfrastructureError) as info:
        build_wheelhouse([requirements], [], tmp_path / "cache", timeout_s=120)
    message = str(info.value)
    assert "TOKEN" not in message and "private-pkg" not in message, message
    assert "exited with code 1" in message and "\n" not in message
    (log,) = (tmp_path / "cache").glob("pip-*.log")
    assert str(log) in message
    assert "TOKEN-3f9a" in log.read_text() and log.stat().st_mode & 0o777 == 0o600


def test_an_unreadable_include_is_named_by_its_file_and_line_only(tmp_path: Path) -> None:
    from orchestrator.wheelhouse import digest_of

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("Django\n-r secret-\x00-name.txt\n")
    with pytest.raises(ConfigError) as info:
        digest_of([requirements], [], "cp311")
    assert str(info.value) == (
        f"cannot read the file included at {requirements}, line 2 (invalid path)"
    )


def test_gunicorn_may_be_made_a_serial_server_with_a_small_backlog(
    app_dir: Path, write_yaml: Write
) -> None:
    text = SINGLE.replace(
        "  client:", "  server: {mode: gunicorn, workers: 1, threads: 1, backlog: 10}\n  client:"
    )
    app = load_inventory(write_yaml("i.yaml", text)).application
    assert (app.server_workers, app.server_threads, app.server_backlog) == (1, 1, 10)


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("{mode: testserver, workers: 1}", "is a gunicorn setting"),
        ("{mode: gunicorn, backlog: 0}", "must be between 1 and 65535"),
        ("{mode: gunicorn, threads: 1000}", "must be between 1 and 256"),
    ],
)
def test_gunicorn_settings_are_checked(
    app_dir: Path, write_yaml: Write, server: str, message: str
) -> None:
    text = SINGLE.replace("  client:", f"  server: {server}\n  client:")
    with pytest.raises(ConfigError, match=message):
        load_inventory(write_yaml("i.yaml", text))


# --------------------------------------------------------------------------- issue 12
# hosts: may name an Ansible inventory instead of listing hosts (tests/unit/test_ansible.py)


def test_hosts_given_as_a_file_name_say_how_to_name_an_ansible_inventory(
    app_dir: Path, write_yaml: Write
) -> None:
    path = write_yaml("inv.yaml", "hosts: hosts.ini\n" + APPLICATION)
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    assert str(info.value).startswith(f"{path}, line 1, field 'hosts': must be a list of hosts")
    assert "hosts: {ansible: 'hosts.ini'}" in str(info.value)


def test_hosts_as_a_mapping_must_name_the_ansible_file(app_dir: Path, write_yaml: Write) -> None:
    path = write_yaml("inv.yaml", "hosts: {roles: {db: dbs}}\n" + APPLICATION)
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    assert str(info.value) == f"{path}, line 1, field 'hosts.ansible': is required"


def test_an_ansible_inventory_and_a_hosts_list_give_the_same_hosts(
    app_dir: Path, write_yaml: Write
) -> None:
    write_yaml(
        "hosts.ini",
        "[db]\ndb1 ansible_host=192.0.2.10\n[server]\nweb1 ansible_host=192.0.2.11\n"
        "[client]\ncl1 ansible_host=cl1.example.org\n[all:vars]\nansible_user=deploy\n",
    )
    listed = load_inventory(write_yaml("cluster.yaml", CLUSTER)).hosts
    text = "hosts: {ansible: hosts.ini}\n" + APPLICATION
    assert load_inventory(write_yaml("a.yaml", text)).hosts == listed


def test_a_fixture_name_too_long_for_the_system_is_a_config_error(
    app_dir: Path, write_yaml: Write
) -> None:
    text = SINGLE.replace("[fixtures.json]", "[" + "x" * 300 + "]")
    with pytest.raises(ConfigError) as caught:
        load_inventory(write_yaml("long.yaml", text))
    assert caught.value.field == "application.fixtures"
