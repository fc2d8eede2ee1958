"""Hot reload of the role files: validate everything first, then swap the chat service's catalog at once.

A reload (SIGHUP, or `serve --watch` seeing a role file change) loads the role
files with the same loader and validator as start-up. A bad file refuses the
whole reload with the same message start-up would print; it is logged and
counted, and the roles already loaded keep serving. A good one becomes a new
`RoleCatalog` (registry and backends), handed to the chat service in one
assignment: requests already running keep the `Role` they resolved; a version
that is gone keeps its backend for `drain_s` (its requests finish on it) and
then its backend is closed, while new requests can no longer name it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from rolescope.errors import ConfigError
from rolescope.exporters import names
from rolescope.inference.base import InferenceBackend
from rolescope.role_registry import RoleRegistry
from rolescope.roles import ROLE_SUFFIXES, Role, load_roles
from rolescope.service.chat import ChatService
from rolescope.service.role_catalog import RoleCatalog

logger = logging.getLogger("rolescope.reload")

LoadRoles = Callable[[Path], RoleRegistry[Role]]
BuildBackends = Callable[[RoleRegistry[Role], RoleCatalog], dict[str, InferenceBackend]]
Check = Callable[[RoleRegistry[Role]], None]  # raises ConfigError: a rule beyond the role files' own
Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    outcome: str  # names.RELOAD_APPLIED or names.RELOAD_REFUSED
    message: str  # what changed, or why the new files were refused


def role_files_fingerprint(path: Path) -> Fingerprint:
    """Name, modification time and size of every role file: what `--watch` compares between polls."""
    try:
        files = (
            sorted(p for p in path.iterdir() if p.suffix in ROLE_SUFFIXES and not p.name.startswith("."))
            if path.is_dir()
            else [path]
        )
    except OSError:
        return ()
    found: list[tuple[str, int, int]] = []
    for file in files:
        try:
            stat = file.stat()  # follows symlinks: a Kubernetes ConfigMap update swaps one
            found.append((file.name, stat.st_mtime_ns, stat.st_size))
        except OSError:
            found.append((file.name, -1, -1))
    return tuple(found)


def describe_change(old: RoleRegistry[Role], new: RoleRegistry[Role]) -> str:
    before = {r.reference: r for r in old.all_versions()}
    after = {r.reference: r for r in new.all_versions()}
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(ref for ref in after.keys() & before.keys() if after[ref] != before[ref])
    parts = [f"{label} {', '.join(refs)}" for label, refs in
             (("added", added), ("removed", removed), ("changed", changed)) if refs]
    return "; ".join(parts) or "no change"


class RoleReloader:
    """Reloads one chat service's roles; one reload at a time."""

    def __init__(
        self,
        service: ChatService,
        roles_path: Path,
        build_backends: BuildBackends,
        *,
        load: LoadRoles = load_roles,
        checks: Iterable[Check] = (),
        on_applied: Callable[[RoleRegistry[Role]], None] = lambda registry: None,
        count: Callable[[str], None] = lambda outcome: None,
        grace_s: float = 10.0,
    ) -> None:
        self._service = service
        self._roles_path = roles_path
        self._build_backends = build_backends
        self._load = load
        self._checks = tuple(checks)
        self._on_applied = on_applied
        self._count = count
        self._grace_s = grace_s
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()
        self._retiring: list[RoleCatalog] = []  # replaced catalogs whose requests may still run

    def _validated(self) -> RoleRegistry[Role]:
        registry = self._load(self._roles_path)
        for check in self._checks:
            check(registry)
        return registry

    async def reload(self, trigger: str) -> ReloadResult:
        async with self._lock:
            old = self._service.catalog
            try:
                registry = await asyncio.to_thread(self._validated)
                backends = self._build_backends(registry, old)  # e.g. an API key variable not set
            except ConfigError as exc:
                self._count(names.RELOAD_REFUSED)
                logger.error("role reload (%s) refused; the loaded roles keep serving: %s", trigger, exc)
                return ReloadResult(names.RELOAD_REFUSED, str(exc))
            removed = {
                role.reference: old.backend(role)
                for role in old.registry.all_versions()
                if role.reference not in backends
            }
            self._service.replace_catalog(
                RoleCatalog(registry, backends, {**old.retired, **removed})
            )
            self._on_applied(registry)
            self._count(names.RELOAD_APPLIED)
            change = describe_change(old.registry, registry)
            logger.warning("role reload (%s) applied: %s", trigger, change)
            self._retiring.append(old)  # now, not in the task: a shutdown may come before it starts
            self._later(self._retire(removed, old))
            return ReloadResult(names.RELOAD_APPLIED, change)

    def _drain_s(self, old: RoleCatalog) -> float:
        """Long enough for a request that started on the old roles to finish: the longest inference
        timeout among them, plus the grace a slow client gets to read the rest of a stream."""
        timeouts = [role.inference.timeout_ms / 1000 for role in old.registry.all_versions()]
        return max(timeouts, default=0.0) + self._grace_s

    async def _retire(self, removed: dict[str, InferenceBackend], old: RoleCatalog) -> None:
        """After the drain, forget the removed versions and close the old backends nothing uses."""
        await asyncio.sleep(self._drain_s(old))
        current = self._service.catalog
        retired = {ref: b for ref, b in current.retired.items() if ref not in removed}
        self._service.replace_catalog(replace(current, retired=retired))
        self._retiring.remove(old)
        await self._close_unused([old])

    async def _close_unused(self, catalogs: list[RoleCatalog]) -> None:
        in_use = {id(b) for b in self._service.catalog.distinct_backends()}
        in_use |= {id(b) for pending in self._retiring for b in pending.distinct_backends()}
        for catalog in catalogs:
            for backend in catalog.distinct_backends():
                if id(backend) not in in_use:
                    in_use.add(id(backend))
                    await _close_quietly(backend)

    def _later(self, work: object) -> None:
        assert asyncio.iscoroutine(work)
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def request(self, trigger: str) -> None:
        """Start a reload from the event loop's thread (a signal handler hands over to it)."""
        self._later(self.reload(trigger))

    async def watch(self, interval_s: float = 1.0) -> None:
        """Poll the role files; reload once a change has settled (the same for two polls in a row),
        so an editor's half-written file is not taken. A refused state is not retried until it changes."""
        tried = role_files_fingerprint(self._roles_path)
        previous = tried
        while True:
            await asyncio.sleep(interval_s)
            current = await asyncio.to_thread(role_files_fingerprint, self._roles_path)
            if current != tried and current == previous:
                tried = current
                await self.reload("role files changed")
            previous = current

    def start_watching(self, interval_s: float) -> None:
        self._later(self.watch(interval_s))

    async def aclose(self) -> None:
        """Stop watching and retiring; close the backends that were waiting to be retired."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        pending, self._retiring = self._retiring, []
        await self._close_unused(pending)


async def _close_quietly(backend: InferenceBackend) -> None:
    try:
        await backend.aclose()
    except Exception:  # a backend that cannot close cleanly must not stop the others
        logger.warning("could not close a retired inference backend", exc_info=True)
