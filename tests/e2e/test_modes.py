"""The inventory's other modes, end to end on a real lab: gunicorn, and an existing database.

* ``application.server.mode: gunicorn``: the broker served by gunicorn instead of
  Django's ``testserver``, all-on-one and distributed. That it really was gunicorn is
  taken from what the server host showed, not from the configuration: the listen backlog
  in force (``ss``'s Send-Q, asked for as 64 here; testserver's is 10) and gunicorn's own
  start-up and access lines in the server's log.
* ``database.mode: existing``: a MariaDB server that this test starts itself (not
  readiness) in a lab host's namespace, with a database and an account whose password
  the test generates. The inventory names only environment variables, set in the
  readiness process alone; no host has the role ``db``. The broker's rows are then read
  back through the test's own client, and the password is looked for in every file the
  run left.

The lab (prefix ``rm``) is brought up once for the module and always removed at the end.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.lab import Lab, lab_down, lab_up, load_lab
from tests.e2e.conftest import lab_unavailable
from tests.e2e.support import BROKER, Run, lab_section, lab_workdir, run_readiness

pytestmark = pytest.mark.e2e

PREFIX = "rm"
SUBNET = "10.213.83.0/24"
LAB_HOSTS = 3
# The broker's suite (suites/broker.yaml), test counts per layer.
LAYERS = {"django-unit": 96, "python-unit": 140, "rest-integration": 57}
FIXTURE_INSTRUMENTS = 27  # trading.instrument rows in sut/broker/fixtures/known.json
SERVER_PORT = 8000
# Not gunicorn's default (2048) nor testserver's (10): the backlog in force says who listens.
BACKLOG = 64
GUNICORN = (
    f"{{mode: gunicorn, port: {SERVER_PORT}, health: /api/health, workers: 2, threads: 4, "
    f"backlog: {BACKLOG}}}"
)
TESTSERVER = f"{{mode: testserver, port: {SERVER_PORT}, health: /api/health}}"
MANAGED = "{mode: managed, name: broker, user: broker, port: 3307}"

# The existing database: names the inventory gives, and the variables that hold the rest.
EXISTING_NAME = "extbroker"
EXISTING_USER = "extapp"
EXISTING_PORT = 3316  # not the engine's default 3306: port_env must be honoured
ENV_NAMES = {
    "host_env": "RM_DB_HOST",
    "port_env": "RM_DB_PORT",
    "user_env": "RM_DB_USER",
    "password_env": "RM_DB_PASSWORD",
}
EXISTING = (
    "{mode: existing, engine: mariadb, name: "
    + EXISTING_NAME
    # Not the account the database has: only user_env's value can log in.
    + ", user: notthisone, "
    + ", ".join(f"{key}: {var}" for key, var in ENV_NAMES.items())
    + "}"
)


def application(server: str, database: str, fixture: str = "fixtures/known.json") -> str:
    return f"""
application:
  source: {BROKER}
  settings: broker.settings
  requirements: requirements.txt
  fixtures: [{fixture}]
  server: {server}
  client: {{source: integration, requirements: integration/requirements.txt}}
database: {database}
suite: broker
"""


LAB = lab_section(PREFIX, SUBNET, LAB_HOSTS)
BESIDE_FIXTURE = "gunicorn-known.json"
GUNICORN_ALL_ON_ONE = (
    LAB + "hosts:\n  - {name: h1, roles: [db, server, client]}\n" + application(GUNICORN, MANAGED)
)
GUNICORN_DISTRIBUTED = (
    LAB
    + "hosts:\n  - {name: h1, roles: [db]}\n  - {name: h2, roles: [server]}\n"
    + "  - {name: h3, roles: [client]}\n"
    # The live server's fixture kept beside the inventory, not in the application: gunicorn
    # mode loads it from where readiness shipped it (the server host's etc folder).
    + application(GUNICORN, MANAGED, fixture=BESIDE_FIXTURE)
)
# The existing server runs in h3's namespace, which the inventory does not deploy to.
EXISTING_DB_HOST = "h3"
EXISTING_DISTRIBUTED = (
    LAB
    + "hosts:\n  - {name: h1, roles: [server]}\n  - {name: h2, roles: [client]}\n"
    + application(TESTSERVER, EXISTING)
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The module's work folder, with its lab up (the existing database needs a lab host
    before readiness runs; readiness finds the same lab and leaves it as it is)."""
    reason = lab_unavailable()
    if reason:
        pytest.fail(f"end-to-end tests need a lab: {reason}")
    with lab_workdir(tmp_path_factory.mktemp("modes"), PREFIX) as base:
        state_dir = base / "lab" / PREFIX
        lab_down(prefix=PREFIX, state_dir=state_dir)  # an interrupted session's leftovers
        lab_up(hosts=LAB_HOSTS, prefix=PREFIX, subnet=SUBNET, state_dir=state_dir)
        yield base


def lab_of(workdir: Path) -> Lab:
    return load_lab(prefix=PREFIX, state_dir=workdir / "lab" / PREFIX)


def address_of(lab: Lab, host: str) -> str:
    return lab.host(f"{PREFIX}-{host}").address


def assert_ready(run: Run) -> None:
    """Exit 0, verdict ready, the broker's three layers passed with every test."""
    record = run.record
    assert run.code == 0, run.diagnostics()
    assert record["verdict"] == "ready", run.diagnostics()
    assert [(layer["name"], layer["status"]) for layer in record["layers"]] == [
        (name, "passed") for name in LAYERS
    ], run.diagnostics()
    for layer in record["layers"]:
        tests, expected = layer["tests"], LAYERS[layer["name"]]
        assert tests["total"] == tests["passed"] == expected, (layer["name"], tests)
        assert tests["failed"] == tests["errors"] == tests["skipped"] == 0, (layer["name"], tests)
        assert tests["retried"] == 0, (layer["name"], tests)
    assert record["teardown"]["status"] == "ok", record["teardown"]


def assert_served_by_gunicorn(run: Run, server: str, server_ip: str, client_ip: str) -> None:
    """What the server host showed, each of which testserver would fail: the listen
    backlog in force, gunicorn's start-up lines and its access log (client address first)."""
    record = run.record
    fingerprint = record["fingerprints"][server]
    assert fingerprint["kind"] == "gunicorn", fingerprint
    assert fingerprint["backlog"] == BACKLOG, fingerprint  # measured: testserver's is 10
    assert fingerprint["threading"] == "gthread: 2 workers x 4 threads", fingerprint
    assert fingerprint["address"] == f"{server_ip}:{SERVER_PORT}", fingerprint
    assert "gunicorn" in {name.lower() for name in record["build"]["server_packages"]}, record[
        "build"
    ]["server_packages"]
    log_file = run.run_dir / "logs" / server / "server.log"
    assert log_file.is_file(), sorted(str(p) for p in run.run_dir.glob("logs/*/*"))
    log = log_file.read_text()
    assert re.search(r"\[INFO\] Starting gunicorn \d+\.\d+", log), log[-3000:]
    assert f"Listening at: http://{server_ip}:{SERVER_PORT}" in log, log[-3000:]
    assert "Using worker: gthread" in log, log[-3000:]
    assert "Starting development server" not in log, log[-3000:]
    # gunicorn's access log format ('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s ...'): the
    # integration layer's requests, from the client host, answered 200.
    answered = re.findall(
        rf'^{re.escape(client_ip)} - - \[[^\]]+\] "GET /api/\S* HTTP/1\.1" 200 ', log, re.M
    )
    assert len(answered) >= 10, log[-3000:]


def test_gunicorn_all_on_one_serves_the_broker_and_is_ready(workdir: Path) -> None:
    run = run_readiness(workdir, "modes-gunicorn-single", GUNICORN_ALL_ON_ONE)
    assert_ready(run)
    record = run.record
    assert record["topology"] == "all-on-one"
    assert record["database_links"] == {"h1": "socket"}
    h1 = address_of(lab_of(workdir), "h1")
    assert_served_by_gunicorn(run, "h1", server_ip=h1, client_ip=h1)


def test_gunicorn_distributed_serves_the_broker_and_is_ready(workdir: Path) -> None:
    shutil.copyfile(BROKER / "fixtures" / "known.json", workdir / BESIDE_FIXTURE)
    run = run_readiness(workdir, "modes-gunicorn-cluster", GUNICORN_DISTRIBUTED)
    assert_ready(run)  # the integration tests pass only with the fixture's data loaded
    record = run.record
    (fixture,) = [f for f in record["files"] if f["field"] == "application.fixtures"]
    assert (fixture["base"], fixture["path"]) == (
        "inventory",
        str((workdir / BESIDE_FIXTURE).resolve()),
    )
    assert record["topology"] == "distributed"
    assert record["database_links"] == {"h2": "tcp"}
    assert {h["name"]: h["roles"] for h in record["hosts"]} == {
        "h1": ["db"],
        "h2": ["server"],
        "h3": ["client"],
    }
    lab = lab_of(workdir)
    assert_served_by_gunicorn(
        run, "h2", server_ip=address_of(lab, "h2"), client_ip=address_of(lab, "h3")
    )


@dataclass(frozen=True)
class ExistingDatabase:
    """A MariaDB server the test runs itself, and the account it made for the app."""

    address: str
    port: int
    socket: str
    password: str
    error_log: Path

    def sql(self, statements: str) -> str:
        """Run SQL as the server's root over its Unix socket (on stdin: no secret on a
        command line); tab-separated rows, no headers."""
        result = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B"],
            input=statements,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{result.stderr}\n{self.log_tail()}"
        return result.stdout

    def log_tail(self) -> str:
        try:
            return "--- mariadbd error log ---\n" + self.error_log.read_text()[-3000:]
        except OSError:
            return "(no mariadbd error log)"


@pytest.fixture
def existing_database(workdir: Path) -> Iterator[ExistingDatabase]:
    """A MariaDB server in the namespace of lab host h3, bound to its address, started by
    the test (never by readiness), stopped and removed afterwards, pass or fail."""
    lab = lab_of(workdir)
    host = lab.host(f"{PREFIX}-{EXISTING_DB_HOST}")
    app_ip = address_of(lab, "h1")
    # A short root: the socket path must fit in sun_path (108 bytes).
    root = Path(tempfile.mkdtemp(prefix="rm-db-", dir="/tmp"))
    datadir, socket_path = root / "data", str(root / "mysqld.sock")
    error_log = root / "mysqld.err"
    proc: subprocess.Popen[bytes] | None = None
    try:
        install = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={datadir}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert install.returncode == 0, install.stdout + install.stderr
        with (root / "mysqld.out").open("wb") as out:
            proc = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    host.namespace,
                    "mariadbd",
                    "--no-defaults",
                    f"--datadir={datadir}",
                    f"--socket={socket_path}",
                    f"--pid-file={root / 'mysqld.pid'}",
                    f"--log-error={error_log}",
                    f"--port={EXISTING_PORT}",
                    f"--bind-address={host.address}",
                    "--skip-name-resolve",
                    "--user=root",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        db = ExistingDatabase(
            host.address, EXISTING_PORT, socket_path, secrets.token_urlsafe(24), error_log
        )
        deadline = time.monotonic() + 60
        while (
            subprocess.run(
                ["mariadb-admin", "--no-defaults", f"--socket={socket_path}", "ping"],
                capture_output=True,
                timeout=10,
                check=False,
            ).returncode
            != 0
        ):
            assert proc.poll() is None, f"mariadbd exited with {proc.returncode}\n{db.log_tail()}"
            assert time.monotonic() < deadline, f"mariadbd did not answer\n{db.log_tail()}"
            time.sleep(0.2)
        # The account may connect only from the server host (h1), as a DBA would grant it,
        # and may make Django's test_<name> database (GRANT patterns escape '_').
        account = f"'{EXISTING_USER}'@'{app_ip}'"
        db.sql(
            f"CREATE DATABASE `{EXISTING_NAME}` CHARACTER SET utf8mb4;\n"
            f"CREATE USER {account} IDENTIFIED BY '{db.password}';\n"
            f"GRANT ALL PRIVILEGES ON `{EXISTING_NAME}`.* TO {account};\n"
            f"GRANT ALL PRIVILEGES ON `test\\_{EXISTING_NAME}`.* TO {account};\n"
        )
        yield db
    finally:
        if proc is not None:
            proc.terminate()  # ip netns exec execs mariadbd: this is the server itself
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def files_holding(folder: Path, secret: str) -> list[str]:
    """Every file under ``folder`` whose bytes contain ``secret``."""
    needle = secret.encode()
    return sorted(
        str(path)
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    )


def test_an_existing_database_named_by_environment_variables_is_used_and_ready(
    workdir: Path, existing_database: ExistingDatabase
) -> None:
    db = existing_database
    env = {
        ENV_NAMES["host_env"]: db.address,
        ENV_NAMES["port_env"]: str(db.port),
        ENV_NAMES["user_env"]: EXISTING_USER,
        ENV_NAMES["password_env"]: db.password,
    }
    run = run_readiness(workdir, "modes-existing", EXISTING_DISTRIBUTED, env=env)
    assert_ready(run)
    record = run.record
    # readiness started no database: no db component, no database log, server and client only.
    assert sorted(d["component"] for d in record["deploy"]) == ["client", "server"]
    assert {h["name"]: h["roles"] for h in record["hosts"]} == {
        "h1": ["server"],
        "h2": ["client"],
    }
    assert record["database_links"] == {"h1": "tcp"}
    assert record["fingerprints"]["h1"]["kind"] == "testserver"
    assert not list(run.run_dir.glob("logs/*/mysqld*")), sorted(run.run_dir.glob("logs/*/*"))
    flows = record["network"]["flows"]
    assert [
        (f["from"], f["to"], f["port"], f["via"], f["crosses"])
        for f in flows
        if f["what"] == "server -> database"
    ] == [("h1", db.address, db.port, "tcp", True)], flows
    # The live server ran on this server: testserver made test_<name> here and loaded the
    # broker's fixtures into it (it is killed, not stopped, so the database stays).
    tables = db.sql(
        "SELECT table_schema, COUNT(*) FROM information_schema.tables "
        f"WHERE table_schema IN ('{EXISTING_NAME}', 'test_{EXISTING_NAME}') "
        "GROUP BY table_schema;"
    )
    assert f"test_{EXISTING_NAME}\t" in tables, tables + db.log_tail()
    instruments = db.sql(f"SELECT COUNT(*) FROM `test_{EXISTING_NAME}`.trading_instrument;")
    assert int(instruments) == FIXTURE_INSTRUMENTS, instruments
    orders = db.sql(f"SELECT COUNT(*) FROM `test_{EXISTING_NAME}`.trading_order;")
    assert int(orders) > 5, f"the integration layer placed no order here ({orders.strip()})"
    # The generated password, read from the environment at deploy time, is in no stored
    # file: the run's folder, the work folder's state, or the server host's deploy root.
    assert files_holding(run.run_dir, db.password) == []
    assert files_holding(workdir / ".state", db.password) == []
    deploy_root = Path(lab_of(workdir).host(f"{PREFIX}-h1").deploy_root) / "modes-existing"
    assert deploy_root.is_dir(), deploy_root
    assert files_holding(deploy_root, db.password) == [], "teardown left the secret on h1"
