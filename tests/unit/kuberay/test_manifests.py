"""Every manifest kustomize renders is valid for the KubeRay CRDs and core Kubernetes.

CRD objects are checked against the vendored CRDs' ``openAPIV3Schema`` with unknown fields
rejected (what ``kubectl apply`` does with strict field validation); core objects and the
pod templates and Service embedded in the RayService against Kubernetes 1.37 schemas
(``kubernetes-validate``, strict). Then the deployment rules: secrets only from mounted
files, KubeRay's probes kept, sizes and versions consistent.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import ray
import yaml

from tests.unit.kuberay.conftest import KUBERAY, ROOT, TARGETS, gateway_configmap, pod_templates, rayservice
from tests.unit.kuberay.conftest import strict_schema as _strict
from tests.unit.kuberay.raycronjob_schema import raycronjob_errors

K8S_VERSION = "1.37.0"
SIGNING_KEY_ENV = "ROUTEIQ_ROUTER_SIGNING_KEY"
CRDS = {"RayService": "ray.io_rayservices.yaml", "RayCluster": "ray.io_rayclusters.yaml"}


@cache
def crd_validator(kind: str, version: str = "v1") -> jsonschema.Draft7Validator:
    crd = yaml.safe_load((KUBERAY / "crds" / CRDS[kind]).read_text())
    (v,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return jsonschema.Draft7Validator(_strict(v["schema"]["openAPIV3Schema"]))


def test_vendored_crds_carry_their_license() -> None:
    assert (KUBERAY / "crds" / "LICENSE.kuberay").read_text().lstrip().startswith("Apache License")
    assert "KubeRay" in (KUBERAY / "crds" / "README.md").read_text()


def test_strict_crd_validation_rejects_an_unknown_field(rendered: dict[str, list[dict[str, Any]]]) -> None:
    rs = rayservice(rendered["base"])
    cluster = {**rs["spec"]["rayClusterConfig"], "enableInTreeAutoscale": True}  # a typo
    bad = {**rs, "spec": {**rs["spec"], "rayClusterConfig": cluster}}
    assert not crd_validator("RayService").is_valid(bad)


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    kinds = []
    for doc in rendered[target]:
        kinds.append(doc["kind"])
        if doc["kind"] == "RayCronJob":  # no vendored CRD: raycronjob_schema says how it is checked
            errors_ = raycronjob_errors(doc)
            assert not errors_, "RayCronJob: " + "; ".join(errors_[:5])
        elif doc["apiVersion"].startswith("ray.io/"):
            errors = sorted(crd_validator(doc["kind"], doc["apiVersion"].split("/")[1]).iter_errors(doc), key=str)
            assert not errors, f"{doc['kind']}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert "RayService" in kinds and "ConfigMap" in kinds


@pytest.mark.parametrize("target", TARGETS)
def test_embedded_pod_templates_and_service_validate_as_core_objects(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    rs = rayservice(rendered[target])
    for i, template in enumerate(pod_templates(rs)):
        pt = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": f"t{i}"}, "template": template}
        kubernetes_validate.validate(pt, K8S_VERSION, strict=True)
    svc = {"apiVersion": "v1", "kind": "Service", **rs["spec"]["serveService"]}
    kubernetes_validate.validate(svc, K8S_VERSION, strict=True)
    assert svc["metadata"]["name"] == "routeiq-gateway"


@pytest.mark.parametrize("target", TARGETS)
def test_cluster_shape_autoscaling_and_versions(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    rs = rayservice(rendered[target])
    cluster = rs["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["rayVersion"] == ray.__version__ == "2.60.0"
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["groupName"] == "cpu"
    assert 1 <= workers["minReplicas"] <= workers["replicas"] <= workers["maxReplicas"]
    assert rs["spec"]["upgradeStrategy"]["type"] == "NewCluster"
    images = {c["image"] for t in pod_templates(rs) for c in t["spec"]["containers"]}
    assert len(images) == 1
    if target != "base":
        assert re.fullmatch(r"[\w.\-/]+/routeiq:[\w.\-]+", images.pop())


@pytest.mark.parametrize("target", TARGETS)
def test_probes_are_left_to_kuberay_so_its_serve_health_check_stays(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    """A user readiness/liveness probe replaces KubeRay's, which on RayService workers adds
    the Serve proxy check (GET :<serve port>/-/healthz); the serve port must be named `serve`."""
    for template in pod_templates(rayservice(rendered[target])):
        ray = template["spec"]["containers"][0]
        assert "readinessProbe" not in ray and "livenessProbe" not in ray
        assert {"name": "serve", "containerPort": 8000} in ray["ports"]
        assert ray["command"][:3] == ["/usr/bin/tini", "-g", "--"]
        assert '"$KUBERAY_GEN_RAY_START_CMD"' in ray["args"][0]
    assert rayservice(rendered[target])["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"


@pytest.mark.parametrize("target", TARGETS)
def test_secrets_come_only_from_mounted_secret_volumes(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    docs = rendered[target]
    assert all(d["kind"] != "Secret" for d in docs), "secrets are created out of band, never in the manifests"
    text = yaml.safe_dump_all(docs)
    assert not re.search(r"\bsk-[A-Za-z0-9]", text), "a literal key is in the manifests"
    rs = rayservice(docs)
    for template in pod_templates(rs):
        spec = template["spec"]
        secrets = {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}
        assert {s["secretName"] for s in secrets.values()} == {"routeiq-secrets", "routeiq-provider-keys"}
        ray = spec["containers"][0]
        mounts = {m["name"]: m for m in ray["volumeMounts"]}
        for name in secrets:
            assert "subPath" not in mounts[name], "subPath mounts are never updated when a Secret rotates"
            assert mounts[name]["readOnly"] is True
        # Rotating secrets are files. The one environment secret is prod's artifact signing key
        # (read once per artifact load; see test_prod_requires_signed_router_artifacts).
        assert all("secretKeyRef" not in str(e) for e in ray.get("env", []) if e["name"] != SIGNING_KEY_ENV)
        assert spec["securityContext"]["runAsUser"] == 1000 and spec["securityContext"]["runAsNonRoot"] is True
    cm = gateway_configmap(docs)
    gateway = yaml.safe_load(cm["data"]["gateway.yaml"])
    assert gateway["general_settings"]["master_key"].startswith("file:/run/secrets/routeiq/")
    assert all(m["litellm_params"]["api_key"].startswith("file:/run/secrets/") for m in gateway["model_list"])


@pytest.mark.parametrize("target", TARGETS)
def test_the_gateway_configmap_is_the_one_mounted(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    docs = rendered[target]
    cm = gateway_configmap(docs)
    assert re.fullmatch(r"routeiq-gateway-config-[a-z0-9]{10}", cm["metadata"]["name"])  # hashed: changes roll
    for template in pod_templates(rayservice(docs)):
        names = [v["configMap"]["name"] for v in template["spec"]["volumes"] if "configMap" in v]
        assert names == [cm["metadata"]["name"]]


def test_resources_are_set_and_guaranteed_memory(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Memory request = limit (no overcommit kills); the numbers' sources are in docs/deployment.md."""
    for target in TARGETS:
        for template in pod_templates(rayservice(rendered[target])):
            res = template["spec"]["containers"][0]["resources"]
            assert res["requests"]["memory"] == res["limits"]["memory"]
            assert res["requests"]["cpu"] and res["limits"]["cpu"]


def test_prod_spreads_workers_and_budgets_disruptions(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["overlays/prod"]
    (workers,) = rayservice(docs)["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert workers["minReplicas"] >= 2
    assert workers["template"]["spec"]["topologySpreadConstraints"]
    (pdb,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    labels = workers["template"]["metadata"]["labels"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert all(labels.get(k) == v for k, v in selector.items() if not k.startswith("ray.io/"))


def test_dev_overlay_only_warns_on_the_offline_check(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for target, mode in (("overlays/dev", "warn"), ("overlays/prod", "strict")):
        for template in pod_templates(rayservice(rendered[target])):
            env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0]["env"]}
            assert env["ROUTEIQ_OFFLINE_CHECK"] == mode
            assert env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "0"


def test_the_crds_are_not_part_of_what_gets_applied() -> None:
    text = (KUBERAY / "base" / "kustomization.yaml").read_text()
    assert "crds" not in text and (ROOT / "kuberay" / "crds" / "ray.io_rayservices.yaml").exists()


def _containers(rs: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(container, its pod spec) for every container we declare: Ray head, workers, autoscaler."""
    out = [(c, t["spec"]) for t in pod_templates(rs) for c in [*t["spec"].get("initContainers", []),
                                                                   *t["spec"]["containers"]]]
    cluster = rs["spec"]["rayClusterConfig"]
    head_spec = cluster["headGroupSpec"]["template"]["spec"]
    out.append((cluster["autoscalerOptions"], head_spec))  # KubeRay adds it to the head pod
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_has_a_read_only_root_and_only_emptydir_is_writable(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    """readOnlyRootFilesystem everywhere; /tmp (Ray's session dir) is an emptyDir; all else read-only."""
    for container, spec in _containers(rayservice(rendered[target])):
        sc, pod_sc = container["securityContext"], spec["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]} and "add" not in sc["capabilities"]
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
        assert sc.get("seccompProfile", pod_sc.get("seccompProfile")) == {"type": "RuntimeDefault"}
        assert "privileged" not in sc
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]], "Ray writes its session dir under /tmp"
        assert volumes[mounts["/tmp"]["name"]]["emptyDir"]["sizeLimit"]
        for path, m in mounts.items():
            if "emptyDir" not in volumes[m["name"]]:
                assert m.get("readOnly") is True, f"{path} is writable"
    for template in pod_templates(rayservice(rendered[target])):
        assert template["spec"]["securityContext"]["runAsUser"] != 0
        assert not template["spec"].get("hostNetwork") and not template["spec"].get("hostPID")


@pytest.mark.parametrize("target", TARGETS)
def test_ray_token_auth_is_on_with_the_token_from_a_secret(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    """KubeRay (authOptions) puts RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (secretKeyRef) on the
    head, every worker group, the autoscaler and the wait-gcs-ready init container, and its
    dashboard client sends the token. A container that sets either variable itself would win
    over KubeRay's, so none may; nor may the Serve config's runtime_env."""
    rs = rayservice(rendered[target])
    cluster = rs["spec"]["rayClusterConfig"]
    assert cluster["authOptions"] == {"mode": "token", "secretName": "routeiq-ray-auth"}
    assert "enableK8sTokenAuth" not in cluster["authOptions"]  # KubeRay: unsupported for RayService
    for container, _ in _containers(rs):
        names = {e["name"] for e in container.get("env", [])}
        assert not names & {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"}, container.get("name")
    serve = yaml.safe_load(rs["spec"]["serveConfigV2"])
    for app in serve["applications"]:
        assert not any(k.startswith("RAY_AUTH") for k in app.get("runtime_env", {}).get("env_vars", {}))


def test_prod_requires_signed_router_artifacts(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """prod: the scorer's workers and every pod's startup check get the key from a Secret (not
    optional: no Secret, no pod), so an unsigned or tampered artifact is refused."""
    for template in pod_templates(rayservice(rendered["overlays/prod"])):
        env = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}
        ref = env[SIGNING_KEY_ENV]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "routeiq-router-signing", "key": "signing-key"}  # `optional` unset: required
    for target in ("base", "overlays/dev"):
        for template in pod_templates(rayservice(rendered[target])):
            assert SIGNING_KEY_ENV not in {e["name"] for e in template["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("target", TARGETS)
def test_the_example_upstream_is_reached_over_tls(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    cm = gateway_configmap(rendered[target])
    gateway = yaml.safe_load(cm["data"]["gateway.yaml"])
    bases = {m["litellm_params"]["api_base"] for m in gateway["model_list"]}
    assert bases and all(b.startswith("https://") for b in bases), bases


def test_prod_survives_the_head_pods_loss(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """GCS fault tolerance on an external Redis, its password from a Secret (validated above
    against the vendored CRD with every other object)."""
    cluster = rayservice(rendered["overlays/prod"])["spec"]["rayClusterConfig"]
    ft = cluster["gcsFaultToleranceOptions"]
    assert ft["redisAddress"].startswith("redis://")
    assert ft["redisPassword"] == {"valueFrom": {"secretKeyRef": {"name": "routeiq-gcs-redis", "key": "password"}}}
    assert "gcsFaultToleranceOptions" not in rayservice(rendered["overlays/dev"])["spec"]["rayClusterConfig"]


def test_the_cluster_runs_two_scorer_replicas_at_least() -> None:
    """One scorer replica's death then costs no fallback: the ingress asks the other."""
    serve = yaml.safe_load((KUBERAY / "base/serve-config.yaml").read_text())
    (scorer,) = [d for a in serve["applications"] for d in a["deployments"] if d["name"] == "RouterScoring"]
    assert scorer["autoscaling_config"]["min_replicas"] >= 2


def test_the_registry_overlay_serves_learned_routers_from_s3_with_a_cache_on_an_emptydir(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    """prod plus: learned routers follow s3://, the workers cache versions on an emptyDir and
    reach S3 as a service account (or a credentials file in the mounted routeiq-secrets)."""
    from app.config import RouterSettings

    docs = rendered["overlays/registry"]
    cm = gateway_configmap(docs)
    gateway = yaml.safe_load(cm["data"]["gateway.yaml"])
    learned = [r for r in gateway["router_settings"]["routers"] if r["strategy"] == "learned"]
    assert learned and all(r["artifact"].startswith("s3://") for r in learned)
    cache_dir = gateway["router_settings"]["registry"]["cache_dir"]
    RouterSettings.model_validate(gateway["router_settings"])  # the artifact URLs and registry keys load
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "routeiq-router-reader"]
    cluster = rayservice(docs)["spec"]["rayClusterConfig"]
    worker = cluster["workerGroupSpecs"][0]["template"]["spec"]
    assert worker["serviceAccountName"] == account["metadata"]["name"]
    volumes = {v["name"]: v for v in worker["volumes"]}
    (mount,) = [m for m in worker["containers"][0]["volumeMounts"] if m["mountPath"] == cache_dir]
    assert volumes[mount["name"]]["emptyDir"]["sizeLimit"]
    env = {e["name"]: e.get("value") for e in worker["containers"][0]["env"]}
    assert env["AWS_SHARED_CREDENTIALS_FILE"].startswith("/run/secrets/routeiq/")  # the mounted Secret
    assert env[SIGNING_KEY_ENV] is None  # prod's signing key (from a secretKeyRef) still applies
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert "serviceAccountName" not in head and cache_dir not in str(head)  # no scorer on the head


def test_the_ops_overlay_exports_the_audit_log_and_sends_traces_to_its_collector(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    """prod plus: the config is synced from an s3:// object; general_settings.audit exports to
    s3:// from a spool on an emptyDir in every
    pod (ingress replicas run on the head and the workers), every replica's OTEL_* environment
    points at the collector Service, which only the Ray pods may reach."""
    from app.config import GeneralSettings

    docs = rendered["overlays/ops"]
    cm = gateway_configmap(docs)
    general = GeneralSettings.model_validate(yaml.safe_load(cm["data"]["gateway.yaml"])["general_settings"])
    audit = general.audit
    assert audit.export_url and audit.export_url.startswith("s3://") and audit.retention_days
    assert general.config_sync.source and general.config_sync.source.startswith("s3://")
    rs = rayservice(docs)
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    for template in pod_templates(rs):
        spec = template["spec"]
        assert spec["serviceAccountName"] == account["metadata"]["name"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == audit.spool_dir]
        assert volumes[mount["name"]]["emptyDir"]["sizeLimit"]
    env = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"][0]["runtime_env"]["env_vars"]
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    (service,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "otel-collector"]
    ports = {p["port"] for p in service["spec"]["ports"]}
    endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint.startswith(f"http://{service['metadata']['name']}:") and int(endpoint.rsplit(":", 1)[1]) in ports
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["metadata"]["labels"].items() >= service["spec"]["selector"].items()
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "otel-collector"]
    assert policy["spec"]["podSelector"]["matchLabels"] == service["spec"]["selector"]
