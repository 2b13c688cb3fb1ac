"""The scheduled learning loop without KubeRay's RayCronJob (kuberay/overlays/registry-cronjob/
retrain-cronjob.yaml, the fallback for KubeRay < 1.6): a CronJob whose pod runs ``routeiq
retrain`` against the registry the scorer replicas follow, with the gateway's own config and
secrets, away from the Ray pods. Schema validity is test_manifests'; this checks
that the command would run: every flag exists, every file it names ships in the image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from app.retrain_cli import app as retrain_app
from kuberay.generate import GATEWAY_CONFIG_PATH, REGISTRY_URL
from tests.unit.kuberay.conftest import ROOT, pod_templates, rayservice

APP_ROOT = "/app/"


def _cronjob(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (found,) = [d for d in rendered["overlays/registry-cronjob"] if d["kind"] == "CronJob"]
    return found


def _args(job: dict[str, Any]) -> dict[str, str]:
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][-3:] == ["-m", "app.cli", "retrain"]
    return dict(a.removeprefix("--").split("=", 1) for a in container["args"])


def test_only_the_fallback_overlay_schedules_the_loop_as_a_cronjob_and_not_also_as_a_raycronjob(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    assert [t for t, docs in rendered.items() if any(d["kind"] == "CronJob" for d in docs)] == [
        "overlays/registry-cronjob"]
    assert not any(d["kind"] == "RayCronJob" for d in rendered["overlays/registry-cronjob"])


def test_every_flag_is_one_retrain_accepts_and_every_file_ships_in_the_image(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    args = _args(_cronjob(rendered))
    options = {o.removeprefix("--") for p in typer.main.get_command(retrain_app).params for o in p.opts}
    assert set(args) <= options, set(args) - options
    assert args["registry"] == REGISTRY_URL and args["config"] == GATEWAY_CONFIG_PATH
    for flag in ("eval-data", "base-data", "candidates"):
        assert args[flag].startswith(APP_ROOT) and (ROOT / args[flag].removeprefix(APP_ROOT)).is_file(), flag


def test_it_mounts_the_gateways_config_and_secrets_and_runs_apart_from_the_ray_pods(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    job = _cronjob(rendered)
    assert job["spec"]["concurrencyPolicy"] == "Forbid"  # two loops would race to promote
    pod = job["spec"]["jobTemplate"]["spec"]["template"]
    assert "ray.io/node-type" not in pod["metadata"].get("labels", {})  # no NetworkPolicy/PDB selects it
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    workers = pod_templates(rayservice(rendered["overlays/registry-cronjob"]))[1]
    served = {v["name"]: v for v in workers["spec"]["volumes"]}
    assert volumes["gateway-config"] == served["gateway-config"]  # the same (hashed) ConfigMap
    assert volumes["routeiq-secrets"]["secret"]["secretName"] == served["routeiq-secrets"]["secret"]["secretName"]
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert all("valueFrom" not in e for e in container.get("env", []))  # secrets only as mounted files
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert all("emptyDir" in volumes[m["name"]] for m in container["volumeMounts"] if m["mountPath"] in writable)
    assert Path(_args(job)["work"]).is_relative_to("/var/lib/routeiq")
    assert container["image"].endswith("routeiq-train:0.1.0")
