"""A scorer replica's side of the registry: poll the pointer, fetch, verify, load, swap.

Poll, not push: the pointer is one small GET per router per interval, every replica
converges on its own (a replica that starts late, restarts or missed a message reads
the same pointer), and nothing has to track which replicas exist. Jitter spreads the
replicas' polls so a promote does not make every node download in the same second.

Order of a check (``RouterSync.check``): read the pointer and the version it names
(signature checked when a key is configured); if it is not what is loaded, make sure
the artifact is in the node's cache (one downloader per node behind the injected
``DownloadLock``; every download verified file by file), then load it off the event
loop and swap (``RoutingService.reload``: a batch in flight finishes on the router it
started with). Any failure leaves the loaded version serving and is recorded in
``SyncState`` (``/router/info``, readiness, a metric). A version refused for its
content (bad hash, signature, unloadable) is not downloaded again for ``retry_refused_s``.
Must not: import ``app`` or ray (the lock and the reporter are injected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from router_models.inference.base import one_line
from router_models.registry.cache import ArtifactCache
from router_models.registry.errors import RegistryError, VersionRefusedError
from router_models.registry.store import RouterRegistry, VersionInfo

log = logging.getLogger("routeiq.router_sync")
T = TypeVar("T")


class DownloadLock(Protocol):
    """One downloader per node: ``held(name)`` yields how the download is coordinated."""

    def held(self, name: str) -> contextlib.AbstractAsyncContextManager[str]: ...


class NoLock:
    """No coordination (no Redis configured): every replica downloads what it lacks."""

    @contextlib.asynccontextmanager
    async def held(self, name: str) -> AsyncIterator[str]:
        yield "unlocked: no redis configured"


@dataclass
class SyncState:
    """What one replica serves for one registry router, and how its last checks went."""

    router: str
    registry: str
    version: str | None = None
    sha256: str | None = None
    loaded_at: float | None = None
    healthy: bool = True
    """The last check succeeded (the pointer's version is loaded)."""
    last_error: str | None = None
    last_error_at: float | None = None
    last_check_at: float | None = None
    download: str = ""
    """How the last download was coordinated (``locked``, ``cached``, ``unlocked: ...``)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RouterSync:
    """Keeps one router of one replica on its registry pointer's current version."""

    def __init__(self, router: str, registry: RouterRegistry, cache: ArtifactCache, load: Callable[[str], None],
                 lock: DownloadLock | None = None, *, node: str = "", retry_refused_s: float = 300.0) -> None:
        self.router, self._registry, self._cache, self._load = router, registry, cache, load
        self._lock, self._node = lock or NoLock(), node
        self._retry_refused_s = retry_refused_s
        self._refused: dict[str, tuple[float, str]] = {}
        self.state = SyncState(router, str(registry.location))

    async def initial(self) -> str:
        """The local path to start serving from: the pointer's version, else (store down) the
        one this node served last, if still cached. Raises when neither exists."""
        self.state.last_check_at = time.time()
        try:
            info = await asyncio.to_thread(self._registry.current, self.router)
            path = await self._ensure(info)
        except (RegistryError, OSError) as err:
            remembered = self._cache.remembered(str(self._registry.location), self.router)
            if remembered is None:
                raise RegistryError(f"router {self.router!r}: {err}") from None
            self._failed(err)
            self.state.version, self.state.sha256 = remembered
            log.warning("router %s: registry unreachable, serving cached %s: %s", self.router, remembered[0], err)
            return str(self._cache.path(remembered[1]))
        self._served(info)
        return str(path)

    def mark_loaded(self) -> None:
        """The service loaded what ``initial`` returned."""
        self.state.loaded_at = time.time()

    async def check(self) -> bool:
        """One poll; ``True`` when a new version was loaded and swapped in."""
        self.state.last_check_at = time.time()
        try:
            info = await asyncio.to_thread(self._registry.current, self.router)
            if info.version == self.state.version and info.sha256 == self.state.sha256:
                self.state.healthy = True
                return False
            self._check_not_refused(info)
            path = await self._ensure(info)
            try:
                await asyncio.to_thread(self._load, str(path))
            except Exception as err:
                self._refuse(info, err)
                raise
        except Exception as err:  # noqa: BLE001 - a failed check keeps the loaded version serving
            self._failed(err)
            return False
        previous = self.state.sha256
        self._served(info)
        self.state.loaded_at = time.time()
        log.info("router %s now serves %s (%s)", self.router, info.version, info.sha256[:12])
        await asyncio.to_thread(self._prune, {info.sha256, *([previous] if previous else [])})
        return True

    def _prune(self, keep: set[str]) -> None:
        """Drop cached versions no router of this node serves (the previous one stays: a
        rollback loads it without a download)."""
        try:
            if removed := self._cache.prune(keep):
                log.info("router cache: removed %s", ", ".join(name[:12] for name in removed))
        except OSError as err:
            log.warning("router cache: pruning failed: %s", one_line(err))

    async def _ensure(self, info: VersionInfo) -> Path:
        """The version's verified directory in the node's cache, downloaded if missing."""
        if self._cache.has(info.sha256):
            self.state.download = "cached"
            return self._cache.path(info.sha256)
        async with self._lock.held(f"{self._node}:{info.sha256}") as how:
            self.state.download = how
            try:
                return await asyncio.to_thread(self._cache.fill, info.sha256,
                                               lambda d: self._registry.fetch(info, d))
            except VersionRefusedError as err:
                self._refuse(info, err)
                raise

    def _refuse(self, info: VersionInfo, err: BaseException) -> None:
        self._refused[f"{info.version}:{info.sha256}"] = (time.monotonic(), one_line(err))

    def _check_not_refused(self, info: VersionInfo) -> None:
        refused = self._refused.get(f"{info.version}:{info.sha256}")
        if refused and time.monotonic() - refused[0] < self._retry_refused_s:
            raise VersionRefusedError(f"{info.version} was refused (retried later): {refused[1]}")

    def _served(self, info: VersionInfo) -> None:
        self.state.version, self.state.sha256, self.state.healthy = info.version, info.sha256, True
        try:
            self._cache.remember(str(self._registry.location), self.router, info.version, info.sha256)
        except OSError as err:  # only the cold start with the store down needs it
            log.warning("router %s: cannot record the served version: %s", self.router, err)

    def _failed(self, err: BaseException) -> None:
        self.state.healthy, self.state.last_error, self.state.last_error_at = False, one_line(err), time.time()
        log.error("router %s: sync failed, keeping %s: %s", self.router, self.state.version, one_line(err))


Reporter = Callable[[list[SyncState]], Awaitable[None]]
"""Called after every round of checks (e.g. writes the replica's state to Redis)."""


class SyncLoop:
    """A daemon thread with its own event loop that polls every ``RouterSync``.

    Its own loop, not the replica's: the constructor (synchronous) runs the first fetch on
    it, and the Redis client of the lock is bound to it. ``interval_s`` ± ``jitter``.
    """

    def __init__(self, syncs: list[RouterSync], interval_s: float, *, jitter: float = 0.2,
                 reporter: Reporter | None = None, on_round: Callable[[list[SyncState]], None] | None = None) -> None:
        self.syncs, self._interval, self._jitter = syncs, interval_s, jitter
        self._reporter, self._on_round = reporter, on_round
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="router-sync", daemon=True)
        self._thread.start()
        self._task: asyncio.Task[None] | None = None

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run ``coro`` on the sync loop and wait for it (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def start(self) -> None:
        async def spawn() -> asyncio.Task[None]:
            return asyncio.get_running_loop().create_task(self._run())

        self._task = self.call(spawn())

    def states(self) -> list[SyncState]:
        return [s.state for s in self.syncs]

    async def round(self) -> None:
        """Check every router once, then report."""
        for sync in self.syncs:
            await sync.check()
        states = self.states()
        if self._on_round is not None:
            self._on_round(states)
        if self._reporter is not None:
            try:
                await self._reporter(states)
            except Exception as err:  # noqa: BLE001 - reporting is best effort; serving goes on
                log.warning("router sync: cannot report state: %s", one_line(err))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval * random.uniform(1 - self._jitter, 1 + self._jitter))
            try:
                await self.round()
            except Exception as err:
                log.exception("router sync round failed: %s", one_line(err))

    def stop(self) -> None:
        """Cancel the polling (a check in progress is abandoned) and end the thread."""
        task = self._task

        async def cancel() -> None:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.call(cancel(), timeout_s=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
