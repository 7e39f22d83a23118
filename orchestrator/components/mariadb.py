"""MariaDB (or MySQL's compatible ``mysqld``) as a :class:`~orchestrator.components.Database`.

A private server instance, described as data and driven by small bash scripts.

Why scripts: one remote command over SSH costs ~0.1 s, so each phase (start, provision,
stop) is one script run through a :class:`~orchestrator.transport.Transport`, local or
remote alike (the scripts are ``orchestrator/scripts/mariadb_*.sh``; this module gives
them their values). The instance lives entirely under one root folder (datadir, socket, pid,
logs, config rendered from ``templates/mariadb.cnf.j2``) so that instances of several
inventories, and the tests' own, never collide.

Secrets never reach a command line: passwords travel inside the script text, which the
transport streams on stdin, and the SQL goes to the client on a heredoc.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.components.base import DatabaseGrant, DjangoClient, Endpoint, Engine, LogFile
from orchestrator.exceptions import ConfigError
from orchestrator.layout import MARKER_VAR, Layout
from orchestrator.scripts import render
from orchestrator.templating import templates

if TYPE_CHECKING:
    from orchestrator.hosts import Target

# Paths end up in a config file and in scripts: refuse anything that could break out.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")

# Exit code of the scripts when the host lacks the server binaries (preflight).
MISSING_SERVER_EXIT = 10


def _check_path(value: str, what: str) -> str:
    if not _SAFE_PATH.fullmatch(value) or "/../" in value + "/":
        raise ConfigError(
            f"{what} must be an absolute path of letters, digits and ._+-/ only; got {value!r}"
        )
    return value


@dataclass(frozen=True)
class MariaDBInstance:
    """Where one private server lives and how it listens."""

    root: str
    bind_address: str
    port: int
    run_as_root: bool = False
    max_connections: int = 200

    def __post_init__(self) -> None:
        _check_path(self.root, "database root")
        try:
            ip = ipaddress.ip_address(self.bind_address)
        except ValueError:
            raise ConfigError(
                f"database bind address must be an IP address; got {self.bind_address!r}"
            ) from None
        if ip.is_unspecified or ip.is_multicast:  # a wildcard would listen everywhere
            raise ConfigError(
                f"database bind address must be one host's address; got {self.bind_address!r}"
            )
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"database port must be 1-65535; got {self.port}")

    @property
    def datadir(self) -> str:
        return f"{self.root}/data"

    @property
    def socket(self) -> str:
        return f"{self.root}/mysqld.sock"

    @property
    def pid_file(self) -> str:
        return f"{self.root}/mysqld.pid"

    @property
    def error_log(self) -> str:
        return f"{self.root}/mysqld.err"

    @property
    def config_file(self) -> str:
        return f"{self.root}/my.cnf"


def render_config(instance: MariaDBInstance) -> str:
    """The instance's my.cnf, from the Jinja2 template."""
    return templates().get_template("mariadb.cnf.j2").render(i=instance)


def _tools() -> str:
    return render("mariadb_tools.sh", missing_exit=MISSING_SERVER_EXIT)


def _start_body(instance: MariaDBInstance) -> str:
    return render(
        "mariadb_start.sh",
        i=instance,
        config=render_config(instance),
        install_flags=["--user=root"] if instance.run_as_root else [],
    )


def start_script(instance: MariaDBInstance) -> str:
    """Initialise the datadir once, start the server if it is not answering, wait for it.

    Idempotent: a running, answering instance is left alone, so a warm redeploy costs
    one ping.
    """
    return _tools() + _start_body(instance)


def _sql_string(value: str) -> str:
    return "'" + value + "'"


def provision_sql(grant: DatabaseGrant) -> str:
    """Create the database and account, and (re)set the password; safe to run again.

    The account may also create and drop Django's ``test_<name>`` database, which
    ``manage.py test`` needs. ``_`` and ``%`` are wildcards in GRANT's database names
    (a grant on `` `my_db`.* `` also covers ``myXdb``), so both grants use the escaped
    pattern; CREATE DATABASE takes the name literally.
    """
    db = grant.name

    def pattern(name: str) -> str:
        return name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")

    app_db, test_db = pattern(db), pattern(f"test_{db}")
    lines = [
        f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    ]
    for host in grant.client_hosts:
        account = f"{_sql_string(grant.user)}@{_sql_string(host)}"
        pw = _sql_string(grant.password)
        lines += [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {pw};",
            f"ALTER USER {account} IDENTIFIED BY {pw};",
            f"GRANT ALL PRIVILEGES ON `{app_db}`.* TO {account};",
            f"GRANT ALL PRIVILEGES ON `{test_db}`.* TO {account};",
        ]
    return "\n".join(lines) + "\n"


def _provision_body(instance: MariaDBInstance, grant: DatabaseGrant) -> str:
    return render("mariadb_provision.sh", i=instance, sql=provision_sql(grant))


def provision_script(instance: MariaDBInstance, grant: DatabaseGrant) -> str:
    """Run :func:`provision_sql` as the instance's administrator over its Unix socket."""
    return _tools() + _provision_body(instance, grant)


def up_script(instance: MariaDBInstance, grant: DatabaseGrant, marker_root: str = "") -> str:
    """Start and provision in one script: one round trip for the whole db component.

    With ``marker_root``, the script (and the server it starts) carry that deploy root's
    marker, so that teardown after an interrupt stops a start still in progress.
    """
    marked = render("marked.sh", marker_var=MARKER_VAR, marker_root=marker_root)
    return (
        (marked if marker_root else "")
        + _tools()
        + _start_body(instance)
        + (_provision_body(instance, grant))
    )


def health_script(instance: MariaDBInstance) -> str:
    """Whether the instance still answers (asked when a layer that needed it failed)."""
    return render("mariadb_health.sh", i=instance, missing_exit=MISSING_SERVER_EXIT)


def stop_script(instance: MariaDBInstance, *, remove: bool = False) -> str:
    """Stop the instance started by :func:`start_script`, and only that one.

    The pid is checked against the process's command line before any signal, so a
    recycled pid never kills a stranger. ``remove`` deletes the whole instance root.
    """
    return render("mariadb_stop.sh", i=instance, remove=remove)


@dataclass(frozen=True)
class MariaDB:
    """One private MariaDB instance on one inventory host."""

    host: str
    instance: MariaDBInstance
    marker_root: str = ""  # the deploy root whose marker its processes carry

    @classmethod
    def create(cls, host: str, target: Target, port: int) -> MariaDB:
        layout = Layout(target.deploy_root)
        instance = MariaDBInstance(
            root=layout.db, bind_address=target.ip, port=port, run_as_root=target.user == "root"
        )
        return cls(host, instance, layout.root)

    def up_script(self, grant: DatabaseGrant) -> str:
        return up_script(self.instance, grant, self.marker_root)

    def stop_script(self) -> str:
        return stop_script(self.instance)

    def health_script(self) -> str:
        return health_script(self.instance)

    def log_files(self) -> tuple[LogFile, ...]:
        return (LogFile("mysqld.err", self.instance.error_log),)

    def endpoint(self, *, link: str, name: str, user: str, password: str) -> Endpoint:
        if link == "socket":  # co-located: the Unix socket, as a sysadmin would set it up
            return Endpoint(name, self.instance.socket, "", user, password, client=CLIENT)
        i = self.instance
        return Endpoint(name, i.bind_address, str(i.port), user, password, client=CLIENT)

    def describe(self) -> str:
        i = self.instance
        return f"{i.bind_address}:{i.port} (socket {i.socket})"


def host_problem(facts: Mapping[str, str]) -> str | None:
    """A host that is to run the database must have a MariaDB (or MySQL) server."""
    if facts.get("database_server"):
        return None
    return (
        "has the db role but no MariaDB server (mariadbd or mysqld); install it, "
        "e.g. 'apt-get install mariadb-server'"
    )


# PyMySQL: a driver that needs no compiler on the hosts (mysqlclient is used instead when
# the application ships it).
CLIENT = DjangoClient(
    backend="django.db.backends.mysql",
    url_scheme="mysql",
    default_port=3306,
    requirements=("PyMySQL>=1.1,<2",),
    settings_fragment="mariadb_settings.py.j2",
)

ENGINE = Engine(
    name="mariadb",
    host_problem=host_problem,
    instance=MariaDB.create,
    probe_script="mariadb_probe.sh",
    client=CLIENT,
    # The server's own accounts and schemas: provisioning them would break or expose it.
    reserved_names=frozenset(
        {"root", "mysql", "sys", "information_schema", "performance_schema", "mariadb"}
    ),
)
