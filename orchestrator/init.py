"""``invoke init``: a first pair of inventories and a suite for a Django project, from its files.

Writing an inventory and a suite by hand means knowing readiness's fields and the
project's layout at once; most of what they need is already in the project's files.
``init`` reads them and writes ``NAME-single.yaml``, ``NAME-cluster.yaml`` (lab) and
``NAME.yaml``, each commented with what was found, so the first run needs no hand edit
and every later edit starts from a file that loads. It never writes into the project:
what the project lacks (a requirements file) it writes beside the inventories.

The project is read, never imported or run: its settings may need secrets, a database or
packages this machine lacks, and importing would run the project's code on the control
node. What reading finds (``inspect_project``):

- the settings module: the default ``manage.py`` gives ``DJANGO_SETTINGS_MODULE``
  (``os.environ.setdefault``), else the one ``*/settings.py`` beside it; its source is
  parsed with the modules it star-imports from the project (split settings);
- requirement files: ``requirements.txt``, else the runtime and test files of
  ``requirements/`` (base, common, prod(uction), test(s), testing), else all of them.
  With none, the hosts would install no Django: init writes ``NAME-requirements.txt``
  beside the inventories with the Django series ``startproject`` wrote in the settings'
  header; without that header it cannot know which Django, and that is an error;
- apps with tests: folders with ``apps.py`` or ``models.py`` and a ``tests.py`` or
  ``tests/`` that defines at least one ``test*`` function (``startapp``'s empty
  ``tests.py`` would make a layer of zero tests, which is a failure);
- fixtures: the files of the apps' ``fixtures/`` folders, listed only when there are some;
- static files: ``STATIC_ROOT`` with a manifest storage (``STATICFILES_STORAGE`` or
  ``STORAGES``) means ``collectstatic`` must run first (with ``DEBUG`` off, as readiness's
  overlay sets it, the static tag fails without the manifest);
- ``DATABASE_URL``, a hard-coded ``ALLOWED_HOSTS`` or ``DATABASES``: noted only, since the
  settings overlay replaces all three;
- a client suite: a folder ``it/``, ``integration/``, ``tests_it/`` or ``e2e/`` (also under
  ``tests/``) holding ``test_*.py`` and a requirements file runs as the client layer;
  without one the client runs a smoke step that fails on a 5xx or no answer.

Every file is checked before any is written: the three must load and plan, and none may
exist unless ``--force``. A mistake (a path with a line break, a bad name, a file in the
way) is a :class:`ConfigError`, and then nothing is written.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import json
import os
import re
import shlex
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
import yaml

from orchestrator.document import expand_user, path_problem, shown, shown_path
from orchestrator.exceptions import ConfigError
from orchestrator.files import atomic_write
from orchestrator.lab.design import prefix_problem, subnet_problem
from orchestrator.templating import environment, visible

# A suite name (suites/NAME.yaml) is the strictest of the three files' name rules.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
# What the inventory accepts as a path inside the application (orchestrator.inventory).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._/+-]*")
_DJANGO_LINE = re.compile(r"\s*django\s*(?:[<>=!~;\[@]|$)", re.IGNORECASE)
_STARTPROJECT = re.compile(r"using Django (\d+)\.(\d+)")

CLIENT_FOLDERS = ("it", "integration", "tests_it", "e2e")
FIXTURE_SUFFIXES = (".json", ".yaml", ".yml", ".xml")
# Of requirements/*.txt, the files a deployed server and its tests need (not dev tools).
RUNTIME_REQUIREMENTS = ("base", "common", "prod", "production", "test", "tests", "testing")
# readiness sets these for the server itself (orchestrator/appconfig.py).
PROVIDED_ENV = frozenset({"DJANGO_SECRET_KEY", "SECRET_KEY", "DATABASE_URL"})
RESERVED_DATABASES = frozenset(
    {"root", "mysql", "sys", "information_schema", "performance_schema", "mariadb", "test"}
)
# testserver answers every path: any answer below 500 (a 404 too) is healthy.
HEALTH = "/"
_SKIPPED = {"node_modules", "__pycache__", "migrations", "static", "staticfiles", "media"}
_SKIPPED |= {"templates", "build", "dist", "site-packages", "venv", "env"}
MAX_DEPTH = 4
MAX_FOLDERS = 5_000
MAX_READ = 1 << 20
MAX_STAR_IMPORTS = 8
_ROLES = ("db", "server", "client")
_UNKNOWN = object()


@dataclass(frozen=True)
class Settings:
    """What the settings' source says, as far as reading it can tell."""

    module: str
    origin: str
    found: bool = False
    allowed_hosts: tuple[str, ...] | None = None  # a hard-coded list; None otherwise
    allowed_hosts_set: bool = False
    reads_database_url: bool = False
    database_engine: str | None = None  # a hard-coded DATABASES' ENGINE
    static_root: bool = False
    manifest_storage: bool = False
    required_env: tuple[str, ...] = ()
    installed_apps: tuple[str, ...] | None = None
    django_series: str | None = None  # "5.2", from startproject's header


@dataclass(frozen=True)
class ClientSuite:
    """A client test folder of the project and how its pytest takes the server's URL."""

    folder: str
    requirements: tuple[str, ...]
    base_url_option: bool


@dataclass(frozen=True)
class Project:
    """Everything init found in a project, by reading its files."""

    root: Path
    settings: Settings
    requirements: tuple[str, ...]
    names_django: bool
    test_apps: tuple[str, ...]
    apps_without_tests: tuple[str, ...]
    unimportable_apps: tuple[str, ...]
    fixtures: tuple[str, ...]
    client: ClientSuite | None
    # The requirements file init writes beside the inventories when the project has none.
    requirements_written: str | None = None

    @property
    def collectstatic(self) -> bool:
        return self.settings.static_root and self.settings.manifest_storage


@dataclass(frozen=True)
class Target:
    """Where the three files go, and how the inventories name the suite."""

    single: Path
    cluster: Path
    suite: Path
    suite_ref: str
    # Beside the inventories: written only when the project has no requirements file.
    requirements: Path
    # How `invoke readiness --inventory=` names each inventory, for the printed commands.
    single_arg: str
    cluster_arg: str


@dataclass(frozen=True)
class Written:
    """What init wrote, for what it prints next: the project, the files, the name."""

    project: Project
    target: Target
    name: str


# --------------------------------------------------------------------------- reading


def _read(path: Path) -> str | None:
    """A text file's content (at most 1 MiB), or None when it cannot be read."""
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_READ).decode("utf-8", errors="replace")
    except OSError:
        return None


def _parse(path: Path) -> ast.Module | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # hostile or broken
        return None


def _folders(root: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """The project's folders, top down: no virtualenv, cache, hidden or asset folder, at
    most ``MAX_DEPTH`` deep and ``MAX_FOLDERS`` in all (a project is read, not indexed)."""
    for seen, (folder, dirs, files) in enumerate(os.walk(root)):
        if seen >= MAX_FOLDERS:
            return
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        dirs[:] = sorted(
            d
            for d in dirs
            if depth < MAX_DEPTH
            and not d.startswith(".")
            and d not in _SKIPPED
            and not d.endswith(".egg-info")
            and not (here / d / "pyvenv.cfg").exists()
        )
        yield here, dirs, files


def _settings_module(root: Path) -> tuple[str, str]:
    """The settings module and how it was found: manage.py's default, else the one
    ``*/settings.py`` (or ``*/settings/``) beside it."""
    tree = _parse(root / "manage.py")
    for node in ast.walk(tree) if tree else ():
        value = _settings_default(node)
        if value is not None and _MODULE.fullmatch(value):
            return value, "manage.py's DJANGO_SETTINGS_MODULE default"
    packages = {
        p.parent.name if p.name == "settings.py" else p.parent.parent.name
        for p in (*root.glob("*/settings.py"), *root.glob("*/settings/__init__.py"))
    }
    candidates = sorted(f"{p}.settings" for p in packages if _MODULE.fullmatch(p))
    if len(candidates) == 1:
        return candidates[0], "the only settings module beside manage.py"
    raise ConfigError(
        f"{shown_path(root / 'manage.py')} does not name its settings module "
        "(no os.environ.setdefault('DJANGO_SETTINGS_MODULE', ...)) and there is "
        f"{'no' if not candidates else 'more than one'} */settings.py beside it: "
        "init cannot tell which settings the project runs with"
    )


def _settings_default(node: ast.AST) -> str | None:
    """The module of ``os.environ.setdefault("DJANGO_SETTINGS_MODULE", "x")`` or of
    ``os.environ["DJANGO_SETTINGS_MODULE"] = "x"``."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "setdefault"
        and len(node.args) == 2
        and _constant(node.args[0]) == "DJANGO_SETTINGS_MODULE"
    ):
        return _constant(node.args[1])
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Subscript)
        and _constant(node.targets[0].slice) == "DJANGO_SETTINGS_MODULE"
    ):
        return _constant(node.value)
    return None


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _module_file(root: Path, module: str) -> Path | None:
    """The file of a module of the project (a ``.py`` or a package), if it is inside."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.parent / f"{base.name}.py", base / "__init__.py"):
        try:
            if candidate.is_file() and candidate.resolve().is_relative_to(root):
                return candidate
        except (OSError, RuntimeError):
            continue
    return None


def _settings_statements(root: Path, module: str) -> tuple[list[ast.stmt], list[str]]:
    """The settings' top-level statements in the order Python runs them, the project
    modules they star-import (split settings) spliced in; and the text of each file."""
    statements: list[ast.stmt] = []
    texts: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        file = _module_file(root, name)
        if file is None or name in seen or len(seen) >= MAX_STAR_IMPORTS:
            return
        seen.add(name)
        texts.append(_read(file) or "")
        tree = _parse(file)
        for stmt in tree.body if tree else ():
            if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
                package = name if file.name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(max(stmt.level - 1, 0)):
                    package = package.rpartition(".")[0]
                target = stmt.module or ""
                if stmt.level:
                    target = ".".join(p for p in (package, stmt.module) if p)
                visit(target)
            statements.append(stmt)

    visit(module)
    return statements, texts


def _read_settings(root: Path) -> Settings:
    module, origin = _settings_module(root)
    statements, texts = _settings_statements(root, module)
    if not texts:
        return Settings(module=module, origin=origin)
    values = _assignments(statements)
    nodes = [node for stmt in statements for node in ast.walk(stmt)]
    hosts = _literal(values.get("ALLOWED_HOSTS"))
    apps = _literal(values.get("INSTALLED_APPS"))
    storage = [values[k] for k in ("STATICFILES_STORAGE", "STORAGES") if k in values]
    static_root = values.get("STATIC_ROOT")
    series = next((m for t in texts if (m := _STARTPROJECT.search(t[:2000]))), None)
    return Settings(
        module=module,
        origin=origin,
        found=True,
        allowed_hosts=_strings(hosts),
        allowed_hosts_set="ALLOWED_HOSTS" in values,
        reads_database_url=any(_reads_database_url(node) for node in nodes),
        database_engine=_database_engine(values.get("DATABASES")),
        static_root=static_root is not None and _literal(static_root) is not None,
        manifest_storage=any(
            "Manifest" in (_constant(n) or "") for s in storage for n in ast.walk(s)
        ),
        required_env=tuple(sorted({name for n in nodes if (name := _required_env(n))})),
        installed_apps=_strings(apps),
        django_series=f"{series.group(1)}.{series.group(2)}" if series else None,
    )


def _assignments(statements: list[ast.stmt]) -> dict[str, ast.expr]:
    """The last value assigned to each name at the top level (``+=`` of two literal
    lists is added up; any other change makes the value unknown)."""
    values: dict[str, ast.expr] = {}
    for stmt in statements:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
            values[stmt.target.id] = stmt.value
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            before = values.get(stmt.target.id)
            values[stmt.target.id] = (
                ast.BinOp(left=before, op=stmt.op, right=stmt.value)
                if before is not None
                else stmt.value
            )
    return values


def _literal(node: ast.expr | None) -> object:
    """A value written as a literal (lists added up too), else ``_UNKNOWN``."""
    if node is None:
        return _UNKNOWN
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        if isinstance(left, list | tuple) and isinstance(right, list | tuple):
            return [*left, *right]
        return _UNKNOWN
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNKNOWN


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _reads_database_url(node: ast.AST) -> bool:
    """``"DATABASE_URL"`` anywhere, dj-database-url, or django-environ's ``env.db()``."""
    if _constant(node) == "DATABASE_URL":
        return True
    if isinstance(node, ast.Import | ast.ImportFrom):
        names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
        return any(n.split(".")[0] == "dj_database_url" for n in names)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("db", "db_url")
        and not node.args
    )


def _database_engine(node: ast.expr | None) -> str | None:
    value = _literal(node)
    if isinstance(value, dict) and isinstance(value.get("default"), dict):
        engine = value["default"].get("ENGINE")
        return engine if isinstance(engine, str) else None
    return None


def _required_env(node: ast.AST) -> str | None:
    """``NAME`` of ``os.environ["NAME"]`` read at import, when readiness does not set it."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.ctx, ast.Load)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "environ"
    ):
        name = _constant(node.slice)
        if (
            name
            and _ENV_NAME.fullmatch(name)
            and name not in PROVIDED_ENV
            and not name.startswith("READINESS_")
        ):
            return name
    return None


def _requirement_files(root: Path) -> tuple[str, ...]:
    """``requirements.txt``, else the runtime and test files of ``requirements/``, else
    every file there; none is an error (see the module's docstring)."""
    if (root / "requirements.txt").is_file():
        return ("requirements.txt",)
    found = sorted(p for p in (root / "requirements").glob("*.txt") if p.is_file())
    chosen = [p for p in found if p.stem.lower() in RUNTIME_REQUIREMENTS] or found
    usable = tuple(f"requirements/{p.name}" for p in chosen if _PLAIN_PATH.fullmatch(p.name))
    if chosen and not usable:
        raise ConfigError(
            f"{shown_path(root)}'s requirement files "
            f"({', '.join(shown(p.name) for p in chosen)}) have names init cannot write into "
            "an inventory (letters, digits and ._- only): rename them, then run init again"
        )
    return usable


def _requirements_to_write(root: Path, settings: Settings) -> str:
    """The requirements file init writes beside the inventories for a project without
    one: the Django series ``startproject`` wrote in the settings' header. Without that
    header, which Django the project needs is unknown, and guessing would deploy one the
    project was never run with."""
    series = settings.django_series
    if series is None:
        raise ConfigError(
            f"{shown_path(root)} has no requirements file (requirements.txt or "
            "requirements/*.txt), and its settings do not say which Django made them. The "
            "hosts install only what such a file names, so the server would have no Django: "
            "write requirements.txt with a line such as 'Django>=5.2,<5.3' and what else "
            "the project imports, then run init again"
        )
    major, minor = (int(part) for part in series.split("."))
    return (
        "# Written by `invoke init`: the project has no requirements file, and the hosts\n"
        "# install only what such a file names. Its settings were made by Django "
        f"{series}.\n# Add what else the project imports.\n"
        f"Django>={series},<{major}.{minor + 1}\n"
    )


def _names_django(root: Path, files: tuple[str, ...]) -> bool:
    """Whether a requirement line (in the files or what they include) is Django itself."""
    pending, seen = [root / f for f in files], set[Path]()
    while pending and len(seen) < 50:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for line in (_read(path) or "").splitlines():
            if _DJANGO_LINE.match(line):
                return True
            words = line.split()
            if len(words) == 2 and words[0] in ("-r", "--requirement"):
                pending.append(path.parent / words[1])
    return False


def _has_a_test(app: Path) -> bool:
    """Whether tests.py or tests/test*.py defines a test (a file that does not parse
    counts: Django will say what is wrong with it). A tests/ folder counts only as a
    package: unittest's discovery, which Django uses, never enters any other folder."""
    files = [app / "tests.py"] if (app / "tests.py").is_file() else []
    if (app / "tests" / "__init__.py").is_file():
        files += sorted((app / "tests").rglob("test*.py"))[:200]
    for file in files:
        tree = _parse(file)
        if tree is None:
            return True
        for node in ast.walk(tree):
            # Django's runner (unittest) finds test methods of classes only: a module of
            # pytest-style test functions would make a layer of zero tests.
            if isinstance(node, ast.ClassDef) and any(
                isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name.startswith("test")
                for item in node.body
            ):
                return True
    return False


@dataclass(frozen=True)
class _Apps:
    tested: tuple[str, ...]
    untested: tuple[str, ...]
    unimportable: tuple[str, ...]
    fixtures: tuple[str, ...]


def _apps(root: Path) -> _Apps:
    """The apps (folders with apps.py or models.py): which have tests, and their fixtures."""
    tested, untested, unimportable, fixtures = [], [], [], []
    for folder, dirs, files in _folders(root):
        if folder == root or not ({"apps.py", "models.py"} & set(files) or "models" in dirs):
            continue
        parts = folder.relative_to(root).parts
        fixtures += [
            relative
            for p in sorted((folder / "fixtures").glob("*"))
            if p.suffix in FIXTURE_SUFFIXES
            and p.is_file()
            and _PLAIN_PATH.fullmatch(relative := p.relative_to(root).as_posix())
        ]
        if "tests.py" not in files and "tests" not in dirs:
            continue
        label = ".".join(parts)
        if not all(p.isidentifier() for p in parts):
            unimportable.append("/".join(parts))
        elif _has_a_test(folder):
            tested.append(label)
        else:
            untested.append(label)
    return _Apps(tuple(tested), tuple(untested), tuple(unimportable), tuple(fixtures))


def _client_suite(root: Path) -> ClientSuite | None:
    """The first client test folder: test_*.py files and a requirements file of its own."""
    for name in CLIENT_FOLDERS:
        for folder in (root / name, root / "tests" / name):
            if not folder.is_dir() or not any(folder.rglob("test_*.py")):
                continue
            found = sorted(folder.glob("requirements*.txt"))
            reqs = [p for p in found if p.name == "requirements.txt"] or found
            relative = folder.relative_to(root).as_posix()
            if not reqs or not _PLAIN_PATH.fullmatch(reqs[0].name):
                continue
            texts = [_read(p) or "" for p in (*folder.rglob("conftest.py"), reqs[0])]
            option = any("--base-url" in t or "pytest-base-url" in t.lower() for t in texts)
            return ClientSuite(relative, (f"{relative}/{reqs[0].name}",), option)
    return None


def inspect_project(path: Path) -> Project:
    """What init needs to know about the project at ``path``, by reading its files."""
    root = _project_root(path)
    requirements = _requirement_files(root)
    settings = _read_settings(root)
    apps = _apps(root)
    return Project(
        root=root,
        settings=settings,
        requirements=requirements,
        requirements_written=(None if requirements else _requirements_to_write(root, settings)),
        names_django=bool(not requirements or _names_django(root, requirements)),
        test_apps=apps.tested,
        apps_without_tests=apps.untested,
        unimportable_apps=apps.unimportable,
        fixtures=apps.fixtures,
        client=_client_suite(root),
    )


def _project_root(path: Path) -> Path:
    """The project's folder, resolved; refused when a file could not name it safely."""
    for text in (str(path), str(_resolved(path))):
        if not text.isprintable():
            raise ConfigError(
                f"the project's path {shown(text)} holds a line break or another control "
                "character: rename the folder (its path goes into YAML files, commands and "
                "logs, where such a character splits or hides what follows)"
            )
        problem = path_problem(text)
        if problem:
            raise ConfigError(f"the project's path {shown(text)}: {problem}")
    root = _resolved(path)
    if not root.is_dir():
        raise ConfigError(f"{shown_path(root)} is not a folder")
    if not (root / "manage.py").is_file():
        raise ConfigError(
            f"{shown_path(root)} is not a Django project (no manage.py there): give the "
            "folder that holds manage.py"
        )
    return root


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return path.absolute()


# --------------------------------------------------------------------------- findings


def findings(project: Project) -> list[tuple[str, str]]:
    """What init found and what readiness does about it, one line per topic: the
    comment at the top of each inventory, and what ``invoke init`` prints."""
    s = project.settings
    lines = [("settings", f"{s.module} ({s.origin})" + ("" if s.found else _NOT_READ))]
    if project.requirements_written is not None:
        django = project.requirements_written.splitlines()[-1]
        lines.append(
            (
                "requirements",
                f"none in the project: init writes {django!r} beside the inventories "
                "(the Django its settings were made with); add what else the project "
                "imports there",
            )
        )
    else:
        lines.append(("requirements", ", ".join(project.requirements) + _django_note(project)))
    lines += _settings_findings(s)
    lines += _test_findings(project)
    lines.append(
        (
            "fixtures",
            ", ".join(project.fixtures) + ": testserver loads them for the client"
            if project.fixtures
            else "none in the apps' fixtures/ folders: testserver starts with an empty database",
        )
    )
    lines.append(("static files", _static_note(s)))
    client = project.client
    lines.append(
        (
            "client",
            f"{client.folder}/ ({', '.join(client.requirements)}): its pytest suite runs "
            "against the live server"
            if client
            else f"no client test folder ({', '.join(f'{n}/' for n in CLIENT_FOLDERS)} with "
            "test_*.py and a requirements file): a smoke step checks that the live server "
            "answers",
        )
    )
    return lines


_NOT_READ = ": its file is not in the project, so it was not read"


def _wrapped(project: Project) -> list[str]:
    """The findings as lines of at most 84 characters, a topic's later lines indented."""
    return [
        line
        for topic, text in findings(project)
        for line in textwrap.wrap(f"{topic}: {text}", 84, subsequent_indent="    ")
    ]


def _django_note(project: Project) -> str:
    if project.names_django:
        return ""
    return " (no line names Django: make sure these files install it, the server needs it)"


def _settings_findings(s: Settings) -> list[tuple[str, str]]:
    if not s.found:
        return []
    overlay = "readiness's settings overlay replaces it"
    if s.allowed_hosts is not None:
        hosts = f"hard-coded {_yaml(list(s.allowed_hosts))}: {overlay} with the hosts' addresses"
    elif s.allowed_hosts_set:
        hosts = f"computed when the settings load: {overlay} with the hosts' addresses"
    else:
        hosts = f"not set: {overlay} with the hosts' addresses"
    lines = [("ALLOWED_HOSTS", hosts)]
    if s.reads_database_url:
        lines.append(
            ("database", "the settings read DATABASE_URL: readiness sets it to the run's MariaDB")
        )
    elif s.database_engine:
        lines.append(
            ("database", f"hard-coded ({_yaml(s.database_engine)}): {overlay} with MariaDB")
        )
    if s.required_env:
        names = ", ".join(s.required_env)
        lines.append(
            (
                "environment",
                f"the settings read {names} from os.environ when they load, and readiness "
                "does not set it: add it under application.env (not a secret: the inventory "
                "is copied into the run record)",
            )
        )
    return lines


def _test_findings(project: Project) -> list[tuple[str, str]]:
    installed = project.settings.installed_apps
    lines = [("apps with tests", ", ".join(project.test_apps) or "none")]
    if project.apps_without_tests:
        untested = ", ".join(project.apps_without_tests)
        lines.append(("apps without a test yet", f"{untested} (left out of the suite)"))
    if project.unimportable_apps:
        names = ", ".join(project.unimportable_apps)
        lines.append(("not importable", f"{names}: a folder name that is no Python name"))
    if installed is not None:
        missing = [
            app
            for app in project.test_apps
            if not any(entry == app or entry.startswith(f"{app}.") for entry in installed)
        ]
        if missing:
            lines.append(
                (
                    "not in INSTALLED_APPS",
                    f"{', '.join(missing)}: its tests run, but Django installs none of its models",
                )
            )
    return lines


def _static_note(s: Settings) -> str:
    if s.manifest_storage and s.static_root:
        return "STATIC_ROOT and a manifest storage: the suite runs collectstatic first"
    if s.manifest_storage:
        return (
            "a manifest storage but no STATIC_ROOT: collectstatic cannot run, and with DEBUG "
            "off pages that use the static tag fail; set STATIC_ROOT"
        )
    return "no manifest storage: nothing to collect before the tests"


# --------------------------------------------------------------------------- writing


class _Prose(str):
    """Text for a comment line, written as it is (its control characters made visible);
    every other value in the templates is written as a YAML scalar or flow collection."""

    __slots__ = ()


def _yaml(value: object) -> str:
    """``value`` as YAML on one line, quoted where YAML needs it ('yes', '1.0', ': ', a
    quote, '$(...)'); a value with a line break or another control character in double
    quotes with escapes, so that it can never end the line or hide what follows."""
    text = yaml.safe_dump(
        value, default_flow_style=True, width=2**31 - 1, allow_unicode=True, sort_keys=False
    )
    text = text.removesuffix("\n").removesuffix("\n...")
    if "\n" in text or not text.isprintable():
        text = yaml.safe_dump(
            value, default_flow_style=True, width=2**31 - 1, default_style='"', sort_keys=False
        )
        text = text.removesuffix("\n").removesuffix("\n...")
    return text


def _finalize(value: object) -> object:
    if isinstance(value, _Prose):  # a comment line: a line break would end the comment
        return visible(value).replace("\n", "\\n")
    return _yaml(value)


@cache
def _templates() -> jinja2.Environment:
    return environment("templates", finalize=_finalize, trim_blocks=True)


def _database_name(name: str) -> str:
    """The database and its user, named for the project where the server allows it."""
    db = re.sub(r"[^a-z0-9_]", "_", name)[:32]
    return "app" if db in RESERVED_DATABASES else db


def render_inventory(
    project: Project, name: str, target: Target, lab: object, *, cluster: bool
) -> str:
    """The single (one lab host with every role) or the cluster inventory (one per role)."""
    hosts = [{"name": "h1", "roles": ["db", "server", "client"]}]
    if cluster:
        hosts = [{"name": f"h{i}", "roles": [role]} for i, role in enumerate(_ROLES, 1)]
    arg = target.cluster_arg if cluster else target.single_arg
    return (
        _templates()
        .get_template("init_inventory.yaml.j2")
        .render(
            cluster=cluster,
            arg=_Prose(arg),
            project_shown=_Prose(shown_path(project.root)),
            findings=[_Prose(line) for line in _wrapped(project)],
            lab=lab,
            hosts=hosts,
            project=project,
            source=str(project.root),
            health=HEALTH,
            database=_database_name(name),
            suite_ref=target.suite_ref,
            requirements=list(project.requirements)
            if project.requirements_written is None
            else [target.requirements.name],
        )
    )


def render_suite(project: Project, name: str) -> str:
    """The suite: collectstatic if needed, the apps' Django tests, then the client."""
    django = None
    if project.test_apps:
        django = (
            f"python manage.py test {' '.join(project.test_apps)} --noinput "
            "--testrunner=readiness_runner.JUnitRunner"
        )
    client = None
    if project.client:
        base_url = ' --base-url="$READINESS_BASE_URL"' if project.client.base_url_option else ""
        client = f'python -m pytest . -p no:cacheprovider{base_url} --junitxml="$READINESS_JUNIT"'
    return (
        _templates()
        .get_template("init_suite.yaml.j2")
        .render(
            name=_Prose(name),
            project_shown=_Prose(shown_path(project.root)),
            project=project,
            django=django,
            untested=_Prose(", ".join(project.apps_without_tests)),
            client=client,
            client_folder=_Prose(project.client.folder if project.client else ""),
            # In Python source inside a single-quoted shell word: HEALTH has no quote.
            health_literal=_Prose(json.dumps(HEALTH)),
            health_shown=_Prose(HEALTH),
        )
    )


def project_name(name: str | None, root: Path) -> str:
    """``--name``, or the project folder's name made a valid suite name (lower case,
    runs of other characters as one '-', at most 40)."""
    if name is not None:
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"--name {shown(name)} must be 1 to 40 lower-case letters, digits, '_' or '-', "
                "starting with a letter or a digit: it names suites/NAME.yaml and the "
                "inventories NAME-single and NAME-cluster"
            )
        return name
    derived = re.sub(r"[^a-z0-9_-]+", "-", root.name.lower()).strip("-_")[:40].rstrip("-_")
    if not _NAME.fullmatch(derived):
        raise ConfigError(
            f"no name can be made from the folder name {shown(root.name)}: "
            "give one with --name (lower-case letters, digits, '_' or '-')"
        )
    return derived


def target(root: Path, name: str, into: str | None) -> Target:
    """readiness's inventories/ and suites/, or the three files in ``into``."""
    if into is None:
        return Target(
            single=root / "inventories" / f"{name}-single.yaml",
            cluster=root / "inventories" / f"{name}-cluster.yaml",
            suite=root / "suites" / f"{name}.yaml",
            suite_ref=name,
            requirements=root / "inventories" / f"{name}-requirements.txt",
            single_arg=f"{name}-single",
            cluster_arg=f"{name}-cluster",
        )
    folder = _resolved(expand_user(into))
    problem = path_problem(str(folder))
    if problem or not str(folder).isprintable():
        raise ConfigError(
            f"--into {shown(into)}: {problem or 'the path holds a control character'}"
        )
    single, cluster = folder / f"{name}-single.yaml", folder / f"{name}-cluster.yaml"
    return Target(
        single=single,
        cluster=cluster,
        suite=folder / f"{name}.yaml",
        # Relative to the inventories' folder: the three files move together.
        suite_ref=f"{name}.yaml",
        requirements=folder / f"{name}-requirements.txt",
        single_arg=shlex.quote(str(single)),
        cluster_arg=shlex.quote(str(cluster)),
    )


def lab_section(prefix: str | None, subnet: str | None) -> object:
    """The inventories' ``lab:`` value: ``true`` (the default lab), or its prefix and
    subnet (checked as ``lab.up`` checks them)."""
    if prefix is not None and (problem := prefix_problem(prefix)):
        raise ConfigError(f"--lab-prefix: {problem}")
    if subnet is not None and (problem := subnet_problem(subnet)):
        raise ConfigError(f"--lab-subnet: {problem}")
    section = {k: v for k, v in (("prefix", prefix), ("subnet", subnet)) if v is not None}
    return section or True


def init_project(
    project: str,
    *,
    root: Path,
    name: str | None = None,
    force: bool = False,
    into: str | None = None,
    lab_prefix: str | None = None,
    lab_subnet: str | None = None,
) -> Written:
    """Inspect ``project``, then write its two inventories and its suite under ``root``
    (or into ``into``): all three, once each loads and plans, or none."""
    found = inspect_project(expand_user(project))
    lab = lab_section(lab_prefix, lab_subnet)
    chosen = project_name(name, found.root)
    where = target(root, chosen, into)
    texts = {
        where.single: render_inventory(found, chosen, where, lab, cluster=False),
        where.cluster: render_inventory(found, chosen, where, lab, cluster=True),
        where.suite: render_suite(found, chosen),
    }
    if found.requirements_written is not None:
        texts[where.requirements] = found.requirements_written
    _check_free(list(texts), force)
    _check_loads(texts, where)
    _write_all(texts, force)
    return Written(project=found, target=where, name=chosen)


def _write_all(texts: dict[Path, str], force: bool) -> None:
    """Write every file, or none: without ``--force`` a file that appeared since the
    check is never replaced; on a failure the files this call already wrote are taken
    back, and a file ``--force`` replaced gets its old content again."""
    before: dict[Path, bytes | None] = {}
    for path in texts:
        try:
            before[path] = path.read_bytes() if force and path.is_file() else None
        except OSError:
            before[path] = None
    written: list[Path] = []
    try:
        for path, text in texts.items():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError:  # --into a file
                raise NotADirectoryError(errno.ENOTDIR, "not a folder") from None
            atomic_write(path, text.encode(), replace=force)
            written.append(path)
    except OSError as err:  # --into a file, a folder that cannot be written, a race
        for done in written:
            with contextlib.suppress(OSError):
                old = before[done]
                if old is None:
                    done.unlink()
                else:
                    atomic_write(done, old)
        if isinstance(err, FileExistsError):
            raise ConfigError(
                f"{shown_path(path)} appeared while init was writing; init never overwrites "
                "a file, so nothing was written. Pass --force to replace it"
            ) from None
        raise ConfigError(
            f"cannot write {shown_path(path)} ({err.strerror or err}); choose a folder you "
            "can write with --into"
        ) from None


def _check_free(paths: list[Path], force: bool) -> None:
    """No file is overwritten without ``--force``, and none that is not a file at all."""
    taken = [p for p in paths if p.exists() or p.is_symlink()]
    odd = [p for p in taken if p.is_symlink() or not p.is_file()]
    if odd:
        raise ConfigError(
            f"{', '.join(shown_path(p) for p in odd)}: not a regular file, so init will not "
            "replace it even with --force; nothing was written"
        )
    if taken and not force:
        raise ConfigError(
            f"{', '.join(shown_path(p) for p in taken)} already "
            f"{'exists' if len(taken) == 1 else 'exist'}; init never overwrites a file, so "
            "nothing was written. Pass --force to replace them, or --name or --into to "
            "write others"
        )


def _check_loads(texts: dict[Path, str], where: Target) -> None:
    """The three files load and plan, checked in a scratch folder before any is written,
    so that a project init cannot describe leaves nothing half-written behind."""
    from orchestrator.inventory import load_inventory
    from orchestrator.plan import build_plan
    from orchestrator.suite import load_suite

    with tempfile.TemporaryDirectory(prefix="readiness-init-") as scratch:
        copies = {path: Path(scratch) / path.name for path in texts}
        for path, text in texts.items():
            copies[path].write_text(text)
        try:
            suite = load_suite(copies[where.suite])
            for inventory in (where.single, where.cluster):
                build_plan(load_inventory(copies[inventory]), suite)
        except ConfigError as err:
            shown_err = str(err).replace(scratch, str(where.single.parent))
            raise ConfigError(
                f"init cannot describe this project in files that load: {shown_err}"
            ) from None


def summary(written: Written, root: Path) -> str:
    """What ``invoke init`` prints: what it found and wrote, the single inventory's
    dry-run plan, and the two commands to run."""
    from orchestrator.lifecycle import load_plan
    from orchestrator.plan import Options

    target_ = written.target
    lines = [f"init: read {shown_path(written.project.root)}"]
    lines += [f"  {visible(line)}" for line in _wrapped(written.project)]
    files = [target_.single, target_.cluster, target_.suite]
    if written.project.requirements_written is not None:
        files.append(target_.requirements)
    lines += [f"wrote {shown_path(p)}" for p in files]
    plan = load_plan(root, str(target_.single), None, Options(dry_run=True))
    lines += ["", f"the plan of {target_.single_arg} (--dry-run):", plan.describe(), ""]
    lines += [
        "next: all on one lab host, then one lab host per role:",
        f"  invoke readiness --inventory={target_.single_arg}",
        f"  invoke readiness --inventory={target_.cluster_arg}",
    ]
    return "\n".join(lines)
