"""The NetworkPolicies close the Ray ports: who may reach which port of a Ray pod.

A small evaluator of NetworkPolicy ingress semantics (the union of every policy that
selects the pod; label selectors with matchLabels and matchExpressions) answers, for the
pods KubeRay builds from our templates (their labels plus the ones KubeRay adds), which
peers may open which port. Schema validity is test_manifests.py's job (kubernetes-validate).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.kuberay.conftest import TARGETS, pod_templates, rayservice

NAMESPACE = {"kubernetes.io/metadata.name": "routeiq"}
OPERATOR_NS = {"kubernetes.io/metadata.name": "kuberay-system"}
OPERATOR_POD = {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/instance": "kuberay-operator",
                "app.kubernetes.io/component": "kuberay-operator"}  # the Helm chart's pod labels
CLIENT_NS = {"kubernetes.io/metadata.name": "ingress-nginx", "routeiq/gateway-client": "true"}
OTHER_NS = {"kubernetes.io/metadata.name": "team-a"}
GATEWAY = 8000
# GCS, dashboard + Jobs API, Ray client, metrics, dashboard agent, autoscaler and dashboard
# metrics, a raylet/object-manager/worker port (random in Ray's ranges).
RAY_PORTS = (6379, 8265, 10001, 8080, 52365, 44217, 44227, 12345)


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        key, op, values = e["key"], e["operator"], e.get("values", [])
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def _peer_allows(peer: dict[str, Any], src_ns: dict[str, str], src_pod: dict[str, str]) -> bool:
    assert "ipBlock" not in peer, "no address ranges: peers are named by label"
    # A peer without namespaceSelector means the policy's own namespace.
    in_ns = _matches(peer["namespaceSelector"], src_ns) if "namespaceSelector" in peer else src_ns == NAMESPACE
    return in_ns and _matches(peer.get("podSelector", {}), src_pod)


def allowed(policies: list[dict[str, Any]], dst: dict[str, str], port: int,
            src_ns: dict[str, str], src_pod: dict[str, str]) -> bool:
    """May a pod (src_ns, src_pod) open TCP `port` on the routeiq pod labelled `dst`?"""
    selecting = [p for p in policies if _matches(p["spec"]["podSelector"], dst)
                 and "Ingress" in p["spec"]["policyTypes"]]
    if not selecting:
        return True  # no policy selects the pod: Kubernetes lets everything in
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports is not None and not any(p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in ports):
                continue
            if "from" not in rule or any(_peer_allows(peer, src_ns, src_pod) for peer in rule["from"]):
                return True
    return False


def _ray_pods(rs: dict[str, Any]) -> list[dict[str, str]]:
    """The labels of the pods KubeRay makes from our templates (it adds ray.io/*, never overridden)."""
    out = []
    for template, node_type in zip(pod_templates(rs), ["head", *["worker"] * 9], strict=False):
        labels = {"ray.io/is-ray-node": "yes", "ray.io/cluster": "routeiq-x7k2p", "ray.io/group": "g",
                  "app.kubernetes.io/created-by": "kuberay-operator", **template["metadata"]["labels"],
                  "ray.io/node-type": node_type}
        out.append(labels)
    return out


def _policies(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The policies of the Ray pods (an overlay may add its own pods' policies, e.g. a collector's)."""
    return [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].startswith("routeiq-")]


@pytest.mark.parametrize("target", TARGETS)
def test_every_ray_pod_is_selected(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    """A pod no policy selects is open to all: the selectors must match what KubeRay builds."""
    policies = _policies(rendered[target])
    assert {p["metadata"]["name"] for p in policies} == {"routeiq-ray", "routeiq-gateway-clients"}
    for pod in _ray_pods(rayservice(rendered[target])):
        for p in policies:
            assert _matches(p["spec"]["podSelector"], pod), (p["metadata"]["name"], pod)
            assert p["spec"]["policyTypes"] == ["Ingress"]
            assert all(rule.get("from") for rule in p["spec"]["ingress"]), "a rule without `from` admits anyone"
    # ray.io/node-type is KubeRay's, so a pod outside the RayService is not caught by accident
    assert not _matches(policies[0]["spec"]["podSelector"], {"app.kubernetes.io/name": "routeiq"})


@pytest.mark.parametrize("target", TARGETS)
def test_ray_ports_are_reachable_only_from_ray_pods_and_the_operator(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    policies = _policies(rendered[target])
    pods = _ray_pods(rayservice(rendered[target]))
    for dst in pods:
        for port in RAY_PORTS:
            for src in pods:  # head <-> workers, every port; also the pending cluster during an upgrade
                assert allowed(policies, dst, port, NAMESPACE, {**src, "ray.io/cluster": "routeiq-other"})
            assert allowed(policies, dst, port, OPERATOR_NS, OPERATOR_POD) == (port == 8265), port
            for ns, pod in ((CLIENT_NS, {}), (OTHER_NS, {}), (NAMESPACE, {"app": "something-else"}),
                            (OTHER_NS, OPERATOR_POD), (OPERATOR_NS, {"app.kubernetes.io/name": "other"})):
                assert not allowed(policies, dst, port, ns, pod), (port, ns, pod)


@pytest.mark.parametrize("target", TARGETS)
def test_the_gateway_port_is_open_to_labelled_client_namespaces_only(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    policies = _policies(rendered[target])
    for dst in _ray_pods(rayservice(rendered[target])):
        assert allowed(policies, dst, GATEWAY, CLIENT_NS, {"app": "ingress-nginx"})
        assert allowed(policies, dst, GATEWAY, OPERATOR_NS, OPERATOR_POD)  # KubeRay's Serve health check
        assert not allowed(policies, dst, GATEWAY, OTHER_NS, {"app": "anything"})
        assert not allowed(policies, dst, GATEWAY, NAMESPACE, {"app": "something-else"})


def test_the_evaluator_sees_an_open_pod_and_an_open_rule() -> None:
    """The evaluator itself: no policy admits all; an empty `from` admits all."""
    pod = {"app": "x"}
    assert allowed([], pod, 6379, OTHER_NS, {})
    open_rule = {"spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 6379}]}]}}
    assert allowed([open_rule], pod, 6379, OTHER_NS, {})
    assert not allowed([open_rule], pod, 8265, OTHER_NS, {})
