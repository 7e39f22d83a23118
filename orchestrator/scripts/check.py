"""Lint the remote scripts as they are sent: rendered, with hostile values, by bash and shellcheck.

A template is not a script: what runs on a host is the text the Python functions render.
So every public script function is called here with sample values, including hostile
ones (spaces, quotes, ``$(...)``, backticks, newlines where a value may hold them), and
each rendered text goes through ``bash -n`` and ``shellcheck -S warning -s bash``. A
finding is reported at the template line it comes from (file:line) when that can be told,
else at the line of the rendered sample. Also checked: every ``*.sh.j2`` template is rendered by
some sample (a new script must get one), no ``{{ value }}`` sits inside double quotes
(its quoting would become literal characters), and the Python helpers compile.

Run by ``make lint`` as ``python -m orchestrator.scripts`` and by tests/unit/test_scripts.py.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator import capture, deploy, layers, scripts, transport
from orchestrator.bundle import Bundle
from orchestrator.components import appserver, mariadb
from orchestrator.components.base import DatabaseGrant
from orchestrator.installer import Tool
from orchestrator.layout import Layout
from orchestrator.suite import Burst, Layer
from orchestrator.wheelhouse import Wheelhouse

FOLDER = Path(scripts.__file__).parent
HOSTILE = 'it\'s a "$(touch /tmp/readiness-pwned)" `id` $HOME; *'
MULTILINE = f"first line\n{HOSTILE}\nlast line"


@dataclass(frozen=True)
class Finding:
    """One problem, at ``where`` (file:line)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


LAYOUT = Layout(f"/srv/ready {HOSTILE}")
VENV = LAYOUT.venv("abc123")
ENV = {"PLAIN": "1", "TRICKY_VALUE": MULTILINE}
PYTHON = f"/opt/py {HOSTILE}/bin/python3"
CACHE = f"/var/tmp/readiness-{HOSTILE}/.venvs"


def samples() -> dict[str, str]:
    """Every script the code can send, rendered with sample values: label -> text."""
    return {
        **_component_samples(),
        **_deploy_samples(),
        **_layer_samples(),
        **_capture_samples(),
        "transport._WRAPPER": scripts.render("transport_run.sh"),
        "transport._KILL": scripts.render("transport_kill.sh"),
    }


def _component_samples() -> dict[str, str]:
    def server(mode: str, address: str, fixtures: tuple[str, ...]) -> appserver.DjangoServer:
        return appserver.DjangoServer(
            LAYOUT, VENV, mode, address, 8000, fixtures, f"/api/health?q={HOSTILE}", ENV
        )

    instance = mariadb.MariaDBInstance("/srv/rdy-db_1/db", "10.0.0.2", 3307, run_as_root=True)
    user_instance = mariadb.MariaDBInstance("/srv/rdy-db_1/db", "fd00::2", 3307)
    grant = DatabaseGrant("app", "app_user", 'pw-$(x)`y`"z', ("localhost", "10.0.0.3"))
    return {
        "appserver.start_script[testserver]": server(
            "testserver", "10.0.0.2", ("fixtures/known.json", f"odd {HOSTILE}.json")
        ).start_script(),
        "appserver.start_script[gunicorn]": server("gunicorn", "fd00::2", ()).start_script(),
        "appserver.start_script[gunicorn serial]": dataclasses.replace(
            server("gunicorn", "10.0.0.2", ()), workers=1, threads=1, backlog=10
        ).start_script(),
        "appserver.stop_script": appserver.stop_script(LAYOUT),
        "deploy.stray_kill_script": deploy.stray_kill_script(LAYOUT),
        "mariadb.start_script": mariadb.start_script(user_instance),
        "mariadb.provision_script": mariadb.provision_script(instance, grant),
        "mariadb.up_script": mariadb.up_script(instance, grant),
        "mariadb.up_script[marked]": mariadb.up_script(instance, grant, LAYOUT.root),
        "mariadb.stop_script": mariadb.stop_script(instance),
        "mariadb.health_script": mariadb.health_script(instance),
        "appserver.health_script": server("testserver", "10.0.0.2", ()).health_script(),
        "mariadb.stop_script[remove]": mariadb.stop_script(instance, remove=True),
        # Teardown sends these as one script: they must not trip over each other.
        "teardown": deploy.stray_kill_script(LAYOUT)
        + deploy.forget_script(LAYOUT, "run-1")
        + appserver.stop_script(LAYOUT)
        + mariadb.stop_script(instance),
    }


def _deploy_samples() -> dict[str, str]:
    bundle = Bundle(b"", "d1", 0)
    wheels = Wheelhouse(Path("/nowhere"), "w1")
    artifacts = deploy.Artifacts(bundle, bundle, wheels, wheels)
    config = deploy.HostConfig({"readiness_settings.py": "X = 1\n"}, {"K": HOSTILE})
    uv = Tool(Path("/nowhere/uv-0.9.30-py3-none-manylinux_2_17_x86_64.whl"), "0.9.30", "x86_64")
    needs = deploy.HostNeeds(True, True, (wheels,), config, tool=uv)
    all_parts = ["app", "client", "uv-0.9.30", "wheels-w1", "etc"]
    return {
        "deploy.probe_script": deploy.probe_script(LAYOUT, PYTHON),
        "deploy.probe_script[mariadb]": deploy.probe_script(
            LAYOUT, PYTHON, mariadb.ENGINE.probe_script
        ),
        "deploy.install_script[all]": deploy.install_script(
            LAYOUT, PYTHON, all_parts, artifacts, needs
        ),
        "deploy.install_script[none]": deploy.install_script(
            LAYOUT, PYTHON, [], artifacts, deploy.HostNeeds(False, True, (), None)
        ),
        "deploy.install_script[cache]": deploy.install_script(
            LAYOUT, PYTHON, all_parts, artifacts, needs, links=["c0ffee"], venv_cache=CACHE
        ),
        "deploy.probe_script[cache]": deploy.probe_script(LAYOUT, PYTHON, venv_cache=CACHE),
        "deploy.tail_script": deploy.tail_script(f"{LAYOUT.run}/server.log", 1 << 20),
    }


def _layer_samples() -> dict[str, str]:
    unit = Layer("unit", "server", 'python -m pytest -q "tests/a b"', (), 60, "stop")
    rest = Layer("rest-1", "client", "pytest it", ("server",), 60, "stop")
    burst = layers.with_burst_path(
        Layer("burst-60", "client", "", ("server",), 60, "stop", junit=False, burst=Burst(60)),
        "/api/health?q=a&b=%20",
    )
    junit = f"{LAYOUT.results('run-1')}/unit.xml"
    return {
        "layers.layer_script[server]": layers.layer_script(
            unit, LAYOUT, venv=VENV, junit_path=junit, base_url=None, env=ENV
        ),
        "layers.layer_script[client]": layers.layer_script(
            rest, LAYOUT, venv=VENV, junit_path=junit, base_url="http://[fd00::2]:8000", env=ENV
        ),
        "layers.layer_script[burst]": layers.layer_script(
            burst, LAYOUT, venv=VENV, junit_path=junit, base_url="http://[fd00::2]:8000", env=ENV
        ),
    }


def _capture_samples() -> dict[str, str]:
    run_id, layer = f"run {HOSTILE}", "rest-1"
    window = capture.window_open_script(
        LAYOUT,
        run_id,
        layer,
        exclude_port=22,
        listen_ports=[8000, 8001],
        max_s=660.5,
        python=PYTHON,
    )
    server = appserver.DjangoServer(
        LAYOUT, VENV, "testserver", "10.0.0.2", 8000, (f"odd {HOSTILE}.json",), "/api/h", ENV
    )
    ledger = f"{LAYOUT.results(run_id)}/{layer}.ledger.jsonl"
    return {
        "capture.window_open_script": window,
        # A server's start (stop) and the window's opening go to a host as one script.
        "capture.window_transition_script[start]": capture.window_transition_script(
            LAYOUT, server.start_script(), window, gated=True
        ),
        "capture.window_transition_script[stop]": capture.window_transition_script(
            LAYOUT, server.stop_script(), window, gated=False
        ),
        "capture.window_close_script[ledger]": capture.window_close_script(
            LAYOUT, run_id, layer, watch_ports=[8000], ledger=ledger
        ),
        "capture.window_open_script[no ports]": capture.window_open_script(
            LAYOUT, run_id, layer, exclude_port=2222, listen_ports=[], max_s=60
        ),
        "capture.window_close_script": capture.window_close_script(
            LAYOUT, run_id, layer, watch_ports=[8000, 3307], settle_s=2.5
        ),
        "capture.window_close_script[no ports]": capture.window_close_script(
            LAYOUT, run_id, layer, watch_ports=[]
        ),
    }


def check() -> list[Finding]:
    """Everything wrong with the scripts; empty when all is well."""
    env = scripts.scripts()
    if env.cache is not None:
        env.cache.clear()  # so what the samples load is what they cover
    rendered = samples()
    used = {name for _, name in env.cache or {}}
    findings = [
        Finding(f"{_rel(path)}:1", "no sample renders this script; add one in samples()")
        for path in sorted(FOLDER.glob("*.sh.j2"))
        if path.name.removesuffix(".j2") not in used
    ]
    if (
        rendered["transport._KILL"] != transport._KILL
        or rendered["transport._WRAPPER"] != transport._WRAPPER
    ):
        findings.append(Finding("orchestrator/transport.py:1", "the rendered constants differ"))
    findings += _quoted_values() + _python_helpers()
    with tempfile.TemporaryDirectory(prefix="readiness-lint.") as tmp:
        files: dict[Path, str] = {}
        for number, (label, text) in enumerate(rendered.items()):
            path = Path(tmp) / f"{number:02d}.sh"
            path.write_text(text)
            files[path] = label
        findings += _bash_n(files) + _shellcheck(files)
    return findings


def _bash_n(files: dict[Path, str]) -> list[Finding]:
    findings = []
    for path, label in files.items():
        done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        for line in done.stderr.splitlines():
            number = re.search(r": line (\d+): ", line)
            where = _where(path, label, int(number.group(1)) if number else 1)
            findings.append(Finding(where, f"bash -n: {line.split(': ', 2)[-1]}"))
    return findings


def _shellcheck(files: dict[Path, str]) -> list[Finding]:
    if shutil.which("shellcheck") is None:
        return [Finding("Makefile:1", "shellcheck is not installed; run `make setup`")]
    done = subprocess.run(
        ["shellcheck", "-S", "warning", "-s", "bash", "-f", "gcc", *map(str, files)],
        capture_output=True,
        text=True,
    )
    findings = []
    for line in done.stdout.splitlines():
        found = re.match(r"(.+?):(\d+):\d+: (\w+): (.*)$", line)
        if found is None:
            continue
        path, number, level, message = found.groups()
        where = _where(Path(path), files[Path(path)], int(number))
        findings.append(Finding(where, f"shellcheck {level}: {message}"))
    if done.returncode not in (0, 1) or (done.returncode == 1 and not findings):
        findings.append(Finding("Makefile:1", f"shellcheck failed: {done.stderr.strip()}"))
    return findings


def _where(path: Path, label: str, number: int) -> str:
    """The template file:line a rendered line comes from, else the sample's line."""
    lines = path.read_text().splitlines()
    origin = _origin(lines, number - 1) if 0 < number <= len(lines) else None
    shown = lines[number - 1].strip() if 0 < number <= len(lines) else ""
    if origin is None:
        return f"{label}:{number}" + (f" ({shown[:80]})" if shown else "")
    return f"{origin} ({label} line {number}: {shown[:80]})"


def _origin(lines: list[str], index: int) -> str | None:
    """The template line best matching ``lines[index]`` and the lines around it."""
    best: tuple[int, str] | None = None
    for path in sorted(FOLDER.glob("*.sh.j2")):
        source = path.read_text().splitlines()
        patterns = [_pattern(line) for line in source]
        for at, pattern in enumerate(patterns):
            if pattern is None or not pattern(lines[index]):
                continue
            score = 0
            for offset in (-2, -1, 1, 2):
                near = patterns[at + offset] if 0 <= at + offset < len(patterns) else None
                if near and 0 <= index + offset < len(lines) and near(lines[index + offset]):
                    score += 1
            if best is None or score > best[0]:
                best = (score, f"{_rel(path)}:{at + 1}")
    return best[1] if best else None


def _pattern(template_line: str) -> Callable[[str], bool] | None:
    """A matcher for the rendered lines a template line can produce (values as ``.*``)."""
    stripped = template_line.strip()
    if not stripped or re.fullmatch(r"(\{[%#].*[%#]\}\s*)+", stripped):
        return None
    parts = re.split(r"\{\{.*?\}\}", stripped)
    regex = re.compile(".*".join(re.escape(part) for part in parts))
    return lambda line: regex.fullmatch(line.strip()) is not None


def _quoted_values() -> list[Finding]:
    """``{{ value }}`` inside "..." would keep its quotes as literal characters."""
    findings = []
    for path in sorted(FOLDER.glob("*.sh.j2")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for found in re.finditer(r"\{\{", line):
                before = re.sub(r"'[^']*'", "", line[: found.start()]).replace('\\"', "")
                if before.count('"') % 2:
                    findings.append(
                        Finding(
                            f"{_rel(path)}:{number}",
                            "a value inside double quotes: assign it to a variable first",
                        )
                    )
    return findings


def _python_helpers() -> list[Finding]:
    """The Python files the scripts send on a here-document exist and compile."""
    findings = []
    for path in sorted(FOLDER.glob("*.sh.j2")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name in re.findall(r"source\(\"([^\"]+)\"\)", line):
                helper = FOLDER / name
                try:
                    compile(helper.read_text(), str(helper), "exec")
                except (OSError, SyntaxError) as err:
                    findings.append(Finding(f"{_rel(path)}:{number}", f"{name}: {err}"))
    return findings


def _rel(path: Path) -> str:
    root = FOLDER.parent.parent
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def main() -> int:
    """Print every finding; exit 1 if there is any (``make lint``)."""
    findings = check()
    for finding in findings:
        print(finding)
    print(f"orchestrator/scripts: {len(findings)} finding(s) in rendered scripts")
    return 1 if findings else 0
