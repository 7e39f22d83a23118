"""The application's configuration on a server host, as pure functions of plain values.

What a server host gets (the settings overlay, the WSGI module, the test runner, and the
secrets its processes source) depends only on the values passed here, never on the run's
context, so every decision about it can be unit tested without a host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.components import DjangoClient, Endpoint, Engine
from orchestrator.deploy import HostConfig
from orchestrator.exceptions import ConfigError
from orchestrator.inventory import Database
from orchestrator.templating import templates

# Every server also answers on these, so that checks from the host itself are allowed.
LOOPBACK_NAMES = ("localhost", "127.0.0.1")


def server_config(
    *,
    settings: str,
    endpoint: Endpoint,
    secret_key: str,
    allowed_hosts: Sequence[str],
    fixtures: Mapping[str, bytes] | None = None,
) -> HostConfig:
    """The files and secrets of one server host.

    Settings modules that read the secret key or ``DATABASE_URL`` at import time find
    them set in the environment; the overlay then replaces what they chose. ``fixtures``
    (path in the etc folder -> bytes) are the fixtures from outside the application:
    the application's bundle does not hold them, so they travel with the settings.
    """
    overlay = render_settings_overlay(
        settings=settings,
        client=endpoint.client,
        db_name=endpoint.name,
        db_host=endpoint.host,
        db_port=endpoint.port,
        allowed_hosts=list(dict.fromkeys([*allowed_hosts, *LOOPBACK_NAMES])),
    )
    secrets = {
        "READINESS_DB_USER": endpoint.user,
        "READINESS_DB_PASSWORD": endpoint.password,
        "READINESS_SECRET_KEY": secret_key,
        "DJANGO_SECRET_KEY": secret_key,
        "SECRET_KEY": secret_key,
        "DATABASE_URL": endpoint.url,
    }
    files: dict[str, str | bytes] = {
        "readiness_settings.py": overlay,
        "readiness_wsgi.py": render_wsgi(),
        "readiness_runner.py": render_test_runner(),
    }
    files.update(fixtures or {})
    return HostConfig(files=files, secrets=secrets)


def render_settings_overlay(
    *,
    settings: str,
    client: DjangoClient,
    db_name: str,
    db_host: str,
    db_port: str,
    allowed_hosts: list[str],
) -> str:
    """``readiness_settings.py``: the application's settings with our database and hosts."""
    return (
        templates()
        .get_template("settings_overlay.py.j2")
        .render(
            settings=settings,
            db_engine=client.backend,
            engine_settings=client.settings_fragment,
            db_name=db_name,
            db_host=db_host,
            db_port=db_port,
            allowed_hosts=allowed_hosts,
        )
    )


def render_wsgi() -> str:
    return templates().get_template("readiness_wsgi.py.j2").render()


def render_test_runner() -> str:
    """A Django test runner writing JUnit XML, for ``manage.py test`` layers."""
    return templates().get_template("readiness_runner.py.j2").render()


def existing_endpoint(
    engine: Engine, database: Database, environ: Mapping[str, str], file: Path
) -> Endpoint:
    """An existing database's endpoint, from the environment variables the inventory names.

    The values are read here, at deploy time, and never stored: the inventory holds only
    the variables' names.
    """
    values: dict[str, str] = {}
    for key in ("host_env", "port_env", "user_env", "password_env"):
        var = getattr(database, key)
        if var is None:
            continue
        if var not in environ:
            raise ConfigError(
                f"environment variable {var} is not set (named by database.{key})",
                file=str(file),
                field=f"database.{key}",
            )
        values[key] = environ[var]
    return Endpoint(
        name=database.name,
        host=values["host_env"],
        port=values.get("port_env", str(engine.client.default_port)),
        user=values.get("user_env", database.user),
        password=values["password_env"],
        client=engine.client,
    )
