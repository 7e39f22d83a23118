"""The user's files an inventory names: inside the application, beside the inventory, or
absolute; never out of the folder a relative value is resolved against; and shipped to
the server when the application's bundle does not hold them."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator import provenance
from orchestrator.appconfig import server_config
from orchestrator.components import Endpoint, database_engine
from orchestrator.deploy import Artifacts, HostNeeds, push_stream
from orchestrator.exceptions import ConfigError
from orchestrator.inventory import load_inventory
from orchestrator.lifecycle import Step, execute
from orchestrator.plan import Options, build_plan
from orchestrator.steps.layers import layers_step
from orchestrator.suite import load_suite
from tests.unit.conftest import SINGLE, SUITE
from tests.unit.test_lifecycle import JunitEverywhere, fake_connect

Write = Callable[[str, str], Path]


@pytest.fixture
def beside(tmp_path: Path) -> Path:
    """A team's readiness folder next to its inventories: a fixture and a client folder."""
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "known.json").write_text('[{"model": "x.y", "pk": 1}]\n')
    (tmp_path / "it").mkdir()
    (tmp_path / "it" / "test_api.py").write_text("def test_up():\n    pass\n")
    (tmp_path / "it" / "requirements.txt").write_text("-r ../shared.txt\n")
    (tmp_path / "shared.txt").write_text("requests\n")
    return tmp_path


BESIDE = SINGLE.replace("[fixtures.json]", "[fixtures/known.json]").replace(
    "{source: tests_it, requirements: tests_it/requirements.txt}",
    "{source: it, requirements: it/requirements.txt}",
)


def test_a_fixture_and_a_client_folder_beside_the_inventory_are_found_there(
    app_dir: Path, beside: Path, write_yaml: Write
) -> None:
    app = load_inventory(write_yaml("single.yaml", BESIDE)).application
    (fixture,) = app.fixtures
    assert fixture.shipped and fixture.file is not None
    assert (fixture.file.base, fixture.file.path) == ("inventory", beside / "fixtures/known.json")
    assert fixture.shipped_name == "fixtures/0/known.json"
    assert (app.client_source.base, app.client_source.path) == ("inventory", beside / "it")
    (reqs,) = app.client_requirements
    assert (reqs.base, reqs.path) == ("inventory", beside / "it/requirements.txt")
    # The application's own requirements are still the application's.
    (own,) = app.requirements
    assert (own.base, own.path) == ("application", app_dir.resolve() / "requirements.txt")


def test_a_path_inside_the_application_wins_over_one_beside_the_inventory(
    app_dir: Path, beside: Path, write_yaml: Write
) -> None:
    (beside / "fixtures.json").write_text("[]\n")  # the same name as the application's
    (fixture,) = load_inventory(write_yaml("single.yaml", SINGLE)).application.fixtures
    assert not fixture.shipped and fixture.label == "fixtures.json"
    assert fixture.file is not None and fixture.file.base == "application"


def test_absolute_paths_are_taken_as_written(
    app_dir: Path, beside: Path, write_yaml: Write, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "data.yaml").write_text("[]\n")
    (elsewhere / "req.txt").write_text("pytest\n")
    text = BESIDE.replace("[fixtures/known.json]", f"[{elsewhere / 'data.yaml'}]").replace(
        "requirements: it/requirements.txt", f"requirements: {elsewhere / 'req.txt'}"
    )
    app = load_inventory(write_yaml("single.yaml", text)).application
    (fixture,) = app.fixtures
    assert fixture.file is not None and fixture.file.base == "absolute" and fixture.shipped
    assert [(r.base, r.path) for r in app.client_requirements] == [
        ("absolute", elsewhere / "req.txt")
    ]


@pytest.mark.parametrize(
    "value,field,message",
    [
        ("[../outside.json]", "application.fixtures", "no '..'"),
        ("[fixtures/none.json]", "application.fixtures", "beside the inventory"),
        ("[/nowhere/x.json]", "application.fixtures", "does not exist"),
        ("[fixtures/notes]", "application.fixtures", "tells a fixture's format by its name"),
        ("['fixtures/my data.json']", "application.fixtures", "letters, digits"),
    ],
)
def test_fixture_values_that_cannot_be_shipped_are_refused_naming_the_field(
    app_dir: Path, beside: Path, write_yaml: Write, value: str, field: str, message: str
) -> None:
    (beside / "fixtures" / "notes").write_text("[]\n")
    (beside / "fixtures" / "my data.json").write_text("[]\n")
    (beside.parent / "outside.json").write_text("[]\n")
    text = BESIDE.replace("[fixtures/known.json]", value)
    with pytest.raises(ConfigError) as caught:
        load_inventory(write_yaml("single.yaml", text))
    assert caught.value.field == field and caught.value.line == 9
    assert message in str(caught.value)


def test_a_symlink_beside_the_inventory_must_not_lead_out_of_its_folder(
    app_dir: Path, beside: Path, write_yaml: Write
) -> None:
    (beside / "fixtures" / "known.json").unlink()
    (beside / "fixtures" / "known.json").symlink_to("/etc/hostname")
    with pytest.raises(ConfigError, match=r"leads outside the inventory's folder") as caught:
        load_inventory(write_yaml("single.yaml", BESIDE))
    assert caught.value.field == "application.fixtures"


def test_a_requirement_file_beside_the_inventory_includes_only_files_beside_it(
    app_dir: Path, beside: Path, write_yaml: Write
) -> None:
    (beside / "it" / "requirements.txt").write_text("-r ../../escape.txt\n")
    (beside.parent / "escape.txt").write_text("requests\n")
    with pytest.raises(ConfigError) as caught:
        load_inventory(write_yaml("single.yaml", BESIDE))
    assert caught.value.field == "application.client.requirements"
    assert "outside the inventory's folder" in str(caught.value)
    assert "escape.txt" not in str(caught.value)  # the include is the file's content


def test_the_record_says_which_file_was_used_and_what_it_held(
    app_dir: Path, beside: Path, write_yaml: Write
) -> None:
    inventory = load_inventory(write_yaml("single.yaml", BESIDE))
    files = {(f.field, f.value): f for f in provenance.files_of(inventory)}
    fixture = files[("application.fixtures", "fixtures/known.json")]
    assert (fixture.base, fixture.kind, fixture.path) == (
        "inventory",
        "file",
        str(beside / "fixtures/known.json"),
    )
    expected = hashlib.sha256((beside / "fixtures/known.json").read_bytes()).hexdigest()
    assert fixture.sha256 == expected
    client = files[("application.client.source", "it")]
    assert (client.kind, client.sha256) == ("folder", None)
    assert ("application.requirements", "requirements.txt") in files


def test_the_default_client_reuses_the_applications_requirements_listed_once(
    app_dir: Path, write_yaml: Write
) -> None:
    text = SINGLE.replace(
        "  client: {source: tests_it, requirements: tests_it/requirements.txt}\n", ""
    )
    app = load_inventory(write_yaml("single.yaml", text)).application
    assert app.client_source.path == app_dir.resolve() and app.client_requirements == (
        app.requirements
    )
    assert [f.field for f in app.files] == [
        "application.requirements",
        "application.fixtures",
        "application.client.source",
    ]


ENDPOINT = Endpoint(
    name="app",
    host="10.0.0.3",
    port="3307",
    user="app",
    password="pw",
    client=database_engine("mariadb").client,
)


def test_a_shipped_fixture_travels_in_the_servers_etc_folder_byte_for_byte() -> None:
    data = b"\x1f\x8b binary, as read"
    config = server_config(
        settings="mysite.settings",
        endpoint=ENDPOINT,
        secret_key="k",
        allowed_hosts=["10.0.0.2"],
        fixtures={"fixtures/0/known.json.gz": data},
    )
    assert config.data("fixtures/0/known.json.gz") == data
    other = server_config(
        settings="mysite.settings",
        endpoint=ENDPOINT,
        secret_key="k",
        allowed_hosts=["10.0.0.2"],
        fixtures={"fixtures/0/known.json.gz": data + b"!"},
    )
    # A changed fixture is a changed etc folder: the host gets it again.
    assert config.digest != other.digest and config.tree != other.tree
    needs = HostNeeds(app=True, client=False, venvs=(), config=config)
    stream = push_stream(["etc"], needs, Artifacts.__new__(Artifacts))
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        member = tar.extractfile("etc/fixtures/0/known.json.gz")
        assert member is not None and member.read() == data


def test_the_server_is_given_the_shipped_fixture_by_its_path_on_the_host(
    app_dir: Path, beside: Path, write_yaml: Write, tmp_path: Path
) -> None:
    inventory = load_inventory(write_yaml("single.yaml", BESIDE))
    plan = build_plan(inventory, load_suite(write_yaml("suite.yaml", SUITE)), Options())
    fake = JunitEverywhere("h1")
    steps = (fake_connect(fake), Step("layers", layers_step))
    outcome = execute(plan, tmp_path, lambda _line: None, steps=steps)
    assert outcome.exit_code == 0
    (start,) = [s for s in fake.scripts if "manage.py testserver" in s]
    assert "/srv/r/etc/fixtures/0/known.json" in start
    record = json.loads((outcome.run_dir / "run.json").read_text())
    assert {f["value"] for f in record["files"]} >= {"fixtures/known.json", "it"}


@pytest.mark.parametrize("folder", ["/", "/proc", "/etc/ssl", "~", "READINESS_PARENT"])
def test_a_client_folder_that_would_ship_the_system_a_home_or_readiness_is_refused(
    app_dir: Path, write_yaml: Write, folder: str
) -> None:
    if folder == "READINESS_PARENT":  # a folder around readiness holds its keys and state
        folder = str(Path(provenance.__file__).resolve().parents[2])
    text = SINGLE.replace(
        "{source: tests_it, requirements: tests_it/requirements.txt}",
        f"{{source: '{folder}', requirements: tests_it/requirements.txt}}",
    )
    with pytest.raises(ConfigError) as caught:
        load_inventory(write_yaml("single.yaml", text))
    assert caught.value.field == "application.client.source"
    assert "sent whole to the hosts" in str(caught.value)


def test_files_beside_an_inventory_others_can_change_are_refused(
    app_dir: Path, beside: Path, write_yaml: Write
) -> None:
    beside.chmod(0o777)
    try:
        with pytest.raises(ConfigError) as caught:
            load_inventory(write_yaml("single.yaml", BESIDE))
        assert caught.value.field == "application.fixtures"
        assert "can be changed by other users" in str(caught.value)
        # What is inside the application is not looked for beside the inventory.
        assert load_inventory(write_yaml("own.yaml", SINGLE)).application.fixtures
    finally:
        beside.chmod(0o755)


def test_in_an_application_too_large_to_search_a_file_beside_the_inventory_is_shipped(
    app_dir: Path, beside: Path, write_yaml: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator import userfiles

    monkeypatch.setattr(userfiles, "_MAX_SEARCHED", 2)
    (beside / "known.json").write_text("[]\n")
    text = BESIDE.replace("[fixtures/known.json]", "[known.json, initial]")
    first, second = load_inventory(write_yaml("single.yaml", text)).application.fixtures
    assert first.shipped and first.file is not None and first.file.base == "inventory"
    # Nothing beside the inventory by that name: Django is left to find the label.
    assert (second.label, second.file) == ("initial", None)


def test_a_path_that_is_not_a_regular_file_says_so(
    app_dir: Path, beside: Path, write_yaml: Write
) -> None:
    text = BESIDE.replace("[fixtures/known.json]", "[/dev/null]")
    with pytest.raises(ConfigError, match="/dev/null is not a regular file"):
        load_inventory(write_yaml("single.yaml", text))


def test_the_record_holds_the_digest_of_the_fixture_bytes_shipped(
    app_dir: Path, beside: Path, write_yaml: Write
) -> None:
    from types import SimpleNamespace
    from typing import cast

    from orchestrator.context import Context
    from orchestrator.steps.build import _shipped_fixtures

    inventory = load_inventory(write_yaml("single.yaml", BESIDE))
    record = SimpleNamespace(files=provenance.files_of(inventory))
    (beside / "fixtures" / "known.json").write_text('[{"changed": true}]\n')  # after the start
    ctx = cast(Context, SimpleNamespace(inventory=inventory, record=record))
    shipped = _shipped_fixtures(ctx)
    data = shipped["fixtures/0/known.json"]
    assert data == b'[{"changed": true}]\n'
    (entry,) = [f for f in record.files if f.field == "application.fixtures"]
    assert entry.sha256 == hashlib.sha256(data).hexdigest()


def test_shipped_fixtures_are_bounded_in_all_not_only_each(
    app_dir: Path, beside: Path, write_yaml: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator import userfiles

    monkeypatch.setattr(userfiles, "MAX_FIXTURE_BYTES", 40)
    (beside / "fixtures" / "a.json").write_text("[" + " " * 20 + "]")
    (beside / "fixtures" / "b.json").write_text("[" + " " * 20 + "]")
    text = BESIDE.replace("[fixtures/known.json]", "[fixtures/a.json, fixtures/b.json]")
    with pytest.raises(ConfigError, match="add up to more than 40 bytes") as caught:
        load_inventory(write_yaml("single.yaml", text))
    assert caught.value.field == "application.fixtures"
    one = BESIDE.replace("[fixtures/known.json]", "[fixtures/a.json]")
    assert load_inventory(write_yaml("one.yaml", one)).application.fixtures
