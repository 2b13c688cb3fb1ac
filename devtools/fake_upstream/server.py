"""aiohttp server speaking OpenAI's chat, completions, embeddings and models APIs, and Anthropic's Messages API.

Answers are deterministic: the reply echoes the last user message and pads it with
numbered tokens, so tests can check that each stream got its own content. Counters
at ``GET /_fake/stats`` let tests assert what the upstream saw (e.g. a cancelled
stream after a client disconnect); ``POST /_fake/reset`` clears them. A prompt carrying
``[[fake judge]]`` is answered as a judge would (``SCORE: x``, ``devtools.fake_upstream.judge``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections import Counter, deque
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from devtools.fake_upstream import judge
from devtools.fake_upstream import messages as anthropic
from devtools.fake_upstream import responses as openai_responses
from devtools.fake_upstream.faults import Faults, from_request

_ids = itertools.count()
UPSTREAM = web.AppKey("upstream", "FakeUpstream")
MODEL_NAMES = web.AppKey("model_names", tuple)
MAX_DIMENSIONS = 4096
"""Embedding vectors are never longer (a huge ``dimensions`` must not exhaust the test's memory)."""
_RECORDED_HEADERS = {"x-request-id", "traceparent", "tracestate", "authorization", "x-api-key",
                     "anthropic-version", "anthropic-beta"}


class FakeUpstream:
    """State shared by the handlers: defaults, counters, fail-times bookkeeping."""

    def __init__(self, defaults: Faults | None = None) -> None:
        self.defaults = defaults or Faults()
        self.stats: Counter[str] = Counter()
        self.seen_keys: Counter[str] = Counter()
        self.requests: deque[dict[str, Any]] = deque(maxlen=500)
        """Recent requests: path, forwarded headers and body, for tests to inspect."""
        self.cached: set[str] = set()
        """Texts marked ``cache_control`` that ``/v1/messages`` has "written to its cache"."""

    def record(self, request: web.Request, body: dict[str, Any]) -> None:
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() in _RECORDED_HEADERS}
        self.requests.append({"path": request.path, "headers": headers, "body": body})

    def faults_for(self, request: web.Request, body: dict[str, Any], prompt: str) -> Faults:
        faults = from_request(self.defaults, dict(request.headers), body, prompt)
        if faults.only and faults.only != body.get("model"):
            faults = replace(faults, error="")
        if faults.fail_times and faults.key:
            self.seen_keys[faults.key] += 1
            if self.seen_keys[faults.key] > faults.fail_times:
                faults = replace(faults, error="")
        return faults


def _prompt_of(body: dict[str, Any]) -> str:
    if "messages" in body:
        texts = []
        for m in body.get("messages") or []:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):  # parts of any shape: a real server would say 400, never fail
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            texts.append(str(content or ""))
        return "\n".join(texts)
    prompt = body.get("prompt", "")
    return " ".join(prompt) if isinstance(prompt, list) else str(prompt)


def _last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    return _prompt_of(body)


def reply_tokens(body: dict[str, Any], n: int) -> list[str]:
    """The completion as a token list: an echo of the last user turn, then padding."""
    echo = "echo: " + _last_user_text(body).split("[[fake")[0].strip()[:200]
    words = echo.split(" ")
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)][:n]
    tokens += [f" t{i}" for i in range(len(tokens), n)]
    return tokens


def tool_arguments(body: dict[str, Any]) -> str:
    """The arguments of the fake's tool call (``tool_call`` knob): the last user turn, echoed."""
    return json.dumps({"echo": _last_user_text(body).split("[[fake")[0].strip()[:200]})


def _tool_call(body: dict[str, Any], faults: Faults) -> dict[str, Any] | None:
    """The tool call this answer makes, if the knob names an offered tool and no result just came."""
    offered = {t.get("function", {}).get("name") for t in body.get("tools") or () if isinstance(t, dict)}
    messages = body.get("messages") or [{}]
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    if not faults.tool_call or faults.tool_call not in offered or last.get("role") == "tool":
        return None
    return {"id": f"call_{next(_ids)}", "type": "function",
            "function": {"name": faults.tool_call, "arguments": tool_arguments(body)}}


def _answer_tokens(body: dict[str, Any], faults: Faults) -> list[str]:
    """A judge's verdict under ``judge``; else the echo, ended by the ``grades`` marker of the model."""
    if faults.judge:
        words = judge.verdict(_prompt_of(body), _last_user_text(body)).split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]
    n = int(body.get("max_tokens") or body.get("max_completion_tokens") or faults.tokens)
    tokens = reply_tokens(body, min(n, faults.tokens) if body.get("max_tokens") else faults.tokens)
    marker = judge.graded_marker(faults.grades, str(body.get("model"))) if faults.grades else None
    return [*tokens, " " + marker] if marker else tokens


def _usage(body: dict[str, Any], completion: int) -> dict[str, int]:
    prompt = max(1, len(_prompt_of(body).split()))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


_REJECTIONS = {"context": "context_length_exceeded", "content_policy": "content_policy_violation"}
"""``error`` values answered with OpenAI's 400 of that ``code``."""


async def _fail(faults: Faults, request: web.Request, up: FakeUpstream) -> web.StreamResponse | None:
    if faults.error in ("429", "500", "503"):
        up.stats[f"error_{faults.error}"] += 1
        status = int(faults.error)
        headers = {"retry-after": str(faults.retry_after)} if status in (429, 503) else {}
        err = {"error": {"message": f"fake {status}", "type": "fake_error", "param": None, "code": None}}
        return web.json_response(err, status=status, headers=headers, dumps=lambda o: orjson.dumps(o).decode())
    if (code := _REJECTIONS.get(faults.error)) is not None:
        up.stats[f"error_{faults.error}"] += 1
        err = {"error": {"message": f"fake {code}", "type": "invalid_request_error", "param": None, "code": code}}
        return web.json_response(err, status=400, dumps=lambda o: orjson.dumps(o).decode())
    if faults.error == "timeout":
        up.stats["timeout"] += 1
        await asyncio.sleep(3600)
    if faults.error == "disconnect":
        up.stats["disconnect"] += 1
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError
    return None


def _json(obj: Any) -> web.Response:
    return web.Response(body=orjson.dumps(obj), content_type="application/json")


async def _read(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(text='{"error": {"message": "bad json"}}') from None
    return body if isinstance(body, dict) else {}


async def chat(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=False)


async def _complete(request: web.Request, *, chat: bool) -> web.StreamResponse:
    up: FakeUpstream = request.app[UPSTREAM]
    body = await _read(request)
    faults = up.faults_for(request, body, _prompt_of(body))
    up.record(request, body)
    up.stats["requests"] += 1
    up.stats[f"model:{body.get('model')}"] += 1
    if (failed := await _fail(faults, request, up)) is not None:
        return failed
    tokens = _answer_tokens(body, faults)
    call = _tool_call(body, faults) if chat else None
    if body.get("stream"):
        return await _stream(request, up, body, faults, tokens, chat=chat, call=call)
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    text = "".join(tokens)
    choice: dict[str, Any] = {"index": 0, "finish_reason": "tool_calls" if call else "stop", "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": text, **({"tool_calls": [call]} if call else {})}
    else:
        choice["text"] = text
    answer = {
        "id": f"fake-{next(_ids)}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [choice],
        "usage": _usage(body, len(tokens)),
    }
    if faults.usage == "none":
        del answer["usage"]
    return web.Response(body=_dumps(answer, faults), content_type="application/json")


def _dumps(obj: Any, faults: Faults) -> bytes:
    """JSON as the ``usage`` knob asks: ``spaced`` writes ``"key": value`` like ``json.dumps``."""
    return json.dumps(obj).encode() if faults.usage == "spaced" else orjson.dumps(obj)


_LINE_ENDS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def _event(data: bytes, faults: Faults) -> bytes:
    """One SSE event with the line ends the ``framing`` knob asks for."""
    end = _LINE_ENDS.get(faults.framing, b"\n")
    return b"data: " + data + end + end


def _chunk(base: dict[str, Any], chat: bool, faults: Faults, delta: str | None, finish: str | None = None) -> bytes:
    if chat:
        d = {} if delta is None else ({"role": "assistant", "content": delta})
        choice = {"index": 0, "delta": d, "finish_reason": finish, "logprobs": None}
    else:
        choice = {"index": 0, "text": delta or "", "finish_reason": finish, "logprobs": None}
    return _event(orjson.dumps({**base, "choices": [choice]}), faults)


def _tool_chunks(base: dict[str, Any], call: dict[str, Any], faults: Faults) -> list[bytes]:
    """A tool call as OpenAI streams it: id and name first, then the arguments in fragments."""
    args = call["function"]["arguments"]
    cuts = [0, len(args) // 3, 2 * len(args) // 3, len(args)]
    head = {"index": 0, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"],
                                                                          "arguments": ""}}
    parts = [head] + [{"index": 0, "function": {"arguments": args[a:b]}} for a, b in itertools.pairwise(cuts)]
    choices = [[{"index": 0, "delta": {"tool_calls": [p]}, "finish_reason": None}] for p in parts]
    return [_event(orjson.dumps({**base, "choices": c}), faults) for c in choices]


async def _stream(
    request: web.Request, up: FakeUpstream, body: dict[str, Any], faults: Faults, tokens: list[str], *, chat: bool,
    call: dict[str, Any] | None = None,
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await resp.prepare(request)
    up.stats["streams_started"] += 1
    base = {"id": f"fake-{next(_ids)}", "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()), "model": body.get("model")}
    try:
        if faults.ttft_ms:
            await asyncio.sleep(faults.ttft_ms / 1000)
        for i, tok in enumerate(tokens):
            if faults.error == "disconnect_mid" and i == len(tokens) // 2:
                up.stats["disconnect_mid"] += 1
                assert request.transport is not None
                request.transport.close()
                return resp
            if i and faults.itl_ms:
                await asyncio.sleep(faults.itl_ms / 1000)
            await resp.write(_chunk(base, chat, faults, tok))
        for event in _tool_chunks(base, call, faults) if call else ():
            await resp.write(event)
        await resp.write(_chunk(base, chat, faults, None, "tool_calls" if call else "stop"))
        if (body.get("stream_options") or {}).get("include_usage") and faults.usage != "none":
            usage = {**base, "choices": [], "usage": _usage(body, len(tokens))}
            await resp.write(_event(_dumps(usage, faults), faults))
        await resp.write(_event(b"[DONE]", faults))
        await resp.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        up.stats["streams_cancelled"] += 1
        raise
    up.stats["streams_completed"] += 1
    return resp


async def messages(request: web.Request) -> web.StreamResponse:
    """Anthropic's Messages API (``devtools.fake_upstream.messages``)."""
    up: FakeUpstream = request.app[UPSTREAM]
    body = await _read(request)
    faults = up.faults_for(request, body, anthropic.last_user_text(body))
    up.record(request, body)
    up.stats["requests"] += 1
    up.stats[f"model:{body.get('model')}"] += 1
    if (failed := await _fail(faults, request, up)) is not None:
        return failed
    if (refused := anthropic.refusal(body)) is not None:
        return web.Response(body=orjson.dumps(refused), status=400, content_type="application/json")
    n = min(int(body.get("max_tokens") or faults.tokens), faults.tokens)
    tokens = reply_tokens({"messages": [{"role": "user", "content": anthropic.last_user_text(body)}]}, n)
    usage = anthropic.usage_of(body, up.cached, len(tokens)) if faults.usage != "none" else None
    if body.get("stream"):
        return await anthropic.stream(request, anthropic.events(body, tokens, usage), faults.framing, faults.itl_ms)
    return _json(anthropic.message(body, tokens, usage))


async def responses(request: web.Request) -> web.StreamResponse:
    """OpenAI's Responses API (``devtools.fake_upstream.responses``)."""
    up: FakeUpstream = request.app[UPSTREAM]
    body = await _read(request)
    text = openai_responses.last_user_text(body)
    faults = up.faults_for(request, body, text)
    up.record(request, body)
    up.stats["requests"] += 1
    up.stats[f"model:{body.get('model')}"] += 1
    if (failed := await _fail(faults, request, up)) is not None:
        return failed
    most = body.get("max_output_tokens")
    n = min(int(most), faults.tokens) if isinstance(most, int) else faults.tokens
    tokens = reply_tokens({"messages": [{"role": "user", "content": text}]}, n)
    usage = openai_responses.usage_of(body, len(tokens)) if faults.usage != "none" else None
    if body.get("stream"):
        kinds = openai_responses.events(body, tokens, usage)
        return await anthropic.stream(request, kinds, faults.framing, faults.itl_ms)
    return _json(openai_responses.response(body, tokens, usage))


async def embeddings(request: web.Request) -> web.StreamResponse:
    up: FakeUpstream = request.app[UPSTREAM]
    body = await _read(request)
    inputs = body.get("input", "")
    inputs = inputs if isinstance(inputs, list) else [inputs]
    faults = up.faults_for(request, body, " ".join(map(str, inputs)))
    up.record(request, body)
    up.stats["requests"] += 1
    if (failed := await _fail(faults, request, up)) is not None:
        return failed
    dim = min(int(body.get("dimensions") or 8), MAX_DIMENSIONS)
    data = [{"object": "embedding", "index": i, "embedding": _vector(str(x), dim)} for i, x in enumerate(inputs)]
    tokens = sum(len(str(x).split()) for x in inputs)
    return _json({"object": "list", "data": data, "model": body.get("model"),
                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _vector(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % 32] - 128) / 128 for i in range(dim)]


async def models(request: web.Request) -> web.Response:
    names = request.app[MODEL_NAMES]
    return _json({"object": "list", "data": [{"id": n, "object": "model", "owned_by": "fake"} for n in names]})


async def stats(request: web.Request) -> web.Response:
    return _json(dict(request.app[UPSTREAM].stats))


async def reset(request: web.Request) -> web.Response:
    up: FakeUpstream = request.app[UPSTREAM]
    up.stats.clear()
    up.seen_keys.clear()
    up.requests.clear()
    up.cached.clear()
    return _json({"ok": True})


def build_app(defaults: Faults | None = None, model_names: tuple[str, ...] = ()) -> web.Application:
    """The aiohttp application; ``FakeUpstream`` state lives at ``app[UPSTREAM]``."""
    app = web.Application(client_max_size=8 << 20)
    app[UPSTREAM] = FakeUpstream(defaults)
    app[MODEL_NAMES] = model_names
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/responses", responses)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/_fake/stats", stats)
    app.router.add_post("/_fake/reset", reset)
    return app
