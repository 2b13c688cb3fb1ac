"""A fake OpenAI-compatible upstream: real HTTP and SSE, faults injectable per request.

Used by the tests, the demo and the benchmarks. See ``faults.py`` for the knobs.
"""

from devtools.fake_upstream.server import FakeUpstream, build_app

__all__ = ["FakeUpstream", "build_app"]
