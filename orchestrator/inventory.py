"""Inventories: which hosts, how to reach them, which roles they play, what to deploy.

An inventory is YAML (see ``inventories/example-hosts.yaml`` for every field, with
comments). It is validated completely before any connection is opened; each error names
the file, the line and the field. Nothing here names a particular application: the
application is configuration (its source folder, settings module, requirements,
fixtures), so any Django project can be deployed by writing an inventory and a suite.

Lab hosts (``connection: lab``) get their address, user and keys from the lab state at
run time (:mod:`orchestrator.lab` is the one source of truth), not from the file.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.components import ENGINES
from orchestrator.document import Section, load
from orchestrator.exceptions import ConfigError

ROLES = ("db", "server", "client")
CONNECTIONS = ("lab", "ssh", "local")
SERVER_MODES = ("testserver", "gunicorn")
DATABASE_MODES = ("managed", "existing")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Remote paths are used in generated scripts: allow a conservative character set only.
_REMOTE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")
_RELATIVE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._/+-]*$")
_RESERVED_ENV = frozenset(
    {
        "DJANGO_SETTINGS_MODULE",
        "PYTHONPATH",
        "PYTHONHOME",
        "PATH",
        "VIRTUAL_ENV",
        "SECRET_KEY",
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
    }
)


@dataclass(frozen=True)
class Host:
    """One machine of the inventory and how readiness reaches it."""

    name: str
    roles: tuple[str, ...]
    connection: str
    address: str | None = None
    user: str | None = None
    port: int = 22
    key_file: Path | None = None
    known_hosts: Path | None = None
    deploy_root: str | None = None
    python: str = "python3"


@dataclass(frozen=True)
class Application:
    """The Django project to deploy, as paths relative to its source folder."""

    source: Path
    settings: str
    requirements: tuple[str, ...]
    fixtures: tuple[str, ...]
    server_mode: str
    server_port: int
    health_path: str
    client_source: str
    client_requirements: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Database:
    """A managed private server (readiness starts it) or an existing one (from env vars)."""

    mode: str
    name: str
    user: str
    port: int = 3307
    engine: str = "mariadb"
    # existing: the names of the environment variables that hold the values, never inline
    host_env: str | None = None
    port_env: str | None = None
    user_env: str | None = None
    password_env: str | None = None


@dataclass(frozen=True)
class LabSpec:
    """The lab the inventory asks for (its ``lab:`` section), not a lab that exists.

    Present when the inventory's hosts are local lab hosts that readiness brings up; unset
    fields take the existing lab's or the defaults. The lab that exists is
    :class:`orchestrator.lab.Lab`, read from the lab state.
    """

    prefix: str | None = None
    hosts: int | None = None
    subnet: str | None = None


@dataclass(frozen=True)
class Inventory:
    """A validated inventory file."""

    name: str
    file: Path
    hosts: tuple[Host, ...]
    application: Application
    database: Database
    suite: str
    lab: LabSpec | None = None

    def with_role(self, role: str) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if role in h.roles)

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    @property
    def db_host(self) -> Host | None:
        """The managed database's host; None when the database is an existing server."""
        dbs = self.with_role("db")
        return dbs[0] if dbs else None


def resolve(name_or_path: str, *, root: Path) -> Path:
    """An inventory given as a name in ``root/inventories`` or as a path to a file."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return candidate
    if not _NAME.match(name_or_path):
        raise ConfigError(f"'{name_or_path}' is neither an inventory name nor a path to a file")
    return root / "inventories" / f"{name_or_path}.yaml"


def load_inventory(path: Path) -> Inventory:
    """Read and validate an inventory file (no host is contacted)."""
    top = Section(load(path), file=str(path))
    name = top.get("name", str, _default_name(path))
    if not _NAME.match(name):
        raise top.error("name", "must be letters, digits, '.', '_' or '-' (at most 63)")
    top.get("schema", int, 1)
    lab = _lab(top)
    hosts: list[Host] = []
    for section in top.sections("hosts"):
        host = _host(section, lab is not None, path.parent)
        if any(h.name == host.name for h in hosts):
            raise section.error("name", f"host name '{host.name}' is used twice")
        hosts.append(host)
    application = _application(top, path)
    database = _database(top)
    _check_roles(top, hosts, database)
    suite = top.get("suite", str, "default")
    top.finish()
    return Inventory(
        name=name,
        file=path,
        hosts=tuple(hosts),
        application=application,
        database=database,
        suite=suite,
        lab=lab,
    )


def _default_name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem)[:63] or "inventory"
    return stem if _NAME.match(stem) else "inventory"


def _lab(top: Section) -> LabSpec | None:
    item = top.raw("lab")
    if item is None or item.value is None or item.value is False:
        return None
    if item.value is True:
        return LabSpec()
    sub = top.section("lab")
    assert sub is not None
    lab = LabSpec(
        prefix=sub.optional("prefix", str),
        hosts=sub.optional("hosts", int),
        subnet=sub.optional("subnet", str),
    )
    if lab.hosts is not None and not 1 <= lab.hosts <= 32:
        raise sub.error("hosts", "must be between 1 and 32")
    sub.finish()
    return lab


def _host(s: Section, lab: bool, base: Path) -> Host:
    name = s.get("name", str, required=True)
    if not _NAME.match(name):
        raise s.error("name", "must be letters, digits, '.', '_' or '-' (at most 63)")
    roles = s.string_list("roles")
    for role in roles:
        if role not in ROLES:
            raise s.error("roles", f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if not roles:
        raise s.error("roles", "must name at least one role")
    if len(set(roles)) != len(roles):
        raise s.error("roles", "lists a role twice")
    connection = s.choice("connection", CONNECTIONS, "lab" if lab else "ssh")
    if connection == "lab" and not lab:
        raise s.error("connection", "is 'lab' but the inventory has no 'lab:' section")
    address = s.optional("address", str)
    if address is not None:
        _check_address(s, address)
    if connection == "ssh" and address is None:
        raise s.error("address", "is required for an ssh host")
    if connection == "lab" and address is not None:
        raise s.error("address", "comes from the lab state for a lab host; remove it")
    user = s.optional("user", str)
    if user is not None and not _USER.match(user):
        raise s.error("user", f"is not a valid user name: {user!r}")
    port = s.get("port", int, 22)
    if not 1 <= port <= 65535:
        raise s.error("port", "must be between 1 and 65535")
    deploy_root = s.optional("deploy_root", str)
    if deploy_root is not None and (
        not _REMOTE_PATH.match(deploy_root) or "/../" in deploy_root + "/" or deploy_root == "/"
    ):
        raise s.error(
            "deploy_root", "must be an absolute path of letters, digits and ._+-/ (not '/')"
        )
    python = s.get("python", str, "python3")
    if not re.match(r"^[A-Za-z0-9._/-]+$", python):
        raise s.error("python", f"is not a plain interpreter name or path: {python!r}")
    key_file = s.optional("key_file", str)
    known_hosts = s.optional("known_hosts", str)
    s.finish()
    return Host(
        name=name,
        roles=roles,
        connection=connection,
        address=address,
        user=user,
        port=port,
        # Relative paths are relative to the inventory file, like application.source.
        key_file=base / Path(key_file).expanduser() if key_file else None,
        known_hosts=base / Path(known_hosts).expanduser() if known_hosts else None,
        deploy_root=deploy_root,
        python=python,
    )


def _check_address(s: Section, address: str) -> None:
    try:
        ipaddress.ip_address(address)
        return
    except ValueError:
        pass
    if not _HOSTNAME.match(address):
        raise s.error("address", f"is neither an IP address nor a host name: {address!r}")


def _check_roles(top: Section, hosts: list[Host], database: Database) -> None:
    needed = ROLES if database.mode == "managed" else ("server", "client")
    for role in needed:
        if not any(role in h.roles for h in hosts):
            raise top.error("hosts", f"no host has the role '{role}'; every role needs one")
    servers = [h.name for h in hosts if "server" in h.roles]
    if len(servers) > 1:
        # Several servers would share one test database and the client tests only one.
        raise top.error(
            "hosts", f"only one host may have the role 'server' for now; found {', '.join(servers)}"
        )
    dbs = [h.name for h in hosts if "db" in h.roles]
    if dbs and database.mode == "existing":
        raise top.error("hosts", "the database is 'existing': no host may have the role 'db'")
    if len(dbs) > 1:
        raise top.error("hosts", f"only one host may have the role 'db'; found {', '.join(dbs)}")


def _relative(s: Section, key: str, value: str) -> str:
    """A path shipped to hosts: it must stay inside the application folder."""
    if not _RELATIVE.match(value) or ".." in Path(value).parts:
        raise s.error(key, f"must be a relative path inside the application, got {value!r}")
    return value


def _local(s: Section, key: str, value: str) -> str:
    """A path read only on the control node (requirements, the client folder to bundle):
    it may lie outside the application folder, e.g. ``../requirements/base.txt``."""
    if not _RELATIVE.match(value.replace("../", "")) or Path(value).is_absolute():
        raise s.error(key, f"must be a relative path, got {value!r}")
    return value


def _application(top: Section, path: Path) -> Application:
    s = top.section("application", required=True)
    assert s is not None
    source_text = s.get("source", str, required=True)
    source = (path.parent / Path(source_text).expanduser()).resolve()
    if not (source / "manage.py").is_file():
        raise s.error("source", f"{source} is not a Django project (no manage.py there)")
    settings = s.get("settings", str, required=True)
    if not _MODULE.match(settings):
        raise s.error("settings", f"is not a Python module name: {settings!r}")
    requirements = tuple(_local(s, "requirements", r) for r in s.string_list("requirements"))
    _check_files(s, "requirements", source, requirements)
    fixtures = _fixtures(s, source)
    mode, port, health = _server(s.section("server"))
    client_source, client_reqs = _client(s.section("client"), source, requirements)
    env = _env(s)
    s.finish()
    return Application(
        source=source,
        settings=settings,
        requirements=requirements,
        fixtures=fixtures,
        server_mode=mode,
        server_port=port,
        health_path=health,
        client_source=client_source,
        client_requirements=client_reqs,
        env=env,
    )


def _check_files(s: Section, key: str, source: Path, names: tuple[str, ...]) -> None:
    """Requirement files are read on the control node: a missing one is a config error now,
    not a failed wheelhouse build later."""
    for name in names:
        if not (source / name).is_file():
            raise s.error(key, f"file {source / name} does not exist")


def _fixtures(s: Section, source: Path) -> tuple[str, ...]:
    fixtures = tuple(_relative(s, "fixtures", f) for f in s.string_list("fixtures", ()))
    for fixture in fixtures:
        # A bare label ("initial_data") is Django's to find in the apps' fixtures folders;
        # a path must exist, or the run would fail much later on the host.
        is_label = "/" not in fixture and "." not in fixture
        if not is_label and not (source / fixture).is_file():
            raise s.error("fixtures", f"file {source / fixture} does not exist")
    return fixtures


def _server(server: Section | None) -> tuple[str, int, str]:
    """The application server's mode, port and health path (``application.server``)."""
    if server is None:
        return "testserver", 8000, "/"
    mode = server.choice("mode", SERVER_MODES, "testserver")
    port = server.get("port", int, 8000)
    if not 1024 <= port <= 65535:
        raise server.error("port", "must be between 1024 and 65535")
    health = server.get("health", str, "/")
    if not re.match(r"^/[A-Za-z0-9._~/?=&%-]*$", health):
        raise server.error("health", f"must be a URL path starting with '/': {health!r}")
    server.finish()
    return mode, port, health


def _client(
    client: Section | None, source: Path, requirements: tuple[str, ...]
) -> tuple[str, tuple[str, ...]]:
    """The client's folder and requirements (``application.client``); by default the
    application's own folder and requirements."""
    if client is None:
        return ".", requirements
    client_source = _local(client, "source", client.get("source", str, "."))
    if not (source / client_source).is_dir():
        raise client.error("source", f"folder {source / client_source} does not exist")
    client_reqs = tuple(
        _local(client, "requirements", r) for r in client.string_list("requirements", requirements)
    )
    _check_files(client, "requirements", source, client_reqs)
    client.finish()
    return client_source, client_reqs


def _env(s: Section) -> dict[str, str]:
    """Extra environment of the application; names readiness sets itself are refused."""
    env = s.string_map("env")
    for key in env:
        if (
            not _ENV_NAME.match(key)
            or key.startswith(("READINESS_", "LD_"))
            or key in _RESERVED_ENV
        ):
            raise s.error(
                "env",
                f"{key!r} cannot be set here: readiness sets it itself (settings, secrets, "
                "interpreter paths), and overriding it would bypass the run's own database",
            )
    return env


def _database(top: Section) -> Database:
    s = top.section("database")
    if s is None:
        return Database(mode="managed", name="app", user="app")
    mode = s.choice("mode", DATABASE_MODES, "managed")
    engine = s.choice("engine", tuple(ENGINES), "mariadb")
    name = s.get("name", str, "app")
    user = s.get("user", str, "app")
    for key, value in (("name", name), ("user", user)):
        if not re.match(r"^[A-Za-z0-9_]{1,32}$", value):
            raise s.error(key, f"must be 1-32 letters, digits or underscores; got {value!r}")
        if value.lower() in ENGINES[engine].reserved_names:
            raise s.error(key, f"{value!r} is reserved by the database server; choose another")
    port = s.get("port", int, 3307)
    if not 1024 <= port <= 65535:
        raise s.error("port", "must be between 1024 and 65535")
    envs: dict[str, str | None] = {}
    for key in ("host_env", "port_env", "user_env", "password_env"):
        var = s.optional(key, str)
        if var is not None and not _ENV_NAME.match(var):
            raise s.error(key, f"must name an environment variable, got {var!r}")
        envs[key] = var
    if mode == "existing":
        for key in ("host_env", "password_env"):
            if envs[key] is None:
                raise s.error(key, "is required when mode is 'existing'")
    elif any(envs.values()):
        raise s.error("mode", "is 'managed'; *_env keys apply only to mode 'existing'")
    for secret_key in ("password", "pass", "passwd"):
        if s.has(secret_key):
            raise s.error(
                secret_key,
                "credentials are never written in an inventory: name an environment "
                "variable with 'password_env' instead",
            )
    s.finish()
    return Database(mode=mode, name=name, user=user, port=port, engine=engine, **envs)
