"""A private MariaDB server instance, described as data and driven by small bash scripts.

Why scripts: one remote command over SSH costs ~0.1 s, so each phase (start, provision,
stop) is one script run through a :class:`~orchestrator.transport.Transport`, local or
remote alike. The instance lives entirely under one root folder (datadir, socket, pid,
logs, config rendered from ``templates/mariadb.cnf.j2``) so that instances of several
inventories, and the tests' own, never collide.

Secrets never reach a command line: passwords travel inside the script text, which the
transport streams on stdin, and the SQL goes to the client on a heredoc.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from functools import cache

import jinja2

from orchestrator.exceptions import ConfigError
from orchestrator.shell import ALIVE

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# Paths end up in a config file and in scripts: refuse anything that could break out.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")

# Exit code of the scripts when the host lacks the server binaries (preflight).
MISSING_SERVER_EXIT = 10


def _check_path(value: str, what: str) -> str:
    if not _SAFE_PATH.match(value) or "/../" in value + "/":
        raise ConfigError(
            f"{what} must be an absolute path of letters, digits and ._+-/ only; got {value!r}"
        )
    return value


def check_identifier(value: str, what: str) -> str:
    """Database and user names go into SQL: allow only what needs no quoting at all."""
    if not _IDENTIFIER.match(value):
        raise ConfigError(f"{what} must be 1-64 letters, digits or underscores; got {value!r}")
    return value


def check_client_host(value: str) -> str:
    """A MySQL account host part: 'localhost' (Unix socket) or an IP address (TCP)."""
    if value == "localhost":
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ConfigError(
            f"database client host must be 'localhost' or an IP address; got {value!r}"
        ) from None


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
            ipaddress.ip_address(self.bind_address)
        except ValueError:
            raise ConfigError(
                f"database bind address must be an IP address; got {self.bind_address!r}"
            ) from None
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


@dataclass(frozen=True)
class DatabaseGrant:
    """An application database and the account that may use it (and Django's test DB)."""

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


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("orchestrator", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_config(instance: MariaDBInstance) -> str:
    """The instance's my.cnf, from the Jinja2 template."""
    return _templates().get_template("mariadb.cnf.j2").render(i=instance)


_PREAMBLE = (
    ALIVE
    + f"""\
set -eu
export PATH="$PATH:/usr/sbin:/usr/local/sbin:/usr/local/bin"
server=$(command -v mariadbd || command -v mysqld || true)
client=$(command -v mariadb || command -v mysql || true)
admin=$(command -v mariadb-admin || command -v mysqladmin || true)
installdb=$(command -v mariadb-install-db || command -v mysql_install_db || true)
if [ -z "$server" ] || [ -z "$client" ] || [ -z "$admin" ] || [ -z "$installdb" ]; then
  echo "MariaDB server or client tools not found (need mariadbd, mariadb, mariadb-admin and" \\
       "mariadb-install-db on PATH); install them, e.g. 'apt-get install mariadb-server" \\
       "mariadb-client'" >&2
  exit {MISSING_SERVER_EXIT}
fi
"""
)


def _start_body(instance: MariaDBInstance) -> str:
    q = shlex.quote
    cnf = q(instance.config_file)
    user_flag = "--user=root" if instance.run_as_root else ""
    return f"""\
umask 077
mkdir -p {q(instance.root)}
chmod 700 {q(instance.root)}
cat > {cnf}.new <<'READINESS_CNF_EOF'
{render_config(instance)}READINESS_CNF_EOF
changed=0
if cmp -s {cnf}.new {cnf}; then rm -f {cnf}.new; else mv {cnf}.new {cnf}; changed=1; fi
# The marker is written only after a complete install: an install killed half-way
# (or a full disk) is wiped and redone instead of failing every later start.
if [ ! -f {q(instance.datadir)}/.readiness-installed ]; then
  rm -rf {q(instance.datadir)}
  "$installdb" --defaults-file={cnf} {user_flag} --auth-root-authentication-method=socket \\
    --skip-test-db > {q(instance.root)}/install.log 2>&1 || {{
      echo "mariadb-install-db failed:" >&2
      tail -n 20 {q(instance.root)}/install.log >&2
      exit 11
  }}
  touch {q(instance.datadir)}/.readiness-installed
fi
if [ "$changed" = 1 ] && [ -f {q(instance.pid_file)} ]; then
  # New address, port or settings: a server still running with the old ones must go.
{_stop_lines(instance, indent="  ")}fi
if "$admin" --defaults-file={cnf} --connect-timeout=2 ping >/dev/null 2>&1; then
  echo "readiness: database already running"
else
  : > {q(instance.error_log)}
  setsid "$server" --defaults-file={cnf} < /dev/null > {q(instance.root)}/mysqld.out 2>&1 &
  i=0
  while ! "$admin" --defaults-file={cnf} --connect-timeout=1 ping >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 300 ] || ! alive $!; then
      echo "the database server did not start; last lines of its error log:" >&2
      tail -n 20 {q(instance.error_log)} >&2 || true
      exit 12
    fi
    sleep 0.1
  done
  echo "readiness: database started"
fi
"""


def start_script(instance: MariaDBInstance) -> str:
    """Initialise the datadir once, start the server if it is not answering, wait for it.

    Idempotent: a running, answering instance is left alone, so a warm redeploy costs
    one ping.
    """
    return _PREAMBLE + _start_body(instance)


def _sql_string(value: str) -> str:
    return "'" + value + "'"


def provision_sql(grant: DatabaseGrant) -> str:
    """Create the database and account, and (re)set the password; safe to run again.

    The account may also create and drop Django's ``test_<name>`` database, which
    ``manage.py test`` needs. ``_`` is a wildcard in GRANT's database names, hence the
    escaped pattern.
    """
    db = grant.name
    test_db = "test\\_" + db.replace("_", "\\_")
    lines = [
        f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    ]
    for host in grant.client_hosts:
        account = f"{_sql_string(grant.user)}@{_sql_string(host)}"
        pw = _sql_string(grant.password)
        lines += [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {pw};",
            f"ALTER USER {account} IDENTIFIED BY {pw};",
            f"GRANT ALL PRIVILEGES ON `{db}`.* TO {account};",
            f"GRANT ALL PRIVILEGES ON `{test_db}`.* TO {account};",
        ]
    return "\n".join(lines) + "\n"


def _provision_body(instance: MariaDBInstance, grant: DatabaseGrant) -> str:
    cnf = shlex.quote(instance.config_file)
    return f"""\
"$client" --defaults-file={cnf} <<'READINESS_SQL_EOF'
{provision_sql(grant)}READINESS_SQL_EOF
echo "readiness: database provisioned"
"""


def provision_script(instance: MariaDBInstance, grant: DatabaseGrant) -> str:
    """Run :func:`provision_sql` as the instance's administrator over its Unix socket."""
    return _PREAMBLE + _provision_body(instance, grant)


def up_script(instance: MariaDBInstance, grant: DatabaseGrant) -> str:
    """Start and provision in one script: one round trip for the whole db component."""
    return _PREAMBLE + _start_body(instance) + _provision_body(instance, grant)


def _stop_lines(instance: MariaDBInstance, indent: str = "") -> str:
    """Stop the server whose pid file is the instance's, after checking the pid is ours."""
    q = shlex.quote
    lines = f"""\
pidfile={q(instance.pid_file)}
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if tr '\\0' ' ' < /proc/"$pid"/cmdline 2>/dev/null | grep -qF -- {q(instance.config_file)}; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while alive "$pid" && [ "$i" -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    echo "readiness: database stopped"
  fi
fi
"""
    return "".join(indent + line + "\n" for line in lines.splitlines())


def stop_script(instance: MariaDBInstance, *, remove: bool = False) -> str:
    """Stop the instance started by :func:`start_script`, and only that one.

    The pid is checked against the process's command line before any signal, so a
    recycled pid never kills a stranger. ``remove`` deletes the whole instance root.
    """
    return (
        "set -u\n"
        + _stop_lines(instance)
        + (f"rm -rf {shlex.quote(instance.root)}\n" if remove else "")
    )
