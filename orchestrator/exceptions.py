"""Every error readiness raises on purpose, each carrying the data needed to report it.

``tasks.py`` maps them to the exit codes of the CLI contract (DESIGN.md): 2 for a usage
or configuration mistake, 3 for infrastructure that is missing or broken. Messages are
written for the user: one paragraph that names the file, field or host at fault.
"""

from __future__ import annotations

from collections.abc import Mapping


class ReadinessError(Exception):
    """Base class: an error whose message is fit to show the user as it is."""

    exit_code = 3

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ReadinessError):
    """A user mistake in an inventory, a suite or an option (exit code 2)."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = ""
        if file:
            where = file if line is None else f"{file}, line {line}"
            if field:
                where += f", field '{field}'"
            where += ": "
        elif field:
            where = f"field '{field}': "
        super().__init__(where + message)
        self.file = file
        self.line = line
        self.field = field


class PrivilegeError(ReadinessError):
    """The command needs root (or another privilege) it does not have (exit code 2)."""

    exit_code = 2


class InfrastructureError(ReadinessError):
    """A host, a service or a tool the run depends on is missing or broken (exit code 3)."""

    exit_code = 3


class HostError(InfrastructureError):
    """Something failed on one named host; keeps the host and the command's output."""

    def __init__(self, host: str, message: str, *, stdout: str = "", stderr: str = "") -> None:
        super().__init__(f"host '{host}': {message}")
        self.host = host
        # The message without the host, for reports that already name the host.
        self.detail = message
        self.stdout = stdout
        self.stderr = stderr


class GroupError(InfrastructureError):
    """Work over several hosts finished on every host and failed on some (fabric's GroupException).

    ``failures`` maps host name to the error of that host; ``results`` holds what the
    hosts that succeeded returned. When every failure is a configuration error the
    group is one too (exit code 2), else it is an infrastructure error (3).
    """

    def __init__(
        self,
        what: str,
        failures: Mapping[str, BaseException],
        results: Mapping[str, object] | None = None,
    ) -> None:
        lines = "; ".join(
            f"{host}: {err.detail if isinstance(err, HostError) else err}"
            for host, err in sorted(failures.items())
        )
        super().__init__(f"{what} failed on {len(failures)} host(s): {lines}")
        self.failures = dict(failures)
        self.results = dict(results or {})
        if failures and all(isinstance(e, ConfigError) for e in failures.values()):
            self.exit_code = ConfigError.exit_code
