"""The gateway's one config file: typed, validated once, failing with every problem at once.

``model_list`` follows LiteLLM's shape (``model_name``, ``litellm_params``,
``model_info``) so LiteLLM users can bring theirs. Secrets may be written as
``os.environ/NAME`` or ``file:/path`` (a mounted Secret, re-read when rotated: see
``app.secrets``); they are resolved where they are used (in the replica), and
their presence is checked at load time so a missing one fails at start.

A bad file is reported whole: every missing secret, every field error and every broken
cross-reference, one line each naming its key path (``model_list[2].litellm_params.model``),
so one edit fixes them all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from app.config_litellm import apply_environment, translate
from app.secrets import FILE_PREFIX, SecretError, read_secret_file
from app.store_urls import check_database_url, parse_redis_url

log = logging.getLogger("routeiq.config")
ENV_PREFIX = "os.environ/"
DEMO_MASTER_KEY = "sk-routeiq-demo"


class ConfigError(Exception):
    """The config is invalid; ``problems`` lists every one, each a line naming its key and why.

    ``str()`` is the problem itself when there is one, else ``N problems:`` and one indented
    line per problem. The problems are the exception's args, so it pickles.
    """

    def __init__(self, problem: str, *more: str) -> None:
        super().__init__(problem, *more)
        self.problems: list[str] = [problem, *more]

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0]
        return f"{len(self.problems)} problems:\n" + "\n".join(f"  {p}" for p in self.problems)


def resolve_secret(value: str | None) -> str | None:
    """Resolve an ``os.environ/NAME`` or ``file:/path`` reference (or return a literal as is).

    Called per request: a ``file:`` value comes from ``app.secrets``' cache.
    """
    if value is None:
        return value
    if value.startswith(FILE_PREFIX):
        try:
            return read_secret_file(value[len(FILE_PREFIX) :])
        except SecretError as err:
            raise ConfigError(str(err)) from None
    if not value.startswith(ENV_PREFIX):
        return value
    name = value[len(ENV_PREFIX) :]
    if name not in os.environ:
        raise ConfigError(f"environment variable {name} is not set")
    return os.environ[name]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LiteLLMParams(BaseModel):
    """Arguments for ``litellm.acompletion``; extra keys pass through to litellm."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model: str = Field(description="litellm model string, e.g. `openai/gpt-4o-mini`.")
    api_base: str | None = Field(None, description="Provider base URL.")
    api_key: str | None = Field(None, description="Key, or `os.environ/NAME`.")
    timeout: float | None = Field(None, gt=0, description="Per-model timeout (s).")
    weight: float = Field(1.0, gt=0, description="Weight among deployments of one model_name.")
    rpm: int | None = Field(
        None, gt=0, description="Requests per minute this deployment takes (enforced across replicas; also "
        "its weight under `simple-shuffle` when no `weight` is set). LiteLLM also allows it at the entry's top level.")
    tpm: int | None = Field(
        None, gt=0, description="Tokens per minute this deployment takes (enforced across replicas; read by "
        "`usage-based-routing-v2`).")


class ModelInfo(BaseModel):
    """Prices, limits and capabilities; unknown keys are kept (LiteLLM allows them)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    input_cost_per_token: float | None = Field(None, ge=0, description="$ per input token.")
    output_cost_per_token: float | None = Field(None, ge=0, description="$ per output token.")
    cache_creation_input_token_cost: float | None = Field(
        None, ge=0, description="$ per prompt token written to a prompt cache (Anthropic-native calls); "
        "else litellm's map, else the input price.")
    cache_read_input_token_cost: float | None = Field(
        None, ge=0, description="$ per prompt token read from a prompt cache (Anthropic-native calls); "
        "else litellm's map, else the input price.")
    max_input_tokens: int | None = Field(None, gt=0, description="Context window.")
    max_output_tokens: int | None = Field(
        None, gt=0, description="Longest answer; caps what admission reserves for a request without max_tokens.")
    mode: Literal["chat", "completion", "embedding"] = Field("chat", description="API kind.")
    capabilities: tuple[str, ...] = Field((), description="e.g. `tools`, `vision`, `json`.")
    router_profile: str | None = Field(
        None, min_length=1,
        description="A model a learned router's artifact knows, whose predicted quality stands in for this "
                    "model's until the router is trained on it (cold start, docs/routing.md).")


class ModelEntry(_Strict):
    """One provider deployment serving a public ``model_name``."""

    model_name: str = Field(min_length=1, description="Name clients send as `model`.")
    litellm_params: LiteLLMParams = Field(
        description="Arguments for `litellm.acompletion` (`model` required); other keys pass through."
    )
    model_info: ModelInfo = Field(
        default_factory=ModelInfo, description="Prices, context window, API kind and capabilities."
    )
    provider_group: str = Field("default", description="Provider-call deployment serving it.")


class ExplorationSettings(_Strict):
    """How often a router serves a model other than its best guess, to learn (docs/routing.md)."""

    rate: float = Field(0.0, ge=0, le=1, description="Share of routed requests that explore; 0 turns it off.")
    models: tuple[str, ...] = Field(
        (), description="Candidates exploration may serve; empty = every candidate that fits the request.")
    max_utility_loss: float | None = Field(
        None, ge=0, description="A scored candidate is explored only if its utility (quality - λ·price) is within "
        "this of the best's; candidates the router cannot score are always eligible.")
    max_cost_per_key_per_day: float | None = Field(
        None, ge=0, description="$ a key may spend on explored answers per UTC day; then it stops exploring.")


class RouterConfig(_Strict):
    """A router clients reach through ``model: <name>`` (``auto`` by default)."""

    name: str = Field(description="The `model` value that selects this router.")
    strategy: Literal["learned", "cost-first", "weighted-shuffle"] = Field(
        "cost-first", description="How the router picks among candidates."
    )
    artifact: str | None = Field(
        None, description="Learned router artifact: a directory (a plain path or `file://`), or a registry "
        "`s3://bucket/prefix`, whose pointer for this router names the version served (docs/routing.md).")
    lam: float | None = Field(None, alias="lambda", ge=0, description="Default willingness to pay.")
    candidates: tuple[str, ...] = Field((), description="Model names it may pick; empty = all chat models.")
    fallback_model: str | None = Field(None, description="Used if the scorer is down or slow.")
    timeout_ms: float = Field(250, gt=0, description="Deadline for a routing decision.")
    exploration: ExplorationSettings = Field(
        default_factory=ExplorationSettings, description="Exploration with logged propensities (off by default).")
    scoring: Literal["replica", "ingress"] = Field(
        "replica", description="Where decisions are computed: `replica`, the router-scoring deployment (batched, "
        "scaled on its own); `ingress`, in each ingress replica, with no hop. `ingress` suits a router whose "
        "decision is cheap: a static-embedder artifact (~0.4 ms of CPU) or a non-learned strategy; a MiniLM "
        "artifact there costs the ingress ~12 ms of CPU per query and loads ONNX Runtime into every ingress "
        "replica (docs/operations.md). Unset: `replica` for a `learned` router, `ingress` for the others.")

    @model_validator(mode="before")
    @classmethod
    def _scoring_by_strategy(cls, data: Any) -> Any:
        """A non-learned router decides in the ingress unless told otherwise: its decision costs
        microseconds, and the hop to a scorer replica cost 1.8 ms of the scorer's CPU and about
        as much of the ingress's per request (bench/RESULTS-auto.md, ``bench.ray_floor``)."""
        if not isinstance(data, dict) or "scoring" in data:
            return data
        if data.get("strategy", cls.model_fields["strategy"].default) == "learned":
            return data
        return {**data, "scoring": "ingress"}


    @field_validator("artifact")
    @classmethod
    def _artifact_form(cls, value: str | None) -> str | None:
        """An ``s3://`` registry is parsed now (a typo fails at start-up); ``file://`` and paths pass."""
        if value and "://" in value:
            from router_models.registry import RegistryError, is_registry_url, parse_registry_url

            if is_registry_url(value):
                try:
                    parse_registry_url(value)
                except RegistryError as err:
                    raise ValueError(str(err)) from None
            elif not value.startswith("file://"):
                raise ValueError(f"{value.partition('://')[0]}:// is not supported: a path, file:// or s3://")
        return value


class RegistrySettings(_Strict):
    """Where `s3://` router artifacts come from and how scorer replicas follow them (docs/routing.md)."""

    endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, Ceph); unset: AWS S3. Credentials and region otherwise "
        "come from the standard AWS settings (environment, `AWS_SHARED_CREDENTIALS_FILE`, a service account, a role).")
    region: str | None = Field(None, description="AWS region; unset: `AWS_REGION` or the AWS config file.")
    poll_interval_s: float = Field(10.0, gt=0, description="How often each scorer replica reads a router's pointer.")
    poll_jitter: float = Field(
        0.2, ge=0, lt=1, description="Each poll interval is moved at random by up to this fraction (replicas spread).")
    cache_dir: str = Field(
        ".routeiq/router-cache", description="Node-local cache of downloaded versions, one directory per sha256 "
        "(an emptyDir on KubeRay).")
    lock_lease_s: float = Field(
        120.0, gt=0, description="Lease of the per-node download lock in Redis (`general_settings.redis_url`): "
        "a crashed downloader holds the others back at most this long.")
    state_ttl_s: float = Field(
        60.0, gt=0, description="A replica's state in Redis (read by `/router/info`) expires this long after its "
        "last report.")
    timeout_s: float = Field(10.0, gt=0, description="Connect and read timeout of one S3 call.")


class ScorerSyncSettings(_Strict):
    """The router-scoring deployment's slice of the config: the registry and the Redis it coordinates on."""

    registry: RegistrySettings = Field(description="Registry settings (router_settings.registry).")
    redis_url: str | None = Field(description="`general_settings.redis_url` (a reference is resolved in the replica).")
    redis_prefix: str = Field(description="Prefix of every Redis key (general_settings.access.redis_prefix).")
    redis_timeout_s: float = Field(description="Redis socket timeout (general_settings.access).")


class RouterAlias(_Strict):
    """Another ``model`` name for a router with its own λ (e.g. ``auto:cost``)."""

    router: str = Field(description="Name of the router it uses.")
    lam: float = Field(alias="lambda", ge=0, description="Willingness to pay for this alias.")


class ModelGroupAlias(_Strict):
    """LiteLLM's ``model_group_alias`` value in its dict form."""

    model: str = Field(description="The model group (a `model_name`) the alias names.")
    hidden: bool = Field(False, description="Left out of `/v1/models`.")


RoutingStrategy = Literal["simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing-v2"]


class RouterSettings(_Strict):
    """Routers, aliases and retry policy."""

    routers: tuple[RouterConfig, ...] = Field((), description="Routers clients may name.")
    registry: RegistrySettings = Field(
        default_factory=RegistrySettings, description="S3 registry of `s3://` router artifacts: endpoint, polling, "
        "cache, download lock.")
    aliases: dict[str, RouterAlias] = Field(default_factory=dict, description="Alias → router, λ.")
    num_retries: int = Field(2, ge=0, le=10, description="Retries on 5xx/connection errors.")
    retry_backoff_s: float = Field(0.05, ge=0, description="First backoff; doubles, with jitter.")
    fallbacks: tuple[dict[str, tuple[str, ...]], ...] = Field(
        (), description="LiteLLM's shape: `[{model: [fallback, ...]}]`, tried in order on 429/5xx/timeouts."
    )
    context_window_fallbacks: tuple[dict[str, tuple[str, ...]], ...] = Field(
        (), description="Like `fallbacks`, tried when the upstream answers that the request exceeds its context "
        "window (`context_length_exceeded`).")
    content_policy_fallbacks: tuple[dict[str, tuple[str, ...]], ...] = Field(
        (), description="Like `fallbacks`, tried when the upstream refuses the request on content policy "
        "(`content_policy_violation`, `content_filter`).")
    routing_strategy: RoutingStrategy = Field(
        "simple-shuffle", description="How one deployment is picked among those sharing a `model_name` "
        "(LiteLLM's names; docs/configuration.md).")
    model_group_alias: dict[str, str | ModelGroupAlias] = Field(
        default_factory=dict, description="LiteLLM's: another `model` name for a model group, "
        "`alias: model_name` or `alias: {model: model_name, hidden: true}`.")
    allowed_fails: int = Field(3, ge=1, description="Failures within the window that start a cooldown.")
    allowed_fails_window_s: float = Field(60.0, gt=0, description="Window counting failures.")
    cooldown_time_s: float = Field(30.0, ge=0, description="How long a failing deployment is skipped.")
    cooldown_min_keys: int = Field(
        2, ge=1, description="Distinct keys whose requests must have failed before a cooldown starts "
        "(one tenant alone cannot cool a model down for everyone); 1 for a single-tenant gateway.")

    def fallback_chain(self, model: str, kind: str = "fallbacks") -> tuple[str, ...]:
        """Configured fallbacks of ``model``, in order, from ``fallbacks`` (or
        ``context_window_fallbacks`` / ``content_policy_fallbacks``)."""
        entries: tuple[dict[str, tuple[str, ...]], ...] = getattr(self, kind)
        return tuple(m for entry in entries for m in entry.get(model, ()))

    def aliases_of_models(self) -> dict[str, ModelGroupAlias]:
        """``model_group_alias`` with every value in its dict form."""
        return {a: v if isinstance(v, ModelGroupAlias) else ModelGroupAlias(model=v)
                for a, v in self.model_group_alias.items()}


class ProviderGroup(_Strict):
    """A provider-call deployment (one Serve deployment per group)."""

    name: str = Field(description="Group name; its Serve deployment is `Provider-<name>`.")
    transport: Literal["auto", "litellm"] = Field(
        "auto",
        description="`auto`: OpenAI-compatible upstreams use the native passthrough, and `anthropic/` "
        "upstreams serve `/v1/messages` natively; others go through litellm. `litellm`: everything "
        "through litellm (`/v1/messages` translated to chat).",
    )
    max_connections: int = Field(256, gt=0, description="Connection pool size per replica.")


class AccessSettings(_Strict):
    """Virtual keys, limits and spend (docs/access.md); pools are per ingress replica."""

    enabled: bool = Field(True, description="Virtual keys, limits and spend; false: master key only.")
    sqlite_path: str = Field(".routeiq/routeiq.db", description="Embedded store when no database_url.")
    redis_prefix: str = Field("routeiq", min_length=1, description="Prefix of every Redis key.")
    key_cache_ttl_s: float = Field(10.0, ge=0, description="Per-replica cache of key lookups.")
    reserve_output_tokens: int = Field(
        1024, gt=0, description="Answer tokens admission reserves (TPM, budget) for a request without max_tokens.")
    auth_lookups_per_s: float = Field(
        50.0, gt=0, description="Database lookups of never-seen keys per replica and second; past it a "
        "never-seen key gets 503 + Retry-After (a flood of random tokens cannot reach the database).")
    spend_flush_interval_s: float = Field(1.0, gt=0, description="Spend batch write period.")
    spend_buffer_max: int = Field(100_000, gt=0, description="Spend events kept while the DB is down.")
    db_pool_size: int = Field(5, gt=0, description="Postgres connections per replica (and as many overflow).")
    db_timeout_s: float = Field(5.0, gt=0, description="Connect/query timeout for the database.")
    redis_pool_size: int = Field(64, gt=0, description="Redis connections per replica.")
    redis_timeout_s: float = Field(1.0, gt=0, description="Redis socket timeout.")
    credential_check_s: float = Field(
        5.0, gt=0, description="How often a `file:` `database_url`/`redis_url` is re-read for a rotated value "
        "(validated, then used by new connections; docs/deployment.md).")
    budget_timezone: str = Field(
        "UTC", description="IANA timezone of calendar-aligned budget resets (`1d` at midnight, `7d` on Monday, "
        "`1mo` on the 1st), as LiteLLM's `litellm_settings.timezone`.")
    soft_budget_webhook_url: str | None = Field(
        None, pattern=r"^https?://[^\s]+$",
        description="POSTed (JSON) once per budget window when a key's spend crosses its `soft_budget`.")

    @field_validator("budget_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (an IANA name such as `UTC` or `Europe/Berlin`)") from None
        return value


class DecisionLogSettings(_Strict):
    """The routing decision log (docs/observability.md): one row per routed request."""

    enabled: bool = Field(True, description="Record routed requests in `routeiq_decisions` (same database as access).")
    store_query: Literal["text", "sha256"] = Field(
        "text", description="`text`: the query text (truncated) and its SHA-256; `sha256`: only the hash (privacy).")
    query_max_chars: int = Field(4096, gt=0, description="Query text kept per row (characters).")
    flush_interval_s: float = Field(1.0, gt=0, description="Batch write period.")
    buffer_max: int = Field(50_000, gt=0, description="Records kept in memory while the database is down.")


class ConfigSyncSettings(_Strict):
    """Where the running gateway reads new versions of its config from (docs/operations.md)."""

    source: str | None = Field(
        None, description="`s3://bucket/key` or a file path (a mounted ConfigMap) watched for new versions; "
        "unset: the config changes only by a redeploy.")
    endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint of an `s3://` source; unset: AWS S3. Credentials and region "
        "otherwise come from the standard AWS settings, as for the router registry.")
    region: str | None = Field(None, description="AWS region of an `s3://` source.")
    poll_interval_s: float = Field(10.0, gt=0, description="How often each ingress replica checks the source "
                                   "(an S3 HEAD, or a file's mtime and size) and the applied-version record.")
    poll_jitter: float = Field(
        0.2, ge=0, lt=1, description="Each poll interval is moved at random by up to this fraction (replicas spread).")
    timeout_s: float = Field(5.0, gt=0, description="Connect and read timeout of one S3 call.")
    state_ttl_s: float = Field(
        60.0, gt=0, description="A replica's applied version in Redis (listed by `/config/sync/status`) expires "
        "this long after its last report.")

    @field_validator("source")
    @classmethod
    def _source_form(cls, value: str | None) -> str | None:
        if value and "://" in value and not value.startswith(("s3://", "file://")):
            raise ValueError(f"{value.partition('://')[0]}:// is not supported: s3://bucket/key or a file path")
        if value and value.startswith("s3://") and not value[5:].partition("/")[2]:
            raise ValueError(f"{value}: expected s3://bucket/key")
        return value


class AuditSettings(_Strict):
    """The audit log's export to S3 and its retention in the database (docs/security.md)."""

    export_url: str | None = Field(
        None, description="`s3://bucket/prefix` the audit log is exported to (gzip JSONL per batch, by date); "
        "unset: no export.")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, Ceph); unset: AWS.")
    region: str | None = Field(None, description="AWS region; unset: `AWS_REGION` or the AWS config file.")
    access_key_id: str | None = Field(
        None, description="Access key id, `file:/path` or `os.environ/NAME` (re-read: rotates); unset: boto3's "
        "standard chain.")
    secret_access_key: str | None = Field(None, description="Its secret, as `access_key_id`.")
    spool_dir: str = Field(".routeiq/audit-spool", description="Local spool of batches waiting for S3 (a volume "
                           "that survives restarts).")
    spool_max_bytes: int = Field(256 << 20, gt=0, description="No new batch is spooled above this (rows wait in "
                                 "the database).")
    interval_s: float = Field(10.0, gt=0, description="How often the exporter looks for new rows.")
    batch_rows: int = Field(5000, gt=0, le=100_000, description="Rows per exported object at most.")
    settle_s: float = Field(
        15.0, gt=0, description="Rows younger than this wait for the next round (longer than "
        "`access.db_timeout_s`: a slow insert may commit a lower id after a higher one).")
    retention_days: float | None = Field(
        None, gt=0, description="Delete the database copy of exported rows older than this; unset: keep all.")
    lease_s: float = Field(60.0, gt=0, description="The exporter's Redis lease (one exporter across replicas).")
    timeout_s: float = Field(10.0, gt=0, description="Connect and read timeout of one S3 call.")
    denials_window_s: float = Field(
        60.0, gt=0, description="Refused requests are written as one `access.denied` row per key, reason and "
        "window of this length (per replica), not one per request.")

    @field_validator("export_url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value is not None:
            from app.audit.objects import parse_export_url

            parse_export_url(value)
        return value


class GeneralSettings(_Strict):
    """Gateway-wide settings."""

    master_key: str | None = Field(None, description="Admin key; `ROUTEIQ_MASTER_KEY` overrides.")
    database_url: str | None = Field(
        None, description="Postgres URL or `os.environ/NAME`; else `DATABASE_URL`. Several hosts "
        "(`postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write`) for a failover pair.")
    redis_url: str | None = Field(
        None, description="Redis URL or `os.environ/NAME`; else `REDIS_URL`. `redis://`, `rediss://`, "
        "`redis+cluster://host:port[,host:port...]` or `redis+sentinel://host:port[,host:port...]/service[/db]`.")
    access: AccessSettings = Field(default_factory=AccessSettings, description="Virtual keys, limits and spend.")
    decisions: DecisionLogSettings = Field(
        default_factory=DecisionLogSettings, description="The routing decision log."
    )
    audit: AuditSettings = Field(default_factory=AuditSettings, description="Audit log export and retention.")
    log_format: Literal["json", "text"] = Field("json", description="Replica log lines: JSON objects or plain text.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Level of `routeiq.*` loggers.")
    max_request_body_bytes: int = Field(1 << 20, gt=0, description="413 above this.")
    max_inflight_requests: int = Field(
        2048, gt=0, description="Per ingress replica; above it new requests get 503 with Retry-After."
    )
    request_timeout_s: float = Field(
        60.0, gt=0, description="Deadline for an upstream's answer, or a stream's first chunk, retries included (504).")
    stream_idle_timeout_s: float = Field(
        120.0, gt=0, description="Longest silence between two chunks of a stream before it is ended with an error.")
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP/TLS connect timeout to an upstream.")
    block_private_upstreams: bool = Field(
        False, description="Refuse upstreams at non-public addresses (private, loopback, link-local, metadata).")
    expose_openapi: bool = Field(
        False, description="Serve `/openapi.json` (off by default: it maps the admin API for anyone).")
    demo: bool = Field(
        False, description="This is the demo config: only then is the public demo master key accepted.")
    config_sync: ConfigSyncSettings = Field(
        default_factory=ConfigSyncSettings, description="Live config changes from S3 or a mounted file: "
        "validated, then applied in place or by a Serve update (docs/operations.md).")

    @field_validator("redis_url", "database_url")
    @classmethod
    def _store_url_form(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A literal URL is checked now; a reference (``os.environ/``, ``file:``) when it is read.
        The checks raise ``ValueError``s, so pydantic names the field."""
        if value and not value.startswith((ENV_PREFIX, FILE_PREFIX)):
            (parse_redis_url if info.field_name == "redis_url" else check_database_url)(value)
        return value


class ProviderSettings(_Strict):
    """One provider-call deployment's slice of the config: what ``graph.py`` binds it with.

    A provider replica never sees the other groups' models, the routers or the access
    settings; everything it needs to call its upstreams is here.
    """

    group: ProviderGroup = Field(description="The provider group this deployment serves.")
    entries: dict[int, ModelEntry] = Field(description="Its `model_list` entries, by index in `model_list`.")
    num_retries: int = Field(description="Retries on 5xx/connection errors (router_settings).")
    retry_backoff_s: float = Field(description="First backoff (router_settings).")
    connect_timeout_s: float = Field(description="Connect timeout (general_settings).")
    stream_idle_timeout_s: float = Field(description="Longest silence inside a stream (general_settings).")
    block_private_upstreams: bool = Field(False, description="Refuse non-public addresses (general_settings).")
    log_format: Literal["json", "text"] = Field("json", description="Replica log format (general_settings).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")


class GatewayConfig(_Strict):
    """The root of the gateway config file."""

    model_list: tuple[ModelEntry, ...] = Field(
        min_length=1, description="Provider deployments of public model names (LiteLLM's shape); at least one."
    )
    router_settings: RouterSettings = Field(
        default_factory=RouterSettings, description="Routers, aliases, retries, fallbacks and cooldowns."
    )
    provider_groups: tuple[ProviderGroup, ...] = Field(
        (), description="Provider-call deployments; a group a model names without declaring gets defaults."
    )
    general_settings: GeneralSettings = Field(
        default_factory=GeneralSettings, description="Keys, stores, access, decision log, logging and request limits."
    )
    environment_variables: dict[str, str] = Field(
        default_factory=dict, description="LiteLLM's: variables set at start-up where not already set (the "
        "process environment wins); every replica gets the values in effect.")

    @model_validator(mode="after")
    def _check_references(self) -> GatewayConfig:
        if problems := self._reference_problems():
            raise _ReferenceErrors(*problems)
        return self

    def _reference_problems(self) -> list[str]:
        """Every name that points nowhere (also run by ``parse_config`` on a partial config)."""
        names = {m.model_name for m in self.model_list}
        problems = self._check_routers(names) + self._check_model_aliases(names)
        for kind in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            for i, entry in enumerate(getattr(self.router_settings, kind)):
                for model, chain in entry.items():
                    for m in (model, *chain):
                        if not serves(names, m):
                            problems.append(f"router_settings.{kind}[{i}]: unknown model {m!r}")
        declared = {g.name for g in self.provider_groups}
        for i, e in enumerate(self.model_list):
            if declared and isinstance(e.provider_group, str) and e.provider_group not in declared:
                problems.append(f"model_list[{i}].provider_group: {e.provider_group!r} is not declared")
        return problems + self._upstream_problems()

    def _upstream_problems(self) -> list[str]:
        from app.providers.egress import private_literal, url_problem

        problems = []
        block = self.general_settings.block_private_upstreams
        for i, e in enumerate(self.model_list):
            params = getattr(e, "litellm_params", None)  # absent in a partial check of a broken config
            base = params.api_base if params is not None else None
            if base is None:
                continue
            if why := url_problem(base):
                problems.append(f"model_list[{i}].litellm_params.api_base: {why}")
            elif block and (ip := private_literal(base)):
                problems.append(f"model_list[{i}].litellm_params.api_base: {ip} is not a public address "
                                "(general_settings.block_private_upstreams)")
        return problems

    def upstream_urls(self) -> list[str]:
        """Every configured ``api_base``."""
        return [e.litellm_params.api_base for e in self.model_list if e.litellm_params.api_base]

    def _check_routers(self, names: set[str]) -> list[str]:
        problems = []
        for i, r in enumerate(self.router_settings.routers):
            if r.name in names:
                problems.append(f"router_settings.routers[{i}].name: {r.name!r} is also a model_name")
            for c in (*r.candidates, *filter(None, [r.fallback_model])):
                if c not in names:
                    problems.append(f"router_settings.routers[{i}]: unknown model {c!r}")
            if r.strategy == "learned" and not r.artifact:
                problems.append(f"router_settings.routers[{i}].artifact: required for strategy learned")
            problems += [f"router_settings.routers[{i}].exploration.models: unknown model {m!r}"
                         for m in r.exploration.models if m not in names]
            if r.exploration.rate and r.strategy == "weighted-shuffle":
                problems.append(f"router_settings.routers[{i}].exploration: weighted-shuffle already draws at "
                                "random; exploration is for learned and cost-first routers")
        routers = {r.name for r in self.router_settings.routers}
        for alias, a in self.router_settings.aliases.items():
            if a.router not in routers:
                problems.append(f"router_settings.aliases.{alias}.router: unknown router {a.router!r}")
        return problems

    def _check_model_aliases(self, names: set[str]) -> list[str]:
        problems = []
        routers = {r.name for r in self.router_settings.routers} | set(self.router_settings.aliases)
        for alias, a in self.router_settings.aliases_of_models().items():
            if alias in names or alias in routers:
                problems.append(f"router_settings.model_group_alias.{alias}: already a model or router name")
            if a.model not in names:
                problems.append(f"router_settings.model_group_alias.{alias}: unknown model {a.model!r}")
        return problems

    def groups(self) -> tuple[ProviderGroup, ...]:
        """Declared provider groups, plus any a model names without declaring."""
        known = {g.name: g for g in self.provider_groups}
        for m in self.model_list:
            known.setdefault(m.provider_group, ProviderGroup(name=m.provider_group))
        return tuple(known.values())

    def provider_settings(self, group: str) -> ProviderSettings:
        """The slice of this config a provider-call deployment for ``group`` is bound with."""
        settings = next(g for g in self.groups() if g.name == group)
        rs, gs = self.router_settings, self.general_settings
        return ProviderSettings(
            group=settings,
            entries={i: e for i, e in enumerate(self.model_list) if e.provider_group == group},
            num_retries=rs.num_retries, retry_backoff_s=rs.retry_backoff_s,
            connect_timeout_s=gs.connect_timeout_s, stream_idle_timeout_s=gs.stream_idle_timeout_s,
            block_private_upstreams=gs.block_private_upstreams,
            log_format=gs.log_format, log_level=gs.log_level,
        )

    def scorer_sync_settings(self) -> ScorerSyncSettings:
        """What the router-scoring deployment is bound with to follow ``s3://`` artifacts."""
        gs = self.general_settings
        return ScorerSyncSettings(registry=self.router_settings.registry, redis_url=gs.redis_url,
                                  redis_prefix=gs.access.redis_prefix, redis_timeout_s=gs.access.redis_timeout_s)

    def master_key(self) -> str:
        """The admin key: env ``ROUTEIQ_MASTER_KEY``, else the file ``ROUTEIQ_MASTER_KEY_FILE``
        names (re-read when rotated), else the config's (secret refs resolved). Called per request."""
        key = os.environ.get("ROUTEIQ_MASTER_KEY")
        if not key and (path := os.environ.get("ROUTEIQ_MASTER_KEY_FILE")):
            key = resolve_secret(FILE_PREFIX + path)
        key = key or resolve_secret(self.general_settings.master_key)
        if not key:
            raise ConfigError("general_settings.master_key: not set (and ROUTEIQ_MASTER_KEY is unset)")
        if key == DEMO_MASTER_KEY and not self.general_settings.demo:
            raise ConfigError(f"general_settings.master_key: the public demo key {DEMO_MASTER_KEY} is refused "
                              "outside the demo (set ROUTEIQ_MASTER_KEY, or general_settings.demo: true)")
        return key


class _ReferenceErrors(ValueError):
    """Every broken cross-reference of a config (its args); ``parse_config`` lists them one per line."""

    def __str__(self) -> str:
        return "; ".join(self.args)


def _salvaged_references(raw: dict[str, object]) -> list[str]:
    """Cross-reference problems of a config whose fields did not all validate.

    pydantic runs ``_check_references`` only on a fully valid config. Here the parts that
    references read are taken one by one into a config built without validation
    (``model_construct``): model names from the raw entries (all must be strings, else
    nothing is checked rather than guessed), ``router_settings`` only if it validates on its
    own. A part that is itself invalid is already reported.
    """
    entries = raw.get("model_list")
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("model_name"), str) for e in entries):
        return []
    try:
        settings = RouterSettings.model_validate(raw.get("router_settings") or {})
    except ValidationError:
        settings = RouterSettings()
    groups = raw.get("provider_groups")
    declared = [g["name"] for g in (groups if isinstance(groups, list) else [])
                if isinstance(g, dict) and isinstance(g.get("name"), str)]
    # Only the names are read; model_construct skips validation and the required litellm_params.
    models = [ModelEntry.model_construct(model_name=e["model_name"],  # type: ignore[call-arg]
                                         provider_group=e.get("provider_group", "default"))
              for e in entries]
    partial = GatewayConfig.model_construct(
        model_list=tuple(models),
        router_settings=settings,
        provider_groups=tuple(ProviderGroup.model_construct(name=name) for name in declared),
    )
    return partial._reference_problems()


def wildcard_match(pattern: str, name: str) -> str | None:
    """What ``*`` stands for when ``name`` matches the wildcard ``model_name`` ``pattern``
    (``openai/*`` and ``openai/gpt-4o``: ``gpt-4o``); ``None`` when it does not match."""
    prefix, star, suffix = pattern.partition("*")
    if not star or len(name) <= len(prefix) + len(suffix) or not name.startswith(prefix) \
            or not name.endswith(suffix):
        return None
    return name[len(prefix) : len(name) - len(suffix)]


def serves(names: set[str], model: str) -> bool:
    """Whether a ``model_name`` of ``names`` (a wildcard among them) serves ``model``."""
    return model in names or any(wildcard_match(n, model) is not None for n in names)


def _env_refs(node: object, path: str = "", prefix: str = ENV_PREFIX) -> list[tuple[str, str]]:
    if isinstance(node, str) and node.startswith(prefix):
        return [(path, node[len(prefix) :])]
    if isinstance(node, dict):
        return [r for k, v in node.items() for r in _env_refs(v, f"{path}.{k}" if path else str(k), prefix)]
    if isinstance(node, list):
        return [r for i, v in enumerate(node) for r in _env_refs(v, f"{path}[{i}]", prefix)]
    return []


def _key_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's ``("model_list", 2, "litellm_params")`` as ``model_list[2].litellm_params``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _field_problems(err: ValidationError) -> list[str]:
    """One line per pydantic error; the reference check's error carries its own lines.

    pydantic adds "should have at least N items" to a list whose items failed, even when it
    had enough: that echo of the item errors is dropped.
    """
    problems: list[str] = []
    for e in err.errors():
        if isinstance(refs := e.get("ctx", {}).get("error"), _ReferenceErrors):
            problems += refs.args
            continue
        given = e["input"]
        if e["type"] == "too_short" and isinstance(given, list | tuple) and len(given) >= e["ctx"]["min_length"]:
            continue
        loc, msg = _key_path(e["loc"]), e["msg"].removeprefix("Value error, ")
        problems.append(f"{loc}: {msg}" if loc else msg)
    return problems


def _secret_problems(raw: dict[str, object]) -> list[str]:
    """Every ``os.environ/`` that is unset and every ``file:`` that cannot be read.

    The master key is left to ``GatewayConfig.master_key()``: env vars may override it. A
    router's ``artifact`` is a location, never a secret: ``file:///dir`` there is a directory.
    """
    problems = [f"{path}: environment variable {name} is not set" for path, name in _env_refs(raw)
                if name not in os.environ and not path.endswith("master_key")]
    for path, file in _env_refs(raw, prefix=FILE_PREFIX):
        if not path.endswith(("master_key", ".artifact")):
            try:
                read_secret_file(file)
            except SecretError as err:
                problems.append(f"{path}: {err}")
    return problems


def parse_config(raw: object) -> GatewayConfig:
    """Validate a parsed YAML document; raise one ``ConfigError`` listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError("config: expected a mapping at the top level")
    litellm = translate(raw)
    raw = litellm.raw
    if litellm.environment:
        raw["environment_variables"] = apply_environment(litellm.environment)
    for warning in litellm.warnings:
        log.warning("config: %s", warning)
    problems = litellm.problems + _secret_problems(raw)
    try:
        cfg = GatewayConfig.model_validate(raw)
    except ValidationError as err:
        problems += _field_problems(err)
        if not any(isinstance(e.get("ctx", {}).get("error"), _ReferenceErrors) for e in err.errors()):
            problems += _salvaged_references(raw)
        raise ConfigError(*problems) from None
    if problems:
        raise ConfigError(*problems)
    return cfg


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a gateway config file."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    return parse_config_text(text, str(path))


def parse_config_text(text: str, origin: str) -> GatewayConfig:
    """Validate a config file's text (read from ``origin``: a path or an ``s3://`` URL)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin}: not valid YAML ({str(err).splitlines()[0]})") from None
    return parse_config(raw)


def main(argv: list[str] | None = None) -> int:
    """``python -m app.config FILE``: validate a config; on error, every problem, one per line."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        cfg = load_config(args[0])
        cfg.master_key()
    except (ConfigError, IndexError) as err:
        print(f"config error: {err}" if isinstance(err, ConfigError) else "usage: python -m app.config FILE",
              file=sys.stderr)
        return 1
    print(f"{args[0]}: ok ({len(cfg.model_list)} models, {len(cfg.router_settings.routers)} routers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
