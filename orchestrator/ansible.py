"""Hosts from an Ansible inventory file (INI or YAML), read without ansible-core.

Teams that already describe their machines for Ansible should not have to write them a
second time: an inventory's ``hosts:`` may name an Ansible inventory instead of listing
hosts (see :func:`orchestrator.inventory.load_inventory`). This module only reads the
file, as Ansible would, into groups and hosts with their merged variables, each
remembering the file and line it came from; judging the values is the inventory's job,
so that a value from Ansible is refused exactly as the same value written by hand.

What is read, as Ansible reads it:

- INI: ``[group]`` sections of host lines (``name key=value ...``, quoted with shell
  rules), ``[group:vars]`` (one ``key=value`` a line), ``[group:children]``, hosts before
  any section in ``ungrouped``, comments starting with ``#`` or ``;``; values are Python
  literals where they parse as one (``2222`` is a number), else the text.
- YAML (``.yml``, ``.yaml``, ``.json``, or any other file that reads as a YAML mapping):
  groups at the top, each with ``hosts``, ``vars`` and ``children``. Ansible's own tags
  (``!vault``, ``!unsafe``) are read as plain text.
- Host patterns: ``name:port``, and ranges expanded as Ansible expands them
  (``web[01:03]`` is web01, web02, web03; ``db-[a:c]``; ``[1:9:2]`` steps by 2).
- ``group_vars/`` and ``host_vars/`` beside the file (``all.yml``, ``<group>.yaml``, or a
  folder of such files), because that is where many teams keep ``ansible_user``.

Precedence, lowest first, as Ansible documents it for an inventory: group variables of
the inventory file (``all`` first, then parents before children: deeper groups win, and
among groups of one depth ``ansible_group_priority`` then the name decide), then
``group_vars/`` in the same order, then the host's own variables in the file, then
``host_vars/<host>``. What is not read: ``ansible.cfg``, playbook-level variables,
dynamic inventories (scripts, plugins), vault-encrypted files (a ``group_vars`` file
wholly encrypted with ansible-vault is skipped: such files hold secrets readiness does
not use) and Jinja2 templates, which are never evaluated (the inventory refuses one in a
value it uses).
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import string
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from orchestrator import document
from orchestrator.document import Located, shown
from orchestrator.exceptions import ConfigError

# Bounds for hostile files: a range such as [0:99999999] must not exhaust memory, and
# group nesting is walked recursively. Real inventories are far below them.
MAX_HOSTS = 1000
# Host names all the file's patterns may expand to, counted with repeats: many lines of
# one large range would otherwise cost lines x range, however few hosts they name.
MAX_EXPANDED = 20 * MAX_HOSTS
MAX_GROUPS = 1000
MAX_NESTING = 50
MAX_VARS_FILES = 200
YAML_SUFFIXES = (".yml", ".yaml", ".json")
_VAULT = "$ANSIBLE_VAULT;"

# The variables readiness honours, per ``hosts:`` key, the modern name first and then the
# older alias Ansible still reads. Nothing else changes how a host is reached: above all,
# ansible_ssh_common_args, ansible_ssh_extra_args and ansible_host_key_checking are
# ignored, so no Ansible file can turn strict host key checking off.
CONNECTION_VARIABLES: dict[str, tuple[str, ...]] = {
    "address": ("ansible_host", "ansible_ssh_host"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "user": ("ansible_user", "ansible_ssh_user"),
    "key_file": ("ansible_ssh_private_key_file", "ansible_private_key_file"),
    "connection": ("ansible_connection",),
    "python": ("ansible_python_interpreter",),
}
# Ansible's connection plugins that mean what readiness calls ssh or local.
_CONNECTIONS = {
    "ssh": "ssh", "smart": "ssh", "paramiko": "ssh", "paramiko_ssh": "ssh", "local": "local"
}  # fmt: skip
# ansible_python_interpreter values that ask Ansible to discover one: readiness's default.
AUTO_PYTHON = frozenset({"auto", "auto_silent", "auto_legacy", "auto_legacy_silent"})

_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?")
_GROUP_LINE = re.compile(r"([^:\]\s]+)\s*(?:#.*)?")
_WITH_PORT = re.compile(r"((?:[^:\[\]]|\[[^\]]*\])+):([0-9]{1,9})")
_RANGE = re.compile(r"\[([A-Za-z0-9]{0,9}):([A-Za-z0-9]{1,9})(?::([0-9]{1,6}))?\]")
# A group or host name looked up as a file in group_vars/ or host_vars/: never a path.
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


@dataclass(frozen=True)
class Value:
    """A variable's value and where it was set (for errors naming file and line)."""

    value: object
    file: str
    line: int


@dataclass(frozen=True)
class AnsibleHost:
    """A host, the groups it is in (with every ancestor group) and its merged variables."""

    name: str
    line: int
    groups: frozenset[str]
    vars: Mapping[str, Value]


@dataclass(frozen=True)
class AnsibleInventory:
    """An Ansible inventory file as read: its groups and its hosts in file order."""

    file: str
    groups: tuple[str, ...]
    hosts: tuple[AnsibleHost, ...]


@dataclass(frozen=True)
class Placed:
    """A host that plays at least one role, with its variables and its line in the file."""

    name: str
    roles: tuple[str, ...]
    vars: Mapping[str, Value]
    file: str
    line: int


def parse(path: Path) -> AnsibleInventory:
    """Read the Ansible inventory at ``path``; every problem is a ConfigError naming the
    file (and the line, when there is one). Pure: it reads files, nothing else."""
    file = str(path)
    text = read_text(path)
    if text.startswith(_VAULT):
        raise ConfigError(
            "is encrypted with ansible-vault; readiness does not decrypt inventories: "
            "name a decrypted copy",
            file=file,
            line=1,
        )
    doc = None
    if path.suffix in YAML_SUFFIXES:
        doc = _yaml_document(text, file)
    elif path.suffix != ".ini":
        # Ansible tries YAML before INI for other names ("hosts"): so does this.
        try:
            doc = _yaml_document(text, file)
        except ConfigError:
            doc = None
        if doc is not None and not isinstance(doc.value, dict):
            doc = None
    draft = _from_yaml(doc, file) if doc is not None else _from_ini(text, file)
    return _resolve(draft, path.parent)


def hosts_for(inventory: AnsibleInventory, roles: Mapping[str, str]) -> list[Placed]:
    """The hosts that play a role: ``roles`` maps each role to a group, and a host has the
    roles whose group contains it (directly or through a child group), in the mapping's
    order. A host in no mapped group is not part of the deployment: an Ansible file
    describes more machines than one test run needs."""
    placed = []
    for host in inventory.hosts:
        mine = tuple(role for role, group in roles.items() if group in host.groups)
        if mine:
            placed.append(Placed(host.name, mine, host.vars, inventory.file, host.line))
    return placed


def connection_kind(value: object) -> str | None:
    """``ssh`` or ``local`` for an ``ansible_connection`` that means one (also written
    ``ansible.builtin.ssh``), else None: readiness reaches hosts in no other way."""
    if not isinstance(value, str):
        return None
    return _CONNECTIONS.get(value.removeprefix("ansible.builtin."))


def value_problem(value: object) -> str | None:
    """Why a value Ansible would transform first cannot be used as written, or None."""
    if not isinstance(value, str):
        return None
    if value.startswith(_VAULT):
        return "is encrypted with ansible-vault; readiness does not decrypt: write the value"
    if "{{" in value or "{%" in value:
        return (
            f"is a Jinja2 template ({shown(value)}); readiness does not evaluate templates: "
            "write the value itself"
        )
    return None


# --------------------------------------------------------------------------- the model


@dataclass
class _Group:
    line: int
    vars: dict[str, Value] = field(default_factory=dict)
    children: dict[str, int] = field(default_factory=dict)  # name -> line naming it
    hosts: dict[str, None] = field(default_factory=dict)  # an ordered set


@dataclass
class _Host:
    line: int
    vars: dict[str, Value] = field(default_factory=dict)


class _Draft:
    """Groups and hosts as a file declares them, before precedence is applied."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.groups: dict[str, _Group] = {"all": _Group(1), "ungrouped": _Group(1)}
        self.hosts: dict[str, _Host] = {}
        self.expanded = 0

    def error(self, line: int | None, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=line)

    def group(self, name: str, line: int) -> _Group:
        if name not in self.groups:
            if len(self.groups) >= MAX_GROUPS:
                raise self.error(line, f"has more than {MAX_GROUPS} groups")
            self.groups[name] = _Group(line)
        return self.groups[name]

    def add_hosts(self, group: str, pattern: str, line: int, variables: dict[str, Value]) -> None:
        """The hosts of ``pattern`` (a range, a ``:port``) in ``group``; later variables
        of a host replace earlier ones, as in Ansible."""
        names, port = _host_pattern(pattern, self, line)
        self.expanded += len(names)
        if self.expanded > MAX_EXPANDED:
            raise self.error(
                line,
                f"its host patterns name more than {MAX_EXPANDED} hosts in all (repeats count)",
            )
        members = self.group(group, line).hosts
        for name in names:
            host = self.hosts.get(name)
            if host is None:
                if len(self.hosts) >= MAX_HOSTS:
                    raise self.error(line, f"has more than {MAX_HOSTS} hosts")
                host = self.hosts[name] = _Host(line)
            if port is not None:
                host.vars["ansible_port"] = Value(port, self.file, line)
            host.vars.update(variables)
            members[name] = None


# --------------------------------------------------------------------------- reading


def read_text(path: Path) -> str:
    """The text of ``path``, refused as :func:`orchestrator.document.read_text` refuses a
    file (not a regular file, a pseudo-file of /proc, too large, not UTF-8), and a NUL
    character (an INI file is not parsed by YAML, which would refuse it)."""
    name = str(path)
    text = document.read_text(path, "an Ansible inventory")
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise ConfigError("contains a NUL character: is this a text file?", file=name, line=line)
    return text


def _yaml_document(text: str, file: str) -> Located | None:
    """The YAML document in ``text`` (None when it holds none), read by the safe loader of
    :mod:`orchestrator.document`; Ansible's own tags are blanked out first, keeping every
    line and column, so that ``!vault`` values read as the text they are."""
    try:
        tokens = list(yaml.scan(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return document.parse(text, file)  # which reports the problem with its line
    if all(isinstance(t, yaml.StreamStartToken | yaml.StreamEndToken) for t in tokens):
        return None  # only comments: an empty vars file is fine for Ansible
    return document.parse(_untagged(text, tokens), file)


def _untagged(text: str, tokens: list[yaml.Token]) -> str:
    """``text`` with Ansible's own tags (``!vault``, ``!unsafe``) blanked out, keeping
    every line and column: their values read as the plain text they are."""
    spans = [
        (t.start_mark.index, t.end_mark.index)
        for t in tokens
        if isinstance(t, yaml.TagToken) and t.value in (("!", "vault"), ("!", "unsafe"))
    ]
    for start, end in reversed(spans):
        text = text[:start] + " " * (end - start) + text[end:]
    return text


_USED = frozenset(name for names in CONNECTION_VARIABLES.values() for name in names)


def _used_vars(text: str, file: str) -> dict[str, Value]:
    """The variables readiness uses from a group_vars/host_vars file, read leniently.

    Such files are the team's whole Ansible configuration (firewall maps with integer
    keys, merge keys, duplicate keys Ansible only warns about): only the top-level
    variables readiness uses are built, so nothing else in them can refuse the file.
    Its tags (``!vault``, ``!unsafe``) are read as plain values, as elsewhere."""
    try:
        tokens = list(yaml.scan(text, Loader=yaml.SafeLoader))
        root = yaml.compose(_untagged(text, tokens), Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return _strict_vars(text, file)  # which names the line of the problem
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(
            "a vars file is a mapping of variables", file=file, line=root.start_mark.line + 1
        )
    found: dict[str, Value] = {}
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value in _USED:
            built = yaml.SafeLoader("").construct_object(value, deep=True)
            found[str(key.value)] = Value(built, file, value.start_mark.line + 1)
    return found


def _strict_vars(text: str, file: str) -> dict[str, Value]:
    doc = _yaml_document(text, file)
    if doc is None or doc.value is None or not isinstance(doc.value, dict):
        return {}
    return {key: Value(_plain(item), file, item.line) for key, item in doc.value.items()}


# --------------------------------------------------------------------------- INI


def _from_ini(text: str, file: str) -> _Draft:
    """Groups, hosts and variables of an INI inventory, line by line as Ansible reads it."""
    draft = _Draft(file)
    group, state = "ungrouped", "hosts"
    declared = {"all", "ungrouped"}
    referenced: dict[str, tuple[int, str]] = {}  # group -> (line, the section naming it)
    for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        header = _SECTION.fullmatch(line)
        if header:
            group, state = header[1], header[2] or "hosts"
            if state not in ("hosts", "vars", "children"):
                raise draft.error(
                    number, f"section [{group}:{state}] has an unknown type (hosts, vars, children)"
                )
            draft.group(group, number)
            if state == "vars":
                referenced.setdefault(group, (number, f"[{group}:vars]"))
            else:
                declared.add(group)
        elif line.startswith("["):
            raise draft.error(
                number,
                "is not a section header: write [group], [group:vars] or [group:children], "
                "without spaces",
            )
        elif state == "hosts":
            _ini_hosts(draft, group, line, number)
        elif state == "vars":
            key, value = _ini_variable(draft, line, number)
            draft.groups[group].vars[key] = Value(value, file, number)
        else:
            child = _GROUP_LINE.fullmatch(line)
            if not child:
                raise draft.error(number, f"expected a group name in [{group}:children]")
            draft.group(group, number).children.setdefault(child[1], number)
            referenced.setdefault(child[1], (number, f"[{group}:children]"))
    for name, (number, section) in referenced.items():
        if name not in declared:
            raise draft.error(
                number,
                f"{section} names group {shown(name)}, which no [{name}] or "
                f"[{name}:children] section declares",
            )
    return draft


def _ini_hosts(draft: _Draft, group: str, line: str, number: int) -> None:
    """A host line: a host pattern, then ``key=value`` variables (shell quoting)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:  # never echo the line: it may hold a password
        raise draft.error(number, "a quote is not closed on this host line") from None
    if not tokens or not tokens[0]:
        raise draft.error(number, "expected a host name")
    variables: dict[str, Value] = {}
    for token in tokens[1:]:
        key, equals, value = token.partition("=")
        if not equals or not key:
            raise draft.error(number, "expected key=value variables after the host name")
        variables[key] = Value(_ini_value(value), draft.file, number)
    draft.add_hosts(group, tokens[0], number, variables)


def _ini_variable(draft: _Draft, line: str, number: int) -> tuple[str, object]:
    """A ``[group:vars]`` line: everything after the first ``=`` is the value."""
    key, equals, value = line.partition("=")
    if not equals or not key.strip():
        raise draft.error(number, "expected key=value in a [group:vars] section")
    return key.strip(), _ini_value(value.strip())


def _ini_value(text: str) -> object:
    """A value as Ansible's INI reader makes it: a Python literal when ``text`` is one
    (``2222``, ``'quoted'``, ``True``), else the text. Containers stay text: no value
    readiness uses is one, and the text is what an error should quote."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "invalid escape sequence" in a path
            value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, str | int | float) else text


# --------------------------------------------------------------------------- YAML


def _from_yaml(doc: Located, file: str) -> _Draft:
    """Groups at the top (``all``, or any group), each with hosts, vars and children."""
    draft = _Draft(file)
    if not isinstance(doc.value, dict):
        raise draft.error(
            doc.line,
            "an Ansible YAML inventory is a mapping of groups, such as "
            "all: {hosts: ..., vars: ..., children: ...}",
        )
    for name, group in doc.value.items():
        _yaml_group(draft, name, group)
    return draft


def _yaml_group(draft: _Draft, name: str, group: Located) -> None:
    draft.group(name, group.line)
    if group.value is None:
        return
    if not isinstance(group.value, dict):
        raise draft.error(
            group.line, f"group {shown(name)} must be a mapping (hosts, vars, children)"
        )
    for key, item in group.value.items():
        if key == "hosts":
            for pattern, variables in _yaml_mapping(draft, item, f"the hosts of {shown(name)}"):
                where = f"the variables of host {shown(pattern)}"
                values = {
                    var: Value(_plain(value), draft.file, value.line)
                    for var, value in _yaml_mapping(draft, variables, where)
                }
                draft.add_hosts(name, pattern, variables.line, values)
        elif key == "vars":
            for var, value in _yaml_mapping(draft, item, f"the vars of {shown(name)}"):
                draft.groups[name].vars[var] = Value(_plain(value), draft.file, value.line)
        elif key == "children":
            for child, sub in _yaml_mapping(draft, item, f"the children of {shown(name)}"):
                draft.groups[name].children.setdefault(child, sub.line)
                _yaml_group(draft, child, sub)
        else:  # Ansible skips it with a warning; a typo ("host:") would drop hosts silently
            raise draft.error(
                item.line,
                f"group {shown(name)} has an unknown key {shown(key)} "
                "(a group has hosts, vars and children)",
            )


def _yaml_mapping(draft: _Draft, item: Located, what: str) -> list[tuple[str, Located]]:
    if item.value is None:
        return []
    if not isinstance(item.value, dict):
        raise draft.error(item.line, f"{what} must be a mapping")
    return list(item.value.items())


def _plain(item: Located) -> object:
    """A YAML value without its lines (documents are at most 50 levels deep)."""
    if isinstance(item.value, dict):
        return {key: _plain(value) for key, value in item.value.items()}
    if isinstance(item.value, list):
        return [_plain(value) for value in item.value]
    return item.value


# --------------------------------------------------------------------------- host patterns


def _host_pattern(pattern: str, draft: _Draft, line: int) -> tuple[list[str], int | None]:
    """The host names of ``pattern`` (ranges expanded) and the port it names, if any."""
    if pattern.endswith(":"):
        raise draft.error(
            line,
            f"host {shown(pattern)} ends in ':', which introduces a port; "
            "if this is a YAML inventory, name it .yml",
        )
    match = _WITH_PORT.fullmatch(pattern)
    name, port = (match[1], int(match[2])) if match else (pattern, None)
    if "[" not in name and "]" not in name:
        return [name], port
    names = [""]
    rest = name
    while "[" in rest:
        start = rest.index("[")
        found = _RANGE.match(rest, start)
        if "]" in rest[:start] or not found:
            raise draft.error(line, f"host {shown(pattern)} has a '[' that is not a range {_FORMS}")
        items = _range(found, pattern, draft, line)
        if len(names) * len(items) > MAX_HOSTS:
            raise draft.error(
                line, f"host range {shown(pattern)} makes more than {MAX_HOSTS} hosts"
            )
        names = [f"{done}{rest[:start]}{item}" for done in names for item in items]
        rest = rest[found.end() :]
    if "]" in rest:
        raise draft.error(line, f"host {shown(pattern)} has a ']' that closes no range")
    return [f"{done}{rest}" for done in names], port


_FORMS = "such as [01:10], [1:9:2] or [a:f]"


def _range(found: re.Match[str], pattern: str, draft: _Draft, line: int) -> list[str]:
    """One ``[begin:end(:step)]``, as Ansible expands it: numbers keep the width of a
    zero-padded begin, single letters run through a-z then A-Z. What Ansible would expand
    to nothing (an end before the begin) or crash on is refused here."""
    begin, end, step = found[1] or "0", found[2], int(found[3] or 1)
    if step < 1:
        raise draft.error(line, f"host range {shown(pattern)} has a step of 0")
    if begin.isdigit() and end.isdigit():
        width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
        if width and len(end) != width:
            raise draft.error(
                line,
                f"host range {shown(pattern)}: a zero-padded range needs begin and "
                "end of the same width ([01:10], not [01:100])",
            )
        first, last = int(begin), int(end)
        if last < first or (last - first) // step >= MAX_HOSTS:
            raise draft.error(
                line, f"host range {shown(pattern)} ends before it begins or is too large"
            )
        return [str(n).zfill(width) for n in range(first, last + 1, step)]
    letters = string.ascii_letters
    if len(begin) == len(end) == 1 and begin in letters and end in letters:
        if letters.index(end) < letters.index(begin):
            raise draft.error(line, f"host range {shown(pattern)} ends before it begins")
        return list(letters[letters.index(begin) : letters.index(end) + 1 : step])
    raise draft.error(line, f"host range {shown(pattern)} is neither numbers nor letters {_FORMS}")


# --------------------------------------------------------------------------- precedence


def _resolve(draft: _Draft, folder: Path) -> AnsibleInventory:
    """Each host's groups and variables, merged in Ansible's order (module docstring)."""
    direct = _memberships(draft)
    parents = _parents(draft)
    depths: dict[str, int] = {}
    for name in draft.groups:
        _depth(draft, parents, name, depths, [])
    ancestors: dict[str, frozenset[str]] = {}
    files = _VarsFiles(folder)
    hosts = []
    for host_name, host in draft.hosts.items():
        groups: set[str] = set()
        for name in direct[host_name]:
            groups |= {name} | _ancestors(parents, name, ancestors)
        order = sorted(groups, key=lambda g: (depths[g], _priority(draft, g), g))
        layers = [draft.groups[g].vars for g in order]
        layers += [files.of("group_vars", g) for g in order]
        layers += [host.vars, files.of("host_vars", host_name)]
        merged: dict[str, Value] = {}
        for layer in layers:
            merged.update(layer)
        hosts.append(AnsibleHost(host_name, host.line, frozenset(groups), merged))
    return AnsibleInventory(draft.file, tuple(draft.groups), tuple(hosts))


def _memberships(draft: _Draft) -> dict[str, list[str]]:
    """The groups each host is declared in; ``ungrouped`` holds, as in Ansible, exactly
    the hosts that are in no group but ``all``."""
    direct: dict[str, list[str]] = {name: [] for name in draft.hosts}
    for name, group in draft.groups.items():
        for host in group.hosts:
            direct[host].append(name)
    ungrouped = draft.groups["ungrouped"].hosts
    for host, groups in direct.items():
        named = any(g not in ("all", "ungrouped") for g in groups)
        if named and "ungrouped" in groups:
            del ungrouped[host]
            groups.remove("ungrouped")
        elif not named and "ungrouped" not in groups:
            ungrouped[host] = None
            groups.append("ungrouped")
    return direct


def _parents(draft: _Draft) -> dict[str, dict[str, int]]:
    """Each group's parents (with the line that made it a child); a group nobody names
    as a child is a child of ``all``."""
    parents: dict[str, dict[str, int]] = {name: {} for name in draft.groups}
    for name, group in draft.groups.items():
        for child, line in group.children.items():
            parents[child][name] = line
    for name, found in parents.items():
        if name != "all" and not found:
            found["all"] = draft.groups[name].line
    return parents


def _depth(
    draft: _Draft,
    parents: dict[str, dict[str, int]],
    name: str,
    depths: dict[str, int],
    path: list[str],
) -> int:
    """A group's depth below ``all`` (its longest chain of parents); a loop of groups
    (Ansible refuses one too) or nesting past :data:`MAX_NESTING` is an error."""
    if name in depths:
        return depths[name]
    if len(path) > MAX_NESTING:
        line = parents[name][next(iter(parents[name]))] if parents[name] else None
        raise draft.error(line, f"groups are nested more than {MAX_NESTING} levels deep")
    depth = 0
    for parent, line in parents[name].items():
        if parent == name or parent in path:
            raise draft.error(
                line,
                f"group {shown(parent)} has {shown(name)} as a child, but is itself inside "
                f"{shown(name)}: groups cannot contain each other",
            )
        depth = max(depth, 1 + _depth(draft, parents, parent, depths, [*path, name]))
    depths[name] = depth
    return depth


def _ancestors(
    parents: dict[str, dict[str, int]], name: str, known: dict[str, frozenset[str]]
) -> frozenset[str]:
    if name not in known:
        found: set[str] = set()
        for parent in parents[name]:
            found |= {parent} | _ancestors(parents, parent, known)
        known[name] = frozenset(found)
    return known[name]


def _priority(draft: _Draft, name: str) -> int:
    """``ansible_group_priority`` (default 1): orders groups of one depth."""
    value = draft.groups[name].vars.get("ansible_group_priority")
    if value is None:
        return 1
    text = str(value.value)
    if isinstance(value.value, bool) or not (text.isascii() and text.isdigit() and len(text) < 10):
        raise ConfigError(
            f"ansible_group_priority of group {shown(name)} must be a whole number",
            file=value.file,
            line=value.line,
        )
    return int(text)


class _VarsFiles:
    """``group_vars/`` and ``host_vars/`` beside the inventory, read once each, as
    Ansible finds them: ``<name>``, ``<name>.yml``, ``.yaml`` or ``.json`` (the first that
    exists), or, when that is a folder, every such file in it, in name order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.cache: dict[tuple[str, str], dict[str, Value]] = {}

    def of(self, kind: str, name: str) -> dict[str, Value]:
        if (kind, name) not in self.cache:
            try:
                files = self._files(kind, name)
            except OSError as err:  # a folder this user may not search
                where = str(self.folder / kind)
                raise ConfigError(
                    f"cannot look into the folder ({err.strerror})", file=where
                ) from None
            merged: dict[str, Value] = {}
            for path in files:
                merged.update(self._read(path))
            self.cache[kind, name] = merged
        return self.cache[kind, name]

    def _files(self, kind: str, name: str) -> list[Path]:
        base = self.folder / kind
        if not _FILE_NAME.fullmatch(name) or not base.is_dir():
            return []
        for suffix in ("", *YAML_SUFFIXES):
            candidate = base / f"{name}{suffix}"
            if candidate.is_dir():
                return self._under(candidate, set())
            if candidate.exists():
                return [candidate]
        return []

    def _under(self, folder: Path, seen: set[str]) -> list[Path]:
        """Every vars file under ``folder``; a folder reached twice (a symlink loop) is
        read once, and folders are bounded as files are."""
        seen.add(os.path.realpath(folder))
        if len(seen) > MAX_VARS_FILES:
            raise ConfigError(f"holds more than {MAX_VARS_FILES} folders", file=str(folder))
        found: list[Path] = []
        for entry in sorted(os.listdir(folder)):
            path = folder / entry
            if entry.startswith(".") or entry.endswith("~"):
                continue
            if path.is_dir():
                if os.path.realpath(path) not in seen:
                    found += self._under(path, seen)
            elif path.suffix in ("", *YAML_SUFFIXES):
                found.append(path)
        return found

    def _read(self, path: Path) -> dict[str, Value]:
        self.count += 1
        if self.count > MAX_VARS_FILES:
            raise ConfigError(f"more than {MAX_VARS_FILES} vars files", file=str(path.parent))
        text = read_text(path)
        if text.startswith(_VAULT):
            return {}  # module docstring: secrets readiness does not use
        return _used_vars(text, str(path))
