"""Training learned routers with llmrouter-lib's router and trainer classes.

Only ``routeiq train`` and tests import this package: it pulls in llmrouter (7-9 s,
~700 MB). Serving never does (see ``router_models.inference``).
"""
