"""Inventories: which hosts, how to reach them, which roles they play, what to deploy.

An inventory is YAML (see ``inventories/example-hosts.yaml`` for every field, with
comments). It is validated completely before any connection is opened; each error names
the file, the line and the field. Nothing here names a particular application: the
application is configuration (its source folder, settings module, requirements,
fixtures), so any Django project can be deployed by writing an inventory and a suite.

Lab hosts (``connection: lab``) get their address, user and keys from the lab state at
run time (:mod:`orchestrator.lab` is the one source of truth), not from the file.

Validation is where a hostile or careless value must stop, because everything after it
trusts the inventory: a deploy root is normalised before it is judged (``/.`` is ``/``),
addresses that services would bind to must name one host (no wildcard, multicast or
broadcast), paths read on the control node must stay inside the folder they are
resolved against (the application's or the inventory's), even through symlinks
(:mod:`orchestrator.userfiles`), and every pattern matches the whole value (``$`` would
let a trailing newline through).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from orchestrator import ansible
from orchestrator.components import ENGINES
from orchestrator.document import (
    Located,
    Section,
    expand_user,
    load,
    path_problem,
    shown,
    shown_path,
)
from orchestrator.exceptions import ConfigError
from orchestrator.lab.design import (
    DEFAULT_HOSTS,
    DEFAULT_PREFIX,
    DEFAULT_SUBNET,
    hosts_problem,
    prefix_problem,
    subnet_problem,
)
from orchestrator.userfiles import (
    APPLICATION,
    Fixture,
    Places,
    UserFile,
    fixtures,
    is_system_folder,
    locate,
    requirement_files,
)

ROLES = ("db", "server", "client")
CONNECTIONS = ("lab", "ssh", "local")
SERVER_MODES = ("testserver", "gunicorn")
DATABASE_MODES = ("managed", "existing")

# Every pattern is used with fullmatch: '$' also matches before a trailing newline.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYTHON = re.compile(r"[A-Za-z0-9._/][A-Za-z0-9._/-]*")
_HEALTH = re.compile(r"/[A-Za-z0-9._~/?=&%-]*")
_DB_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")
# Remote paths are used in generated scripts: allow a conservative character set only.
_REMOTE_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")
# Lab hosts are named like the lab's own hosts: h1, h2, ... (or <prefix>-h1, ...).
_LAB_HOST = re.compile(r"(?:[a-z][a-z0-9]{0,5}-)?h([1-9][0-9]{0,2})")
# The database's Unix socket is <deploy_root>/db/mysqld.sock, and Linux limits socket
# paths to 107 bytes.
MAX_DEPLOY_ROOT = 90
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
    """The Django project to deploy, and the user's files that come with it, as found on
    the control node (inside the application, beside the inventory, or absolute: see
    :mod:`orchestrator.userfiles`)."""

    source: Path
    settings: str
    requirements: tuple[UserFile, ...]
    fixtures: tuple[Fixture, ...]
    server_mode: str
    server_port: int
    health_path: str
    client_source: UserFile
    client_requirements: tuple[UserFile, ...]
    env: dict[str, str] = field(default_factory=dict)
    # gunicorn only: how it takes connections (threads 1 = sync workers; backlog None =
    # gunicorn's own 2048). A serial server with a small backlog is what overflows.
    server_workers: int = 2
    server_threads: int = 4
    server_backlog: int | None = None

    @property
    def files(self) -> tuple[UserFile, ...]:
        """Every file and folder of the user's this application uses, once each (the
        client's requirements are by default the application's own)."""
        found = [
            *self.requirements,
            *(f.file for f in self.fixtures if f.file is not None),
            self.client_source,
            *self.client_requirements,
        ]
        return tuple({(f.field, f.path): f for f in found}.values())


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
    # Where the suite was named (the 'suite' field's line, or the top's when it is left
    # out), so that an error in the suite file can say which inventory line chose it.
    suite_line: int = 1

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
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        return expand_user(name_or_path)
    if not _NAME.fullmatch(name_or_path):
        raise ConfigError(
            f"{shown(name_or_path)} is neither an inventory name nor a path to a file"
        )
    return root / "inventories" / f"{name_or_path}.yaml"


def load_inventory(path: Path) -> Inventory:
    """Read and validate an inventory file (no host is contacted)."""
    top = Section(load(path), file=str(path))
    name = top.get("name", str, _default_name(path))
    if not _NAME.fullmatch(name):
        raise top.error("name", "must be letters, digits, '.', '_' or '-' (at most 63)")
    top.get("schema", int, 1)
    lab, lab_section = _lab(top)
    hosts = _hosts(top, lab, path)
    if lab is not None:
        _check_lab_size(top, lab_section, lab, hosts)
    application = _application(top, path)
    database = _database(top)
    _check_roles(top, hosts, database)
    _check_ports(top, hosts, application, database)
    suite_item = top.raw("suite")
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
        suite_line=suite_item.line if suite_item else top.line,
    )


def suite_error(inventory: Inventory, err: ConfigError) -> ConfigError:
    """``err``, about the suite this inventory chose, also saying which line chose it.

    The user may never have typed the suite's name (it came from the inventory's
    ``suite:`` field, or its default): without this they would not know why that file.
    """
    if err.file is None:  # the name itself is wrong: that is the inventory's own error
        return ConfigError(
            err.message, file=str(inventory.file), line=inventory.suite_line, field="suite"
        )
    named = ConfigError(
        f"{err.message} (the suite named by {inventory.file}, line {inventory.suite_line}, "
        "field 'suite')"
    )
    named.file, named.line, named.field = err.file, err.line, err.field
    return named


def _default_name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem)[:63] or "inventory"
    return stem if _NAME.fullmatch(stem) else "inventory"


def _lab(top: Section) -> tuple[LabSpec | None, Section | None]:
    """The ``lab:`` section: its prefix and subnet checked as ``lab.up`` would check them,
    here, so that ``--dry-run`` refuses them too and the error has a file and a line."""
    item = top.raw("lab")
    if item is None or item.value is None or item.value is False:
        return None, None
    if item.value is True:
        return LabSpec(), None
    sub = top.section("lab")
    assert sub is not None
    prefix = sub.optional("prefix", str)
    problem = prefix_problem(prefix) if prefix is not None else None
    if problem:
        raise sub.error("prefix", problem)
    subnet = sub.optional("subnet", str)
    problem = subnet_problem(subnet) if subnet is not None else None
    if problem:
        raise sub.error("subnet", problem)
    hosts = sub.optional("hosts", int)
    if hosts is not None and not 1 <= hosts <= 32:
        raise sub.error("hosts", "must be between 1 and 32")
    sub.finish()
    return LabSpec(prefix=prefix, hosts=hosts, subnet=subnet), sub


def _check_lab_size(top: Section, sub: Section | None, lab: LabSpec, hosts: list[Host]) -> None:
    """The lab asked for must have the hosts the inventory names (h1..hN), and its subnet
    room for them; ``lab.up`` would otherwise refuse them at run time, with no line."""
    indices = [
        int(match.group(1))
        for h in hosts
        if h.connection == "lab" and (match := _LAB_HOST.fullmatch(h.name))
    ]
    needed = max(indices, default=0)
    if lab.hosts is not None and needed > lab.hosts:
        assert sub is not None  # lab.hosts comes from a lab: section
        raise sub.error(
            "hosts", f"is {lab.hosts}, but host 'h{needed}' needs a lab of {needed} hosts"
        )
    # A new lab gets lab.hosts hosts, 4 by default (an existing one keeps its own).
    count = max(lab.hosts or DEFAULT_HOSTS, needed)
    problem = hosts_problem(count, ipaddress.IPv4Network(lab.subnet or DEFAULT_SUBNET))
    if problem:
        if sub is None:
            raise top.error("lab", problem)
        key = "subnet" if lab.subnet else "hosts"
        raise sub.error(key, f"{problem} (lab.hosts: {lab.hosts or f'{DEFAULT_HOSTS} by default'})")


def _hosts(top: Section, lab: LabSpec | None, path: Path) -> list[Host]:
    """The ``hosts:`` list, or the hosts of an Ansible inventory (``hosts: {ansible: FILE}``)."""
    item = top.raw("hosts")
    if item is not None and isinstance(item.value, dict):
        return _ansible_hosts(top, lab, path)
    if item is not None and isinstance(item.value, str):
        raise top.error(
            "hosts",
            "must be a list of hosts; to take them from an Ansible inventory, write "
            f"hosts: {{ansible: {shown(item.value)}}}",
        )
    hosts: list[Host] = []
    for section in top.sections("hosts"):
        host = _host(section, lab, path.parent)
        if any(h.name == host.name for h in hosts):
            raise section.error("name", f"host name '{host.name}' is used twice")
        hosts.append(host)
    return hosts


@dataclass(frozen=True)
class _Shared:
    """What ``hosts: {ansible: FILE, ...}`` says for every host of the Ansible file.

    Written for readiness, it wins over the Ansible file's variables. Connection and
    python stay located values, so that an error about them names their line here.
    """

    file: str
    connection: Located | None = None
    python: Located | None = None
    known_hosts: Path | None = None
    deploy_root: str | None = None


def _ansible_hosts(top: Section, lab: LabSpec | None, path: Path) -> list[Host]:
    """The hosts of an Ansible inventory, each checked by :func:`_host` as if it were
    written here: a hostile value from the Ansible file meets the same refusal, naming
    that file, its line and the Ansible variable. Relative paths in the Ansible file
    (``ansible_ssh_private_key_file``) are relative to its folder: Ansible would leave
    them relative to wherever it runs, which readiness cannot know."""
    spec = top.section("hosts")
    assert spec is not None
    named = spec.raw("ansible")
    file = _control_path(spec, "ansible", spec.get("ansible", str, required=True), path.parent)
    shared = _shared(spec, lab, path.parent)
    roles, explicit = _role_groups(spec)
    spec.finish()
    try:
        parsed = ansible.parse(file)
    except ConfigError as err:
        if err.line is not None:
            raise
        # "file not found" alone would not say which inventory line asked for that file
        wrapped = ConfigError(
            f"{err.message} (the Ansible inventory named by {spec.file}, "
            f"line {named.line if named else spec.line}, field '{spec.field('ansible')}')"
        )
        wrapped.file, wrapped.line, wrapped.field = err.file, err.line, err.field
        raise wrapped from None
    for role, group in roles.items():
        if explicit is not None and explicit.has(role) and group not in parsed.groups:
            known = ", ".join(shown(g, 40) for g in parsed.groups[:20])
            more = ", ..." if len(parsed.groups) > 20 else ""
            raise explicit.error(
                role,
                f"group {shown(group)} is not in {shown_path(file)} (its groups: {known}{more})",
            )
    placed = ansible.hosts_for(parsed, roles)
    return [_ansible_host(host, shared, lab, file.parent) for host in placed]


def _shared(spec: Section, lab: LabSpec | None, base: Path) -> _Shared:
    """The keys of ``hosts:`` beside ``ansible``, checked as a host's own are."""
    connection = spec.raw("connection") if spec.optional("connection", str) is not None else None
    kind = spec.choice("connection", CONNECTIONS) if connection else ("lab" if lab else "ssh")
    if kind == "lab" and lab is None:
        raise spec.error("connection", "is 'lab' but the inventory has no 'lab:' section")
    python = spec.raw("python") if spec.optional("python", str) is not None else None
    if python is not None and not _PYTHON.fullmatch(python.value):
        raise spec.error(
            "python", f"is not a plain interpreter name or path: {shown(python.value)}"
        )
    deploy_root = spec.optional("deploy_root", str)
    if deploy_root is not None and kind == "lab":
        raise spec.error(
            "deploy_root",
            "lab hosts share this machine's folders and each gets a deploy root of its own "
            "from the lab; one deploy_root for every host would make them share it: remove it",
        )
    known_hosts = spec.optional("known_hosts", str)
    return _Shared(
        file=spec.file,
        connection=connection,
        python=python,
        known_hosts=_control_path(spec, "known_hosts", known_hosts, base) if known_hosts else None,
        deploy_root=_deploy_root(spec, deploy_root) if deploy_root is not None else None,
    )


def _role_groups(spec: Section) -> tuple[dict[str, str], Section | None]:
    """Which Ansible group plays each role (``hosts.roles``); by default the group named
    like the role. Returned with the ``roles`` section, to name it in errors."""
    groups = {role: role for role in ROLES}
    section = spec.section("roles")
    if section is None:
        return groups, None
    for role in ROLES:
        group = section.optional(role, str)
        if group == "":
            raise section.error(role, "must name a group of the Ansible inventory")
        if group is not None:
            groups[role] = group
    section.finish()
    return groups, section


class _Borrowed(Section):
    """A host of an Ansible file seen as a ``hosts:`` entry, so that :func:`_host` checks
    it exactly as it checks one written here. Each key remembers where its value came
    from; an error names that file and line and the variable the user wrote
    (``web1.ansible_host``), not a field they never wrote."""

    def __init__(self, items: dict[str, tuple[Located, str, str]], *, file: str, line: int):
        super().__init__(
            Located({key: item for key, (item, _, _) in items.items()}, line), file=file
        )
        self._origins = {
            key: (where, item.line, label) for key, (item, where, label) in items.items()
        }

    def field(self, key: str) -> str:
        return self._origins[key][2] if key in self._origins else key

    def error(self, key: str, message: str) -> ConfigError:
        file, line, label = self._origins.get(key, (self.file, self.line, key))
        return ConfigError(message, file=file, line=line, field=label)


def _ansible_host(placed: ansible.Placed, shared: _Shared, lab: LabSpec | None, base: Path) -> Host:
    """An Ansible host as a :class:`Host`: its variables, this inventory's keys over them
    (what the user wrote for readiness wins), then every check a listed host gets."""
    items = _ansible_items(placed)
    if shared.connection is not None:
        items["connection"] = (shared.connection, shared.file, "hosts.connection")
    if shared.python is not None:
        items["python"] = (shared.python, shared.file, "hosts.python")
    connection = items["connection"][0].value if "connection" in items else None
    if (connection or ("lab" if lab else "ssh")) == "ssh" and "address" not in items:
        # As in Ansible: a host without ansible_host is reached by its name.
        label = f"{_host_label(placed.name)}.ansible_host"
        items["address"] = (Located(placed.name, placed.line), placed.file, label)
    host = _host(_Borrowed(items, file=placed.file, line=placed.line), lab, base)
    return replace(host, known_hosts=shared.known_hosts, deploy_root=shared.deploy_root)


def _ansible_items(placed: ansible.Placed) -> dict[str, tuple[Located, str, str]]:
    """A host's name, roles and the values of the Ansible variables readiness honours,
    as located values with their origin (file, label)."""
    label = _host_label(placed.name)
    roles = Located([Located(role, placed.line) for role in placed.roles], placed.line)
    items = {
        "name": (Located(placed.name, placed.line), placed.file, label),
        "roles": (roles, placed.file, label),
    }
    for key, names in ansible.CONNECTION_VARIABLES.items():
        variable = next((name for name in names if name in placed.vars), None)
        if variable is None:
            continue
        found = placed.vars[variable]
        value = found.value
        problem = ansible.value_problem(value)
        if key == "connection" and problem is None:
            value = ansible.connection_kind(value)
            if value is None:
                problem = (
                    f"is {shown(found.value)}: readiness reaches a host by ssh or runs locally"
                )
        if problem:
            raise ConfigError(
                problem, file=found.file, line=found.line, field=f"{label}.{variable}"
            )
        if key == "python" and value in ansible.AUTO_PYTHON:
            continue  # "let Ansible find one": readiness's default does that
        if key == "python" and isinstance(value, str):
            # "/usr/bin/env python3", common in Ansible inventories: the same interpreter
            # found on PATH, which is how readiness runs a bare name.
            words = value.split()
            if len(words) == 2 and words[0] in ("/usr/bin/env", "/bin/env"):
                value = words[1]
        if key == "port" and isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value) if len(value) < 10 else value  # "2222" from INI or YAML
        items[key] = (Located(value, found.line), found.file, f"{label}.{variable}")
    return items


def _host_label(name: str) -> str:
    """A host name as the start of a field name; one no one would type is quoted."""
    return name if name.isprintable() and len(name) <= 64 else shown(name, 40)


def _host(s: Section, lab: LabSpec | None, base: Path) -> Host:
    name = s.get("name", str, required=True)
    if not _NAME.fullmatch(name):
        raise s.error("name", "must be letters, digits, '.', '_' or '-' (at most 63)")
    roles = _roles(s)
    connection = s.choice("connection", CONNECTIONS, "lab" if lab else "ssh")
    if connection == "lab":
        if lab is None:
            raise s.error("connection", "is 'lab' but the inventory has no 'lab:' section")
        _check_lab_name(s, name, lab)
    address = s.optional("address", str)
    if address is not None:
        problem = address_problem(address)
        if problem:
            raise s.error("address", problem)
    if connection == "ssh" and address is None:
        raise s.error("address", "is required for an ssh host")
    if connection == "lab" and address is not None:
        raise s.error("address", "comes from the lab state for a lab host; remove it")
    user = s.optional("user", str)
    if user is not None and not _USER.fullmatch(user):
        raise s.error("user", f"is not a valid user name: {shown(user)}")
    port = s.get("port", int, 22)
    if not 1 <= port <= 65535:
        raise s.error("port", "must be between 1 and 65535")
    deploy_root = s.optional("deploy_root", str)
    python = s.get("python", str, "python3")
    if not _PYTHON.fullmatch(python):
        raise s.error("python", f"is not a plain interpreter name or path: {shown(python)}")
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
        key_file=_control_path(s, "key_file", key_file, base) if key_file else None,
        known_hosts=_control_path(s, "known_hosts", known_hosts, base) if known_hosts else None,
        deploy_root=_deploy_root(s, deploy_root) if deploy_root is not None else None,
        python=python,
    )


def _roles(s: Section) -> tuple[str, ...]:
    roles = s.string_list("roles")
    for role in roles:
        if role not in ROLES:
            raise s.error("roles", f"unknown role {shown(role)}; roles are {', '.join(ROLES)}")
    if not roles:
        raise s.error("roles", "must name at least one role")
    if len(set(roles)) != len(roles):
        raise s.error("roles", "lists a role twice")
    return roles


def _check_lab_name(s: Section, name: str, lab: LabSpec) -> None:
    """A lab host is one of the lab's hosts, found by name: h1, h2, ... (``<prefix>-h1``)."""
    prefix = lab.prefix or DEFAULT_PREFIX
    if not _LAB_HOST.fullmatch(name) or ("-" in name and not name.startswith(f"{prefix}-h")):
        raise s.error(
            "name",
            f"'{name}' is not a lab host name: the lab's hosts are h1, h2, ... "
            f"(or {prefix}-h1, {prefix}-h2, ...)",
        )


def address_problem(address: str) -> str | None:
    """Why ``address`` cannot name one host, or None.

    Services bind to a host's address and the database grants it: a wildcard would
    expose them on every interface, a multicast or broadcast address is no host. A
    number the resolver reads as a legacy IPv4 form ("0", "127.1") hides such an
    address behind what looks like a host name, and an IPv6 zone ("%eth0") would carry
    any text into configuration files and SQL.
    """
    if "%" in address:
        return f"must not carry an IPv6 zone ('%...'): {shown(address)}"
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    except ValueError:
        if not _HOSTNAME.fullmatch(address):
            return f"is neither an IP address nor a host name: {shown(address)}"
        try:
            socket.inet_aton(address)
        except OSError:
            return None
        return (
            f"{shown(address)} is read by the system as an IPv4 address in a legacy form; "
            "write the address as four decimal numbers (a.b.c.d)"
        )
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return f"{address} is the wildcard address (every interface), not a host's address"
    if ip.is_multicast:
        return f"{address} is a multicast address, not a host's address"
    if ip == ipaddress.IPv4Address("255.255.255.255"):
        return f"{address} is the broadcast address, not a host's address"
    return None


def _deploy_root(s: Section, value: str) -> str:
    """The deploy root, normalised (``//``, ``/.``) and judged as the folder it names.

    readiness creates app/, etc/, db/, run/ and venvs/ in it and removes what it made:
    ``/``, a system folder or a folder inside the system's own trees must never be it.
    ``..`` is refused rather than resolved: where it leads depends on the host's symlinks.
    """
    if not _REMOTE_PATH.fullmatch(value):
        raise s.error(
            "deploy_root",
            f"must be an absolute path of letters, digits and ._+-/; got {shown(value)}",
        )
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise s.error("deploy_root", f"must not contain '..': {shown(value)}")
    root = "/" + "/".join(parts)
    if is_system_folder(tuple(parts)):
        named = root if value == root else f"{shown(value)}, that is {root},"
        raise s.error(
            "deploy_root",
            f"{named} is a system folder or inside one; readiness fills the deploy root and "
            "removes what it made there: give a folder of its own, such as "
            "/var/tmp/readiness/<name>",
        )
    if len(root) > MAX_DEPLOY_ROOT:
        raise s.error(
            "deploy_root",
            f"is {len(root)} characters long, at most {MAX_DEPLOY_ROOT}: the database's "
            "Unix socket lives under it, and Linux limits socket paths to 107 bytes",
        )
    return root


def _control_path(s: Section, key: str, text: str, base: Path) -> Path:
    """A path on the control node, relative to the inventory's folder; checked before
    any system call sees it (NUL, length, an unknown ``~user``)."""
    problem = path_problem(text)
    if problem:
        raise s.error(key, problem)
    try:
        path = base / Path(text).expanduser()
    except RuntimeError:  # "~nobody/x": Python cannot find that user's home
        raise s.error(key, f"{shown(text)} starts with a user this machine does not know") from None
    problem = path_problem(str(path))
    if problem:
        raise s.error(key, problem)
    return path


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


def _check_ports(top: Section, hosts: list[Host], app: Application, database: Database) -> None:
    """The managed database and the server must not listen on one port of one machine:
    the second to start would fail at run time, reported as an infrastructure error."""
    if database.mode != "managed" or database.port != app.server_port:
        return
    for db in (h for h in hosts if "db" in h.roles):
        for server in (h for h in hosts if "server" in h.roles):
            if not _same_machine(db, server):
                continue
            where = f"host '{db.name}'" if db is server else f"hosts '{db.name}', '{server.name}'"
            message = (
                f"database.port and application.server.port are both {database.port} on "
                f"{where} (one machine): the database and the server need a port each"
            )
            section = top.section("database")
            if section is None or not section.has("port"):
                application = top.section("application")
                section = application.section("server") if application else None
            raise (section or top).error("port", message)


def _same_machine(a: Host, b: Host) -> bool:
    if a is b or a.connection == b.connection == "local":
        return True
    if a.address is None or b.address is None:
        return False  # lab hosts: each its own namespace

    def key(address: str) -> str:
        try:
            return str(ipaddress.ip_address(address))
        except ValueError:
            return address.lower().rstrip(".")

    return key(a.address) == key(b.address)


def _application(top: Section, path: Path) -> Application:
    s = top.section("application", required=True)
    assert s is not None
    source = _source(s, path.parent)
    places = Places(application=source, inventory=_folder(path))
    settings = s.get("settings", str, required=True)
    if not _MODULE.fullmatch(settings):
        raise s.error("settings", f"is not a Python module name: {shown(settings)}")
    requirements = requirement_files(s, "requirements", s.string_list("requirements"), places)
    found_fixtures = fixtures(s, places)
    server = _server(s.section("server"))
    client_source, client_reqs = _client(s.section("client"), s, places, requirements)
    env = _env(s)
    s.finish()
    return Application(
        source=source,
        settings=settings,
        requirements=requirements,
        fixtures=found_fixtures,
        server_mode=server.mode,
        server_port=server.port,
        health_path=server.health,
        client_source=client_source,
        client_requirements=client_reqs,
        env=env,
        server_workers=server.workers,
        server_threads=server.threads,
        server_backlog=server.backlog,
    )


def _folder(path: Path) -> Path:
    """The inventory's folder, resolved: what paths beside the inventory are relative to."""
    try:
        return path.parent.resolve()
    except (OSError, RuntimeError):
        return path.parent.absolute()


def _source(s: Section, base: Path) -> Path:
    """The application's folder (relative to the inventory's), resolved: the folder every
    other application path must stay inside."""
    source = _control_path(s, "source", s.get("source", str, required=True), base)
    try:
        source = source.resolve()
        ok = (source / "manage.py").is_file()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        ok = False
    if not ok:
        raise s.error(
            "source", f"{shown_path(source)} is not a Django project (no manage.py there)"
        )
    return source


@dataclass(frozen=True)
class _Server:
    mode: str = "testserver"
    port: int = 8000
    health: str = "/"
    workers: int = 2
    threads: int = 4
    backlog: int | None = None


def _server(server: Section | None) -> _Server:
    """The application server (``application.server``): mode, port, health path, and for
    gunicorn its workers, threads and listen backlog."""
    if server is None:
        return _Server()
    mode = server.choice("mode", SERVER_MODES, "testserver")
    port = server.get("port", int, 8000)
    if not 1024 <= port <= 65535:
        raise server.error("port", "must be between 1024 and 65535")
    health = server.get("health", str, "/")
    if not _HEALTH.fullmatch(health):
        raise server.error("health", f"must be a URL path starting with '/': {shown(health)}")
    tuning = {}
    for key, default, top in (("workers", 2, 64), ("threads", 4, 256), ("backlog", None, 65535)):
        value = server.optional(key, int)
        if value is not None and mode != "gunicorn":
            raise server.error(key, "is a gunicorn setting: set mode: gunicorn, or remove it")
        if value is not None and not 1 <= value <= top:
            raise server.error(key, f"must be between 1 and {top}")
        tuning[key] = default if value is None else value
    server.finish()
    return _Server(mode, port, health, **tuning)  # type: ignore[arg-type]


def _client(
    client: Section | None, app: Section, places: Places, requirements: tuple[UserFile, ...]
) -> tuple[UserFile, tuple[UserFile, ...]]:
    """The client's folder and requirements (``application.client``); by default the
    application's own folder and requirements. Each may be in the application, beside
    the inventory, or absolute."""
    if client is None:
        whole = UserFile(app.field("client.source"), ".", places.application, APPLICATION)
        return whole, requirements
    client_source = locate(client, "source", client.get("source", str, "."), places, "folder")
    client_reqs = (
        requirement_files(client, "requirements", client.string_list("requirements"), places)
        if client.has("requirements")
        else requirements
    )
    client.finish()
    return client_source, client_reqs


def _env(s: Section) -> dict[str, str]:
    """Extra environment of the application; names readiness sets itself are refused."""
    env = s.string_map("env")
    for key in env:
        if (
            not _ENV_NAME.fullmatch(key)
            or key.startswith(("READINESS_", "LD_"))
            or key in _RESERVED_ENV
        ):
            raise s.error(
                "env",
                f"{shown(key)} cannot be set here: readiness sets it itself (settings, "
                "secrets, interpreter paths), and overriding it would bypass the run's own "
                "database",
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
        if not _DB_NAME.fullmatch(value):
            raise s.error(key, f"must be 1-32 letters, digits or underscores; got {shown(value)}")
        if value.lower() in ENGINES[engine].reserved_names:
            raise s.error(key, f"{value!r} is reserved by the database server; choose another")
    port = s.get("port", int, 3307)
    if not 1024 <= port <= 65535:
        raise s.error("port", "must be between 1024 and 65535")
    envs: dict[str, str | None] = {}
    for key in ("host_env", "port_env", "user_env", "password_env"):
        var = s.optional(key, str)
        if var is not None and not _ENV_NAME.fullmatch(var):
            raise s.error(key, f"must name an environment variable, got {shown(var)}")
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
