"""Lab tools around the gateway: the fake upstream, config builders, servers for tests.

``make run`` (the demo's fake upstream), ``bench/`` and ``tests/`` use this package;
the product (``app``, ``deployments``, ``router_models``) must never import it, and the
image does not carry it (the Dockerfile copies only the product's folders). It runs
from the repository root and is not installed with the ``routeiq`` distribution.
"""
