"""Load generators: wrk for requests (native: a Python client would steal the CPU it
measures on 2 cores) and a lean aiohttp client for time-to-first-token of streams.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def require_wrk() -> None:
    """Exit with one clear line when ``wrk`` is missing (before any server is started)."""
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk not found; install it (Debian: apt install wrk)")


def wrk(url: str, body: dict, key: str, connections: int, seconds: float) -> WrkResult:
    """Run wrk with a POST body; parse throughput and latency percentiles."""
    lua = (
        'wrk.method = "POST"\n'
        f"wrk.body = [[{orjson.dumps(body).decode()}]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    threads = 1 if connections < 2 else 2
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
           "--latency", "-s", f.name, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    Path(f.name).unlink()
    pct = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)\s*$", out, re.M))
    if "50" not in pct:
        raise RuntimeError(f"wrk printed no latency distribution:\n{out}")
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, _ms(pct["50"]), _ms(pct["99"]), errors)


@dataclass(frozen=True)
class StreamResult:
    streams_per_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    total_p50_ms: float
    errors: int


async def _streams(url: str, body: dict, key: str, concurrency: int, seconds: float) -> StreamResult:
    ttfts: list[float] = []
    totals: list[float] = []
    errors = 0
    data = orjson.dumps(body)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            async with session.post(url, data=data, headers=headers) as resp:
                first = None
                async for _ in resp.content.iter_any():
                    first = first or time.perf_counter()
                if resp.status != 200 or first is None:
                    errors += 1
                    continue
            ttfts.append((first - start) * 1000)
            totals.append((time.perf_counter() - start) * 1000)

    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    q = statistics.quantiles(ttfts, n=100)
    return StreamResult(len(ttfts) / elapsed, statistics.median(ttfts), q[98], statistics.median(totals), errors)


def streams(url: str, body: dict, key: str, concurrency: int, seconds: float) -> StreamResult:
    """Streams/s and time to first byte of streamed responses at a concurrency."""
    return asyncio.run(_streams(url, body, key, concurrency, seconds))
