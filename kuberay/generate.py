"""Generate the cluster's Serve and gateway configs from the local ones: one source of truth.

``configs/serve.demo.yaml`` (what ``serve run`` uses on a laptop) is the source of the
RayService's ``serveConfigV2``; ``configs/demo.yaml`` is the source of the gateway
config in the ``routeiq-gateway-config`` ConfigMap. This script applies the few
cluster differences declared below (listen address, config path, autoscaling, per-replica
memory, secrets from mounted files) and writes ``kuberay/base/serve-config.yaml`` and
``kuberay/base/gateway.yaml`` (and the registry overlay's ``gateway.yaml``, the same with
learned routers on S3, and the ops overlay's ``gateway.yaml`` and ``serve-config.yaml``:
the audit export, config sync from S3 and OpenTelemetry); kustomize inlines the serve
configs into ``serveConfigV2``. The test suite regenerates both and fails if the committed files drifted.

    python kuberay/generate.py            # rewrite the generated files
    python kuberay/generate.py --check    # exit 1 if they are stale
    python kuberay/generate.py lock       # rewrite kuberay/image/requirements.txt from the venv

Deployment names come from ``deployments.graph``; nothing here invents one. This module
must not start Ray (importing ``deployments.graph`` only imports ``ray.serve``).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deployments.graph import INGRESS, PROVIDER_PREFIX, ROUTER_SCORING  # noqa: E402

SERVE_SOURCE = ROOT / "configs" / "serve.demo.yaml"
GATEWAY_SOURCE = ROOT / "configs" / "demo.yaml"
SERVE_OUT = ROOT / "kuberay" / "base" / "serve-config.yaml"
GATEWAY_OUT = ROOT / "kuberay" / "base" / "gateway.yaml"
LOCK_OUT = ROOT / "kuberay" / "image" / "requirements.txt"
REGISTRY_GATEWAY_OUT = ROOT / "kuberay" / "overlays" / "registry" / "gateway.yaml"
OPS_GATEWAY_OUT = ROOT / "kuberay" / "overlays" / "ops" / "gateway.yaml"
OPS_SERVE_OUT = ROOT / "kuberay" / "overlays" / "ops" / "serve-config.yaml"

# The ops overlay: the audit log exported to S3 (docs/security.md, "Audit log") from a spool
# on an emptyDir, and traces to the in-cluster OpenTelemetry Collector (otel-collector.yaml).
AUDIT_URL = "s3://routeiq-audit/prod"
AUDIT_SPOOL_DIR = "/var/spool/routeiq/audit"
AUDIT_RETENTION_DAYS = 90
# ... and the gateway config synced live from S3 (docs/operations.md, "Changing config live"):
# the ConfigMap's version is what a pod starts with; a newer object at this key replaces it on
# every replica without a rollout (graph changes still go through the RayService).
CONFIG_SYNC_SOURCE = "s3://routeiq-config/prod/gateway.yaml"
OTEL_ENV = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318",
    "OTEL_SERVICE_NAME": "routeiq",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.1",
}

# The registry overlay: learned routers served from an S3 registry (docs/routing.md, "Router
# lifecycle"), cached on the workers' emptyDir (kuberay/overlays/registry/rayservice-patch.yaml).
REGISTRY_URL = "s3://routeiq-routers/prod"
ROUTER_CACHE_DIR = "/var/cache/routeiq/routers"

# Where the pods see things (kuberay/base/rayservice.yaml mounts them; the Dockerfile puts /app).
APP_ROOT = "/app"
GATEWAY_CONFIG_PATH = "/etc/routeiq/gateway.yaml"
SECRETS_DIR = "/run/secrets/routeiq"
PROVIDER_SECRETS_DIR = "/run/secrets/routeiq-providers"
UPSTREAM_API_BASE = "https://llm-upstream/v1"
"""The OpenAI-compatible upstream of the demo models; an overlay's gateway.yaml replaces it.

TLS: provider keys and prompts cross the network to it. A private CA is trusted through
``SSL_CERT_FILE`` (both the native aiohttp client and litellm read it; docs/deployment.md).
"""

# Replica sizing. Memory is Ray's scheduling resource (bytes), from measured RSS plus
# headroom: an ingress/provider replica process ~340 MB (imports app, deployments, litellm,
# ray), the router-scoring replica ~650 MB steady, 728 MB peak (MiniLM int8 loaded).
# See docs/deployment.md, "Sizing".
REPLICA_MEMORY = {INGRESS: 400 * 2**20, ROUTER_SCORING: 800 * 2**20, PROVIDER_PREFIX: 400 * 2**20}

# Serve autoscaling on queue depth: target_ongoing_requests is the per-replica number of
# ongoing + queued requests Serve aims for. Provider calls wait seconds on the upstream
# (I/O-bound, ~14 ms CPU each), so a replica holds many; scoring is CPU-bound (~26 ms).
AUTOSCALING = {
    INGRESS: {"min_replicas": 2, "max_replicas": 8, "target_ongoing_requests": 64},
    # Two scorer replicas at least: one's death costs no fallback (the ingress asks the other).
    ROUTER_SCORING: {"min_replicas": 2, "max_replicas": 4, "target_ongoing_requests": 8},
    PROVIDER_PREFIX: {"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": 64},
}
AUTOSCALING_TIMING = {"upscale_delay_s": 30, "downscale_delay_s": 300, "metrics_interval_s": 10}

HEADER = """\
# GENERATED by kuberay/generate.py from {source}; do not edit (edit the source, rerun it).
# {what}
"""


def _kind(name: str) -> str:
    if name in (INGRESS, ROUTER_SCORING):
        return name
    if name.startswith(PROVIDER_PREFIX):
        return PROVIDER_PREFIX
    raise SystemExit(f"{SERVE_SOURCE}: deployment {name!r} is not a name from deployments/graph.py")


def cluster_serve_config(local: dict[str, Any]) -> dict[str, Any]:
    """The Serve config for KubeRay: the local one plus the declared cluster differences."""
    out = copy.deepcopy(local)
    out["http_options"] = {**out.get("http_options", {}), "host": "0.0.0.0"}  # reachable from the Service
    for app in out["applications"]:
        app["args"] = {"config_path": GATEWAY_CONFIG_PATH, "root": APP_ROOT}
        for dep in app.get("deployments", []):
            kind = _kind(dep["name"])
            dep.pop("num_replicas", None)
            dep["autoscaling_config"] = {**AUTOSCALING[kind], **AUTOSCALING_TIMING}
            dep["ray_actor_options"] = {**dep.get("ray_actor_options", {}), "memory": REPLICA_MEMORY[kind]}
    return out


def cluster_gateway_config(local: dict[str, Any]) -> dict[str, Any]:
    """The gateway config for the ConfigMap: keys from mounted Secrets, the in-cluster upstream."""
    out = copy.deepcopy(local)
    for entry in out["model_list"]:
        params = entry["litellm_params"]
        params["api_base"] = UPSTREAM_API_BASE
        params["api_key"] = f"file:{PROVIDER_SECRETS_DIR}/upstream-api-key"
    general = out.setdefault("general_settings", {})
    general.pop("demo", None)  # a cluster is never the demo: its public master key is refused there
    general["master_key"] = f"file:{SECRETS_DIR}/master-key"
    # A cluster has several ingress replicas: limits and spend need the shared servers.
    general["redis_url"] = f"file:{SECRETS_DIR}/redis-url"
    general["database_url"] = f"file:{SECRETS_DIR}/postgres-url"
    return out


def registry_gateway_config(cluster: dict[str, Any]) -> dict[str, Any]:
    """The cluster gateway config with every learned router following the S3 registry."""
    out = copy.deepcopy(cluster)
    settings = out.setdefault("router_settings", {})
    for r in settings.get("routers", []):
        if r.get("strategy") == "learned":
            r["artifact"] = REGISTRY_URL
    # Endpoint, region and credentials: the pods' AWS settings (the overlay's patch).
    settings["registry"] = {"cache_dir": ROUTER_CACHE_DIR, "poll_interval_s": 10}
    return out


def ops_gateway_config(cluster: dict[str, Any]) -> dict[str, Any]:
    """The cluster gateway config with the audit export on and the config synced from S3
    (credentials for both: the pods' AWS settings)."""
    out = copy.deepcopy(cluster)
    general = out.setdefault("general_settings", {})
    general["audit"] = {
        "export_url": AUDIT_URL, "spool_dir": AUDIT_SPOOL_DIR, "retention_days": AUDIT_RETENTION_DAYS}
    general["config_sync"] = {"source": CONFIG_SYNC_SOURCE}
    return out


def ops_serve_config(serve: dict[str, Any]) -> dict[str, Any]:
    """The cluster Serve config with every replica sending traces to the collector."""
    out = copy.deepcopy(serve)
    for app in out["applications"]:
        env = app.setdefault("runtime_env", {}).setdefault("env_vars", {})
        env.update(OTEL_ENV)
    return out


def _dump(data: dict[str, Any], source: Path, what: str) -> str:
    head = HEADER.format(source=source.relative_to(ROOT), what=what)
    return head + yaml.safe_dump(data, sort_keys=False, width=120)


def rendered() -> dict[Path, str]:
    """Every generated file and its expected text."""
    serve = cluster_serve_config(yaml.safe_load(SERVE_SOURCE.read_text()))
    gateway = cluster_gateway_config(yaml.safe_load(GATEWAY_SOURCE.read_text()))
    return {
        SERVE_OUT: _dump(serve, SERVE_SOURCE, "Inlined into the RayService's serveConfigV2 by kustomize."),
        GATEWAY_OUT: _dump(gateway, GATEWAY_SOURCE, f"The routeiq-gateway-config ConfigMap, at {GATEWAY_CONFIG_PATH}."),
        REGISTRY_GATEWAY_OUT: _dump(registry_gateway_config(gateway), GATEWAY_SOURCE,
                                    "The registry overlay's routeiq-gateway-config: learned routers from S3."),
        OPS_GATEWAY_OUT: _dump(ops_gateway_config(gateway), GATEWAY_SOURCE,
                               "The ops overlay's routeiq-gateway-config: the audit log exported to S3."),
        OPS_SERVE_OUT: _dump(ops_serve_config(serve), SERVE_SOURCE,
                             "The ops overlay's serveConfigV2: traces to the OpenTelemetry Collector."),
    }


def _wanted(requires: list[str] | None, extras: set[str]) -> list[tuple[str, set[str]]]:
    """(name, extras) of the requirements that apply here, with the given extras requested."""
    out = []
    for line in requires or []:
        req = Requirement(line)
        envs = [{"extra": e} for e in extras] or [{"extra": ""}]
        if req.marker is None or any(req.marker.evaluate(env) for env in envs):
            out.append((req.name, set(req.extras)))
    return out


def lock() -> str:
    """Exact versions of the serving dependencies' closure (extras included), as installed here."""
    seen: dict[str, str] = {}
    done: set[tuple[str, frozenset[str]]] = set()
    todo = _wanted(metadata.requires("routeiq"), set())
    while todo:
        name, extras = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if (key, frozenset(extras)) in done:
            continue
        done.add((key, frozenset(extras)))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a platform-conditional dependency not installed here
        seen[key] = dist.version
        todo += _wanted(dist.requires, extras)
    seen.pop("torch", None)  # installed first, from the CPU index (see the Dockerfile)
    lines = [f"{k}=={v}" for k, v in sorted(seen.items())]
    head = "# GENERATED by `python kuberay/generate.py lock` from the venv (pyproject's pins + their closure).\n"
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["configs", "lock"], default="configs")
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    args = parser.parse_args(argv)
    files = rendered() if args.what == "configs" else {LOCK_OUT: lock()}
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is stale: run `python kuberay/generate.py {args.what}`", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[p])
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
