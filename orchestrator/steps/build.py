"""Step ``build``: bundle the code and build (or reuse) the wheelhouses, on the control node.

Hosts never download anything (lab hosts have no internet, real ones often don't): what
they install comes from here, cached by the requirements' digest in ``.wheelhouse/``.
"""

from __future__ import annotations

import hashlib
import time

from orchestrator.bundle import build_bundle
from orchestrator.components import database_engine
from orchestrator.context import Context
from orchestrator.delta import Trees
from orchestrator.deploy import Artifacts
from orchestrator.installer import uv_for
from orchestrator.ledger_hook import build_wheel
from orchestrator.record import BuildRecord
from orchestrator.userfiles import read_fixture
from orchestrator.wheelhouse import build_wheelhouse

# Always installed next to the application and the client: the test runner the layers
# use; the server also gets the database engine's driver.
SERVER_EXTRAS = ("pytest>=8,<10",)
CLIENT_EXTRAS = ("pytest>=8,<10",)
GUNICORN = ("gunicorn>=21",)


def build_step(ctx: Context) -> None:
    """Bundle the code and build (or reuse) the wheelhouses on the control node."""
    app = ctx.inventory.application
    t0 = time.monotonic()
    cache = ctx.root / ".wheelhouse"
    driver = database_engine(ctx.inventory.database.engine).client.requirements
    server_extras = (
        *driver,
        *SERVER_EXTRAS,
        *(GUNICORN if app.server_mode == "gunicorn" else ()),
    )
    # The ledger hook goes into every venv, servers' too: their layers are tests as well.
    hook = (build_wheel(cache / "hook"),)
    server_wheels = build_wheelhouse(
        [r.path for r in app.requirements], server_extras, cache, local_wheels=hook
    )
    client_wheels = build_wheelhouse(
        [r.path for r in app.client_requirements],
        CLIENT_EXTRAS,
        cache,
        local_wheels=hook,
    )
    tools, tools_missing = uv_for(_code_machines(ctx), cache)
    fixtures = _shipped_fixtures(ctx)
    # Each bundle's manifest is kept, so that the next deploy of a changed version sends
    # only the files that differ to a host holding this one (orchestrator.delta).
    trees = Trees(cache / "trees")
    bundles = build_bundle(app.source), build_bundle(app.client_source.path)
    for bundle in bundles:
        trees.keep(bundle)
    ctx.artifacts = Artifacts(
        app=bundles[0],
        client=bundles[1],
        server_wheels=server_wheels,
        client_wheels=client_wheels,
        fixtures=fixtures,
        tools=tools,
        tools_missing=tools_missing,
        trees=trees,
    )
    duration = time.monotonic() - t0
    ctx.record.build = BuildRecord(
        app_digest=ctx.artifacts.app.digest,
        client_digest=ctx.artifacts.client.digest,
        server_wheelhouse=server_wheels.digest,
        client_wheelhouse=client_wheels.digest,
        duration_s=round(duration, 3),
        server_packages=server_wheels.packages,
        client_packages=client_wheels.packages,
    )
    ctx.progress("control", "build", f"bundles and wheelhouses ready in {duration:.1f}s")


def _code_machines(ctx: Context) -> set[str]:
    """The CPUs (``uname -m``) of the hosts that will build virtualenvs: the fast
    installer is fetched for these only."""
    return {
        ctx.probes[s.host].facts.get("machine", "")
        for s in ctx.plan.deploy
        if s.component != "db" and s.host in ctx.probes
    }


def _shipped_fixtures(ctx: Context) -> dict[str, bytes]:
    """The fixtures from outside the application, read once: what is shipped. The
    record's digest of each is of these bytes (the file may have changed since the run
    started)."""
    shipped: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    for fixture in ctx.inventory.application.fixtures:
        if fixture.shipped and fixture.file is not None:
            data = shipped[fixture.shipped_name] = read_fixture(fixture)
            digests[str(fixture.file.path)] = hashlib.sha256(data).hexdigest()
    for entry in ctx.record.files:
        if entry.field == "application.fixtures" and entry.path in digests:
            entry.sha256 = digests[entry.path]
    return shipped
