"""The scheduled learning loop on its own Ray cluster (kuberay/overlays/registry/
retrain-raycronjob.yaml): a RayCronJob whose RayJob runs ``routeiq retrain --ray``, the export
in the driver on a head that schedules nothing, the training as a task on the one worker
group that offers the resources it asks for. The RayCronJob and RayJob CRDs are not vendored:
raycronjob_schema says how the object is checked (test_manifests runs that on every overlay);
here the pod templates, RouteIQ's own rules, and that a broken manifest is refused."""

from __future__ import annotations

import copy
import json
import shlex
from typing import Any

import kubernetes_validate
import pytest
import typer

from app.retrain_cli import app as retrain_app
from app.retrain_ray import fits_a_node, parse_resources
from kuberay.generate import GATEWAY_CONFIG_PATH, REGISTRY_URL
from tests.unit.kuberay.conftest import ROOT, pod_templates, rayservice
from tests.unit.kuberay.raycronjob_schema import daily, raycronjob_errors, valid_cron
from tests.unit.kuberay.test_manifests import K8S_VERSION

APP_ROOT = "/app/"
RAY_ONLY = {"ray", "ray_resources"}
"""The flags the RayCronJob adds to the CronJob's command line."""


def _raycronjob(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (found,) = [d for d in rendered["overlays/registry"] if d["kind"] == "RayCronJob"]
    return found


def _cluster(job: dict[str, Any]) -> dict[str, Any]:
    cluster: dict[str, Any] = job["spec"]["jobTemplate"]["rayClusterSpec"]
    return cluster


def _templates(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """head, the worker groups by name, and the submitter: every pod template of one run."""
    cluster = _cluster(job)
    return {"head": cluster["headGroupSpec"]["template"],
            **{g["groupName"]: g["template"] for g in cluster["workerGroupSpecs"]},
            "submitter": job["spec"]["jobTemplate"]["submitterPodTemplate"]}


def _parse(argv: list[str]) -> dict[str, Any]:
    """The command's parameters as ``routeiq retrain`` itself parses them (nothing runs)."""
    command = typer.main.get_command(retrain_app)
    with command.make_context("retrain", list(argv)) as ctx:
        return dict(ctx.params)


def _entrypoint(job: dict[str, Any]) -> list[str]:
    words = shlex.split(job["spec"]["jobTemplate"]["entrypoint"])  # `ray job submit` runs it in a shell
    assert words[:4] == ["python", "-m", "app.cli", "retrain"]
    return words[4:]


def _cronjob_args(rendered: dict[str, list[dict[str, Any]]]) -> list[str]:
    (cron,) = [d for d in rendered["overlays/registry-cronjob"] if d["kind"] == "CronJob"]
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    args: list[str] = container["args"]
    return args


def test_only_the_registry_overlay_schedules_the_loop_as_a_raycronjob(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    assert [t for t, docs in rendered.items() if any(d["kind"] == "RayCronJob" for d in docs)] == [
        "overlays/registry"]
    assert not any(d["kind"] == "CronJob" for d in rendered["overlays/registry"])  # scheduled once


def test_a_broken_raycronjob_is_refused(rendered: dict[str, list[dict[str, Any]]]) -> None:
    job = _raycronjob(rendered)
    assert raycronjob_errors(job) == []

    def broken(change: Any) -> list[str]:
        bad = copy.deepcopy(job)
        change(bad)
        return raycronjob_errors(bad)

    spec = "spec"
    assert broken(lambda d: d[spec]["jobTemplate"].update(shutdownAfterJobFinish=True))  # a typo
    assert broken(lambda d: d[spec].update(concurrencyPolicy="Forbid"))  # not a documented field
    assert broken(lambda d: d[spec]["jobTemplate"].update(activeDeadlineSeconds="2h"))
    assert broken(lambda d: d[spec]["jobTemplate"]["rayClusterSpec"]["headGroupSpec"].update(rayStartParam={}))
    assert broken(lambda d: d[spec]["jobTemplate"]["rayClusterSpec"]["workerGroupSpecs"][0].pop("groupName"))
    assert broken(lambda d: d[spec]["jobTemplate"].pop("rayClusterSpec"))
    assert broken(lambda d: d[spec].pop("jobTemplate"))
    assert broken(lambda d: d[spec].update(schedule="17 3 * *"))


@pytest.mark.parametrize(("schedule", "ok"), [
    ("17 3 * * *", True), ("*/15 0-6 1,15 * 1-5", True), ("0 0 * * 7", True),
    ("17 3 * *", False), ("61 3 * * *", False), ("17 24 * * *", False), ("5-1 * * * *", False),
    ("*/0 * * * *", False), ("@daily", False), ("17 3 * * * *", False),
])
def test_the_cron_check(schedule: str, ok: bool) -> None:
    assert valid_cron(schedule) is ok


def test_every_pod_template_of_a_run_validates_as_a_core_object(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, template in _templates(_raycronjob(rendered)).items():
        pt = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}
        kubernetes_validate.validate(pt, K8S_VERSION, strict=True)


def test_the_entrypoint_is_the_cronjobs_command_plus_ray_and_parses_with_the_real_cli(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    params = _parse(_entrypoint(_raycronjob(rendered)))
    assert params["ray"] is True and params["ray_address"] is None  # RAY_ADDRESS: the job's own cluster
    assert params["registry_url"] == REGISTRY_URL and str(params["config"]) == GATEWAY_CONFIG_PATH
    for flag in ("eval_data", "base_data", "candidates"):
        path = str(params[flag])
        assert path.startswith(APP_ROOT) and (ROOT / path.removeprefix(APP_ROOT)).is_file(), flag
    cron = _parse(_cronjob_args(rendered))
    assert {k: v for k, v in params.items() if k not in RAY_ONLY} == {
        k: v for k, v in cron.items() if k not in RAY_ONLY}  # the same loop either way
    with pytest.raises(Exception, match="No such option: --no-such-flag"):  # typer's click: a usage error
        _parse([*_entrypoint(_raycronjob(rendered)), "--no-such-flag"])


def test_training_runs_on_the_worker_that_offers_what_the_task_asks_and_never_on_the_head(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    job = _raycronjob(rendered)
    asked = parse_resources(_parse(_entrypoint(job))["ray_resources"])
    cluster = _cluster(job)
    head = cluster["headGroupSpec"]["rayStartParams"]
    assert head["num-cpus"] == "0"
    (worker,) = cluster["workerGroupSpecs"]
    assert worker["minReplicas"] == worker["replicas"] == worker["maxReplicas"] == 1  # there when the job starts
    params = worker["rayStartParams"]
    custom = json.loads(json.loads(params["resources"]))  # `ray start --resources="{...}"`, shell-quoted
    offered = {"CPU": float(params["num-cpus"]), **{k: float(v) for k, v in custom.items()}}
    assert offered == asked  # exactly: no other task fits beside the loop
    assert "routeiq-train" in asked  # a resource only this group has
    assert fits_a_node(asked, [{"CPU": 0.0}, offered]) and not fits_a_node(asked, [{"CPU": 0.0}])
    container = worker["template"]["spec"]["containers"][0]
    assert float(container["resources"]["limits"]["cpu"]) >= offered["CPU"]  # Ray's CPUs are the pod's


def test_mounts_match_volumes_and_only_emptydirs_are_writable(rendered: dict[str, list[dict[str, Any]]]) -> None:
    job = _raycronjob(rendered)
    work = str(_parse(_entrypoint(job))["work"])
    for name, template in _templates(job).items():
        spec = template["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            assert container["image"].endswith("/routeiq-train:0.1.0"), name
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert {m["name"] for m in mounts.values()} <= set(volumes), name  # every mount has its volume
            assert "emptyDir" in volumes[mounts["/tmp"]["name"]], name
            for path, m in mounts.items():
                if "emptyDir" not in volumes[m["name"]]:
                    assert m.get("readOnly") is True, f"{name}: {path} is writable"
            if name == "head":  # the driver writes --work there
                assert any(work.startswith(p + "/") and "emptyDir" in volumes[m["name"]] for p, m in mounts.items())


def test_it_uses_the_gateways_config_and_secrets_and_only_the_worker_may_publish(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["overlays/registry"]
    templates = _templates(_raycronjob(rendered))
    served = {v["name"]: v for v in pod_templates(rayservice(docs))[1]["spec"]["volumes"]}
    head = {v["name"]: v for v in templates["head"]["spec"]["volumes"]}
    assert head["gateway-config"] == served["gateway-config"]  # the same (hashed) ConfigMap: its database_url
    assert head["routeiq-secrets"]["secret"]["secretName"] == served["routeiq-secrets"]["secret"]["secretName"]
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    assert templates["train"]["spec"]["serviceAccountName"] == "routeiq-router-publisher" in accounts
    for name in ("head", "submitter"):
        assert "serviceAccountName" not in templates[name]["spec"]
        assert templates[name]["spec"]["automountServiceAccountToken"] is False
    for template in templates.values():
        assert not template["metadata"]["labels"].get("app.kubernetes.io/name")  # no gateway policy/PDB selects it
        for container in template["spec"]["containers"]:
            assert all("valueFrom" not in e for e in container.get("env", []))  # secrets only as mounted files


def test_one_loop_at_a_time_a_run_ends_before_the_next_is_due(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """RayCronJob has no concurrencyPolicy (not among its documented fields): the run deadline
    (KubeRay stops the RayJob) under the daily period, and no retries, keep runs apart."""
    job = _raycronjob(rendered)
    (cron,) = [d for d in rendered["overlays/registry-cronjob"] if d["kind"] == "CronJob"]
    spec, template = job["spec"], job["spec"]["jobTemplate"]
    assert daily(spec["schedule"]) and spec["schedule"] == cron["spec"]["schedule"]
    assert 0 < template["activeDeadlineSeconds"] < 24 * 3600
    assert template["backoffLimit"] == 0  # exit 1 is the gate refusing: no retry beside the next run
    assert template["shutdownAfterJobFinishes"] is True and template["ttlSecondsAfterFinished"] > 0
    assert _cluster(job)["authOptions"]["mode"] == "token"
