"""One ingress replica's config sync: poll, validate completely, then apply (or refuse), report.

Each round (every ``poll_interval_s``, moved by up to ``poll_jitter``):

1. With Redis, follow the applied-version record (``record.SyncRecord``): a version another
   replica validated and applied is applied here too, from the record's text. This is how
   replicas converge on one version even if they read the source at different moments.
2. Ask the source whether anything changed (an S3 HEAD's ETag, a file's mtime and size);
   if so, fetch it and validate it completely (``validate.validate_text``) in a thread.
   An invalid version is never applied: the running config stays, the error is kept (and
   reported) until the source holds another version. A valid one is published to the
   record (compare-and-set: written once however many replicas find it) and applied.
3. Report this replica's applied version (Redis hash) for ``/config/sync/status``.

Applying is a synchronous swap of the gateway's snapshot (``apply``): between two awaits,
so a request sees either the old config or the new one, never half of each. A version that
changes the graph (``changes.graph_changes``) is handed to the ``GraphUpdater`` (a Serve
update of the application, deployments/config_update.py) and stays *pending* here: this
replica keeps the running config until the update replaces it.

Must not: raise out of a round (every failure becomes ``last_error`` and a metric), block
the event loop (boto3 and validation run in threads), or apply anything unvalidated.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from app.background import stop
from app.config import ConfigError, ConfigSyncSettings, GatewayConfig
from app.config_sync.changes import graph_changes
from app.config_sync.diff import diff_configs
from app.config_sync.record import SyncRecord
from app.config_sync.source import ConfigSource, SourceError
from app.config_sync.validate import validate_text
from app.gateway.metrics import Metrics

log = logging.getLogger("routeiq.config_sync")
Audit = Callable[[str, str | None, str, dict[str, Any]], Awaitable[None]]
"""``(action, target, outcome, detail)`` into the audit log (``config.apply``, ``config.reject``)."""


class GraphUpdateError(Exception):
    """A version that changes the graph could not be handed to Serve."""


class GraphUpdater(Protocol):
    """Applies a version that changes the graph (a Serve update of the application)."""

    async def update(self, cfg: GatewayConfig, version: str, config_hash: str) -> str:
        """Start the update; a line saying what was done (or that another replica does it)."""
        ...


def config_hash(cfg: GatewayConfig) -> str:
    """The identity of a config's content (formatting and comments do not count)."""
    return hashlib.sha256(cfg.model_dump_json(by_alias=True).encode()).hexdigest()[:16]


@dataclass
class Applied:
    cfg: GatewayConfig
    version: str
    hash: str
    applied_at: float
    seq: int = 0

    def state(self) -> dict[str, Any]:
        return {"version": self.version, "hash": self.hash, "applied_at": self.applied_at, "seq": self.seq}


@dataclass
class SyncError:
    kind: str
    """``source`` (unreadable), ``invalid`` (a version refused), ``redis``, ``update`` (graph update failed)."""
    message: str
    at: float = field(default_factory=time.time)
    version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "at": self.at, "version": self.version}


class ConfigSync:
    """The watcher of one ingress replica (plain class: tests drive ``check_once``)."""

    def __init__(self, cfg: GatewayConfig, source: ConfigSource, apply: Callable[[GatewayConfig], None], *,
                 replica: str, record: SyncRecord | None = None, metrics: Metrics | None = None,
                 audit: Audit | None = None, updater: GraphUpdater | None = None, root: Path | None = None,
                 redis_timeout_s: float = 2.0, rng: random.Random | None = None) -> None:
        self.settings: ConfigSyncSettings = cfg.general_settings.config_sync
        self.source, self.replica = source, replica
        self._apply, self._record, self._metrics = apply, record, metrics
        self._audit, self._updater, self._root = audit, updater, root
        self._redis_timeout, self._rng = redis_timeout_s, rng or random.Random()
        self.applied = Applied(cfg, "startup", config_hash(cfg), time.time())
        self.last_check_at: float | None = None
        self.last_error: SyncError | None = None
        self.last_change: dict[str, Any] | None = None
        self.pending: dict[str, Any] | None = None
        self._seen_tag: str | None = None
        self._rejected: SyncError | None = None  # the refusal of the source's current version
        self._task: asyncio.Task[None] | None = None

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="config-sync")

    async def close(self) -> None:
        await stop(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.next_delay())

    def next_delay(self) -> float:
        jitter = self.settings.poll_jitter
        return self.settings.poll_interval_s * (1 + self._rng.uniform(-jitter, jitter))

    # one round -----------------------------------------------------------------------------
    async def check_once(self) -> None:
        """Follow the record, check the source, report; failures are recorded, never raised."""
        self.last_check_at = time.time()
        error: SyncError | None = None
        try:
            if self._record is not None:
                await self._follow_record()
            await self._check_source()
        except SourceError as err:
            error = SyncError("source", str(err))
        except GraphUpdateError as err:
            error = SyncError("update", str(err))
        except ConfigError as err:  # a record's text that does not hold here (e.g. a secret this replica lacks)
            error = SyncError("invalid", "; ".join(err.problems))
        except Exception as err:  # noqa: BLE001  (Redis or anything else: reported, the replica serves on)
            error = SyncError("redis" if _is_redis(err) else "error", f"{type(err).__name__}: {err}")
        await self._settle(error or self._rejected)

    async def _settle(self, error: SyncError | None) -> None:
        if error is not None and (self.last_error is None or self.last_error.message != error.message):
            log.warning("config sync (%s): %s", error.kind, error.message)
        if error is not None and error is not self.last_error:
            self._count_error(error.kind)
        self.last_error = error
        if self._record is not None:
            try:
                async with asyncio.timeout(self._redis_timeout):
                    await self._record.report(self.replica, {"replica": self.replica, **self.applied.state(),
                                                             "last_check_at": self.last_check_at,
                                                             "error": error.as_dict() if error else None,
                                                             "pending": self.pending})
            except Exception as err:  # noqa: BLE001  (the report is best effort; the next round reports again)
                log.info("config sync: state not reported (%s)", type(err).__name__)

    def _count_error(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.config_sync_error(reason=kind)

    async def _follow_record(self) -> None:
        assert self._record is not None
        async with asyncio.timeout(self._redis_timeout):
            record = await self._record.read()
        if record is None:
            return
        if record["hash"] == self.applied.hash:
            self.applied.version, self.applied.seq = record["version"], record["seq"]
            self._report_version()
            return
        if self.pending is not None and self.pending["hash"] == record["hash"]:
            return  # a graph update of that version is on its way
        cfg = await asyncio.to_thread(validate_text, record["text"], "the applied-version record", self._root,
                                      check_artifacts=False)
        await self._adopt(cfg, record["version"], record["hash"], record["seq"], published=False)

    async def _check_source(self) -> None:
        tag = await asyncio.to_thread(self.source.tag)
        if tag == self._seen_tag:
            return
        fetched = await asyncio.to_thread(self.source.fetch)
        self._rejected = None
        if fetched.version in (self.applied.version, (self.pending or {}).get("version")):
            self._seen_tag = tag
            return
        try:
            cfg = await asyncio.to_thread(validate_text, fetched.text, self.source.location, self._root)
        except ConfigError as err:
            self._seen_tag, self._rejected = tag, SyncError("invalid", "; ".join(err.problems), version=fetched.version)
            log.warning("config %s refused, the running config stays: %s", fetched.version, err)
            await self._audited("config.reject", fetched.version, "invalid", {"problems": err.problems})
            return
        digest = config_hash(cfg)
        seq, published = await self._publish(fetched.version, digest, fetched.text, cfg)
        await self._adopt(cfg, fetched.version, digest, seq, published=published)
        self._seen_tag = tag  # only now: a round that failed on the way (Redis down) tries this version again

    async def _publish(self, version: str, digest: str, text: str, cfg: GatewayConfig) -> tuple[int, bool]:
        """Write the record: its ``seq``, and whether this replica wrote it (without Redis: 0, True).
        When another replica wrote this content first, its ``seq`` (replicas agree at once)."""
        if self._record is None:
            return 0, True
        body = {"version": version, "hash": digest, "text": text, "source": self.source.location,
                "published_at": time.time(), "published_by": self.replica,
                "diff": diff_configs(self.applied.cfg, cfg)}
        async with asyncio.timeout(self._redis_timeout):
            if seq := await self._record.publish(body):
                return seq, True
            record = await self._record.read()
        return (int(record["seq"]) if record and record["hash"] == digest else 0), False

    async def _adopt(self, cfg: GatewayConfig, version: str, digest: str, seq: int, *, published: bool) -> None:
        """Apply a valid version here: in place, or through a graph update (then it stays pending)."""
        if digest == self.applied.hash:
            self.applied.version, self.applied.seq = version, seq or self.applied.seq
            self._report_version()
            return
        diff = diff_configs(self.applied.cfg, cfg)
        if reasons := graph_changes(self.applied.cfg, cfg):
            await self._update_graph(cfg, version, digest, reasons, diff, published)
            return
        before = self.applied
        self._apply(cfg)  # synchronous: requests see the old snapshot or the new one
        self.applied = Applied(cfg, version, digest, time.time(), seq or before.seq + (self._record is None))
        self.pending = None
        self.last_change = {"from": before.state(), "to": self.applied.state(), "how": "in place", "diff": diff}
        log.info("config %s applied in place (%d changes)", version, len(diff))
        self._report_version()
        if published:
            await self._audited("config.apply", version, "success",
                                {"hash": digest, "how": "in place", "diff": diff, "replica": self.replica})

    async def _update_graph(self, cfg: GatewayConfig, version: str, digest: str, reasons: list[str],
                            diff: list[str], published: bool) -> None:
        self.pending = {"version": version, "hash": digest, "reasons": reasons, "diff": diff}
        if self._updater is None:  # reported until the source holds another version, like an invalid one
            self._rejected = SyncError("update", f"config {version} changes the graph ({'; '.join(reasons)}) and "
                                       "this gateway cannot update its application: redeploy it", version=version)
            return
        try:
            done = await self._updater.update(cfg, version, digest)
        except Exception as err:  # noqa: BLE001  (Serve or Redis refusing: reported, retried next round)
            self.pending, self._seen_tag = None, None
            raise GraphUpdateError(f"config {version}: the Serve update failed ({type(err).__name__}: {err})") from None
        self.pending["update"] = done
        log.info("config %s changes the graph (%s): %s", version, "; ".join(reasons), done)
        if published:
            await self._audited("config.apply", version, "success",
                                {"hash": digest, "how": "serve update", "reasons": reasons, "diff": diff,
                                 "replica": self.replica})

    def _report_version(self) -> None:
        if self._metrics is not None:
            self._metrics.config_version(seq=self.applied.seq)

    async def _audited(self, action: str, version: str, outcome: str, detail: dict[str, Any]) -> None:
        if self._audit is None:
            return
        try:
            await self._audit(action, version, outcome, {"source": self.source.location, **detail})
        except Exception as err:  # noqa: BLE001  (the audit store down must not undo a valid apply)
            log.warning("config sync: audit row for %s not written (%s)", version, type(err).__name__)

    # reading -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any] | None:
        """Readiness detail: ``degraded`` while syncing fails (no message: readiness is public)."""
        if self.last_error is None:
            return None
        return {"status": "degraded", "error": self.last_error.kind, "since": self.last_error.at}

    async def status(self) -> dict[str, Any]:
        """``/config/sync/status``: this replica's view, the record and every replica's report."""
        out: dict[str, Any] = {
            "source": self.source.location, "replica": self.replica, "applied": self.applied.state(),
            "last_check_at": self.last_check_at,
            "last_error": self.last_error.as_dict() if self.last_error else None,
            "pending_update": self.pending, "last_change": self.last_change,
            "poll_interval_s": self.settings.poll_interval_s, "poll_jitter": self.settings.poll_jitter,
        }
        if self._record is None:
            out["replicas"] = [{"replica": self.replica, **self.applied.state(), "last_check_at": self.last_check_at}]
            out["replicas_note"] = "no Redis: each replica polls the source itself; only this one is listed"
            return out
        try:
            async with asyncio.timeout(self._redis_timeout):
                out["replicas"] = await self._record.replicas()
                record = await self._record.read()
        except Exception as err:  # noqa: BLE001  (Redis down: say so, keep this replica's view)
            out["replicas_error"] = type(err).__name__
            return out
        if record is not None:
            out["record"] = {k: v for k, v in record.items() if k != "text"}
            if self.last_change is None and record.get("diff") is not None:
                out["last_change"] = {"to": {"version": record["version"], "hash": record["hash"],
                                             "seq": record["seq"]}, "diff": record["diff"]}
        return out


def _is_redis(err: BaseException) -> bool:
    return type(err).__module__.startswith("redis") or isinstance(err, TimeoutError | OSError)
