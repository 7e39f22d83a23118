"""The protocols every component implements, and the values they hand each other."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import quote

from orchestrator.exceptions import ConfigError

if TYPE_CHECKING:
    from orchestrator.hosts import Target

# Database and user names go into SQL: only what needs no quoting in any engine.
_IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,64}")


def check_identifier(value: str, what: str) -> str:
    """Database and user names go into SQL: allow only what needs no quoting at all."""
    if not _IDENTIFIER.fullmatch(value):
        raise ConfigError(f"{what} must be 1-64 letters, digits or underscores; got {value!r}")
    return value


def check_client_host(value: str) -> str:
    """An account's host part: 'localhost' (Unix socket) or an IP address (TCP)."""
    if value == "localhost":
        return value
    if "%" in value:  # an IPv6 zone would carry any text into the SQL
        raise ConfigError(f"database client host must not carry an IPv6 zone; got {value!r}")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ConfigError(
            f"database client host must be 'localhost' or an IP address; got {value!r}"
        ) from None


@dataclass(frozen=True)
class DatabaseGrant:
    """An application database and the account that may use it (and Django's test DB).

    ``client_hosts`` says where the application connects from: ``localhost`` for a server
    on the database's own host (over the local socket), else the server's IP address.
    """

    name: str
    user: str
    password: str = field(repr=False)
    client_hosts: tuple[str, ...] = ("localhost",)

    def __post_init__(self) -> None:
        check_identifier(self.name, "database name")
        check_identifier(self.user, "database user")
        for host in self.client_hosts:
            check_client_host(host)
        if "'" in self.password or "\\" in self.password or "\n" in self.password:
            raise ConfigError("database password may not contain quotes, backslashes or newlines")


@dataclass(frozen=True)
class LogFile:
    """A log a component writes on its host, kept in ``logs/<host>/<label>``."""

    label: str
    path: str


@dataclass(frozen=True)
class DjangoClient:
    """How a Django application talks to an engine: what the settings overlay and the
    server's virtualenv need, whichever instance it reaches."""

    backend: str  # DATABASES["default"]["ENGINE"]
    url_scheme: str  # of DATABASE_URL
    default_port: int
    requirements: tuple[str, ...]  # the driver, installed in the server's virtualenv
    settings_fragment: str  # a template in orchestrator/templates/ (driver set-up, OPTIONS)


@dataclass(frozen=True)
class Endpoint:
    """What a database hands the application: where it listens and with which account."""

    name: str
    host: str  # an IP address or DNS name (TCP), or an absolute path (a Unix socket)
    port: str  # "" over a Unix socket
    user: str
    password: str = field(repr=False)
    client: DjangoClient = field(kw_only=True)

    @property
    def via_socket(self) -> bool:
        return self.host.startswith("/")

    @property
    def url(self) -> str:
        """The ``DATABASE_URL`` form, for settings modules that read one (a secret)."""
        host = "localhost" if self.via_socket else self.host
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        port = self.port or self.client.default_port
        return f"{self.client.url_scheme}://{credentials}@{host}:{port}/{self.name}"


@runtime_checkable
class Database(Protocol):
    """One database server instance on one host."""

    @property
    def host(self) -> str:
        """The inventory host it runs on."""
        ...

    def up_script(self, grant: DatabaseGrant) -> str:
        """Initialise if needed, start if not answering, wait for it, provision ``grant``."""
        ...

    def stop_script(self) -> str:
        """Stop this instance, and only this one."""
        ...

    def health_script(self) -> str:
        """Exit 0 if it runs and answers; else non-zero, the reason and its log's last
        lines on stderr."""
        ...

    def log_files(self) -> tuple[LogFile, ...]: ...

    def endpoint(self, *, link: str, name: str, user: str, password: str) -> Endpoint:
        """What a server reaching it over ``link`` ("socket" or "tcp") gets."""
        ...

    def describe(self) -> str:
        """Where it listens, in a few words, for the terminal."""
        ...


@dataclass(frozen=True)
class Engine:
    """A database engine: what a host must have, and how to make an instance."""

    name: str
    # A host's probed facts -> what it lacks, in one sentence, or None.
    host_problem: Callable[[Mapping[str, str]], str | None]
    # (inventory host name, its target, port) -> the instance.
    instance: Callable[[str, Target, int], Database]
    # The script (in orchestrator/scripts/) the host probe includes on the database's
    # host; it prints the engine's facts, ``fact.database_server`` at least.
    probe_script: str
    client: DjangoClient
    # Names of the server's own accounts and schemas: an inventory may not claim them.
    reserved_names: frozenset[str] = frozenset()


@runtime_checkable
class AppServer(Protocol):
    """The live application server on one host."""

    @property
    def url(self) -> str:
        """What the client layers get as ``READINESS_BASE_URL``."""
        ...

    @property
    def mode(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def hostport(self) -> str:
        """``addr:port`` it listens on (IPv6 in brackets): what the capture's RSTs name."""
        ...

    def connection_model(self) -> tuple[str, bool]:
        """(threading, keep-alive): how it takes connections, for the fingerprint."""
        ...

    def start_script(self) -> str:
        """Stop an earlier one, start a fresh one, wait until it answers its health URL."""
        ...

    def stop_script(self) -> str: ...

    def health_script(self) -> str:
        """Exit 0 if it runs and answers; else non-zero, the reason and its log's last
        lines on stderr."""
        ...

    def log_files(self) -> tuple[LogFile, ...]: ...
