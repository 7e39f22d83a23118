"""Components behind their protocols: what a database hands the application, and when a
host cannot run it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.components import ENGINES, AppServer, Database, DatabaseGrant, database_engine
from orchestrator.exceptions import ConfigError
from orchestrator.hosts import Target
from orchestrator.inventory import Host

TARGET = Target(Host("h1", ("db",), "ssh", "10.0.0.3"), "10.0.0.3", "deploy", "/srv/r")


def test_mariadb_hands_a_co_located_server_its_socket_and_a_remote_one_tcp() -> None:
    db = database_engine("mariadb").instance("h1", TARGET, 3307)
    assert isinstance(db, Database)
    local = db.endpoint(link="socket", name="broker", user="app", password="pw-123456")
    remote = db.endpoint(link="tcp", name="broker", user="app", password="pw-123456")
    assert local.via_socket and local.host == "/srv/r/db/mysqld.sock" and local.port == ""
    assert (remote.host, remote.port) == ("10.0.0.3", "3307") and not remote.via_socket


def test_mariadb_runs_as_the_login_user_unless_that_is_root() -> None:
    engine = database_engine("mariadb")
    as_root = engine.instance("h1", replace(TARGET, user="root"), 3307)
    assert "--user=root" in as_root.up_script(_grant())
    assert "--user=root" not in engine.instance("h1", TARGET, 3307).up_script(_grant())


def test_a_host_without_a_database_server_is_told_what_to_install() -> None:
    engine = database_engine("mariadb")
    assert engine.host_problem({"database_server": "mariadbd  Ver 15.1 Distrib 10.11"}) is None
    problem = engine.host_problem({"database_server": ""})
    assert problem is not None and "apt-get install mariadb-server" in problem


def test_its_logs_are_named_for_the_run_record() -> None:
    db = database_engine("mariadb").instance("h1", TARGET, 3307)
    assert [(f.label, f.path) for f in db.log_files()] == [("mysqld.err", "/srv/r/db/mysqld.err")]


def test_an_unknown_engine_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown database engine 'oracle'.*mariadb"):
        database_engine("oracle")
    assert "mariadb" in ENGINES


def test_the_django_server_is_an_app_server() -> None:
    from orchestrator.components.appserver import DjangoServer
    from orchestrator.layout import Layout

    server = DjangoServer(
        layout=Layout("/srv/r"),
        venv="/srv/r/venvs/v1",
        mode="testserver",
        address="10.0.0.2",
        port=8000,
        fixtures=("known.json",),
        health_path="/health/",
        env={},
    )
    assert isinstance(server, AppServer)
    assert server.url == "http://10.0.0.2:8000"
    assert "testserver" in server.start_script() and "known.json" in server.start_script()
    assert [f.label for f in server.log_files()] == ["server.log"]


def _grant() -> DatabaseGrant:
    return DatabaseGrant("broker", "app", "pw-123456", ("localhost",))
