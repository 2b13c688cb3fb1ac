"""OpenAI's Responses API as a translation in front of the gateway's chat path.

``request`` turns a validated Responses body (``app.schemas.responses``) into an OpenAI
chat body; ``response`` and ``stream`` turn the chat answer (JSON, or SSE chunks,
incrementally) back into a ``response`` object and the Responses stream's typed events.
None of it routes, limits or charges: the route hands the chat body to the same
``Exchange`` as ``/v1/chat/completions``, so all of that happens exactly as for chat.
Errors need no translation: the Responses API uses OpenAI's error envelope.
"""
