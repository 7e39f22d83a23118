"""``invoke init``: a Django project's files in, two inventories and a suite out that load,
plan and say what was found; nothing overwritten, nothing written on a mistake."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from orchestrator.exceptions import ConfigError
from orchestrator.init import Written, init_project, inspect_project, summary
from orchestrator.inventory import Inventory, load_inventory
from orchestrator.lifecycle import load_plan
from orchestrator.plan import Options, Plan
from orchestrator.suite import Suite, load_suite
from tests.cli import ROOT, invoke

THIRDPARTY = ROOT / "tests" / "e2e" / "thirdparty"
THIRDPARTY_BESIDE = ROOT / "tests" / "e2e" / "thirdparty-readiness"  # its suite, it/, fixture
DJANGO_ADMIN = Path(sys.executable).parent / "django-admin"
ONE_TEST = """from django.test import TestCase


class PollsTests(TestCase):
    def test_the_answer(self):
        self.assertEqual(6 * 7, 42)
"""


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``django-admin startproject mysite`` + ``startapp polls``, as Django writes them."""
    project = tmp_path_factory.mktemp("pristine") / "mysite"
    project.mkdir()
    subprocess.run([str(DJANGO_ADMIN), "startproject", "mysite", str(project)], check=True)
    subprocess.run([sys.executable, "manage.py", "startapp", "polls"], cwd=project, check=True)
    return project


def startproject(pristine: Path, parent: Path, folder: str = "mysite") -> Path:
    """A copy of the fresh project in ``parent/folder``, with one test and Django required."""
    project = parent / folder
    shutil.copytree(pristine, project)
    (project / "polls" / "tests.py").write_text(ONE_TEST)
    (project / "requirements.txt").write_text("Django>=5.2,<5.3\n")
    return project


def init(project: Path, out: Path, **options: object) -> Written:
    return init_project(str(project), root=out / "root", into=str(out), **options)  # type: ignore[arg-type]


def loaded(written: Written) -> tuple[Inventory, Inventory, Suite]:
    target = written.target
    return (
        load_inventory(target.single),
        load_inventory(target.cluster),
        load_suite(target.suite),
    )


def plans(written: Written) -> tuple[Plan, Plan]:
    """Both inventories planned as ``invoke readiness --dry-run`` plans them."""
    single, cluster = (written.target.single, written.target.cluster)
    options = Options(dry_run=True)
    return (
        load_plan(ROOT, str(single), None, options),
        load_plan(ROOT, str(cluster), None, options),
    )


def test_a_fresh_startproject_gets_its_django_tests_then_a_smoke_step(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    written = init(project, tmp_path / "out")
    single, cluster, suite = loaded(written)

    app = single.application
    assert (app.source, app.settings, tuple(r.value for r in app.requirements)) == (
        project.resolve(),
        "mysite.settings",
        ("requirements.txt",),
    )
    assert app.fixtures == () and app.health_path == "/"
    assert (app.client_source.value, app.client_requirements) == (".", ())
    assert [(h.name, h.roles) for h in single.hosts] == [("h1", ("db", "server", "client"))]
    assert [(h.name, h.roles) for h in cluster.hosts] == [
        ("h1", ("db",)),
        ("h2", ("server",)),
        ("h3", ("client",)),
    ]
    assert single.lab is not None and cluster.lab is not None
    django, smoke = suite.layers
    assert (django.name, django.role, django.needs, django.junit) == (
        "django-tests",
        "server",
        ("database",),
        True,
    )
    assert django.command == (
        "python manage.py test polls --noinput --testrunner=readiness_runner.JUnitRunner"
    )
    assert (smoke.name, smoke.role, smoke.needs, smoke.junit) == (
        "smoke",
        "client",
        ("database", "server"),
        False,
    )
    assert "READINESS_BASE_URL" in smoke.command and "\n" not in smoke.command


def test_both_inventories_plan_as_one_host_and_as_one_host_per_role(
    pristine: Path, tmp_path: Path
) -> None:
    written = init(startproject(pristine, tmp_path), tmp_path / "out")
    single, cluster = plans(written)
    assert (single.topology, cluster.topology) == ("all-on-one", "distributed")
    assert dict(single.database_links) == {"h1": "socket"}
    assert dict(cluster.database_links) == {"h2": "tcp"}
    assert single.suite.file == cluster.suite.file == written.target.suite


def run_smoke(command: str, status: int | None) -> int:
    """The smoke step's exit code against a server answering ``status`` (None: nothing
    listens), run as its layer runs it: with bash, a venv's python first on PATH."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status or 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    if status is None:
        server.server_close()  # nothing listens there any more: no answer
    else:
        threading.Thread(target=server.handle_request, daemon=True).start()
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env = {"READINESS_BASE_URL": f"http://127.0.0.1:{port}", "PATH": path}
    try:
        proc = subprocess.run(["bash", "-c", command], env=env, capture_output=True, timeout=60)
    finally:
        server.server_close()
    return proc.returncode


def test_the_smoke_step_passes_below_500_and_fails_on_a_5xx_or_no_answer(
    pristine: Path, tmp_path: Path
) -> None:
    written = init(startproject(pristine, tmp_path), tmp_path / "out")
    smoke = load_suite(written.target.suite).layers[-1]
    codes = [run_smoke(smoke.command, status) for status in (200, 404, 500, 503, None)]
    assert codes == [0, 0, 1, 1, 1]


def test_the_thirdparty_project_comes_out_as_its_hand_written_inventory(tmp_path: Path) -> None:
    project = tmp_path / "thirdparty"
    shutil.copytree(THIRDPARTY, project)
    # Its client tests are kept beside its inventory; init looks for them inside the
    # project, where many projects keep theirs: put them there.
    shutil.copytree(THIRDPARTY_BESIDE / "it", project / "it")
    written = init(project, tmp_path / "out")
    single, _, suite = loaded(written)

    app = single.application
    assert (
        app.settings,
        tuple(r.value for r in app.requirements),
        tuple(f.label for f in app.fixtures),
    ) == (
        "mysite.settings",
        ("requirements.txt",),
        ("notes/fixtures/sample.json",),
    )
    assert (app.client_source.value, tuple(r.value for r in app.client_requirements)) == (
        "it",
        ("it/requirements.txt",),
    )
    # A manifest storage and STATIC_ROOT: collectstatic first, as a step.
    names = [layer.name for layer in suite.layers]
    assert names == ["collectstatic", "django-tests", "client-tests"]
    collectstatic, django, client = suite.layers
    assert collectstatic.command == "python manage.py collectstatic --noinput"
    assert " test notes --noinput " in django.command
    # it/conftest.py defines --base-url: the client layer passes it, as suites/broker.yaml does.
    assert client.command == (
        'python -m pytest . -p no:cacheprovider --base-url="$READINESS_BASE_URL" '
        '--junitxml="$READINESS_JUNIT"'
    )
    assert (client.role, client.needs, client.junit) == ("client", ("database", "server"), True)
    text = written.target.single.read_text()
    assert "ALLOWED_HOSTS: hard-coded [example.com]" in text
    assert "the settings read DATABASE_URL" in text
    plans(written)


def test_a_client_folder_without_a_base_url_option_gets_the_url_from_the_environment(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    (project / "integration").mkdir()
    (project / "integration" / "test_api.py").write_text("def test_up():\n    pass\n")
    (project / "integration" / "requirements.txt").write_text("pytest\n")
    written = init(project, tmp_path / "out")
    _, _, suite = loaded(written)
    client = suite.layers[-1]
    assert client.name == "client-tests" and "--base-url" not in client.command
    assert load_inventory(written.target.single).application.client_source.value == "integration"


def test_startapps_empty_tests_py_makes_no_layer_and_is_said(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    shutil.copy(pristine / "polls" / "tests.py", project / "polls" / "tests.py")
    written = init(project, tmp_path / "out")
    assert [layer.name for layer in load_suite(written.target.suite).layers] == ["smoke"]
    assert "apps without a test yet: polls" in written.target.single.read_text()
    assert "# Left out" not in written.target.suite.read_text()
    assert "polls: no test in tests.py or tests/" in written.target.suite.read_text()


def test_a_tests_package_counts_and_the_label_is_the_dotted_path(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    (project / "polls" / "tests.py").unlink()
    nested = project / "apps" / "shop"
    (nested / "tests").mkdir(parents=True)
    (project / "apps" / "__init__.py").write_text("")
    (nested / "__init__.py").write_text("")
    (nested / "models.py").write_text("")
    (nested / "tests" / "test_cart.py").write_text(ONE_TEST)
    # unittest's discovery enters only packages: without __init__.py there is no test.
    assert inspect_project(project).apps_without_tests == ("apps.shop",)
    (nested / "tests" / "__init__.py").write_text("")
    assert inspect_project(project).test_apps == ("apps.shop",)


def test_fixture_files_are_listed_only_when_there_are_some(pristine: Path, tmp_path: Path) -> None:
    project = startproject(pristine, tmp_path)
    (project / "polls" / "fixtures").mkdir()
    assert inspect_project(project).fixtures == ()
    (project / "polls" / "fixtures" / "questions.json").write_text("[]\n")
    (project / "polls" / "fixtures" / "README.md").write_text("not a fixture\n")
    written = init(project, tmp_path / "out")
    assert tuple(f.label for f in load_inventory(written.target.single).application.fixtures) == (
        "polls/fixtures/questions.json",
    )


MANIFEST = """
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}
"""


def test_static_root_with_a_manifest_storage_runs_collectstatic_first_as_a_setup_step(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    with (project / "mysite" / "settings.py").open("a") as settings:
        settings.write(MANIFEST)
    written = init(project, tmp_path / "out")
    first = load_suite(written.target.suite).layers[0]
    assert (first.name, first.role, first.junit, first.command) == (
        "collectstatic",
        "server",
        False,
        "python manage.py collectstatic --noinput",
    )
    assert "A setup step, not a test layer" in written.target.suite.read_text()
    plans(written)


def test_without_a_manifest_storage_nothing_is_collected(pristine: Path, tmp_path: Path) -> None:
    project = startproject(pristine, tmp_path)
    with (project / "mysite" / "settings.py").open("a") as settings:
        settings.write('\nSTATIC_ROOT = BASE_DIR / "staticfiles"\n')
    assert not inspect_project(project).collectstatic


def test_split_settings_are_read_through_their_star_imports(pristine: Path, tmp_path: Path) -> None:
    project = startproject(pristine, tmp_path)
    package = project / "mysite" / "settings"
    package.mkdir()
    (project / "mysite" / "settings.py").rename(package / "base.py")
    (package / "__init__.py").write_text("")
    (package / "production.py").write_text(
        "import os\nfrom .base import *\nALLOWED_HOSTS = ['shop.example']\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n"
        "API_TOKEN = os.environ['API_TOKEN']\n" + MANIFEST
    )
    manage = project / "manage.py"
    manage.write_text(manage.read_text().replace("mysite.settings", "mysite.settings.production"))

    found = inspect_project(project)
    settings = found.settings
    assert settings.module == "mysite.settings.production"
    assert settings.allowed_hosts == ("shop.example",)
    assert settings.database_engine == "django.db.backends.postgresql"
    assert settings.required_env == ("API_TOKEN",)
    assert settings.django_series == "5.2"  # startproject's header, now in base.py
    assert found.collectstatic  # STATIC_ROOT's BASE_DIR comes from base.py
    text = init(project, tmp_path / "out").target.single.read_text()
    assert "API_TOKEN" in text and "add it under application.env" in text


def test_requirements_folder_gives_the_runtime_and_test_files(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    (project / "requirements.txt").unlink()
    (project / "requirements").mkdir()
    for name, text in (("base", "Django\n"), ("dev", "ipython\n"), ("test", "-r base.txt\n")):
        (project / "requirements" / f"{name}.txt").write_text(text)
    found = inspect_project(project)
    assert found.requirements == ("requirements/base.txt", "requirements/test.txt")
    assert found.names_django


def test_a_requirements_file_without_django_is_said(pristine: Path, tmp_path: Path) -> None:
    project = startproject(pristine, tmp_path)
    (project / "requirements.txt").write_text("django-environ\n")
    written = init(project, tmp_path / "out")
    assert "no line names Django" in written.target.single.read_text()


def test_without_a_requirements_file_init_writes_one_beside_the_inventories(
    pristine: Path, tmp_path: Path
) -> None:
    """startproject writes no requirements file: the Django series its settings name goes
    into one beside the inventories, so the project needs no hand edit, and init writes
    nothing into it."""
    project = startproject(pristine, tmp_path)
    (project / "requirements.txt").unlink()
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    written = init(project, tmp_path / "out")
    beside = tmp_path / "out" / "mysite-requirements.txt"
    assert written.target.requirements == beside
    assert beside.read_text().splitlines()[-1] == "Django>=5.2,<5.3"
    for inventory in loaded(written)[:2]:
        (found,) = inventory.application.requirements
        assert (found.base, found.path) == ("inventory", beside)
    assert "init wrote this one beside the inventory" in written.target.single.read_text()
    assert f"wrote {beside}" in summary(written, tmp_path / "out" / "root")
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


def test_no_requirements_file_and_no_django_series_is_a_config_error(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    (project / "requirements.txt").unlink()
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text().replace("startproject' using Django", "using"))
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as err:
        init(project, out)
    assert "has no requirements file" in str(err.value)
    assert "do not say which Django" in str(err.value)
    assert err.value.exit_code == 2
    assert not out.exists()


def test_an_existing_file_is_never_overwritten_and_then_nothing_is_written(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mysite.yaml").write_text("# mine\n")
    with pytest.raises(ConfigError) as err:
        init(project, out)
    assert f"{out / 'mysite.yaml'} already exists" in str(err.value)
    assert "--force" in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["mysite.yaml"]
    assert (out / "mysite.yaml").read_text() == "# mine\n"


def test_a_file_that_appears_while_init_writes_is_kept_and_nothing_else_stays(
    pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before writing leaves a moment for another writer: the write itself
    never replaces a file, and what init already wrote is taken back."""
    from orchestrator import init as init_module

    project = startproject(pristine, tmp_path)
    out = tmp_path / "out"
    checked = init_module._check_loads

    def then_someone_writes(texts: dict[Path, str], where: init_module.Target) -> None:
        checked(texts, where)
        where.cluster.parent.mkdir(parents=True, exist_ok=True)
        where.cluster.write_text("# theirs\n")

    monkeypatch.setattr(init_module, "_check_loads", then_someone_writes)
    with pytest.raises(ConfigError) as err:
        init(project, out)
    assert f"{out / 'mysite-cluster.yaml'} appeared while init was writing" in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["mysite-cluster.yaml"]
    assert (out / "mysite-cluster.yaml").read_text() == "# theirs\n"


def test_a_forced_init_that_fails_halfway_gives_the_replaced_files_back(
    pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator import files
    from orchestrator import init as init_module

    project = startproject(pristine, tmp_path)
    out = tmp_path / "out"
    first = init(project, out)
    first.target.single.write_text("# edited by hand\n")
    real_write = files.atomic_write
    calls: list[Path] = []

    def third_fails(path: Path, data: bytes, **kwargs: object) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise PermissionError(1, "Operation not permitted")
        real_write(path, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(init_module, "atomic_write", third_fails)
    with pytest.raises(ConfigError, match="cannot write"):
        init(project, out, force=True)
    assert first.target.single.read_text() == "# edited by hand\n"
    assert first.target.cluster.is_file() and first.target.suite.is_file()


def test_requirement_files_init_cannot_name_are_said_not_skipped(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    (project / "requirements.txt").unlink()
    (project / "requirements").mkdir()
    (project / "requirements" / "base prod.txt").write_text("djangorestframework\n")
    with pytest.raises(ConfigError, match=r"'base prod\.txt'\) have names init cannot write"):
        init(project, tmp_path / "out")


def test_force_replaces_the_files_with_what_the_project_is_now(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    out = tmp_path / "out"
    first = init(project, out)
    first.target.single.write_text("# edited by hand\n")
    (project / "polls" / "fixtures").mkdir()
    (project / "polls" / "fixtures" / "polls.json").write_text("[]\n")
    again = init(project, out, force=True)
    assert tuple(f.label for f in load_inventory(again.target.single).application.fixtures) == (
        "polls/fixtures/polls.json",
    )


def test_a_directory_in_the_way_is_refused_even_with_force(pristine: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "mysite-cluster.yaml").mkdir(parents=True)
    with pytest.raises(ConfigError, match="not a regular file"):
        init(startproject(pristine, tmp_path), out, force=True)
    assert [p.name for p in out.iterdir()] == ["mysite-cluster.yaml"]


@pytest.mark.parametrize("folder", ['my proj\'s "app"', "$(touch pwned) `id` #x", "yes", "1.0"])
def test_hostile_folder_names_are_written_quoted_and_load(
    pristine: Path, tmp_path: Path, folder: str
) -> None:
    project = startproject(pristine, tmp_path, folder)
    written = init(project, tmp_path / "out")
    single, cluster, _ = loaded(written)
    assert single.application.source == cluster.application.source == project.resolve()
    assert yaml.safe_load(written.target.single.read_text())["application"]["source"] == str(
        project.resolve()
    )
    assert single.name == f"{written.name}-single"
    plans(written)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_a_hostile_folder_name_becomes_a_plain_name(pristine: Path, tmp_path: Path) -> None:
    written = init(startproject(pristine, tmp_path, 'My proj\'s "app"'), tmp_path / "out")
    assert written.name == "my-proj-s-app"
    assert written.target.suite.name == "my-proj-s-app.yaml"


def test_a_line_break_in_the_project_path_is_refused(pristine: Path, tmp_path: Path) -> None:
    project = startproject(pristine, tmp_path, "two\nlines")
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="line break or another control character"):
        init(project, out)
    assert not out.exists()


def test_a_settings_value_cannot_break_out_of_its_comment(pristine: Path, tmp_path: Path) -> None:
    project = startproject(pristine, tmp_path)
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text().replace(
            "ALLOWED_HOSTS = []", "ALLOWED_HOSTS = ['x\\nlab: false\\nsuite: evil']"
        )
    )
    written = init(project, tmp_path / "out")
    single = load_inventory(written.target.single)
    assert single.lab is not None and single.suite == "mysite.yaml"
    assert "ALLOWED_HOSTS: hard-coded" in written.target.single.read_text()


@pytest.mark.parametrize("name", ["Bad Name", "a/b", "x" * 41, "-lead", "Upper"])
def test_a_bad_name_is_refused(pristine: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="--name"):
        init(startproject(pristine, tmp_path), tmp_path / "out", name=name)


def test_a_folder_without_manage_py_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not a Django project \(no manage.py there\)"):
        init(tmp_path, tmp_path / "out")


def test_lab_prefix_and_subnet_go_into_both_inventories(pristine: Path, tmp_path: Path) -> None:
    written = init(
        startproject(pristine, tmp_path),
        tmp_path / "out",
        lab_prefix="ri",
        lab_subnet="10.213.82.0/24",
    )
    single, cluster, _ = loaded(written)
    assert single.lab == cluster.lab
    assert single.lab is not None
    assert (single.lab.prefix, single.lab.subnet) == ("ri", "10.213.82.0/24")
    with pytest.raises(ConfigError, match="--lab-prefix"):
        init(startproject(pristine, tmp_path, "other"), tmp_path / "out2", lab_prefix="Bad!")


def test_by_default_the_files_go_to_inventories_and_suites_named_by_name(
    pristine: Path, tmp_path: Path
) -> None:
    root = tmp_path / "readiness"
    written = init_project(str(startproject(pristine, tmp_path)), root=root)
    assert written.target.single == root / "inventories" / "mysite-single.yaml"
    assert written.target.cluster == root / "inventories" / "mysite-cluster.yaml"
    assert written.target.suite == root / "suites" / "mysite.yaml"
    plan = load_plan(root, "mysite-cluster", None, Options(dry_run=True))
    assert plan.suite.file == root / "suites" / "mysite.yaml"


def test_the_cli_prints_the_plan_and_the_two_commands_then_refuses_to_overwrite(
    pristine: Path, tmp_path: Path
) -> None:
    project, out = startproject(pristine, tmp_path), tmp_path / "out"
    env = {"READINESS_WORKDIR": str(tmp_path), "HOME": str(tmp_path)}
    first = invoke("init", str(project), f"--into={out}", env=env)
    assert first.returncode == 0, first.stderr
    assert "layers (in order):" in first.stdout and "1. django-tests" in first.stdout
    assert f"invoke readiness --inventory={out / 'mysite-single.yaml'}" in first.stdout
    assert f"invoke readiness --inventory={out / 'mysite-cluster.yaml'}" in first.stdout
    again = invoke("init", str(project), f"--into={out}", env=env)
    assert again.returncode == 2
    assert "already exist" in again.stderr and "Traceback" not in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_an_app_without_a_test_is_named_beside_the_layer_of_those_with_tests(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    shutil.copytree(pristine / "polls", project / "blog")  # startapp's empty tests.py
    written = init(project, tmp_path / "out")
    django = load_suite(written.target.suite).layers[0]
    assert " test polls --noinput " in django.command
    assert "# Left out, no test in their tests.py or tests/ yet: blog." in (
        written.target.suite.read_text()
    )


def test_a_folder_name_with_a_line_separator_cannot_add_a_key_to_the_inventory(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    odd = project / "bad\u2028name: injected #"  # not importable: named in a comment
    odd.mkdir()
    (odd / "apps.py").write_text("")
    (odd / "tests.py").write_text(ONE_TEST)
    written = init(project, tmp_path / "out")
    assert load_inventory(written.target.single).name == "mysite-single"
    assert "\u2028" not in written.target.single.read_text()


def test_pytest_style_test_functions_make_no_django_test_layer(
    pristine: Path, tmp_path: Path
) -> None:
    project = startproject(pristine, tmp_path)
    (project / "polls" / "tests.py").write_text("def test_a():\n    assert True\n")
    assert inspect_project(project).apps_without_tests == ("polls",)


def test_into_a_file_is_a_config_error_not_a_crash(pristine: Path, tmp_path: Path) -> None:
    project = startproject(pristine, tmp_path)
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(ConfigError, match="cannot write"):
        init(project, tmp_path / "taken")
