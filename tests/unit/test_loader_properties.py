"""Whatever a user writes, the loader plans it or refuses it with file and line (issue 8).

10,000 generated inventories and suites (two tests of 5,000): plausible structures in
which each value is, now and then, replaced by a hostile one (odd types, unicode, NUL,
huge numbers, paths with ``..`` or through symlinks out of the application, wildcard
addresses, reserved names, YAML that PyYAML cannot build such as ``2001-02-30``), and
whose text is now and then damaged (a NUL byte, invalid UTF-8, a stray brace). Each goes
through the same path as ``invoke readiness --dry-run`` (load the inventory, load the
suite it or the command line names, plan, describe): it either plans, or raises a
ConfigError whose one-line message names the file and the line. Anything else escaping
is a bug: the user would see "internal error", exit 3, instead of exit 2.

Values are mostly plausible (each hostile one time in twenty) so that the examples reach
every part of the loader, not only the first field it checks. Hypothesis draws one seed
per example and the structure is built from it with :class:`random.Random`: drawing
each of the ~100 choices through Hypothesis costs ten times more, and 10,000 examples
must fit in the unit tests' time. A failure shows the seed and both YAML texts.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from orchestrator.exceptions import ConfigError
from orchestrator.lifecycle import load_plan
from orchestrator.plan import Options

# Per test; the two tests make 10,000 in all. READINESS_EXAMPLES changes it for a
# quick look or a long soak.
EXAMPLES = int(os.environ.get("READINESS_EXAMPLES", "5000"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEEDS = st.integers(min_value=0, max_value=2**64 - 1)

# Values of any field that no field accepts as they are, or only some do.
ODD: list[Any] = [
    None, True, False, 0, -1, 2**64, 10**30, 1.5, float("inf"), float("nan"), "", " ",
    "é", "日本語", "\x00", "a\x00b", "a\nb", "tab\there", "x" * 300, [], {}, ["a"], {"a": 1},
    "\u202e", "../" * 8 + "etc/passwd", "$(reboot)", "'; DROP DATABASE mysql; --",
]  # fmt: skip
# YAML text put in place of a value after dumping: what a Python value cannot express.
RAW = [
    "!!timestamp nope",
    "2001-02-30",
    '"\\0"',
    '"a\\0b"',
    '"\\ud800"',
    "!!python/object/apply:os.system ['true']",
    "*nowhere",
    "&loop [*loop]",
    "!!binary zz",
    "[" * 55 + "]" * 55,
    "!!set {a: null}",
    "!!float x",
    "!!bool maybe",
    "{a: 1, a: 2}",
    ":".join(str(n) for n in range(1, 60)),
    "!!str [1]",
    "'\\x01'",
    "0x" + "f" * 40,
]
# Costly to parse (pure-Python PyYAML), so rarer: in percent of the raw values.
RAW_RARE = [
    "1" * 4400,  # more digits than int() converts
    "0x" + "f" * 3600,  # an integer whose repr() raises
    "[" * 400 + "]" * 400,  # deeper than the parser's stack: about a second each
]
RARE_WEIGHTS = [5.0, 4.5, 0.5]
MARK = "RAWMARK{}X"
# libyaml's emitter when there is one: the documents are the test's input, and the pure
# Python emitter would cost a third of the run.
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
OMIT = object()


class Gen:
    """Random but plausible documents: the choices of one example, from its seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def chance(self, percent: int) -> bool:
        return self.rng.randrange(100) < percent

    def value(self, plausible: list[Any], hostile: list[Any] | None = None) -> Any:
        """One of ``plausible`` 19 times in 20, else something hostile."""
        if self.rng.randrange(20):
            return self.rng.choice(plausible)
        pool = self.rng.choice(["hostile", "odd", "raw", "text"])
        if pool == "hostile" and hostile:
            return self.rng.choice(hostile)
        if pool == "raw":
            weights = [90 / len(RAW)] * len(RAW) + RARE_WEIGHTS
            return MARK.format(self.rng.choices(range(len(weights)), weights)[0])
        if pool == "text":
            return self.text()
        return self.rng.choice(ODD)

    def text(self) -> str:
        """A short string of any characters Python can write as UTF-8 (no surrogates)."""
        ranges = [(0x20, 0x7E), (0x0, 0x1F), (0xA0, 0x2FF), (0x2000, 0x206F), (0x4E00, 0x4E20)]
        chars = []
        for _ in range(self.rng.randrange(13)):
            low, high = self.rng.choice(ranges)
            chars.append(chr(self.rng.randint(low, high)))
        return "".join(chars)

    def put(self, mapping: dict[str, Any], key: str, value: Any) -> None:
        """Set an optional key most of the time."""
        if self.rng.randrange(10):
            mapping[key] = value

    def unknown_key(self, mapping: dict[str, Any]) -> None:
        if self.chance(3):
            mapping[self.rng.choice(["rolez", "nmae", "password", "x\ny", "é"])] = 1


ROLE_LAYOUTS = [
    [["db", "server", "client"]],
    [["db"], ["server"], ["client"]],
    [["db"], ["server", "client"]],
    [["server", "client"]],  # with an existing database
]
ADDRESSES = ["192.0.2.10", "192.0.2.11", "10.0.0.5", "db.example.org", "::1", "2001:db8::2"]
BAD_ADDRESSES = [
    "0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "ff02::1", "::ffff:0.0.0.0", "0",
    "127.1", "0x7f000001", "fe80::1%eth0", "fe80::1%$(reboot)", "-bad", "a" * 300, "a..b",
]  # fmt: skip
DEPLOY_ROOTS = ["/var/tmp/readiness/x", "/srv/readiness/app", "/opt/rdy/a", "/home/deploy/rdy"]
BAD_DEPLOY_ROOTS = [
    "/", "/.", "//", "/./", "/etc", "/var", "/var/tmp", "/usr/local/x", "/proc/1", "/tmp",
    "/var/tmp/../../etc", "/tmp/x\n", "relative", "/" + "a" * 5000, "/var/tmp/x y", "/dev/shm/x",
]  # fmt: skip
PATHS = ["requirements.txt", "tests_it/requirements.txt", "inc_in.txt", "./requirements.txt"]
BAD_PATHS = [
    "../../../etc/passwd", "/etc/passwd", "link_out.txt", "inc_out.txt", "inc_env.txt",
    "loop.txt", "nope.txt", "requirements.txt\n", "fifo", "dir", "rootlink/etc/hostname",
    "a" * 5000, "~nosuchuser/x", ".", "",
]  # fmt: skip
SUBNETS = ["10.213.71.0/24", "192.168.7.0/28", "10.9.0.0/16", "172.16.3.0/24"]
BAD_SUBNETS = [
    "8.8.8.0/24", "0.0.0.0/0", "garbage", "10.0.0.0/30", "10.0.0.1/24", "fd00::/64",
    "100.64.0.0/24", "0.0.0.0/8", "240.0.0.0/24", "127.0.0.0/24", "10.0.0.0/31",
]  # fmt: skip
DB_NAMES = ["app", "broker", "my_db", "a" * 32]
BAD_DB_NAMES = ["root", "mysql", "information_schema", "a-b", "a" * 33, "app\n", "my%db"]
SUITE_NAMES = ["suite.yaml", "./suite.yaml"]
BAD_SUITE_NAMES = [
    "missing.yaml", "default", "broker", "/proc/self/environ", "bad name", "suite.yaml\n",
    "~nosuchuser/s.yaml", "a" * 5000 + ".yaml", "app/fifo", "./app", "/dev/null", "app",
]  # fmt: skip


def lab_section(g: Gen) -> Any:
    kind = g.rng.choice(["none", "true", "mapping"]) if g.rng.randrange(20) else "odd"
    if kind == "none":
        return OMIT
    if kind == "true":
        return True
    if kind == "odd":
        return g.rng.choice(ODD)
    lab: dict[str, Any] = {}
    g.put(lab, "prefix", g.value(["rdy", "rt", "abcdef"], ["rp;id", "RDY", "abcdefg", "r\n"]))
    g.put(lab, "subnet", g.value(SUBNETS, BAD_SUBNETS))
    g.put(lab, "hosts", g.value([4, 8], [0, -1, 1, 2, 33, 64, 10**30]))
    g.unknown_key(lab)
    return lab


def host_section(g: Gen, roles: list[str], index: int, lab: bool) -> dict[str, Any]:
    host: dict[str, Any] = {}
    if lab:
        host["name"] = g.value([f"h{index}"], ["web", "h0", "h99", f"rt-h{index}", f"rdy-h{index}"])
    else:
        host["name"] = g.value([f"host{index}", f"web-{index}", f"db.{index}"], ["a b"])
        connection = g.rng.choice(["ssh", "ssh", "ssh", "local"])
        if connection == "local" or g.chance(50):
            host["connection"] = connection
        if connection == "ssh" or g.chance(50):
            host["address"] = g.value(ADDRESSES, BAD_ADDRESSES)
        g.put(host, "user", g.value(["deploy", "root", "_svc"], ["Deploy", "a;b", "x" * 40]))
    host["roles"] = g.value([roles], [["web"], [], ["db", "db"], "db"])
    if g.chance(25):
        g.put(host, "port", g.value([22, 2222], [0, 70000, "22"]))
        g.put(host, "deploy_root", g.value(DEPLOY_ROOTS, BAD_DEPLOY_ROOTS))
        g.put(host, "python", g.value(["python3", "/usr/bin/python3.11"], ["py thon", "-c"]))
        g.put(host, "key_file", g.value(["~/.ssh/id_ed25519", "keys/k"], ["~nosuchuser/k"]))
        g.put(host, "known_hosts", g.value(["~/.ssh/known_hosts"], ["a\x00b", "k" * 5000]))
    g.unknown_key(host)
    return host


def application_section(g: Gen) -> dict[str, Any]:
    app: dict[str, Any] = {
        "source": g.value(["app", "./app", "app/"], ["missing", "app/dir", "/proc/self"]),
        "settings": g.value(["mysite.settings", "a.b.c"], ["my site", "x\n", "1x"]),
        "requirements": g.value([*PATHS, PATHS[:2]], [*BAD_PATHS, ["a", 5]]),
    }
    g.put(app, "fixtures", g.value([["fixtures.json"], ["initial"], []], [BAD_PATHS[:3]]))
    if g.chance(50):
        server: dict[str, Any] = {}
        g.put(server, "mode", g.value(["testserver", "gunicorn"], ["uwsgi"]))
        g.put(server, "port", g.value([8000, 8080, 3307], [80, 70000]))
        g.put(server, "health", g.value(["/", "/api/health"], ["api", "/x\n"]))
        app["server"] = server
    if g.chance(50):
        client: dict[str, Any] = {}
        g.put(client, "source", g.value(["tests_it", ".", "dir"], ["..", "../..", "rootlink"]))
        g.put(client, "requirements", g.value(PATHS, BAD_PATHS))
        app["client"] = client
    if g.chance(25):
        bad = ["PATH", "PYTHONPATH", "LD_PRELOAD", "READINESS_X", "1BAD", "A-B"]
        key = g.value(["BROKER_LOG", "X", "_A"], bad)
        key = key if isinstance(key, str) else str(key)  # other key types: see RAW
        app["env"] = {key: g.value(["1", 2, True], [None, [1]])}
    g.unknown_key(app)
    return app


def database_section(g: Gen, existing: bool) -> Any:
    if not existing and g.chance(50):
        return OMIT
    db: dict[str, Any] = {}
    if existing:
        db["mode"] = "existing"
        g.put(db, "host_env", g.value(["DB_HOST"], ["1X", "A B"]))
        g.put(db, "password_env", g.value(["DB_PASSWORD"], [""]))
    else:
        g.put(db, "mode", g.value(["managed"], ["cloud"]))
    g.put(db, "engine", g.value(["mariadb"], ["oracle"]))
    g.put(db, "name", g.value(DB_NAMES, BAD_DB_NAMES))
    g.put(db, "user", g.value(DB_NAMES, BAD_DB_NAMES))
    g.put(db, "port", g.value([3307, 3308, 8000], [22, 80, 65536]))
    g.unknown_key(db)
    return db


def inventory(g: Gen) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    g.put(doc, "name", g.value(["staging", "ci-1", "x.y"], ["a b", "-x", "x" * 64]))
    lab = lab_section(g)
    if lab is not OMIT:
        doc["lab"] = lab
    layout = g.rng.choice(ROLE_LAYOUTS)
    on_lab = lab is True or isinstance(lab, dict)
    doc["hosts"] = [host_section(g, roles, index, on_lab) for index, roles in enumerate(layout, 1)]
    doc["application"] = application_section(g)
    database = database_section(g, existing=layout == [["server", "client"]])
    if database is not OMIT:
        doc["database"] = database
    g.put(doc, "suite", g.value(SUITE_NAMES, BAD_SUITE_NAMES))
    g.unknown_key(doc)
    return doc


def suite(g: Gen) -> dict[str, Any]:
    layers = []
    for index in range(g.rng.randrange(1, 4) if g.rng.randrange(20) else 0):
        layer: dict[str, Any] = {
            "name": g.value([f"layer{index}", f"unit-{index}"], ["Layer!", "a" * 41]),
            "role": g.value(["server", "client"], ["db"]),
            "command": g.value(["python -m pytest", "true"], ["", "  ", "x" * 9000]),
        }
        g.put(layer, "needs", g.value([["database"], ["database", "server"], []], ["net"]))
        g.put(layer, "timeout", g.value([1, 60, 1800], [0, -5, 10**30, 1e400]))
        g.put(layer, "gate", g.value(["stop", "continue"], ["maybe"]))
        g.put(layer, "junit", g.value([True, False], ["yes", 1]))
        if g.chance(20):
            g.put(layer, "max_output_mb", g.value([1, 20, 1024], [0, 1025, 2.5, -1]))
        g.unknown_key(layer)
        layers.append(layer)
    doc: dict[str, Any] = {"layers": layers}
    g.put(doc, "name", g.value(["broker", "quick"], ["", "a\nb", "x" * 200]))
    g.unknown_key(doc)
    return doc


def yaml_text(g: Gen, document: Any) -> bytes:
    """A document as YAML (block or flow style), its markers replaced by raw YAML, and
    one time in twenty its bytes damaged."""
    text = yaml.dump(
        document,
        Dumper=DUMPER,
        allow_unicode=g.chance(50),
        default_flow_style=g.rng.choice([False, None, True]),
        sort_keys=False,
        width=g.rng.choice([80, 10**6]),
    )
    for index, raw in enumerate(RAW + RAW_RARE):
        text = text.replace(MARK.format(index), raw)
    data = text.encode("utf-8")
    if g.chance(5):
        at = g.rng.randrange(len(data) + 1)
        damage = g.rng.choice([b"\x00", b"\xff", b"\x01", b"\t", b"\x7f", b"{", b"\n  - "])
        data = data[:at] + damage + data[at:]
    return data


def make_tree(root: Path) -> None:
    """The control node's files the generated inventories point at, good and bad."""
    app = root / "app"
    (app / "tests_it").mkdir(parents=True)
    (app / "dir").mkdir()
    (app / "manage.py").write_text("# manage\n")
    (app / "requirements.txt").write_text("Django\n")
    (app / "tests_it" / "requirements.txt").write_text("pytest\n")
    (app / "inc_in.txt").write_text("-r requirements.txt\n")
    (app / "inc_out.txt").write_text("-r ../../../etc/hostname\n")
    (app / "inc_env.txt").write_text("--requirement=${HOME}/secret.txt\n")
    (app / "loop.txt").write_text("-r loop.txt\n-r inc_in.txt\n")
    (app / "fixtures.json").write_text("[]\n")
    (app / "link_out.txt").symlink_to("/etc/passwd")
    (app / "rootlink").symlink_to("/")
    os.mkfifo(app / "fifo")


def check(
    root: Path, inventory_text: bytes | None, suite_text: bytes, explicit_suite: bool
) -> None:
    """Plan the pair as ``--dry-run`` does; only a well-formed ConfigError may escape.

    ``inventory_text`` None: the inventory already written stays.
    """
    inventory_path, suite_path = root / "inventory.yaml", root / "suite.yaml"
    if inventory_text is not None:
        note(f"inventory: {inventory_text!r}")
        inventory_path.write_bytes(inventory_text)
    note(f"suite: {suite_text!r}")
    suite_path.write_bytes(suite_text)
    suite_arg = str(suite_path) if explicit_suite else None
    try:
        plan = load_plan(root, str(inventory_path), suite_arg, Options(dry_run=True))
    except ConfigError as err:
        message = str(err)
        assert str(inventory_path) in message or str(suite_path) in message, message
        assert "line " in message, message
        assert "\n" not in message, message
        return
    plan.describe().encode("utf-8")  # what --dry-run prints must be printable


def test_generated_inventories_plan_or_name_file_and_line(tmp_path: Path) -> None:
    make_tree(tmp_path)

    @SETTINGS
    @given(SEEDS)
    def property_(seed: int) -> None:
        g = Gen(seed)
        check(tmp_path, yaml_text(g, inventory(g)), yaml_text(g, suite(g)), g.chance(50))

    property_()


def test_generated_suites_plan_or_name_file_and_line(tmp_path: Path) -> None:
    """The same with a valid inventory, so that every example reaches the suite and the
    plan, whether the suite comes from the command line or the inventory's field."""
    make_tree(tmp_path)
    valid = {
        "hosts": [{"name": "a", "address": "192.0.2.1", "roles": ["db", "server", "client"]}],
        "application": {"source": "app", "settings": "s", "requirements": "requirements.txt"},
        "suite": "suite.yaml",
    }
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(valid))

    @SETTINGS
    @given(SEEDS)
    def property_(seed: int) -> None:
        g = Gen(seed)
        check(tmp_path, None, yaml_text(g, suite(g)), g.chance(50))

    property_()
