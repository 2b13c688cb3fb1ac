"""The ingress's clients of the other deployments: DeploymentHandles adapted to the gateway.

``HandleRouter`` and ``HandleProviders`` implement the gateway's ``RouterClient`` and
``ProviderPool`` protocols over Serve handles. This is the one boundary where Ray's
errors become RouteIQ's (``translated``): a full queue is a 503 ``OverloadedError``; a
replica that died or cannot be reached (actor died or unavailable, its node or worker
gone) is a 503 ``ReplicaUnavailableError``, never a 500. The gateway's core retries such
a call once (Serve sends it to another replica, or queues it for the replacement) and
then follows the fallback chain; the router client retries once itself, so with two
scorer replicas one death causes no fallback at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, cast

from ray.exceptions import LocalRayletDiedError, NodeDiedError, OwnerDiedError, RayActorError, WorkerCrashedError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.exceptions import ReplicaUnavailableError as ServeReplicaUnavailableError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from app.errors import OverloadedError, ReplicaUnavailableError, RouteIQError
from app.providers.base import ProviderCall, ProviderResult, StreamItem
from router_models.inference.types import RouteDecision, RouteQuery

Handle = DeploymentHandle[Any]
REPLICA_GONE: tuple[type[BaseException], ...] = (
    RayActorError, ServeReplicaUnavailableError, DeploymentUnavailableError, WorkerCrashedError, NodeDiedError,
    LocalRayletDiedError, OwnerDiedError)
"""Ray's ways of saying the replica that took a call is gone (``ActorDiedError`` and
``ActorUnavailableError`` are ``RayActorError``s)."""


@contextmanager
def translated(deployment: str) -> Iterator[None]:
    """Ray's errors around a handle call, as RouteIQ's (the replica's own errors pass)."""
    try:
        yield
    except RouteIQError:
        raise  # raised by the replica: Ray re-raises it as an instance of its own class
    except BackPressureError as err:
        raise OverloadedError(f"the gateway is overloaded ({err}); retry shortly", retry_after=1.0) from None
    except REPLICA_GONE as err:
        raise ReplicaUnavailableError(f"{deployment}: a replica is unavailable ({type(err).__name__}); "
                                      "retry shortly", retry_after=1.0) from None


class HandleRouter:
    """``RouterClient`` over the router-scoring deployment."""

    def __init__(self, handle: Handle) -> None:
        self._handle, self._route = handle, handle.route

    async def info(self) -> dict[str, Any]:
        """The answering replica's routers (``RouterScoring.describe``), for ``/router/info``."""
        with translated("router-scoring"):
            described: dict[str, Any] = await self._handle.describe.remote()
        return described

    async def route(self, query: RouteQuery) -> RouteDecision:
        """A decision; once more if the replica that took the query died (another one answers)."""
        try:
            return await self._ask(query)
        except ReplicaUnavailableError:
            return await self._ask(query)

    async def _ask(self, query: RouteQuery) -> RouteDecision:
        with translated("router-scoring"):
            decision: RouteDecision = await self._route.remote(query)
        return decision


class HandleProviders:
    """``ProviderPool`` over the provider-call deployments (one handle per group)."""

    def __init__(self, handles: dict[str, Handle]) -> None:
        self._complete = {g: h.complete for g, h in handles.items()}
        self._stream = {g: h.options(stream=True).stream for g, h in handles.items()}

    async def complete(self, group: str, call: ProviderCall) -> ProviderResult:
        with translated(f"Provider-{group}"):
            result: ProviderResult = await self._complete[group].remote(call)
        return result

    async def close(self) -> None:
        return None  # the provider deployments own their connections

    async def stream(self, group: str, call: ProviderCall) -> AsyncIterator[StreamItem]:
        gen = cast("DeploymentResponseGenerator[StreamItem]", self._stream[group].remote(call))
        finished = False
        try:
            with translated(f"Provider-{group}"):
                async for item in gen:
                    yield item
            finished = True
        finally:
            if not finished:
                gen.cancel()  # type: ignore[no-untyped-call]  # the client left: cancel the provider call upstream
