"""The private MariaDB instance: its rendered config, its SQL, and what it refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.components import DatabaseGrant
from orchestrator.components.mariadb import (
    MariaDBInstance,
    provision_script,
    provision_sql,
    render_config,
    start_script,
    stop_script,
)
from orchestrator.exceptions import ConfigError
from orchestrator.transport import LocalTransport


def instance(**kw: object) -> MariaDBInstance:
    args: dict[str, object] = {"root": "/srv/rdy/db", "bind_address": "10.213.71.2", "port": 3307}
    args.update(kw)
    return MariaDBInstance(**args)  # type: ignore[arg-type]


def test_config_binds_to_the_host_address_and_keeps_every_path_under_the_root() -> None:
    cnf = render_config(instance())
    binds = [ln for ln in cnf.splitlines() if ln.startswith("bind-address")]
    assert binds == ["bind-address = 10.213.71.2"]
    assert "port = 3307" in cnf
    for key in ("datadir", "socket", "pid-file", "log-error"):
        line = next(ln for ln in cnf.splitlines() if ln.startswith(key + " "))
        assert line.split("= ", 1)[1].startswith("/srv/rdy/db/"), line


def test_config_names_root_user_only_when_running_as_root() -> None:
    assert "user = root" not in render_config(instance())
    assert "user = root" in render_config(instance(run_as_root=True))


@pytest.mark.parametrize(
    "kw",
    [
        {"root": "relative/path"},
        {"root": "/srv/db\nbind-address = 0.0.0.0"},
        {"root": "/srv/$(reboot)"},
        {"root": "/srv/../etc"},
        {"bind_address": "db.example"},
        {"bind_address": "10.0.0.1; rm -rf /"},
        {"port": 0},
        {"port": 70000},
    ],
)
def test_instance_refuses_values_that_could_escape_the_config(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        instance(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"name": "app`; DROP DATABASE mysql; --"},
        {"user": "o'brien"},
        {"name": ""},
        {"password": "pa'ss"},
        {"client_hosts": ("%",)},
        {"client_hosts": ("db.example",)},
    ],
)
def test_grant_refuses_values_that_would_need_sql_quoting(kw: dict[str, object]) -> None:
    args: dict[str, object] = {"name": "app", "user": "app", "password": "pw"}
    args.update(kw)
    with pytest.raises(ConfigError):
        DatabaseGrant(**args)  # type: ignore[arg-type]


def test_provision_grants_the_app_and_djangos_test_database_per_client_host() -> None:
    hosts = ("localhost", "10.0.0.3")
    sql = provision_sql(DatabaseGrant(name="my_app", user="u", password="pw", client_hosts=hosts))
    assert "CREATE DATABASE IF NOT EXISTS `my_app`" in sql
    for host in ("localhost", "10.0.0.3"):
        # '_' is a wildcard in GRANT database names: escaped, each grant covers only its own.
        assert f"GRANT ALL PRIVILEGES ON `my\\_app`.* TO 'u'@'{host}';" in sql
        assert f"GRANT ALL PRIVILEGES ON `test\\_my\\_app`.* TO 'u'@'{host}';" in sql


def test_grant_on_a_name_with_underscore_does_not_reach_lookalike_databases() -> None:
    """Issue 8: `my_db`.* also granted myXdb; every grant's '_' and '%' are escaped."""
    sql = provision_sql(DatabaseGrant(name="my_db", user="u", password="pw"))
    grants = [ln for ln in sql.splitlines() if ln.startswith("GRANT")]
    assert grants == [
        "GRANT ALL PRIVILEGES ON `my\\_db`.* TO 'u'@'localhost';",
        "GRANT ALL PRIVILEGES ON `test\\_my\\_db`.* TO 'u'@'localhost';",
    ]
    assert all("`my_db`" not in ln and "%" not in ln for ln in grants)
    # The database itself is created under its literal name.
    assert "CREATE DATABASE IF NOT EXISTS `my_db` " in sql


def test_password_is_in_the_streamed_script_never_in_a_command_argument() -> None:
    script = provision_script(instance(), DatabaseGrant(name="a", user="b", password="S3cr3t"))
    lines_with_secret = [ln for ln in script.splitlines() if "S3cr3t" in ln]
    assert lines_with_secret, "the SQL must carry the password"
    assert all(ln.startswith(("CREATE USER", "ALTER USER")) for ln in lines_with_secret)


def test_grant_repr_hides_the_password() -> None:
    assert "S3cr3t" not in repr(DatabaseGrant(name="a", user="b", password="S3cr3t"))


def test_start_is_idempotent_and_stop_checks_the_pid_belongs_to_this_instance() -> None:
    start = start_script(instance())
    assert "ping" in start and "already running" in start
    stop = stop_script(instance())
    assert "/proc/" in stop and "/srv/rdy/db/my.cnf" in stop
    assert "rm -rf" not in stop
    assert "rm -rf /srv/rdy/db" in stop_script(instance(), remove=True)


def test_stop_signals_only_the_server_running_with_this_instances_config(tmp_path: Path) -> None:
    """A recycled pid in the pid file must never get a signal; our own server stops."""
    db = instance(root=str(tmp_path / "db"))
    Path(db.root).mkdir()

    def fake_server(config: str) -> subprocess.Popen[bytes]:
        code = "import time; time.sleep(60)"
        return subprocess.Popen([sys.executable, "-c", code, f"--defaults-file={config}"])

    local = LocalTransport()
    stranger, ours = fake_server("/etc/other.cnf"), fake_server(db.config_file)
    try:
        Path(db.pid_file).write_text(f"{stranger.pid}\n")
        assert local.run(stop_script(db), timeout=30).stdout == ""
        assert stranger.poll() is None
        Path(db.pid_file).write_text(f"{ours.pid}\n")
        result = local.run(stop_script(db, remove=True), timeout=30)
        assert result.ok and result.stdout == "readiness: database stopped\n", result.stderr
        assert ours.wait(timeout=5) < 0 and not Path(db.root).exists()
    finally:
        for proc in (stranger, ours):
            proc.kill()
            proc.wait()
