"""The deployment graph: the only place that calls ``serve.deployment`` and ``.bind``.

``build_app`` is the import path of every Serve config (``serve run``, KubeRay's
``serveConfigV2``): ``deployments.graph:build_app`` with ``args: {config_path: ...}``.
The config is validated here, once; each deployment gets only what it needs.

Options are sized for an I/O-bound gateway on small machines: fractional CPUs (three
deployments that each ask for a whole CPU never schedule on 2 cores) and a high
``max_ongoing_requests`` (the default 5 makes the router queue and back off). The
Serve config file may override any of them per deployment name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from ray import serve
from ray.serve import Application
from ray.serve.deployment import Deployment

from app.config import ConfigError, GatewayConfig, load_config, parse_config
from app.gateway.catalog import ModelCatalog
from app.providers.egress import resolve_problems
from deployments.config_update import ServeGraphUpdater
from deployments.ingress import Ingress
from deployments.provider_call import ProviderDeployment
from deployments.router_scoring import RouterScoring
from router_models.inference.service import RouterSpec

INGRESS = "Ingress"
ROUTER_SCORING = "RouterScoring"
PROVIDER_PREFIX = "Provider-"

# Queue-depth autoscaling: Serve adds replicas when ongoing + queued requests per
# replica exceed the target. Provider calls mostly wait on the upstream (I/O-bound),
# so a replica holds many; scoring is CPU-bound and batched. Timings suit one machine;
# kuberay/generate.py declares cluster values.
_TIMING: dict[str, Any] = {"upscale_delay_s": 5, "downscale_delay_s": 60, "metrics_interval_s": 2,
                           "look_back_period_s": 10}
# A dead replica is noticed at its next health check, then replaced: Serve's default period
# (10 s) was most of a scorer's 10-13 s recovery; 2 s brings `auto` back in ~7 s
# (bench/RESULTS-faults.md). A check is one tiny RPC per replica.
HEALTH_CHECK_PERIOD_S = 2

INGRESS_OPTIONS: dict[str, Any] = {
    "ray_actor_options": {"num_cpus": 0.25},
    "health_check_period_s": HEALTH_CHECK_PERIOD_S,
    "max_ongoing_requests": 1024,
    "max_queued_requests": 2048,
    "graceful_shutdown_timeout_s": 60,  # in-flight streams finish on redeploy / scale-down
}
ROUTER_OPTIONS: dict[str, Any] = {
    "ray_actor_options": {"num_cpus": 0.25},
    "health_check_period_s": HEALTH_CHECK_PERIOD_S,
    "max_ongoing_requests": 128,
    "max_queued_requests": 512,
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 16, **_TIMING},
}
PROVIDER_OPTIONS: dict[str, Any] = {
    "ray_actor_options": {"num_cpus": 0.25},
    "health_check_period_s": HEALTH_CHECK_PERIOD_S,
    "max_ongoing_requests": 1024,
    "max_queued_requests": 2048,
    "graceful_shutdown_timeout_s": 60,
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 64, **_TIMING},
}


def provider_deployment_name(group: str) -> str:
    return f"{PROVIDER_PREFIX}{group}"


def _absolute_artifacts(cfg: GatewayConfig, root: Path) -> list[RouterSpec]:
    specs = []
    routers = ModelCatalog(cfg).routers  # the candidates the ingress will offer each router
    for r in cfg.router_settings.routers:
        artifact = r.artifact
        if artifact and "://" not in artifact and not Path(artifact).is_absolute():
            artifact = str((root / artifact).resolve())
        candidates = tuple((c.name, c.profile) for c in routers[r.name].candidates)
        specs.append(RouterSpec(r.name, r.strategy, artifact, r.lam, candidates))
    return specs


def build_graph(
    cfg: GatewayConfig, root: Path | None = None, overrides: dict[str, dict[str, Any]] | None = None
) -> Application:
    """Bind the ingress, router-scoring and provider-call deployments for ``cfg``.

    ``overrides`` maps a deployment name to Serve options that replace the defaults
    (tests use it; a Serve config file's ``deployments:`` section does the same).
    """
    cfg.master_key()  # fail at start, not at the first request
    if cfg.general_settings.block_private_upstreams and (problems := resolve_problems(cfg.upstream_urls())):
        raise ConfigError(*problems)
    overrides = overrides or {}

    def opts(name: str, defaults: dict[str, Any]) -> dict[str, Any]:
        return _with_environment({"name": name, **defaults, **overrides.get(name, {})}, cfg.environment_variables)

    providers = {
        g.name: _deployment(ProviderDeployment, opts(provider_deployment_name(g.name), PROVIDER_OPTIONS))
        .bind(cfg.provider_settings(g.name))
        for g in cfg.groups()
    }
    router, local = None, []
    if cfg.router_settings.routers:
        specs = _absolute_artifacts(cfg, root or Path.cwd())
        in_ingress = {r.name for r in cfg.router_settings.routers if r.scoring == "ingress"}
        local = [s for s in specs if s.name in in_ingress]
        if remote := [s for s in specs if s.name not in in_ingress]:  # no scorer deployment when none is left
            router = _deployment(RouterScoring, opts(ROUTER_SCORING, ROUTER_OPTIONS)).bind(
                remote, sync=cfg.scorer_sync_settings())
    ingress = _deployment(serve.ingress()(Ingress), opts(INGRESS, INGRESS_OPTIONS))
    updater = ServeGraphUpdater(build_graph, root) if cfg.general_settings.config_sync.source else None
    return ingress.bind(cfg, router, providers, updater, local_routers=local)


def _with_environment(options: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Serve options whose replicas get the config's ``environment_variables`` (the values in
    effect where the config was loaded: ``os.environ/`` references resolve in the replica)."""
    if not env:
        return options
    actor = dict(options.get("ray_actor_options") or {})
    runtime_env = dict(actor.get("runtime_env") or {})
    runtime_env["env_vars"] = {**env, **(runtime_env.get("env_vars") or {})}
    return {**options, "ray_actor_options": {**actor, "runtime_env": runtime_env}}


def _deployment(cls: type, options: dict[str, Any]) -> Deployment:
    """``serve.deployment(cls).options(...)``, typed (Serve's overloads lose the type)."""
    deployment = cast(Deployment, serve.deployment(cls))
    return deployment.options(**options)


def build_app(args: dict[str, Any]) -> Application:
    """Serve application builder: ``args`` has ``config_path`` (or an inline ``config``)."""
    if "config" in args:
        cfg = parse_config(args["config"])
        root = Path(args.get("root", Path.cwd()))
    elif "config_path" in args:
        path = Path(args["config_path"])
        cfg = load_config(path)
        root = Path(args.get("root", path.resolve().parent.parent))
    else:
        raise ConfigError("application args: expected `config_path` (or `config`)")
    return build_graph(cfg, root)
