"""Deploy decisions without hosts: what a host lacks, what the stream holds, the overlay."""

from __future__ import annotations

import dataclasses
import importlib
import io
import os
import stat
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import deploy
from orchestrator.appconfig import render_settings_overlay
from orchestrator.bundle import Bundle, build_bundle
from orchestrator.components import mariadb
from orchestrator.delta import Trees
from orchestrator.deploy import (
    VENV_FAILED_EXIT,
    Artifacts,
    HostConfig,
    HostNeeds,
    Probe,
    PushReport,
    cached,
    drifted,
    install_script,
    installer_used,
    missing,
    parse_probe,
    probe_script,
    push,
    push_stream,
    stray_kill_script,
)
from orchestrator.exceptions import ConfigError
from orchestrator.installer import Tool
from orchestrator.layout import MARKER_VAR, Layout
from orchestrator.transport import FakeTransport, LocalTransport, Result
from orchestrator.wheelhouse import Wheelhouse


@pytest.fixture
def artifacts(tmp_path: Path) -> Artifacts:
    wheels = tmp_path / "wh"
    wheels.mkdir()
    (wheels / "pip-24.0-py3-none-any.whl").write_bytes(b"pip")
    (wheels / "Django-5.2-py3-none-any.whl").write_bytes(b"django")
    house = Wheelhouse(wheels, "w1")
    return Artifacts(Bundle(b"app", "a1", 1), Bundle(b"cli", "c1", 1), house, house)


def needs(artifacts: Artifacts, *, secret: str = "s3cret-value") -> HostNeeds:
    config = HostConfig({"readiness_settings.py": "X = 1\n"}, {"READINESS_DB_PASSWORD": secret})
    return HostNeeds(True, True, (artifacts.server_wheels,), config)


def test_a_fresh_host_lacks_everything(artifacts: Artifacts) -> None:
    assert missing(needs(artifacts), Probe({}, {}), artifacts) == [
        "app",
        "client",
        "wheels-w1",
        "etc",
    ]


def test_a_host_with_the_same_digests_lacks_nothing_and_gets_no_round_trip(
    artifacts: Artifacts,
) -> None:
    n = needs(artifacts)
    assert n.config is not None
    markers = {"app": "a1", "client": "c1", "venvs": " w0 w1", "etc": n.config.digest}
    found = Probe({**markers, "etc_tree": n.config.tree}, {})
    assert missing(n, found, artifacts) == []
    fake = FakeTransport("h")
    report = push(fake, Layout("/r"), "python3", n, artifacts, found)
    assert report.sent == () and report.round_trips == 0 and fake.calls == []


def test_changed_secrets_change_the_config_digest(artifacts: Artifacts) -> None:
    a, b = needs(artifacts, secret="one-secret"), needs(artifacts, secret="two-secret")
    assert a.config is not None and b.config is not None
    assert a.config.digest != b.config.digest


def test_the_stream_holds_only_the_missing_parts_and_secrets_are_private(
    artifacts: Artifacts,
) -> None:
    stream = push_stream(["wheels-w1", "etc"], needs(artifacts), artifacts)
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {
        "wheels-w1/Django-5.2-py3-none-any.whl",
        "wheels-w1/pip-24.0-py3-none-any.whl",
        "etc/readiness_settings.py",
        "etc/secrets.env",
    }
    assert members["etc/secrets.env"].mode == 0o600


def test_one_push_is_one_round_trip_with_the_stream_on_stdin(artifacts: Artifacts) -> None:
    fake = FakeTransport("h")
    report = push(fake, Layout("/r"), "python3", needs(artifacts), artifacts, Probe({}, {}))
    assert report.round_trips == 1 and len(fake.calls) == 1
    assert fake.calls[0].stdin is not None and len(fake.calls[0].stdin) == report.bytes_sent
    assert "s3cret-value" not in fake.calls[0].script


# Characters the shell treats specially: the deploy root must arrive literally. (Not "; ",
# which pip reads as an environment marker in a wheel's path, whatever the shell does.)
HOSTILE_ROOT = 'it\'s a "$(id)" `id` $HOME & * dir'
# A stand-in for pip's wheel: the install script runs "<wheel>/pip" with the venv's Python,
# as pip's own wheel is run; this one records its arguments in the venv instead.
FAKE_PIP = """\
import os, sys
with open(os.path.join(sys.prefix, "pip-args"), "w") as out:
    out.write("\\n".join(sys.argv[1:]))
"""


def test_install_unpacks_every_part_then_the_probe_finds_nothing_missing(tmp_path: Path) -> None:
    """The real install and probe scripts, run locally: a cold deploy, then a warm one."""
    wheels = tmp_path / "wh"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "pip-99-py3-none-any.whl", "w") as whl:
        whl.writestr("pip/__main__.py", FAKE_PIP)
    (wheels / "Django-5.2-py3-none-any.whl").write_bytes(b"django")
    house = Wheelhouse(wheels, "w1")
    for name in ("src", "cli"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.py").write_text("x = 1\n")
    artifacts = Artifacts(
        build_bundle(tmp_path / "src"), build_bundle(tmp_path / "cli"), house, house
    )
    config = HostConfig({"readiness_settings.py": "X = 1\n"}, {"K": "it's $(id)"})
    n = HostNeeds(True, True, (house,), config)
    layout = Layout(str(tmp_path / HOSTILE_ROOT))
    Path(layout.venv("old")).mkdir(parents=True)  # of earlier requirements: removed
    local = LocalTransport()

    parts = missing(n, Probe({}, {}), artifacts)
    stream = push_stream(parts, n, artifacts)
    script = install_script(layout, sys.executable, parts, artifacts, n)
    result = local.run(script, stdin=stream, timeout=300)
    assert result.ok, result.stderr
    assert Path(layout.app, "src.py").exists() and Path(layout.client, "cli.py").exists()
    assert Path(layout.secrets).stat().st_mode & 0o777 == 0o600
    assert Path(layout.secrets).read_text() == "K='it'\"'\"'s $(id)'\n"
    venv = Path(layout.venv("w1"))
    assert (venv / ".complete").exists() and not Path(layout.venv("old")).exists()
    assert not (venv / "bin" / "pip").exists()  # --without-pip: no ensurepip, no download
    pip_args = (venv / "pip-args").read_text().splitlines()
    assert pip_args[:2] == ["install", "--quiet"] and "--no-index" in pip_args
    assert sorted(Path(arg).name for arg in pip_args if arg.endswith(".whl")) == [
        "Django-5.2-py3-none-any.whl",
        "pip-99-py3-none-any.whl",
    ]

    found = parse_probe(local.run(probe_script(layout, sys.executable), timeout=60).stdout)
    assert found.facts["deploy_root_writable"] == "yes"
    assert missing(n, found, artifacts) == []


def test_a_venv_that_does_not_build_fails_the_install_with_its_exit_code(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wh"
    wheels.mkdir()
    (wheels / "pip-0-py3-none-any.whl").write_bytes(b"not a zip")
    house = Wheelhouse(wheels, "w1")
    n = HostNeeds(False, False, (house,), None)
    bundle = Bundle(b"", "d", 0)
    artifacts = Artifacts(bundle, bundle, house, house)
    layout = Layout(str(tmp_path / "root"))
    stream = push_stream(["wheels-w1"], n, artifacts)
    script = install_script(layout, sys.executable, ["wheels-w1"], artifacts, n)
    result = LocalTransport().run(script, stdin=stream, timeout=120)
    assert result.exit_code == VENV_FAILED_EXIT
    assert "building a virtualenv failed" in result.stderr
    assert not Path(layout.venv("w1"), ".complete").exists()


def test_the_probe_reports_a_deploy_root_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = LocalTransport().run(probe_script(Layout(f"{blocker}/root"), "python3"))
    assert result.ok, result.stderr
    assert parse_probe(result.stdout).facts["deploy_root_writable"] == "no"


def test_probe_output_is_parsed_into_markers_and_facts() -> None:
    found = parse_probe("marker.app=abc\nfact.python=3.11.2\nnoise\nfact.somaxconn=4096\n")
    assert found.markers == {"app": "abc"}
    assert found.facts == {"python": "3.11.2", "somaxconn": "4096"}


def test_bundles_are_deterministic_and_skip_caches(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "m.py").write_text("x = 1\n")
    (src / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"junk")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref\n")
    first, second = build_bundle(src), build_bundle(src)
    assert first.digest == second.digest and first.data == second.data
    assert first.files == 1
    (src / "pkg" / "m.py").write_text("x = 2\n")
    assert build_bundle(src).digest != first.digest


def test_the_overlay_replaces_database_and_hosts_of_any_settings_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a project hard-coding SQLite and ALLOWED_HOSTS ends up on MySQL and our hosts."""
    pkg = tmp_path / "thirdparty"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "settings.py").write_text(
        "ALLOWED_HOSTS = ['example.com']\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': 'db.sqlite3',"
        " 'OPTIONS': {'timeout': 20}}}\n"
        "SECRET_KEY = 'hard-coded'\n"
    )
    (tmp_path / "readiness_settings.py").write_text(
        render_settings_overlay(
            settings="thirdparty.settings",
            client=mariadb.CLIENT,
            db_name="app",
            db_host="/srv/r/db/mysqld.sock",
            db_port="",
            allowed_hosts=["10.0.0.3", "localhost"],
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("READINESS_DB_USER", "app")
    monkeypatch.setenv("READINESS_DB_PASSWORD", "pw")
    monkeypatch.setenv("READINESS_SECRET_KEY", "k" * 40)
    try:
        overlay = importlib.import_module("readiness_settings")
        db = overlay.DATABASES["default"]
        assert db["ENGINE"] == "django.db.backends.mysql"
        assert db["HOST"] == "/srv/r/db/mysqld.sock" and db["PASSWORD"] == "pw"
        assert db["OPTIONS"] == {"charset": "utf8mb4"}  # sqlite's 'timeout' is gone
        assert db["TEST"]["NAME"] == "test_app"
        assert overlay.ALLOWED_HOSTS == ["10.0.0.3", "localhost"]
        assert overlay.SECRET_KEY == "k" * 40
    finally:
        for name in ("readiness_settings", "thirdparty", "thirdparty.settings"):
            sys.modules.pop(name, None)


def test_the_django_test_runner_writes_junit_that_counts_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import unittest

    from orchestrator.appconfig import render_test_runner
    from orchestrator.junit import TestCounts, read_counts

    (tmp_path / "readiness_runner.py").write_text(render_test_runner())
    monkeypatch.syspath_prepend(str(tmp_path))
    runner_module = importlib.import_module("readiness_runner")

    class Sample(unittest.TestCase):
        def test_ok(self) -> None:
            pass

        def test_bad(self) -> None:
            self.assertEqual(1, 2)

        def test_broken(self) -> None:
            raise RuntimeError("boom")

        @unittest.skip("not today")
        def test_skipped(self) -> None:
            pass

        def test_sub(self) -> None:
            for i in range(2):
                with self.subTest(i=i):
                    self.assertEqual(i, 0)

    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Sample)
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, resultclass=runner_module._Result).run(suite)
    out = tmp_path / "django.xml"
    try:
        runner_module.write_junit(str(out), result.cases)  # type: ignore[attr-defined]
    finally:
        sys.modules.pop("readiness_runner", None)
    # test_sub: its failing subtest counts as a failure; Python records no success for it.
    assert read_counts(out) == TestCounts(total=5, passed=1, failed=2, errors=1, skipped=1)


def test_wheelhouse_digest_follows_included_requirement_files(tmp_path: Path) -> None:
    from orchestrator.wheelhouse import digest_of

    (tmp_path / "base.txt").write_text("Django>=5.2\n")
    (tmp_path / "prod.txt").write_text("-r base.txt  # shared\ngunicorn\n")
    before = digest_of([tmp_path / "prod.txt"], ["PyMySQL"], "cp311")
    assert before == digest_of([tmp_path / "prod.txt"], ["PyMySQL"], "cp311")
    (tmp_path / "base.txt").write_text("Django>=5.1\n")
    assert digest_of([tmp_path / "prod.txt"], ["PyMySQL"], "cp311") != before
    assert digest_of([tmp_path / "prod.txt"], ["PyMySQL", "x"], "cp311") != before


def test_bundles_resolve_links_leading_outside_and_skip_sockets(tmp_path: Path) -> None:
    import socket

    from orchestrator.exceptions import ConfigError

    outside = tmp_path / "shared.env"
    outside.write_text("A=1\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "real.py").write_text("x = 1\n")
    (src / "alias.py").symlink_to("real.py")  # inside: stays a link
    (src / ".env").symlink_to(outside)  # outside: shipped as the file itself
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "left.sock"))
        bundle = build_bundle(src)
    import gzip

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(bundle.data))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"real.py", "alias.py", ".env"}
    assert members["alias.py"].issym() and members[".env"].isfile()
    (src / "data").symlink_to(tmp_path)  # a folder outside: refused, naming the link
    with pytest.raises(ConfigError, match="data"):
        build_bundle(src)


def test_binary_wheels_must_match_the_hosts_python_and_cpu(tmp_path: Path) -> None:
    import platform

    from orchestrator.deploy import check_wheels_fit
    from orchestrator.exceptions import HostError

    (tmp_path / "Django-5.2-py3-none-any.whl").write_bytes(b"")
    pure = Wheelhouse(tmp_path, "p")
    assert pure.binary_tags is None
    check_wheels_fit("h1", {"python": "3.9.2", "machine": "aarch64"}, (pure,))  # anything goes

    (tmp_path / "hypothesis-6.1-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"")
    binary = Wheelhouse(tmp_path, "b")
    assert binary.binary_tags == ("cp311", "manylinux_2_17_x86_64")
    here = {"python": "{}.{}.0".format(*sys.version_info[:2]), "machine": platform.machine()}
    check_wheels_fit("h1", here, (binary,))
    with pytest.raises(HostError, match=r"h1.*Python 3\.9"):
        check_wheels_fit("h1", {"python": "3.9.2", "machine": platform.machine()}, (binary,))


# -- drift: what a run leaves in a deployed tree does not survive into the next ----------

# A stand-in for pip that also records whether the install runs marked with the deploy
# root: in its own environment, and in its parent's /proc/PID/environ (the install's
# shell, where teardown's stray kill looks). With READINESS_TEST_PIP_WAIT set it signals
# that it started and then waits, as a long pip install would.
MARKED_PIP = """\
import os, sys, time
marker = os.environ.get("READINESS_DEPLOY_ROOT", "")
with open("/proc/%d/environ" % os.getppid(), "rb") as fh:
    shell = [v for v in fh.read().split(b"\\0") if v.startswith(b"READINESS_DEPLOY_ROOT=")]
with open(os.path.join(sys.prefix, "pip-marker"), "w") as out:
    out.write(marker + "\\n" + (shell[0].decode() if shell else "") + "\\n")
wait = os.environ.get("READINESS_TEST_PIP_WAIT")
if wait:
    open(wait, "w").close()
    time.sleep(60)
"""


@dataclass
class Deployed:
    """A deploy root installed by the real scripts, and what it takes to probe and push."""

    layout: Layout
    needs: HostNeeds
    artifacts: Artifacts
    local: LocalTransport
    # The host's cache of built venvs (hosts.Target.venv_cache); empty: none.
    venv_cache: str = ""

    def probe(self) -> Probe:
        script = probe_script(self.layout, sys.executable, venv_cache=self.venv_cache)
        result = self.local.run(script, timeout=60)
        assert result.ok, result.stderr
        return parse_probe(result.stdout)

    def push(self, found: Probe) -> tuple[str, ...]:
        return self.report(found).sent

    def report(self, found: Probe) -> PushReport:
        return push(
            self.local,
            self.layout,
            sys.executable,
            self.needs,
            self.artifacts,
            found,
            venv_cache=self.venv_cache,
        )

    @property
    def site_packages(self) -> Path:
        venv = Path(self.layout.venv("w1"))
        return next(venv.glob("lib/python3*/site-packages"))


def build_artifacts(tmp_path: Path, pip_source: str) -> Artifacts:
    wheels = tmp_path / "wh"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "pip-99-py3-none-any.whl", "w") as whl:
        whl.writestr("pip/__main__.py", pip_source)
    (wheels / "Django-5.2-py3-none-any.whl").write_bytes(b"django")
    house = Wheelhouse(wheels, "w1")
    app, cli = tmp_path / "src", tmp_path / "cli"
    (app / "pkg").mkdir(parents=True)
    (app / "manage.py").write_text("print('manage')\n")
    (app / "manage.py").chmod(0o755)
    (app / "pkg" / "__init__.py").write_text("")
    (app / "pkg" / "views.py").write_text("X = 1\n")
    (app / "alias.py").symlink_to("manage.py")
    cli.mkdir()
    (cli / "test_api.py").write_text("def test_ok():\n    pass\n")
    return Artifacts(build_bundle(app), build_bundle(cli), house, house)


@pytest.fixture
def deployed(tmp_path: Path) -> Deployed:
    """A cold deploy by the real install script, whose next probe finds nothing missing."""
    artifacts = build_artifacts(tmp_path, MARKED_PIP)
    config = HostConfig({"readiness_settings.py": "X = 1\n"}, {"K": "v"})
    host = Deployed(
        Layout(str(tmp_path / "root")),
        HostNeeds(True, True, (artifacts.server_wheels,), config),
        artifacts,
        LocalTransport(),
    )
    assert host.push(Probe({}, {})) == ("app", "client", "wheels-w1", "etc")
    assert missing(host.needs, host.probe(), artifacts) == []
    return host


def test_the_probe_digests_an_unpacked_bundle_as_the_control_node_does(
    deployed: Deployed,
) -> None:
    """Same encoding on both sides: files, exec bits, links and folders of what was sent."""
    found = deployed.probe()
    assert found.markers["app_tree"] == deployed.artifacts.app.tree != ""
    assert found.markers["client_tree"] == deployed.artifacts.client.tree != ""
    assert deployed.needs.config is not None
    assert found.markers["etc_tree"] == deployed.needs.config.tree
    assert found.markers["venvs"] == "w1" and found.markers["venvs_changed"] == ""
    # The Python facts share one interpreter start, the tree check has its own.
    assert found.facts["python"] == sys.version.split()[0] and found.facts["python_venv"] == "1"


def test_files_a_run_added_or_changed_in_the_code_trees_are_resent_and_removed(
    deployed: Deployed,
) -> None:
    layout = deployed.layout
    Path(layout.app, "pkg", "planted.py").write_text("X = 'left by run N'\n")
    Path(layout.client, "test_api.py").write_text("def test_ok():\n    assert 0\n")
    Path(layout.etc, "django.py").write_text("shadow = True\n")  # first on PYTHONPATH

    found = deployed.probe()
    assert found.markers["app"] == deployed.artifacts.app.digest  # the marker still says ok
    expected = ["app", "client", "etc"]
    assert missing(deployed.needs, found, deployed.artifacts) == expected
    assert drifted(deployed.needs, found, deployed.artifacts) == expected
    assert deployed.push(found) == ("app", "client", "etc")

    assert not Path(layout.app, "pkg", "planted.py").exists()
    assert Path(layout.client, "test_api.py").read_text() == "def test_ok():\n    pass\n"
    assert not Path(layout.etc, "django.py").exists()
    assert Path(layout.secrets).stat().st_mode & 0o777 == 0o600
    assert missing(deployed.needs, deployed.probe(), deployed.artifacts) == []


def test_a_removed_file_or_a_changed_mode_is_drift_too(deployed: Deployed) -> None:
    Path(deployed.layout.app, "pkg", "views.py").unlink()
    Path(deployed.layout.client, "test_api.py").chmod(0o755)
    found = deployed.probe()
    assert missing(deployed.needs, found, deployed.artifacts) == ["app", "client"]


def test_a_package_a_run_added_to_a_venv_makes_it_rebuilt(deployed: Deployed) -> None:
    planted = deployed.site_packages / "requests_mock.py"
    planted.write_text("# pip-installed by a layer\n")
    found = deployed.probe()
    assert found.markers["venvs"] == "" and found.markers["venvs_changed"] == "w1"
    assert missing(deployed.needs, found, deployed.artifacts) == ["wheels-w1"]
    assert drifted(deployed.needs, found, deployed.artifacts) == ["wheels-w1"]
    assert deployed.push(found) == ("wheels-w1",)
    assert not planted.exists()
    assert missing(deployed.needs, deployed.probe(), deployed.artifacts) == []


def test_bytecode_and_test_caches_are_removed_by_the_probe_and_never_resent(
    deployed: Deployed,
) -> None:
    """What running the code or its tests writes is not drift (no resend after every run)
    but does not survive either: stale bytecode, a sourceless .pyc (importable!), pytest's
    cache (read by --lf). In a venv, bytecode is pip's own and stays, ignored."""
    app, client = Path(deployed.layout.app), Path(deployed.layout.client)
    (app / "pkg" / "__pycache__").mkdir()
    (app / "pkg" / "__pycache__" / "views.cpython-311.pyc").write_bytes(b"stale")
    (app / "gone.pyc").write_bytes(b"imports without a source")
    (client / ".pytest_cache" / "v" / "cache").mkdir(parents=True)
    (client / ".pytest_cache" / "v" / "cache" / "lastfailed").write_text("{}")
    venv_cache = deployed.site_packages / "__pycache__"
    venv_cache.mkdir(exist_ok=True)
    (venv_cache / "late.cpython-311.pyc").write_bytes(b"written at run time")

    found = deployed.probe()
    assert missing(deployed.needs, found, deployed.artifacts) == []
    assert not (app / "pkg" / "__pycache__").exists() and not (app / "gone.pyc").exists()
    assert not (client / ".pytest_cache").exists()
    assert (venv_cache / "late.cpython-311.pyc").exists()


def rebuilt(deployed: Deployed, tmp_path: Path) -> Deployed:
    """The same host, with the artifacts built anew from the (changed) sources, and the
    manifests of both versions kept as the build step keeps them."""
    trees = Trees(tmp_path / "trees")
    for bundle in (deployed.artifacts.app, deployed.artifacts.client):
        trees.keep(bundle)
    app, client = build_bundle(tmp_path / "src"), build_bundle(tmp_path / "cli")
    for bundle in (app, client):
        trees.keep(bundle)
    artifacts = dataclasses.replace(deployed.artifacts, app=app, client=client, trees=trees)
    return dataclasses.replace(deployed, artifacts=artifacts)


def big_file(path: Path) -> None:
    """A file that makes a whole bundle far larger than the difference of one change."""
    path.write_text("".join(f"{n:08x}{os.urandom(24).hex()}\n" for n in range(3000)))


def deployed_big(tmp_path: Path, *, client: bool) -> Deployed:
    """A host holding an application with one big file (cold deploy, no venv to share)."""
    artifacts = build_artifacts(tmp_path, MARKED_PIP)
    big_file(tmp_path / "src" / "data.txt")
    host = Deployed(
        Layout(str(tmp_path / "root")),
        HostNeeds(True, client, (artifacts.server_wheels,), None),
        dataclasses.replace(artifacts, app=build_bundle(tmp_path / "src")),
        LocalTransport(),
    )
    host.push(Probe({}, {}))
    return host


def test_a_one_file_change_sends_only_that_file_and_the_host_holds_the_new_tree(
    tmp_path: Path,
) -> None:
    host = deployed_big(tmp_path, client=True)
    (tmp_path / "src" / "pkg" / "views.py").write_text("X = 2\n")
    (tmp_path / "src" / "manage.py").unlink()  # alias.py now points at nothing: a link still
    changed = rebuilt(host, tmp_path)

    report = changed.report(changed.probe())

    assert report.sent == ("app",) and report.patched == (("app", 1, 1, True),)
    assert report.bytes_sent < len(changed.artifacts.app.data) / 4
    assert report.round_trips == 1
    app = Path(changed.layout.app)
    assert (app / "pkg" / "views.py").read_text() == "X = 2\n"
    assert not (app / "manage.py").exists() and (app / "alias.py").is_symlink()
    found = changed.probe()
    assert found.markers["app_tree"] == changed.artifacts.app.tree
    assert found.markers["app"] == changed.artifacts.app.digest
    assert missing(changed.needs, found, changed.artifacts) == []


def test_a_file_become_a_folder_and_a_folder_emptied_patch_to_the_exact_tree(
    deployed: Deployed, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    big_file(src / "pkg" / "data.txt")
    (src / "views_dir").mkdir()
    (src / "views_dir" / "only.py").write_text("")
    first = rebuilt(deployed, tmp_path)
    first.push(first.probe())  # the host holds this version (sent whole: no manifest yet)
    (src / "views_dir" / "only.py").unlink()
    (src / "views_dir").rmdir()  # a folder emptied: it must not stay behind on the host
    (src / "pkg" / "views.py").unlink()
    (src / "pkg" / "views.py").mkdir()  # a file become a folder
    (src / "pkg" / "views.py" / "__init__.py").write_text("Y = 1\n")
    second = rebuilt(first, tmp_path)

    report = second.report(second.probe())
    assert report.sent == ("app",) and report.patched == (("app", 1, 2, True),), report

    app = Path(second.layout.app)
    assert not (app / "views_dir").exists()
    assert (app / "pkg" / "views.py" / "__init__.py").read_text() == "Y = 1\n"
    assert second.probe().markers["app_tree"] == second.artifacts.app.tree


def test_a_patched_folder_has_the_modes_a_whole_unpack_gives(tmp_path: Path) -> None:
    """Modes other than the execute bit are no part of the digest, so a run's chmod
    survives into the copy a patch starts from: the patch makes them as unpacking does."""
    host = deployed_big(tmp_path, client=False)
    app = Path(host.layout.app)
    (app / "data.txt").chmod(0o600)
    (app / "manage.py").chmod(0o4711)  # setuid, and group/other bits of its own
    (app / "pkg").chmod(0o700)
    (tmp_path / "src" / "pkg" / "views.py").write_text("X = 4\n")
    changed = rebuilt(host, tmp_path)

    report = changed.report(changed.probe())

    assert report.patched == (("app", 1, 0, True),), report
    modes = {p: (app / p).stat().st_mode & 0o7777 for p in ("data.txt", "manage.py", "pkg")}
    assert modes == {"data.txt": 0o644, "manage.py": 0o755, "pkg": 0o755}


def test_a_host_not_holding_the_tree_it_reported_gets_the_bundle_whole(
    tmp_path: Path,
) -> None:
    """The install checks the patched copy against the tree sent: a host whose folder
    changed since its probe (or lied) fails that check, and the bundle goes whole."""
    host = deployed_big(tmp_path, client=False)
    (tmp_path / "src" / "pkg" / "views.py").write_text("X = 3\n")
    changed = rebuilt(host, tmp_path)
    found = changed.probe()
    Path(changed.layout.app, "pkg", "planted.py").write_text("after the probe\n")

    report = changed.report(found)

    assert report.sent == ("app",) and report.round_trips == 2
    assert report.patched == (("app", 1, 0, False),)
    assert not Path(changed.layout.app, "pkg", "planted.py").exists()
    assert changed.probe().markers["app_tree"] == changed.artifacts.app.tree


def test_the_install_runs_marked_so_teardown_can_find_it(deployed: Deployed) -> None:
    """Its children have the marker, and so has the shell itself in /proc/PID/environ."""
    marker = f"{MARKER_VAR}={deployed.layout.root}"
    child, shell = (Path(deployed.layout.venv("w1")) / "pip-marker").read_text().splitlines()
    assert child == deployed.layout.root and shell == marker


def test_an_install_stopped_by_teardown_leaves_no_secret_and_nothing_trusted(
    tmp_path: Path,
) -> None:
    """Ctrl-C mid-install: teardown's stray kill stops it (pip included), and neither the
    secrets nor a digest marker or venv seal is written after it."""
    artifacts = build_artifacts(tmp_path, MARKED_PIP)
    config = HostConfig({"readiness_settings.py": "X = 1\n"}, {"K": "secret-value"})
    n = HostNeeds(True, True, (artifacts.server_wheels,), config)
    layout = Layout(str(tmp_path / "root"))
    local = LocalTransport()
    started = tmp_path / "pip-started"
    parts = missing(n, Probe({}, {}), artifacts)
    script = f"export READINESS_TEST_PIP_WAIT={started}\n" + install_script(
        layout, sys.executable, parts, artifacts, n
    )
    results = []
    installing = threading.Thread(
        target=lambda: results.append(
            local.run(script, stdin=push_stream(parts, n, artifacts), timeout=120)
        )
    )
    installing.start()
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline and installing.is_alive(), results
        time.sleep(0.05)
    killed = local.run(stray_kill_script(layout), timeout=60)
    installing.join(timeout=30)
    assert not installing.is_alive() and killed.ok, killed.stderr
    assert not results[0].ok and results[0].duration_s < 60
    time.sleep(0.5)  # anything still running would write now
    root = Path(layout.root)
    assert not Path(layout.secrets).exists()
    assert not any(b"secret-value" in f.read_bytes() for f in root.rglob("*") if f.is_file())
    assert sorted(p.name for p in root.iterdir()) == ["app", "client", "venvs"]
    found = parse_probe(local.run(probe_script(layout, sys.executable), timeout=60).stdout)
    assert found.markers["etc"] == "" and found.markers["venvs"] == ""
    assert missing(n, found, artifacts) == ["wheels-w1", "etc"]


def test_a_failed_install_writes_no_secrets_and_keeps_no_copy(tmp_path: Path) -> None:
    wheels = tmp_path / "wh"
    wheels.mkdir()
    (wheels / "pip-0-py3-none-any.whl").write_bytes(b"not a zip")
    house = Wheelhouse(wheels, "w1")
    config = HostConfig({"readiness_settings.py": "X = 1\n"}, {"K": "secret-value"})
    n = HostNeeds(False, False, (house,), config)
    bundle = Bundle(b"", "d", 0)
    artifacts = Artifacts(bundle, bundle, house, house)
    layout = Layout(str(tmp_path / "root"))
    parts = ["wheels-w1", "etc"]
    script = install_script(layout, sys.executable, parts, artifacts, n)
    result = LocalTransport().run(script, stdin=push_stream(parts, n, artifacts), timeout=120)
    assert result.exit_code == VENV_FAILED_EXIT
    assert not Path(layout.etc).exists() and not Path(layout.root, ".incoming").exists()


def test_bundles_ship_every_name_of_a_hard_linked_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("x = 1\n")
    os.link(src / "a.py", src / "b.py")
    import gzip

    bundle = build_bundle(src)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(bundle.data))) as tar:
        assert sorted((m.name, m.isfile(), m.size) for m in tar.getmembers()) == [
            ("a.py", True, 6),
            ("b.py", True, 6),
        ]


# A stand-in for uv's binary: answers --version like uv (or fails, as a uv built for
# another C library would), and records what `uv pip install` was asked beside the venv.
FAKE_UV = """\
#!/bin/sh
if [ "$1" = --version ]; then [ -n "{fail}" ] && exit 1; echo "uv 0.0.1"; exit 0; fi
[ -n "{fail_install}" ] && { echo "uv: cannot install here" >&2; exit 2; }
python=""; prev=""
for arg in "$@"; do [ "$prev" = --python ] && python=$arg; prev=$arg; done
venv=$(dirname "$(dirname "$python")")
printf '%s\\n' "$@" > "$venv/uv-args"
env | grep '^UV_' | sort > "$venv/uv-env"
"""


def uv_tool(tmp_path: Path, *, runs: bool, installs: bool = True) -> Tool:
    wheel = tmp_path / "uv-0.0.1-py3-none-manylinux_2_17_x86_64.whl"
    script = FAKE_UV.replace("{fail}", "" if runs else "x")
    with zipfile.ZipFile(wheel, "w") as whl:
        whl.writestr(
            "uv-0.0.1.data/scripts/uv", script.replace("{fail_install}", "" if installs else "x")
        )
    return Tool(wheel, "0.0.1", "x86_64")


def pip_house(tmp_path: Path, digest: str) -> Wheelhouse:
    wheels = tmp_path / f"wh-{digest}"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "pip-99-py3-none-any.whl", "w") as whl:
        whl.writestr("pip/__main__.py", FAKE_PIP)
    (wheels / "Django-5.2-py3-none-any.whl").write_bytes(b"django")
    return Wheelhouse(wheels, digest)


def install(
    tmp_path: Path, layout: Layout, n: HostNeeds, found: Probe
) -> tuple[list[str], Result, Probe]:
    """The real install script run locally for what ``found`` lacks; the probe after."""
    bundle = Bundle(b"", "d", 0)
    artifacts = Artifacts(bundle, bundle, n.venvs[0], n.venvs[0])
    parts = missing(n, found, artifacts)
    script = install_script(layout, sys.executable, parts, artifacts, n)
    result = LocalTransport().run(script, stdin=push_stream(parts, n, artifacts), timeout=300)
    assert result.ok, result.stderr
    after = parse_probe(LocalTransport().run(probe_script(layout, sys.executable)).stdout)
    return parts, result, after


def test_venvs_are_built_with_uv_shipped_once_offline_and_without_the_users_config(
    tmp_path: Path,
) -> None:
    layout = Layout(str(tmp_path / HOSTILE_ROOT))
    tool = uv_tool(tmp_path, runs=True)
    n = HostNeeds(False, False, (pip_house(tmp_path, "w1"),), None, tool=tool)
    parts, result, after = install(tmp_path, layout, n, Probe({}, {}))
    assert parts == ["uv-0.0.1", "wheels-w1"]
    assert "readiness: installer=uv 0.0.1" in result.stdout
    venv = Path(layout.venv("w1"))
    args = (venv / "uv-args").read_text().splitlines()
    assert args[:2] == ["pip", "install"] and not (venv / "pip-args").exists()
    for flag in ("--offline", "--no-index", "--no-deps", "--link-mode=copy"):
        assert flag in args
    assert sorted(Path(a).name for a in args if a.endswith(".whl")) == [
        "Django-5.2-py3-none-any.whl",
        "pip-99-py3-none-any.whl",
    ]
    uv_env = (venv / "uv-env").read_text()
    assert "UV_NO_CONFIG=1" in uv_env and "UV_PYTHON_DOWNLOADS=never" in uv_env
    assert "UV_NO_CACHE=1" in uv_env
    assert after.markers["tools"].split() == ["uv-0.0.1"] and after.markers["venvs"] == "w1"
    # New requirements on a host that has uv: only the wheels travel.
    n2 = HostNeeds(False, False, (pip_house(tmp_path, "w2"),), None, tool=tool)
    parts, result, _ = install(tmp_path, layout, n2, after)
    assert parts == ["wheels-w2"] and "installer=uv 0.0.1" in result.stdout
    assert (Path(layout.venv("w2")) / "uv-args").is_file()
    # Nothing left to build: nothing is sent, uv included.
    bundle = Bundle(b"", "d", 0)
    done = parse_probe(LocalTransport().run(probe_script(layout, sys.executable)).stdout)
    assert missing(n2, done, Artifacts(bundle, bundle, n2.venvs[0], n2.venvs[0])) == []


def test_a_uv_that_does_not_run_on_the_host_leaves_the_venvs_to_pip(tmp_path: Path) -> None:
    layout = Layout(str(tmp_path / "root"))
    n = HostNeeds(
        False, False, (pip_house(tmp_path, "w1"),), None, tool=uv_tool(tmp_path, runs=False)
    )
    parts, result, after = install(tmp_path, layout, n, Probe({}, {}))
    assert parts == ["uv-0.0.1", "wheels-w1"]
    assert "readiness: installer=pip" in result.stdout
    venv = Path(layout.venv("w1"))
    assert (venv / "pip-args").is_file() and not (venv / "uv-args").exists()
    assert installer_used(result.stdout) == "pip"
    # It stays on the host, stamped as not running here: never sent again for nothing.
    assert after.markers["tools"].split() == ["uv-0.0.1"]
    n2 = HostNeeds(False, False, (pip_house(tmp_path, "w2"),), None, tool=n.tool)
    parts, result, _ = install(tmp_path, layout, n2, after)
    assert parts == ["wheels-w2"] and installer_used(result.stdout) == "pip"


def test_a_uv_that_fails_to_install_leaves_that_venv_to_pip_made_anew(tmp_path: Path) -> None:
    layout = Layout(str(tmp_path / "root"))
    tool = uv_tool(tmp_path, runs=True, installs=False)
    n = HostNeeds(False, False, (pip_house(tmp_path, "w1"),), None, tool=tool)
    _, result, after = install(tmp_path, layout, n, Probe({}, {}))
    assert installer_used(result.stdout) == "pip (uv failed here)"
    venv = Path(layout.venv("w1"))
    assert (venv / "pip-args").is_file() and (venv / ".complete").is_file()
    assert after.markers["venvs"] == "w1"


def test_an_install_cut_short_leaves_no_half_unpacked_uv_the_probe_would_trust(
    tmp_path: Path,
) -> None:
    """uv is unpacked into tools/uv-X.new and stamped before it is renamed whole; a
    leftover .new folder (a killed install) is neither reported nor kept."""
    layout = Layout(str(tmp_path / "root"))
    half = Path(layout.root, "tools", "uv-0.0.1.new")
    half.mkdir(parents=True)
    (half / "uv").write_bytes(b"\x7fELF half")
    (half / ".stamp").write_text("runs\n")
    found = parse_probe(LocalTransport().run(probe_script(layout, sys.executable)).stdout)
    assert found.markers["tools"].split() == []
    n = HostNeeds(
        False, False, (pip_house(tmp_path, "w1"),), None, tool=uv_tool(tmp_path, runs=True)
    )
    parts, result, _ = install(tmp_path, layout, n, found)
    assert parts == ["uv-0.0.1", "wheels-w1"] and "installer=uv 0.0.1" in result.stdout
    assert sorted(p.name for p in Path(layout.root, "tools").iterdir()) == ["uv-0.0.1"]


def test_a_symlink_loop_in_a_bundled_folder_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "it").mkdir()
    (tmp_path / "it" / "a").symlink_to("b")
    (tmp_path / "it" / "b").symlink_to("a")
    with pytest.raises(ConfigError, match=r"it/a is a symlink that leads nowhere"):
        build_bundle(tmp_path / "it")


def test_a_folder_far_larger_than_a_project_is_refused_before_it_fills_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator import bundle

    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text("x")
    monkeypatch.setattr(bundle, "MAX_BUNDLE_FILES", 3)
    with pytest.raises(ConfigError, match="holds more than 3 files"):
        build_bundle(tmp_path)
    monkeypatch.setattr(bundle, "MAX_BUNDLE_FILES", 100)
    monkeypatch.setattr(bundle, "MAX_BUNDLE_BYTES", 4)
    with pytest.raises(ConfigError, match="holds more than"):
        build_bundle(tmp_path)


def test_a_push_far_larger_than_its_spool_never_sits_in_memory(tmp_path: Path) -> None:
    """A 48 MiB wheel goes from disk into the spooled stream and on to the host in
    pieces: the control node's Python memory peaks far below the stream's size."""
    import tracemalloc

    from orchestrator.deploy import SPOOL_BYTES, open_push_stream

    wheels = tmp_path / "wh"
    wheels.mkdir()
    with (wheels / "big-1.0-py3-none-any.whl").open("wb") as big:
        big.truncate(48 << 20)
    house = Wheelhouse(wheels, "w1")
    bundle = Bundle(b"", "d", 0)
    artifacts = Artifacts(bundle, bundle, house, house)
    n = HostNeeds(False, False, (house,), None)
    tracemalloc.start()
    try:
        with open_push_stream(["wheels-w1"], n, artifacts) as stream:
            result = LocalTransport().run("wc -c", stdin=stream, timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok and int(result.stdout.split()[0]) > 48 << 20
    assert peak < SPOOL_BYTES + (4 << 20), peak


# -- the host's cache of built virtualenvs (issue 13) -------------------------------------

# A stand-in for pip that installs for real: every wheel's files unpacked into the venv's
# site-packages (a wheel is a zip), after READINESS_TEST_PIP_SLEEP seconds if set (a
# long build, for two installs of the same venv at once).
UNZIP_PIP = """\
import os, sys, sysconfig, time, zipfile
time.sleep(float(os.environ.get("READINESS_TEST_PIP_SLEEP") or 0))
site = sysconfig.get_paths()["purelib"]
for whl in sys.argv[1:]:
    if whl.endswith(".whl") and not os.path.basename(whl).startswith("pip-"):
        zipfile.ZipFile(whl).extractall(site)
"""
D1 = "d1d1d1d1d1d1d1d1d1d1"  # wheelhouse digests are hex: only hex names use the cache
D2 = "d2d2d2d2d2d2d2d2d2d2"
WHEEL_BYTES = 64 << 10


class Recording(LocalTransport):
    """A local host that keeps each script's result (the install's stderr)."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[Result] = []

    def run(self, script: str, **kwargs: Any) -> Result:
        result = super().run(script, **kwargs)
        self.results.append(result)
        return result


def cache_house(tmp_path: Path, digest: str, module: str = "hello") -> Wheelhouse:
    """A wheelhouse of pip (UNZIP_PIP) and one package holding ``module``."""
    wheels = tmp_path / f"wh-{digest}"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "pip-99-py3-none-any.whl", "w") as whl:
        whl.writestr("pip/__main__.py", UNZIP_PIP)
    with zipfile.ZipFile(wheels / f"{module}-1.0-py3-none-any.whl", "w") as whl:
        whl.writestr(f"{module}.py", f"NAME = {module!r}\n")
        whl.writestr(f"{module}.dat", os.urandom(WHEEL_BYTES))  # what a link saves sending
    return Wheelhouse(wheels, digest)


def cache_root(tmp_path: Path, name: str, house: Wheelhouse, cache: Path) -> Deployed:
    """A deploy root of its own (app, client, settings) on the host whose cache is
    ``cache``, needing the venv of ``house``."""
    app, cli = tmp_path / "src", tmp_path / "cli"
    for folder in (app, cli):
        folder.mkdir(exist_ok=True)
        (folder / "m.py").write_text("x = 1\n")
    artifacts = Artifacts(build_bundle(app), build_bundle(cli), house, house)
    config = HostConfig({"readiness_settings.py": "X = 1\n"}, {"K": "v"})
    return Deployed(
        Layout(str(tmp_path / name)),
        HostNeeds(True, True, (house,), config),
        artifacts,
        Recording(),
        str(cache),
    )


def run_in(venv: Path, code: str) -> str:
    """What ``code`` prints, run by the venv's Python as layers run it (by its path)."""
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_second_deploy_root_with_the_same_wheels_links_the_venv_built_for_the_first(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    house = cache_house(tmp_path, D1)
    first = cache_root(tmp_path, "first", house, cache)
    second = cache_root(tmp_path, "second", house, cache)

    built = first.report(first.probe())
    assert built.sent == ("app", "client", f"wheels-{D1}", "etc") and built.linked == ()
    assert built.installer == "pip"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700  # made owner-only: /var/tmp is shared

    found = second.probe()
    assert found.markers["venvs"] == "" and found.markers["venvs_cached"] == D1
    report = second.report(found)
    assert report.sent == ("app", "client", "etc") and report.linked == (D1,), report
    assert report.installer is None and report.round_trips == 1
    assert report.bytes_sent < built.bytes_sent - WHEEL_BYTES

    venv = Path(second.layout.venv(D1))
    assert venv.is_symlink() and os.readlink(venv).startswith(f"{cache}/")
    assert venv.resolve() == Path(first.layout.venv(D1)).resolve()
    # Through the link, the venv is the root's own: its prefix and imports say the root
    # (what stop scripts recognise a root's processes by), the package is there.
    prefix, where, name = run_in(
        venv, "import sys, hello; print(sys.prefix); print(hello.__file__); print(hello.NAME)"
    ).splitlines()
    assert prefix == str(venv) and where.startswith(f"{venv}/") and name == "hello"
    for host in (first, second):  # warm: nothing to send, nothing to link
        found = host.probe()
        assert missing(host.needs, found, host.artifacts) == [] == cached(host.needs, found)


def test_a_changed_cache_entry_is_rebuilt_as_a_new_one_the_old_root_keeps_its_own(
    tmp_path: Path,
) -> None:
    """A layer pip-installs into a venv shared by two roots: the root redeployed gets a
    new entry (never the shared one rebuilt in place); the other still runs from the old
    one until its own redeploy, which links the new one and is sent no wheels."""
    cache = tmp_path / "cache"
    house = cache_house(tmp_path, D1)
    first = cache_root(tmp_path, "first", house, cache)
    second = cache_root(tmp_path, "second", house, cache)
    first.push(first.probe())
    assert second.report(second.probe()).linked == (D1,)
    old = Path(os.readlink(second.layout.venv(D1)))
    site = next(old.glob("lib/python3*/site-packages"))
    (site / "planted.py").write_text("LEFT = 'by a layer of the second root'\n")

    found = second.probe()
    assert found.markers["venvs_changed"] == D1 and found.markers["venvs_cached"] == ""
    report = second.report(found)
    assert f"wheels-{D1}" in report.sent and report.drifted == (f"wheels-{D1}",)
    assert report.linked == ()
    new = Path(os.readlink(second.layout.venv(D1)))
    assert new != old and not list(new.glob("lib/python3*/site-packages/planted.py"))
    # The first root: its link and its entry as they were, and it still runs.
    assert Path(os.readlink(first.layout.venv(D1))) == old and (site / "planted.py").exists()
    assert run_in(Path(first.layout.venv(D1)), "import hello, planted; print(planted.LEFT)")

    found = first.probe()
    assert found.markers["venvs_changed"] == D1 and found.markers["venvs_cached"] == D1
    report = first.report(found)
    assert report.sent == () and report.linked == (D1,) and report.round_trips == 1
    assert Path(os.readlink(first.layout.venv(D1))) == new
    assert missing(first.needs, first.probe(), first.artifacts) == []


def test_a_venv_whose_cache_entry_was_collected_is_built_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache keeps the most recently used entries: another venv's install removes
    the first root's, whose link then leads nowhere. Its probe reports the venv missing
    (not cached either), and its next deploy builds it anew."""
    monkeypatch.setattr(deploy, "VENV_CACHE_KEEP", 1)
    monkeypatch.setattr(deploy, "VENV_CACHE_IDLE_S", 0)
    cache = tmp_path / "cache"
    first = cache_root(tmp_path, "first", cache_house(tmp_path, D1), cache)
    other = cache_root(tmp_path, "other", cache_house(tmp_path, D2, "world"), cache)
    first.push(first.probe())
    other.push(other.probe())

    link = Path(first.layout.venv(D1))
    assert link.is_symlink() and not link.exists()  # dangling: its entry was collected
    assert all(D2 in p.name for p in cache.iterdir()), sorted(cache.iterdir())
    found = first.probe()
    assert found.markers["venvs"] == "" and found.markers["venvs_cached"] == D2
    report = first.report(found)
    assert f"wheels-{D1}" in report.sent and report.linked == () and report.drifted == ()
    assert run_in(link, "import hello; print(hello.NAME)") == "hello\n"
    assert missing(first.needs, first.probe(), first.artifacts) == []


def test_an_entry_used_in_the_last_day_stays_beyond_the_keep_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server kept running from an entry, or another inventory's run in progress, does
    not touch it: the collection spares whatever was linked or probed recently."""
    monkeypatch.setattr(deploy, "VENV_CACHE_KEEP", 1)
    cache = tmp_path / "cache"
    first = cache_root(tmp_path, "first", cache_house(tmp_path, D1), cache)
    other = cache_root(tmp_path, "other", cache_house(tmp_path, D2, "world"), cache)
    first.push(first.probe())
    other.push(other.probe())
    link = Path(first.layout.venv(D1))
    assert link.exists()  # beyond the one kept, but used minutes ago
    assert run_in(link, "import hello; print(hello.NAME)") == "hello\n"


def test_a_venv_to_link_that_left_the_cache_after_the_probe_is_sent_in_a_second_trip(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    house = cache_house(tmp_path, D1)
    first = cache_root(tmp_path, "first", house, cache)
    second = cache_root(tmp_path, "second", house, cache)
    first.push(first.probe())
    found = second.probe()
    assert found.markers["venvs_cached"] == D1
    entry = Path(os.readlink(first.layout.venv(D1)))
    (next(entry.glob("lib/python3*/site-packages")) / "planted.py").write_text("")

    report = second.report(found)

    assert report.round_trips == 2 and f"wheels-{D1}" in report.sent and report.linked == ()
    assert Path(os.readlink(second.layout.venv(D1))) != entry
    assert missing(second.needs, second.probe(), second.artifacts) == []


def unsafe_cache(tmp_path: Path, how: str) -> Path:
    cache = tmp_path / "cache"
    if how == "below a folder anyone can write":  # and not sticky: cache can be swapped
        (tmp_path / "shared").mkdir()
        (tmp_path / "shared").chmod(0o777)
        cache = tmp_path / "shared" / "cache"
    if how == "a symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        cache.symlink_to(tmp_path / "elsewhere")
    else:
        cache.mkdir(mode=0o700)
    if how == "group-writable":
        cache.chmod(0o770)
    elif how == "another user's":
        if os.geteuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        os.chown(cache, 65534, 65534)
    return cache


@pytest.mark.parametrize(
    "how", ["group-writable", "a symlink", "another user's", "below a folder anyone can write"]
)
def test_an_unsafe_cache_folder_is_not_used_and_the_root_builds_its_venv(
    tmp_path: Path, how: str
) -> None:
    """/var/tmp is shared: a cache folder someone else could change is not trusted. The
    install says so and builds in the deploy root as before; the probe trusts nothing in
    it (a root's link into it included)."""
    cache = unsafe_cache(tmp_path, how)
    host = cache_root(tmp_path, "root", cache_house(tmp_path, D1), cache)

    report = host.report(host.probe())

    assert f"wheels-{D1}" in report.sent and report.linked == ()
    assert isinstance(host.local, Recording)
    assert "not using the virtualenv cache" in host.local.results[-1].stderr
    venv = Path(host.layout.venv(D1))
    assert venv.is_dir() and not venv.is_symlink() and os.listdir(cache) == []
    assert run_in(venv, "import hello; print(hello.NAME)") == "hello\n"
    found = host.probe()
    assert found.markers["venvs"] == D1 and found.markers["venvs_cached"] == ""


def test_the_keep_cleanup_removes_a_link_but_never_the_entry_it_leads_to(
    tmp_path: Path,
) -> None:
    """New requirements: the root's link to the old venv goes, and only the link (``rm
    -rf link/`` would empty the entry), so another root can still link that entry."""
    cache = tmp_path / "cache"
    old = cache_house(tmp_path, D1)
    first = cache_root(tmp_path, "first", old, cache)
    first.push(first.probe())
    entry = Path(os.readlink(first.layout.venv(D1)))
    changed = dataclasses.replace(
        first, needs=dataclasses.replace(first.needs, venvs=(cache_house(tmp_path, D2),))
    )
    changed.push(changed.probe())

    assert sorted(os.listdir(Path(first.layout.root, "venvs"))) == [D2]
    assert list(entry.glob("lib/python3*/site-packages/hello.py"))
    second = cache_root(tmp_path, "second", old, cache)
    report = second.report(second.probe())
    assert report.linked == (D1,) and f"wheels-{D1}" not in report.sent


def test_two_roots_deploying_the_same_venv_at_once_build_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both probes find nothing cached, so both are sent the wheels; the key's lock
    makes the second wait for the first's build and link it, never build beside it."""
    monkeypatch.setenv("READINESS_TEST_PIP_SLEEP", "1")
    cache = tmp_path / "cache"
    house = cache_house(tmp_path, D1)
    roots = [cache_root(tmp_path, name, house, cache) for name in ("one", "two")]
    found = [root.probe() for root in roots]
    reports: list[PushReport] = []
    threads = [
        threading.Thread(target=lambda r=root, f=probed: reports.append(r.report(f)))
        for root, probed in zip(roots, found, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(r.linked for r in reports) == [(), (D1,)], reports
    assert all(f"wheels-{D1}" in r.sent for r in reports)
    entries = [p for p in cache.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(entries) == 1, sorted(cache.iterdir())
    assert {Path(root.layout.venv(D1)).resolve() for root in roots} == {entries[0]}


def test_a_deploy_that_asks_for_pip_builds_its_own_venv_whatever_the_cache_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """READINESS_INSTALLER=pip asks for venvs pip built: one uv may have built in the
    cache is not linked, and the pip-built one is not put there."""
    cache = tmp_path / "cache"
    house = cache_house(tmp_path, D1)
    first = cache_root(tmp_path, "first", house, cache)
    first.push(first.probe())
    entries = sorted(cache.iterdir())
    monkeypatch.setenv("READINESS_INSTALLER", "pip")
    second = cache_root(tmp_path, "second", house, cache)

    report = second.report(second.probe())

    assert f"wheels-{D1}" in report.sent and report.linked == () and report.installer == "pip"
    venv = Path(second.layout.venv(D1))
    assert venv.is_dir() and not venv.is_symlink() and sorted(cache.iterdir()) == entries


def test_a_cache_folder_on_a_noexec_filesystem_is_not_used(tmp_path: Path) -> None:
    """Hardened hosts mount /var/tmp noexec: venvs there could not run their scripts or
    load their extensions, and the tests would fail for the host's reason, not the
    application's. (A tmpfs mounted noexec here: the tests run as root, as CI does.)"""
    import subprocess

    from orchestrator.scripts import tree_state

    mount = tmp_path / "noexec"
    mount.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,mode=0700", "t", str(mount)], check=True)
    try:
        cache = mount / ".venvs"
        cache.mkdir(mode=0o700)
        assert "mounted noexec" in tree_state.cache_problem(bytes(cache))
        plain = tmp_path / "plain"
        plain.mkdir(mode=0o700)
        assert "noexec" not in tree_state.cache_problem(bytes(plain))
    finally:
        subprocess.run(["umount", str(mount)], check=True)
