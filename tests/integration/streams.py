"""Long chat streams held open while a Serve app rolls its replicas, and the replicas' ports.

Shared by the tests that redeploy under traffic (test_redeploy.py: a config change rolls
every replica; test_config_sync.py: a synced config adds a deployment). The fake upstream
paces each stream (``itl_ms``), so the streams are still running when the update lands;
``started`` is set once every stream has its first chunk, which is when a test may start it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import openai
import psutil


class Streams:
    """``n`` concurrent streams of ``tokens`` tokens each, the ``i``-th asking ``{tag}-{i}``."""

    def __init__(self, client: openai.AsyncOpenAI, model: str, tag: str, tokens: int, n: int = 20) -> None:
        self._client, self._model, self._tag, self._tokens, self._n = client, model, tag, tokens, n
        self.started = asyncio.Event()
        self.ended: list[float] = []  # monotonic time each stream finished at
        self._first_chunks = 0
        self.tasks = [asyncio.create_task(self._one(i)) for i in range(n)]

    async def _one(self, i: int) -> str:
        stream = await self._client.chat.completions.create(
            model=self._model, stream=True,
            messages=[{"role": "user", "content": f"{self._tag}-{i} [[fake tokens={self._tokens} itl_ms=100]]"}])
        parts: list[str] = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not parts:
                    self._first_chunks += 1
                    if self._first_chunks == self._n:
                        self.started.set()
                parts.append(chunk.choices[0].delta.content)
        self.ended.append(time.monotonic())
        return "".join(parts)

    async def finish(self) -> list[str]:
        """Each stream's text, once every one has ended."""
        return list(await asyncio.gather(*self.tasks))

    def assert_intact(self, texts: list[str]) -> None:
        """Every stream carried its whole answer: its own prompt's echo up to the last token."""
        for i, text in enumerate(texts):
            assert text.startswith(f"echo: {self._tag}-{i}") and text.endswith(f" t{self._tokens - 1}"), text

def direct_ingress_ports(route_prefix: str) -> list[int]:
    """Ports of the ingress replicas serving ``route_prefix`` (Serve's direct ingress)."""
    ports = []
    for conn in psutil.net_connections(kind="tcp"):
        port = conn.laddr.port
        if conn.status != psutil.CONN_LISTEN or not 30000 <= port < 31000:
            continue
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if route_prefix in httpx.get(f"http://127.0.0.1:{port}/-/routes", timeout=2).json():
                ports.append(port)
    return ports
