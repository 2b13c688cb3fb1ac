"""Anthropic's Messages API as a translation in front of the gateway's chat path.

``request`` turns a validated Messages body into an OpenAI chat body; ``response`` and
``stream`` turn the chat answer (JSON, or SSE chunks, incrementally) back into
Anthropic's shapes; ``errors`` gives RouteIQ's errors Anthropic's envelope. None of it
routes, limits or charges: the route hands the chat body to the same ``Exchange`` as
``/v1/chat/completions``, so all of that happens exactly as for chat.
"""
