"""Run the fake upstream: ``python -m devtools.fake_upstream --port 9100``."""

from __future__ import annotations

import argparse

from aiohttp import web

from devtools.fake_upstream.faults import Faults
from devtools.fake_upstream.server import build_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--itl-ms", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=16)
    args = parser.parse_args()
    defaults = Faults(latency_ms=args.latency_ms, ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, tokens=args.tokens)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(build_app(defaults), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
