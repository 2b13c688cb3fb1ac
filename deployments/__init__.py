"""RouteIQ's Ray Serve graph: thin deployment shells over the plain classes of ``app``
and ``router_models``. ``graph.build_app`` is the only place that calls
``serve.deployment`` and ``.bind``.
"""
