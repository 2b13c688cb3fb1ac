"""The cases of the bad-input battery (test_bad_input.py), generated from tables.

Each public and admin route has a valid base request; the cases are that request with
one thing wrong: the raw body (not JSON, not an object, invalid UTF-8, NaN/Infinity,
too deep, too big, chunked past the limit), one field replaced by a bad value or
removed, one header or one query parameter. Generating them from (route, mutation)
tables keeps the battery systematic and its size visible (``len(cases(...))``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from devtools.configs import CHEAP

RAW = "__raw__"
"""A field value replaced, after serialisation, by raw JSON text (``Raw``)."""


@dataclass(frozen=True)
class Raw:
    """JSON text orjson would not write itself (NaN, 1e999, a lone surrogate escape...)."""

    text: str


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: dict[str, Any] | None = None
    """The valid base body (``None``: a GET); mutated one field at a time."""
    optional: dict[str, Any] = field(default_factory=dict)
    """Fields the base leaves out, mutated one at a time too."""
    query: tuple[str, ...] = ()
    """Query parameters the route reads, each tried with bad values."""
    values: dict[str, list[Any]] = field(default_factory=dict)
    """Values that are bad for one field in particular (a duration, a time, a limit)."""
    admin: bool = False


@dataclass(frozen=True)
class Case:
    """One request of the battery."""

    name: str
    route: Route
    caller: str
    """``master``, ``virtual`` (a key without admin rights) or ``none``."""
    body: bytes | None = None
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    chunked: bool = False
    """Send the body with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    repeat: int = 1
    """How many times the body is sent in a row (a 5 MB body without holding 5 MB per case)."""
    method: str | None = None

    @property
    def http_method(self) -> str:
        return self.method or self.route.method


def nested(depth: int, leaf: Any = 1) -> Any:
    for i in range(depth - 1):
        leaf = {"a": leaf} if i % 2 else [leaf]
    return leaf


BAD_VALUES: list[tuple[str, Any]] = [
    ("null", None), ("true", True), ("zero", 0), ("negative", -1), ("fraction", 0.5), ("int63", 2**63),
    ("float_max", 1.7e308), ("empty", ""), ("long_string", "x" * 20000), ("nul", "a\x00b"),
    ("rtl_override", "\u202e\ufeff"), ("list", []), ("object", {}), ("list_of_null", [None]),
    ("deep_40", nested(40)),
]
RAW_VALUES: list[tuple[str, Raw]] = [
    ("nan", Raw("NaN")), ("infinity", Raw("-Infinity")), ("1e999", Raw("1e999")),
    ("u64_overflow", Raw("18446744073709551616")), ("lone_surrogate", Raw('"\\ud800"')),
    ("escaped_nul", Raw('"\\u0000"')),
]
SHORT_LIST = {"null", "int63", "long_string", "nul", "deep_40", "1e999", "u64_overflow"}
"""The bad values tried on optional fields (every one is tried on the base's own fields)."""
RAW_BODIES: list[tuple[str, bytes]] = [
    ("empty", b""), ("null", b"null"), ("array", b"[]"), ("number", b"1"), ("string", b'"x"'),
    ("truncated", b'{"model": '), ("invalid_utf8", b'{"model": "\xff\xfe"}'), ("bom", b"\xef\xbb\xbf{}"),
    ("nan", b'{"x": NaN}'), ("infinity", b'{"x": Infinity}'), ("1e999", b'{"x": 1e999}'),
    ("deep_2000", b"[" * 2000 + b"]" * 2000), ("deep_40", orjson.dumps({"x": nested(40)})),
    ("trailing_garbage", b"{} x"), ("duplicate_keys", b'{"a": 1, "a": 2}'), ("nul_byte", b'{"a": "\x00"}'),
]
QUERY_VALUES: dict[str, list[tuple[str, str]]] = {
    "id": [("empty", ""), ("nul", "%00"), ("long", "x" * 3000), ("bad_utf8", "%ff%fe"), ("word", "abc")],
    "number": [("negative", "-1"), ("zero", "0"), ("word", "abc"), ("float", "1e3"), ("nan", "nan"),
               ("huge", "99999999999999999999999"), ("digits_5000", "9" * 5000), ("nul", "%00")],
    "time": [("word", "abc"), ("bad_date", "2024-13-45T99:00:00"), ("year_99999", "99999-01-01T00:00:00"),
             ("year_0", "0000-01-01T00:00:00Z"), ("far_future", "9999-12-31T23:59:59Z"),
             ("before_1970", "1900-01-01"), ("epoch_huge", "1e20"), ("nul", "%00")],
}
"""Bad values of a query parameter, by its kind (``QUERY_KINDS``)."""
QUERY_KINDS = {"page": "number", "size": "number", "start": "time", "end": "time", "start_date": "time",
               "end_date": "time"}
LAMBDA_HEADERS = ["nan", "inf", "-inf", "1e999", "-1", "abc", "", "0x10", "1_000", "\u00bd"]
BAD_HEADERS: list[tuple[str, tuple[tuple[str, str], ...]]] = [
    ("text_content_type", (("content-type", "text/plain"),)),
    ("form_content_type", (("content-type", "application/x-www-form-urlencoded"),)),
    ("gzip_claimed", (("content-encoding", "gzip"),)),
    ("odd_request_id", (("x-request-id", "../../etc/passwd\tx" * 20),)),
    ("odd_accept", (("accept", "text/event-stream;q=abc"),)),
    ("traceparent", (("traceparent", "00-zzzz-yyyy-01"),)),
]
AUTH_HEADERS = ["Bearer", "Bearer\tsk-x", "Basic dXNlcjpwdw==", "bearer sk-nope", "Bearer " + "x" * 6000,
                "Bearer sk-\u00e9", "Token sk-test"]
BIG_BYTES = 5 * 1024 * 1024
DEEP_ROUTES = {"/v1/chat/completions", "/v1/models", "/key/generate", "/spend/logs"}
"""Routes also tried with every odd header and Authorization (one per kind of route)."""


def routes(virtual_key_id: str, target_key_id: str) -> list[Route]:
    """Every route the gateway serves, with a valid base request.

    ``target_key_id`` is a key the admin mutations may change (block, update);
    the battery's own virtual key (``virtual_key_id``) is only read.
    """
    messages = [{"role": "user", "content": "hello"}]
    sampling = {"stream": False, "max_tokens": 8, "temperature": 0.5, "top_p": 1, "n": 1, "stop": ["zz"],
                "user": "u", "routeiq": {"lambda": 0.1}, "stream_options": {"include_usage": True}}
    limits = {"models": [CHEAP], "max_budget": 10.0, "budget_duration": "30d", "rpm_limit": 100,
              "tpm_limit": 10000, "metadata": {"team": "a"}, "blocked": False}
    key_fields = {"user_id": "u", "tags": ["t"], "soft_budget": 1.0, "max_parallel_requests": 100,
                  "model_rpm_limit": {CHEAP: 100}, "model_tpm_limit": {CHEAP: 10000},
                  "model_max_budget": {CHEAP: {"max_budget": 5.0, "budget_duration": "1d"}}}
    durations = ["99999999999d", "0d", "1y", "-1d", "9" * 20 + "s", "1 d", "1D", "100000w"]
    times = ["9999-12-31T23:59:59Z", "1900-01-01T00:00:00Z", "0001-01-01T00:00:00", "not a time", 1e20, -1e20,
             "2030-01-01T00:00:00+99:00", "2262-04-12T00:00:00Z", 4102444800]
    admin_values: dict[str, list[Any]] = {
        "budget_duration": durations, "duration": durations, "expires": times,
        "rpm_limit": [2**31, 2**62, 10**10, 1e10], "tpm_limit": [2**63 - 1, 10**15, 1e19],
        "max_budget": [1e300, 1e20, -0.0], "models": [["x" * 10000], ["a\x00"], [CHEAP] * 5000, [""]],
        "metadata": [{"k": "x" * 60000}, nested(20, {}), {"a\x00": "b\x00"}, {str(i): i for i in range(3000)}],
        "key_alias": ["x" * 300, "a\x00"], "team_alias": ["x" * 300], "team_id": ["x" * 100, "a b", "a\x00", "ü"],
        "key": ["sk-" + "x" * 5000, "key_" + "x" * 100, "a\x00"], "keys": [["a\x00"], ["x"] * 5000, ["x" * 9000]],
        "team_ids": [["a\x00"], ["x"] * 5000, ["x" * 9000]], "request_id": ["x" * 129, "a\x00", "../x"],
        "score": [1.0000001, -0.0, 1e-320],
        "user_id": ["x" * 300, "a\x00", 5], "tags": [["a\x00"], ["x"] * 5000, [""], "tag"],
        "soft_budget": [1e300, -1.0], "max_parallel_requests": [0, 2**31, 1e10],
        "model_rpm_limit": [{"m": 0}, {"m": 2**31}, {f"m{i}": 1 for i in range(100)}, {"": 1}],
        "model_tpm_limit": [{"m": -1}, {"m": 1e19}],
        "model_max_budget": [{"m": 1e300}, {"m": {"max_budget": 1, "budget_duration": "1y"}}, {"m": {"x": 1}},
                             {"m": {"budget_limit": float("nan")}}],
        "new_key": ["sk-short", "x" * 5000, "a\x00"]}
    spend_query = ("start", "end", "key_id", "team_id", "model")
    inference_values: dict[str, list[Any]] = {
        "dimensions": [10**6, 2**31], "max_tokens": [2**31, 2**63 - 1], "max_completion_tokens": [2**31],
        "n": [129, 10**9], "temperature": [2.0000001, 5e-324], "stop": [["x"] * 1000]}
    out = [
        Route("POST", "/v1/chat/completions", {"model": CHEAP, "messages": messages},
              {**sampling, "tools": [{"type": "function", "function": {"name": "f"}}],
               "response_format": {"type": "text"}, "max_completion_tokens": 8}),
        Route("POST", "/v1/chat/completions#auto", {"model": "auto", "messages": messages}, {"stream": True}),
        Route("POST", "/v1/completions", {"model": CHEAP, "prompt": "hello"}, sampling),
        Route("POST", "/v1/embeddings", {"model": "embed-model", "input": "hello"},
              {"encoding_format": "float", "dimensions": 8, "user": "u", "stream": False}),
        Route("GET", "/v1/models", query=("x",)),
        Route("POST", "/v1/feedback", {"request_id": "req-unknown", "score": 0.5}),
        Route("GET", "/health/liveliness"),
        Route("GET", "/health/readiness"),
        Route("POST", "/key/generate", {"key_alias": "battery"},
              {**limits, **key_fields, "team_id": "team-missing", "expires": "2099-01-01T00:00:00Z",
               "duration": "1h", "admin": False}, admin=True),
        Route("GET", "/key/info", query=("key",), admin=True),
        Route("POST", "/key/update", {"key": target_key_id, "rpm_limit": 50},
              {**limits, **key_fields, "key_alias": "t", "team_id": "team-missing",
               "expires": "2099-01-01T00:00:00Z", "admin": False}, admin=True),
        Route("POST", "/key/block", {"key": target_key_id}, admin=True),
        Route("POST", "/key/unblock", {"key": target_key_id}, admin=True),
        Route("POST", "/key/delete", {"keys": ["key_missing"]}, admin=True),
        Route("GET", "/key/list", query=("team_id", "user_id", "key_alias", "tags", "page", "size"), admin=True),
        Route("POST", "/key/regenerate", {"key": "key_missing"}, {"new_key": "sk-" + "a" * 43}, admin=True),
        Route("POST", "/team/new", {"team_alias": "battery"}, {**limits, "team_id": "battery-team"}, admin=True),
        Route("GET", "/team/info", query=("team_id",), admin=True),
        Route("POST", "/team/update", {"team_id": "team-missing", "rpm_limit": 5}, {**limits, "team_alias": "t"},
              admin=True),
        Route("POST", "/team/delete", {"team_ids": ["team-missing"]}, admin=True),
        Route("GET", "/team/list", query=("page", "size"), admin=True),
        Route("GET", "/spend/keys", query=spend_query, admin=True),
        Route("GET", "/spend/teams", query=spend_query, admin=True),
        Route("GET", "/spend/models", query=spend_query, admin=True),
        Route("GET", "/spend/logs", query=(*spend_query, "request_id", "user_id", "api_key", "start_date", "end_date",
                                           "page", "size"), admin=True),
        Route("GET", "/spend/buffer", admin=True),
        Route("GET", "/audit/log", query=("start", "end", "page", "size"), admin=True),
        Route("GET", "/router/info", admin=True),
    ]
    return [replace(r, values=admin_values if r.admin or r.path == "/v1/feedback" else inference_values)
            if r.body is not None else r for r in out]


def encode(body: dict[str, Any]) -> bytes:
    """``body`` as JSON, with ``Raw`` values spliced in as their text."""
    raws: list[str] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, Raw):
            raws.append(obj.text)
            return RAW
        raise TypeError(type(obj).__name__)

    out = orjson.dumps(body, default=default)
    for text in raws:
        out = out.replace(f'"{RAW}"'.encode(), text.encode(), 1)
    return out


def _field_cases(route: Route) -> Iterator[Case]:
    """Each field of the base (every bad value) and each optional field (the short list)."""
    assert route.body is not None
    for name in route.body:
        for label, value in [*BAD_VALUES, *RAW_VALUES]:
            yield Case(f"{name}={label}", route, "master", encode({**route.body, name: value}))
        yield Case(f"{name}=missing", route, "master", encode({k: v for k, v in route.body.items() if k != name}))
    for name in route.optional:
        for label, value in [*BAD_VALUES, *RAW_VALUES]:
            if label in SHORT_LIST:
                yield Case(f"{name}={label}", route, "master", encode({**route.body, name: value}))
    for name in {**route.body, **route.optional}:
        for i, value in enumerate(route.values.get(name, [])):
            yield Case(f"{name}=special#{i}", route, "master", encode({**route.body, name: value}))
    yield Case("unknown_field", route, "master", encode({**route.body, "unknown_field_x": 1}))


def _body_cases(route: Route) -> Iterator[Case]:
    callers = ("master",) if route.admin else ("master", "virtual")  # a virtual key is refused first
    for caller in callers:
        for label, raw in RAW_BODIES:
            yield Case(f"raw:{label}", route, caller, raw)
    for label, raw in RAW_BODIES[:3]:
        yield Case(f"raw:{label}", route, "none", raw)
    yield Case("chunked_valid", route, "master", encode(route.body or {}), chunked=True)
    if route.path in DEEP_ROUTES or route.path == "/v1/feedback":
        yield Case("5MB", route, "master", b'{"pad": "' + b"x" * (BIG_BYTES - 12) + b'"}')
        yield Case("chunked_over_limit", route, "master", b"x" * (64 * 1024), chunked=True, repeat=80)
    if route.path in DEEP_ROUTES:
        for label, headers in BAD_HEADERS:
            yield Case(f"header:{label}", route, "master", encode(route.body or {}), headers=headers)


def _query_cases(route: Route) -> Iterator[Case]:
    callers = ("master", "virtual") if route.path == "/key/info" or not route.admin else ("master",)
    for name in route.query:
        for label, value in QUERY_VALUES[QUERY_KINDS.get(name, "id")]:
            for caller in callers:
                yield Case(f"?{name}={label}", route, caller, query=f"{name}={value}")
    yield Case("?repeated", route, "master", query="&".join(f"{n}=1&{n}=2" for n in route.query))


def _inference_cases(route: Route) -> Iterator[Case]:
    assert route.body is not None
    base = route.body
    for value in LAMBDA_HEADERS:
        for caller in ("master", "virtual"):
            yield Case(f"lambda={value!r}", route, caller, encode(base), headers=(("x-routeiq-lambda", value),))
    models = ["nope", "", "x" * 5000, "a\x00b", "auto\x00", "../auto", " auto", "AUTO", "embed-model", "auto:x"]
    for model in models:
        for caller in ("master", "virtual"):
            yield Case(f"model={model[:12]!r}", route, caller, encode({**base, "model": model}))
    if "messages" in base:
        odd_messages: list[Any] = [
            [], [{}], [{"role": "user"}], [{"role": "bad", "content": "x"}], [{"role": "user", "content": 5}],
            [{"role": "user", "content": [{"type": "text", "text": 5}]}],
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}],
            [{"role": "user", "content": [1, "x", None]}], [None], "hello", {"role": "user"},
            [{"role": "user", "content": "x" * 60000}], [{"role": "user", "content": "a\x00b\u202e"}],
            [{"role": "user", "content": nested(31)}], [{"role": "user", "content": "x", "name": 5}],
            [{"role": "tool", "content": "x"}] * 300,
        ]
        for i, messages in enumerate(odd_messages):
            for caller in ("master", "virtual"):
                yield Case(f"messages#{i}", route, caller, encode({**base, "messages": messages}))
    streams: list[Any] = ["true", 1, {}, None, Raw("NaN")]
    for i, stream in enumerate(streams):
        yield Case(f"stream#{i}", route, "master", encode({**base, "stream": stream}))
    yield Case("stream_options_only", route, "master", encode({**base, "stream_options": {"include_usage": "y"}}))
    yield Case("routeiq_unknown", route, "master", encode({**base, "routeiq": {"lambda": 1, "x": 2}}))


def _auth_cases(route: Route) -> Iterator[Case]:
    body = encode(route.body) if route.body is not None else None
    if route.path in DEEP_ROUTES:
        for value in AUTH_HEADERS:
            yield Case(f"auth={value[:16]!r}", route, "none", body, headers=(("authorization", value),))
    for method in ("PUT", "GET" if route.method == "POST" else "POST"):
        yield Case(f"method={method}", route, "master", body, method=method)


def _routed_cases(route: Route) -> Iterator[Case]:
    """Routed requests whose query text is odd: each is answered and makes a decision row."""
    assert route.body is not None
    texts = ["a\x00b", "\u202e\ufeff", "x" * 50000, "\ud7ff\ue000", "\\u0000"]
    for i, text in enumerate(texts):
        for caller in ("master", "virtual"):
            body = {**route.body, "messages": [{"role": "user", "content": text}]}
            yield Case(f"query#{i}", route, caller, encode(body))
            yield Case(f"query#{i}:stream", route, caller, encode({**body, "stream": True}))
    for value in LAMBDA_HEADERS[:4]:
        yield Case(f"lambda={value!r}", route, "master", encode(route.body), headers=(("x-routeiq-lambda", value),))
    yield Case("lambda=huge", route, "master", encode({**route.body, "routeiq": {"lambda": 1.7e308}}))


def cases(virtual_key_id: str, target_key_id: str) -> list[Case]:
    """The whole battery: every route, with each caller, one thing wrong at a time."""
    out: list[Case] = []
    for route in routes(virtual_key_id, target_key_id):
        callers = ("master", "virtual", "none")
        out += [Case("base", route, c, encode(route.body) if route.body is not None else None) for c in callers]
        if route.path.endswith("#auto"):  # the routed path: what reaches the decision log
            out += _routed_cases(route)
            continue
        out += _auth_cases(route)
        if route.body is not None:
            out += _field_cases(route)
            out += _body_cases(route)
        out += _query_cases(route)
        if route.path.startswith("/v1/") and route.body is not None and "model" in route.body:
            out += _inference_cases(route)
    out += [Case("unknown_path", Route("GET", p), "master") for p in ("/v1/nope", "/key", "/%00", "/" + "x" * 4000)]
    return out
