"""RouteIQ's HTTP surface: FastAPI app, OpenAI schemas, auth, errors, gateway logic.

Nothing here imports ray, torch or llmrouter (a boundary test checks it): the app is
driven in-process by unit tests and mounted by ``deployments.ingress`` in Serve.
litellm is imported lazily, only by the provider clients that call it.
"""
