"""The components a run deploys, behind two small protocols (Jepsen's ``DB`` is the model).

A **database** (:class:`Database`; MariaDB today, :mod:`orchestrator.components.mariadb`)
and an **application server** (:class:`AppServer`; Django's ``testserver`` or gunicorn,
:class:`orchestrator.components.appserver.DjangoServer`) each answer the same questions:
the script that starts it (waiting until it is healthy), the script that stops it, its
log files, and what it hands to whoever uses it (the
database's :class:`Endpoint` to the application, the server's URL to the client). A
database :class:`Engine` also says what a host must have to run it (its probe).

Adding a database engine is one module (with its templates) that defines an
:class:`Engine`, plus one line in :data:`ENGINES`.
"""

from __future__ import annotations

from orchestrator.components.base import (
    AppServer,
    Database,
    DatabaseGrant,
    DjangoClient,
    Endpoint,
    Engine,
    LogFile,
)
from orchestrator.components.mariadb import ENGINE as MARIADB
from orchestrator.exceptions import ConfigError

ENGINES: dict[str, Engine] = {MARIADB.name: MARIADB}


def database_engine(engine: str) -> Engine:
    """The database engine of that name (an inventory's ``database.engine``)."""
    try:
        return ENGINES[engine]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise ConfigError(f"unknown database engine {engine!r} (known: {known})") from None


__all__ = [
    "ENGINES",
    "AppServer",
    "Database",
    "DatabaseGrant",
    "DjangoClient",
    "Endpoint",
    "Engine",
    "LogFile",
    "database_engine",
]
