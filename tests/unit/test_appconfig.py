"""A server's configuration as a pure function: what the application gets, and from where."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from orchestrator.appconfig import existing_endpoint, server_config
from orchestrator.components import Endpoint, mariadb
from orchestrator.components.mariadb import CLIENT
from orchestrator.exceptions import ConfigError
from orchestrator.inventory import Database

SOCKET = Endpoint("broker", "/srv/r/db/mysqld.sock", "", "app", "pw-secret-1", client=CLIENT)
TCP = Endpoint("broker", "10.0.0.3", "3307", "app", "pw-secret-1", client=CLIENT)


def test_the_secrets_travel_in_the_secret_env_never_in_the_files() -> None:
    config = server_config(
        settings="mysite.settings", endpoint=TCP, secret_key="sk-123456", allowed_hosts=["10.0.0.2"]
    )
    assert config.secrets["READINESS_DB_PASSWORD"] == "pw-secret-1"
    assert config.secrets["DATABASE_URL"] == "mysql://app:pw-secret-1@10.0.0.3:3307/broker"
    assert config.secrets["SECRET_KEY"] == config.secrets["DJANGO_SECRET_KEY"] == "sk-123456"
    assert not any("pw-secret-1" in text or "sk-123456" in text for text in config.files.values())
    assert set(config.files) == {
        "readiness_settings.py",
        "readiness_wsgi.py",
        "readiness_runner.py",
    }


def test_a_socket_endpoint_gives_a_localhost_url_and_an_absolute_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = server_config(
        settings="fake_settings",
        endpoint=SOCKET,
        secret_key="sk-123456",
        allowed_hosts=["10.0.0.2", "web.example"],
    )
    assert config.secrets["DATABASE_URL"] == "mysql://app:pw-secret-1@localhost:3306/broker"
    (tmp_path / "fake_settings.py").write_text("DEBUG = True\nALLOWED_HOSTS = ['*']\n")
    (tmp_path / "readiness_settings.py").write_bytes(config.data("readiness_settings.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, value in {"READINESS_DB_USER": "app", "READINESS_DB_PASSWORD": "pw"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("READINESS_SECRET_KEY", "sk")
    monkeypatch.delitem(sys.modules, "readiness_settings", raising=False)
    try:
        settings = importlib.import_module("readiness_settings")
        assert settings.DATABASES["default"]["HOST"] == "/srv/r/db/mysqld.sock"
        assert settings.DATABASES["default"]["PORT"] == ""
        assert settings.ALLOWED_HOSTS == ["10.0.0.2", "web.example", "localhost", "127.0.0.1"]
    finally:
        sys.modules.pop("readiness_settings", None)
        sys.modules.pop("fake_settings", None)


def test_the_same_inputs_give_the_same_digest_and_a_new_password_another() -> None:
    def digest(endpoint: Endpoint) -> str:
        return server_config(
            settings="s", endpoint=endpoint, secret_key="sk-123456", allowed_hosts=["h"]
        ).digest

    assert digest(TCP) == digest(TCP)
    assert digest(TCP) != digest(
        Endpoint("broker", "10.0.0.3", "3307", "app", "other-pw", client=CLIENT)
    )


EXISTING = Database(mode="existing", name="shop", user="shop", host_env="DBH", password_env="DBP")


def test_an_existing_database_is_read_from_the_variables_the_inventory_names() -> None:
    endpoint = existing_endpoint(
        mariadb.ENGINE, EXISTING, {"DBH": "db.internal", "DBP": "s3cret-pw"}, Path("i.yaml")
    )
    assert (endpoint.host, endpoint.port, endpoint.user, endpoint.password) == (
        "db.internal",
        "3306",
        "shop",
        "s3cret-pw",
    )
    assert "s3cret-pw" not in repr(endpoint)


def test_a_missing_variable_is_a_config_error_naming_it_and_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        existing_endpoint(mariadb.ENGINE, EXISTING, {"DBH": "db.internal"}, Path("inv.yaml"))
    assert "DBP" in str(err.value) and "database.password_env" in str(err.value)
    assert "inv.yaml" in str(err.value)
