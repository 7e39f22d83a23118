"""Deploy: put the database, the server and the client on their hosts, idempotently.

Per host the deploy is three round trips at most, whatever the number of components
(four when a host refuses a patch, below):

1. **probe**: one script reports what the host already has (digests of the code,
   virtualenvs and settings it holds) and its facts (Python, TCP settings, and on the
   database's host the engine's own, e.g. its server version);
2. **push**: one script receives a single tar stream on stdin holding only what differs
   (application bundle, client bundle, wheelhouses, settings overlay and secrets) and
   installs it: code unpacked, virtualenvs built ``--without-pip`` from the wheels;
3. **db**: the database host starts and provisions its private instance (the database
   component's own script, :mod:`orchestrator.components`).

A warm redeploy with nothing changed sends no bundle and builds no virtualenv: the
probe's digests match and the push is skipped. The probe does not trust the markers
alone: it also reports what each deployed tree holds *now* (code, settings and every
virtualenv, see :mod:`orchestrator.scripts.tree_state`), so a part that a run changed on
the host (a file a layer added or edited, a package it pip-installed) is resent and
replaced whole, and what run N left behind cannot change the verdict of run N+1.

Virtualenvs are built once per host, user and Python in the host's cache
(``Target.venv_cache``) and linked into each deploy root that needs the same wheelhouse:
a second application or deploy root with the same requirements is sent no wheels and
builds nothing (``PushReport.linked``). An entry a run changed is not trusted, and is
replaced by a new one rather than rebuilt in place, since other roots may run from it
(:mod:`orchestrator.scripts.tree_state` says how entries, keys and locks go).
Nothing relies on hosts sharing the control node's filesystem (lab hosts do, real ones
don't): every byte goes over the connection.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import shlex
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from orchestrator.bundle import EXCLUDED_DIRS, EXCLUDED_SUFFIXES, Bundle
from orchestrator.delta import PATCH_FAILED_EXIT, Delta, Trees
from orchestrator.exceptions import HostError
from orchestrator.installer import ENV_CHOICE, Tool
from orchestrator.layout import MARKER_VAR, Layout
from orchestrator.scripts import render, tree_state
from orchestrator.transport import Transport
from orchestrator.wheelhouse import COMPLETE, Wheelhouse

DIGEST_FILE = ".readiness-digest"
SECRETS_FILE = "secrets.env"  # in the etc folder (Layout.secrets)
# What the bundles never hold, as tree_state takes it (one word each) on the host: the
# probe and the install's check of a patched folder leave out the same things.
CACHE_DIRS = " ".join(sorted(EXCLUDED_DIRS))
CACHE_SUFFIXES = " ".join(EXCLUDED_SUFFIXES)
# Exit code of the install script when a virtualenv could not be built.
VENV_FAILED_EXIT = 14
# Exit code of the install script when a venv it was to link is no longer in the host's
# cache as the probe saw it (collected, or changed since): its wheels go in one more trip.
VENV_UNCACHED_EXIT = 15
# Entries a host's virtualenv cache keeps (the most recently used, besides those each
# install links): a few applications' or requirement versions' venvs per host and user.
VENV_CACHE_KEEP = 8
# ... and an entry beyond those goes only once it has not been linked or probed for this
# long: a server kept running (--keep) or another inventory's run in progress uses its
# entry without touching it, and a deploy in the last day is a sign one may.
VENV_CACHE_IDLE_S = 24 * 3600
_HEX = re.compile(r"[0-9a-f]{1,64}")


@dataclass(frozen=True)
class Artifacts:
    """Everything built once on the control node and shipped to the hosts that need it."""

    app: Bundle
    client: Bundle
    server_wheels: Wheelhouse
    client_wheels: Wheelhouse
    # Fixtures from outside the application, by their path in a server's etc folder.
    fixtures: Mapping[str, bytes] = field(default_factory=dict)
    # The fast installer for each host CPU that has one (orchestrator.installer), and why
    # some CPU of the run's hosts has none.
    tools: Mapping[str, Tool] = field(default_factory=dict)
    tools_missing: str | None = None
    # The manifests of the bundles built before, so a code part a host holds in a known
    # version is sent as its difference (orchestrator.delta); None: always whole.
    trees: Trees | None = None

    def bundle(self, part: str) -> Bundle:
        """The bundle of a code part (``app`` or ``client``)."""
        return self.app if part == "app" else self.client


@dataclass(frozen=True)
class HostConfig:
    """The per-host files of the etc folder: the generated settings overlay, WSGI module
    and test runner (text), fixtures shipped from outside the application (bytes, as
    read), and the secrets (0600)."""

    files: Mapping[str, str | bytes]
    secrets: Mapping[str, str] = field(repr=False)

    def data(self, name: str) -> bytes:
        """A file's bytes as they are written on the host."""
        value = self.files[name]
        return value.encode() if isinstance(value, str) else value

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + self.data(name) + b"\0")
        h.update(secrets_text(self.secrets).encode())
        return h.hexdigest()[:20]

    @property
    def tree(self) -> str:
        """The etc folder as the probe digests it once installed (files and secrets)."""
        files = {name: self.data(name) for name in self.files}
        files[SECRETS_FILE] = secrets_text(self.secrets).encode()
        return tree_state.files_digest(
            (name.encode(), tree_state.file_entry(hashlib.sha256(data).hexdigest()))
            for name, data in files.items()
        )


@dataclass(frozen=True)
class Probe:
    """What a host already has, and its facts."""

    markers: Mapping[str, str]
    facts: Mapping[str, str]


@dataclass(frozen=True)
class PushReport:
    """What one host received (for the run record and the warm-redeploy benchmark).

    ``drifted`` names the parts of ``sent`` that the host held in the right version but
    changed since (see :func:`drifted`).
    """

    host: str
    sent: tuple[str, ...]
    bytes_sent: int
    round_trips: int
    duration_s: float
    drifted: tuple[str, ...] = ()
    # What built the virtualenvs ("uv 0.9.30", "pip"); None when none was built.
    installer: str | None = None
    # The code parts of ``sent`` sent as a difference: (part, files sent, names removed,
    # whether the host took it; one it refused was sent whole in a second round trip).
    patched: tuple[tuple[str, int, int, bool], ...] = ()
    # The venvs (digests) taken from the host's cache of built venvs: linked, not built.
    linked: tuple[str, ...] = ()


def secrets_text(values: Mapping[str, str]) -> str:
    """A file for ``set -a; . file``: every value single-quoted for the shell."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(values.items()))


# -- probe ------------------------------------------------------------------------------


def probe_script(
    layout: Layout, python: str, engine_probe: str = "", *, venv_cache: str = ""
) -> str:
    """One script printing what the host holds (``marker.*``) and its facts (``fact.*``).

    What the host holds is the marker of each part (the version installed) and, from
    :mod:`orchestrator.scripts.tree_state` in the same round trip, the digest of each
    code tree as it is now (``marker.app_tree``, ``client_tree``, ``etc_tree``) and which
    virtualenvs are unchanged since their install (``marker.venvs``, the others in
    ``marker.venvs_changed``), and which ones the host's ``venv_cache`` holds ready to
    link (``marker.venvs_cached``). Caches the bundles never hold (bytecode, test caches)
    are removed from the code trees on the way, not counted: see tree_state for why.

    ``engine_probe`` names the database engine's own probe script (a file beside the
    scripts), included on a host that is to run the database.
    """
    return render(
        "probe.sh",
        layout=layout,
        python=python,
        digest_file=DIGEST_FILE,
        engine_probe=engine_probe,
        cache_dirs=CACHE_DIRS,
        cache_suffixes=CACHE_SUFFIXES,
        complete=COMPLETE,
        venv_cache=venv_cache,
    )


def parse_probe(text: str) -> Probe:
    markers: dict[str, str] = {}
    facts: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key.startswith("marker."):
            markers[key[7:]] = value.strip()
        elif key.startswith("fact."):
            facts[key[5:]] = value.strip()
    return Probe(markers, facts)


def probe(
    transport: Transport,
    layout: Layout,
    python: str,
    engine_probe: str = "",
    *,
    venv_cache: str = "",
) -> Probe:
    script = probe_script(layout, python, engine_probe, venv_cache=venv_cache)
    result = transport.run(script, timeout=60).check("probing the host")
    found = parse_probe(result.stdout)
    if found.facts.get("deploy_root_writable") != "yes":
        raise HostError(transport.name, f"cannot create or write the deploy root {layout.root}")
    if found.facts.get("deploy_root_unsafe"):
        raise HostError(
            transport.name,
            f"the deploy root {layout.root} is not safe: {found.facts['deploy_root_unsafe']} "
            "can be changed by another user; choose a deploy_root in a folder only you (or "
            "root) can write",
        )
    if not found.facts.get("python"):
        raise HostError(
            transport.name,
            f"no Python interpreter '{python}' on the host; install python3 (Debian: "
            "apt-get install python3) or set the host's 'python' in the inventory",
        )
    if found.facts.get("python_venv") != "1":
        raise HostError(transport.name, f"'{python}' lacks the venv module; install python3-venv")
    return found


# -- push -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostNeeds:
    """What a host must hold for its components."""

    app: bool
    client: bool
    venvs: tuple[Wheelhouse, ...]
    config: HostConfig | None
    # uv for the host's CPU, sent along when a venv is to be built and the host lacks it.
    tool: Tool | None = None


def _wanted(needs: HostNeeds, artifacts: Artifacts) -> dict[str, tuple[str, str]]:
    """Each folder part the host needs: (its marker, its tree digest), as the probe
    reports them for an unchanged copy of what we send."""
    wanted: dict[str, tuple[str, str]] = {}
    if needs.app:
        wanted["app"] = (artifacts.app.digest, artifacts.app.tree)
    if needs.client:
        wanted["client"] = (artifacts.client.digest, artifacts.client.tree)
    if needs.config is not None:
        wanted["etc"] = (needs.config.digest, needs.config.tree)
    return wanted


def cached(needs: HostNeeds, found: Probe) -> list[str]:
    """The venvs (digests) the deploy root lacks, or changed, but the host's cache holds
    for its Python: linked there, their wheels not sent. Only hex names are taken from
    the host, and only ones we asked for."""
    have = set(found.markers.get("venvs", "").split())
    ready = {d for d in found.markers.get("venvs_cached", "").split() if _HEX.fullmatch(d)}
    return [w.digest for w in needs.venvs if w.digest not in have and w.digest in ready]


def missing(needs: HostNeeds, found: Probe, artifacts: Artifacts) -> list[str]:
    """The parts the host lacks, holds in another version, or changed since they were
    installed (the tree no longer matches what was sent, or a venv its seal); not the
    venvs it can link from its cache (:func:`cached`)."""
    stale = [
        part
        for part, (marker, tree) in _wanted(needs, artifacts).items()
        if found.markers.get(part) != marker or found.markers.get(f"{part}_tree", "") != tree
    ]
    have = set(found.markers.get("venvs", "").split()) | set(cached(needs, found))
    venvs = [f"wheels-{w.digest}" for w in needs.venvs if w.digest not in have]
    tools = set(found.markers.get("tools", "").split())
    if venvs and needs.tool is not None and needs.tool.part not in tools:
        venvs.insert(0, needs.tool.part)
    parts = [p for p in stale if p != "etc"] + venvs + [p for p in stale if p == "etc"]
    return list(dict.fromkeys(parts))


def drifted(needs: HostNeeds, found: Probe, artifacts: Artifacts) -> list[str]:
    """The parts :func:`missing` asks for only because the host changed them since their
    install: the marker says the version we want, the tree says otherwise (a file a layer
    added, edited or removed; a package pip-installed into a venv). For the record."""
    parts = [
        part
        for part, (marker, tree) in _wanted(needs, artifacts).items()
        if found.markers.get(part) == marker and found.markers.get(f"{part}_tree", "") != tree
    ]
    changed = set(found.markers.get("venvs_changed", "").split()) - set(cached(needs, found))
    return parts + [f"wheels-{w.digest}" for w in needs.venvs if w.digest in changed]


def check_wheels_fit(host: str, facts: Mapping[str, str], houses: tuple[Wheelhouse, ...]) -> None:
    """Binary wheels built on the control node install only on the same Python and CPU."""
    control_python = f"{sys.version_info.major}.{sys.version_info.minor}"
    host_python = ".".join(facts.get("python", "").split(".")[:2])
    for house in houses:
        tags = house.binary_tags
        if tags is None:
            continue
        if host_python != control_python or facts.get("machine") != platform.machine():
            raise HostError(
                host,
                f"has Python {host_python or '?'} on {facts.get('machine') or '?'}, but the "
                f"wheelhouse holds binary wheels for Python {control_python} on "
                f"{platform.machine()} ({tags[0]}, {tags[1]}); run readiness with that Python "
                "version, or point the host's 'python' at a matching interpreter",
            )


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


# The push stream stays in memory up to this size, and is spooled to a temporary file
# past it: a wheelhouse of a GB costs the control node disk, not memory.
SPOOL_BYTES = 8 << 20


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    """A file of the control node, copied into the stream from disk in pieces."""
    with path.open("rb") as handle:
        info = tarfile.TarInfo(name)
        info.size = os.fstat(handle.fileno()).st_size
        info.mode = 0o644
        tar.addfile(info, handle)


def push_stream(
    parts: list[str],
    needs: HostNeeds,
    artifacts: Artifacts,
    patches: Mapping[str, Delta] | None = None,
) -> bytes:
    """The stream of :func:`open_push_stream` as bytes (for tests and small pushes)."""
    with open_push_stream(parts, needs, artifacts, patches) as stream:
        return stream.read()


def open_push_stream(
    parts: list[str],
    needs: HostNeeds,
    artifacts: Artifacts,
    patches: Mapping[str, Delta] | None = None,
) -> IO[bytes]:
    """One uncompressed tar holding the parts (bundles inside are already gzip'd), in a
    spooled temporary file positioned at its start; wheels are copied from disk in
    pieces. A code part in ``patches`` goes as its difference. The caller closes it
    (which removes the file)."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned)
    try:
        _write_push(out, parts, needs, artifacts, patches or {})
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def patches_for(parts: list[str], found: Probe, artifacts: Artifacts) -> dict[str, Delta]:
    """The code parts to send as their difference: those whose tree on the host (as the
    probe found it) is one whose manifest the control node kept, when that is smaller."""
    out: dict[str, Delta] = {}
    for part in ("app", "client"):
        if part not in parts or artifacts.trees is None:
            continue
        patch = artifacts.trees.patch(artifacts.bundle(part), found.markers.get(f"{part}_tree", ""))
        if patch is not None:
            out[part] = patch
    return out


def _write_push(
    out: IO[bytes],
    parts: list[str],
    needs: HostNeeds,
    artifacts: Artifacts,
    patches: Mapping[str, Delta],
) -> None:
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for part in parts:
            if part in patches:
                _add(tar, f"{part}.delta.tgz", patches[part].data)
                _add(tar, f"{part}.removed", patches[part].removed)
            elif part in ("app", "client"):
                _add(tar, f"{part}.tgz", artifacts.bundle(part).data)
            elif needs.tool is not None and part == needs.tool.part:
                _add_file(tar, "uv.whl", needs.tool.wheel)
            elif part.startswith("wheels-"):
                digest = part.removeprefix("wheels-")
                house = next(w for w in needs.venvs if w.digest == digest)
                for wheel in house.wheels:
                    _add_file(tar, f"{part}/{wheel.name}", wheel)
            elif part == "etc":
                assert needs.config is not None
                for name in sorted(needs.config.files):
                    _add(tar, f"etc/{name}", needs.config.data(name))
                secrets = secrets_text(needs.config.secrets).encode()
                _add(tar, f"etc/{SECRETS_FILE}", secrets, 0o600)


def install_script(
    layout: Layout,
    python: str,
    parts: list[str],
    artifacts: Artifacts,
    needs: HostNeeds,
    patches: Mapping[str, Delta] | None = None,
    *,
    links: list[str] | None = None,
    venv_cache: str = "",
) -> str:
    """Unpack the stream on stdin and install each part; replaces are atomic renames.

    Every part replaces its folder whole, so a file a run added there disappears. The
    script runs marked with the deploy root (``MARKER_VAR``) like layers and servers, so
    that teardown stops an install cut short by Ctrl-C, pip included; and it writes the
    settings and secrets last, after every virtualenv is built and sealed, so that an
    install stopped halfway never leaves secrets or a marker the next probe would trust.

    With a ``venv_cache``, venvs are built once per host (and Python) in that folder and
    the root's ``venvs/DIGEST`` link to them; ``links`` are the digests to link only.
    """
    return render(
        "install.sh",
        layout=layout,
        python=python,
        marker_var=MARKER_VAR,
        marker_root=layout.root,
        complete=COMPLETE,
        secrets_file=SECRETS_FILE,
        parts=" ".join(parts),
        digests={
            "app": artifacts.app.digest,
            "client": artifacts.client.digest,
            "etc": needs.config.digest if needs.config is not None else "",
        },
        keep=" ".join(w.digest for w in needs.venvs),
        uv=needs.tool.part if needs.tool is not None else "",
        uv_member=needs.tool.member if needs.tool is not None else "",
        digest_file=DIGEST_FILE,
        venv_failed_exit=VENV_FAILED_EXIT,
        patches=" ".join(patches or {}),
        trees={"app": artifacts.app.tree, "client": artifacts.client.tree},
        cache_dirs=CACHE_DIRS,
        cache_suffixes=CACHE_SUFFIXES,
        patch_failed_exit=PATCH_FAILED_EXIT,
        links=" ".join(links or []),
        venv_cache=venv_cache,
        cache_keep=VENV_CACHE_KEEP,
        cache_idle_s=VENV_CACHE_IDLE_S,
        venv_uncached_exit=VENV_UNCACHED_EXIT,
        relock_exit=tree_state.RELOCK_EXIT,
    )


def push(
    transport: Transport,
    layout: Layout,
    python: str,
    needs: HostNeeds,
    artifacts: Artifacts,
    found: Probe,
    *,
    venv_cache: str = "",
) -> PushReport:
    """Send what the host lacks and install it: one round trip, or none when it lacks
    nothing (two when the host refuses a patch, or no longer holds a venv it was to
    link from ``venv_cache``, the host's cache of built venvs: none when empty)."""
    start = time.monotonic()
    if not venv_cache or pip_asked():
        venv_cache, found = "", _uncached(found)
    parts, links = missing(needs, found, artifacts), cached(needs, found)
    if not parts and not links:
        return PushReport(transport.name, (), 0, 0, time.monotonic() - start)
    tried = patches = patches_for(parts, found, artifacts)
    trips = size = 0
    while True:
        with open_push_stream(parts, needs, artifacts, patches) as stream:
            size += stream.seek(0, os.SEEK_END)
            stream.seek(0)
            script = install_script(
                layout, python, parts, artifacts, needs, patches, links=links, venv_cache=venv_cache
            )
            result = transport.run(script, timeout=900, stdin=stream)
        trips += 1
        if result.timed_out:
            break
        # Rare, so simple: one more round trip. The host's folder was not the tree it
        # reported (changed since the probe): the bundles whole. Or a venv to link left
        # the cache since the probe (the install stopped before changing anything): its
        # wheels.
        if patches and result.exit_code == PATCH_FAILED_EXIT:
            patches = {}
        elif links and result.exit_code == VENV_UNCACHED_EXIT:
            found = _uncached(found)
            parts, links = missing(needs, found, artifacts), []
        else:
            break
    result.check("installing the application and its virtualenvs")
    return PushReport(
        transport.name,
        tuple(parts),
        size,
        trips,
        time.monotonic() - start,
        tuple(drifted(needs, found, artifacts)),
        installer=installer_used(result.stdout),
        patched=tuple((part, d.changed, d.gone, part in patches) for part, d in tried.items()),
        linked=tuple(d for d in linked_from(result.stdout) if d in {w.digest for w in needs.venvs}),
    )


def pip_asked() -> bool:
    """``READINESS_INSTALLER=pip`` asks for venvs that pip builds (to rule uv out, or to
    time pip): the host's cache, where uv may have built them, is then left alone and
    each deploy root builds its own, as before the cache."""
    return os.environ.get(ENV_CHOICE, "").strip().lower() == "pip"


def _uncached(found: Probe) -> Probe:
    """The probe as if the host's cache held nothing: every venv the root lacks is sent."""
    return Probe({**found.markers, "venvs_cached": ""}, found.facts)


def installer_used(stdout: str) -> str | None:
    """What the install script said built the venvs (``readiness: installer=uv 0.9.30``);
    None when it built none."""
    for line in stdout.splitlines():
        if line.startswith("readiness: installer="):
            return line.removeprefix("readiness: installer=").strip()[:40] or None
    return None


def linked_from(stdout: str) -> list[str]:
    """The venvs the install script said it took from the host's cache
    (``readiness: linked=DIGEST ...``); hex names only."""
    for line in stdout.splitlines():
        if line.startswith("readiness: linked="):
            words = line.removeprefix("readiness: linked=").split()
            return [d for d in dict.fromkeys(words) if _HEX.fullmatch(d)]
    return []


# -- teardown ---------------------------------------------------------------------------


def stray_kill_script(layout: Layout) -> str:
    """Stop every process still carrying this deploy root's marker in its environment, or
    in its cgroup, and remove the cgroup.

    Layers and servers export the marker, and their children inherit it, so this finds
    what an interrupted layer left behind (a pytest still running after Ctrl-C), or a
    server of an earlier run that was killed, without ever matching by name. A process
    that dropped its environment and left its session (``setsid env -i ...``) has no
    marker; where the host has cgroup v2, layers and servers run in a cgroup per deploy
    root, which no process leaves by itself, so it is found there (see scripts/lib.sh).
    """
    return render("stray_kill.sh", marker=layout.marker, root=layout.root)


def forget_script(layout: Layout, run_id: str) -> str:
    """Remove the host's secrets and this run's results; the next deploy resends them."""
    return render(
        "forget.sh",
        secrets=layout.secrets,
        digest=f"{layout.etc}/{DIGEST_FILE}",
        incoming=f"{layout.root}/.incoming",
        results=layout.results(run_id),
    )


def tail_script(path: str, max_bytes: int) -> str:
    """The last ``max_bytes`` of a file, if it exists (prints nothing, exit 1, if not)."""
    return render("tail.sh", path=path, max_bytes=max_bytes)
