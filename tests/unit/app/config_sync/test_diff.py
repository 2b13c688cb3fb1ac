"""The readable diff of two configs, and which changes apply in place vs by a Serve update."""

from __future__ import annotations

import copy
from typing import Any

from app.config import GatewayConfig, parse_config
from app.config_sync.changes import graph_changes
from app.config_sync.diff import diff_configs
from devtools.configs import CHEAP, MID, gateway_config

NO_STORES = {"access": {"enabled": False}, "decisions": {"enabled": False}}


def base() -> dict[str, Any]:
    return gateway_config("http://127.0.0.1:1/v1", **NO_STORES)


def pair(change: Any) -> tuple[GatewayConfig, GatewayConfig]:
    raw = base()
    new = copy.deepcopy(raw)
    change(new)
    return parse_config(copy.deepcopy(raw)), parse_config(new)


def test_equal_configs_have_no_diff_and_nothing_to_update() -> None:
    old, new = pair(lambda raw: None)
    assert diff_configs(old, new) == [] and graph_changes(old, new) == []


def test_a_price_change_is_one_line_and_applies_in_place() -> None:
    def cheaper(raw: dict[str, Any]) -> None:
        raw["model_list"][0]["model_info"]["input_cost_per_token"] = 0.3e-6

    old, new = pair(cheaper)
    assert diff_configs(old, new) == [f"~ model {CHEAP}: model_info.input_cost_per_token 1e-07 -> 3e-07"]
    assert graph_changes(old, new) == []


def test_models_added_and_removed_by_name_not_position() -> None:
    def edit(raw: dict[str, Any]) -> None:
        added = copy.deepcopy(raw["model_list"][1])
        added["model_name"] = "mid-2"
        raw["model_list"].insert(0, added)  # shifts every index: still one addition
        raw["model_list"] = [m for m in raw["model_list"] if m["model_name"] != "via-litellm"]
        raw["router_settings"]["routers"][1]["candidates"] = [MID]

    old, new = pair(edit)
    lines = diff_configs(old, new)
    assert lines[0] == f"+ model mid-2 (openai/{MID}, provider group small)"
    assert "- model via-litellm" in lines
    assert any(line.startswith("~ router shuffle: candidates") for line in lines)
    assert "provider group 'slow' removed" not in graph_changes(old, new)  # still declared: stays
    assert graph_changes(old, new) == []


def test_router_lambda_fallbacks_aliases_and_timeouts_apply_in_place() -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["router_settings"]["routers"][0]["lambda"] = 0.4
        raw["router_settings"]["fallbacks"] = [{CHEAP: [MID]}]
        raw["router_settings"]["model_group_alias"] = {"cheapest": CHEAP}
        raw["general_settings"]["request_timeout_s"] = 9
        raw["model_list"][0]["litellm_params"]["timeout"] = 5

    old, new = pair(edit)
    assert graph_changes(old, new) == []
    lines = diff_configs(old, new)
    assert "~ router auto: lambda None -> 0.4" in lines
    assert "~ general_settings.request_timeout_s: 3 -> 9" in lines


def test_graph_changes_name_their_reason() -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["provider_groups"].append({"name": "newgroup"})
        raw["model_list"][2]["provider_group"] = "newgroup"
        raw["router_settings"]["routers"][0]["strategy"] = "weighted-shuffle"
        raw["router_settings"]["num_retries"] = 0
        raw["general_settings"]["max_inflight_requests"] = 10

    old, new = pair(edit)
    reasons = graph_changes(old, new)
    assert "new provider group 'newgroup'" in reasons
    assert "router 'auto': strategy changed" in reasons
    assert "router_settings.num_retries changed" in reasons
    assert "general_settings.max_inflight_requests changed" in reasons
    assert "+ provider group newgroup" in diff_configs(old, new)


def test_limits_where_none_were_need_the_graph_rebuilt() -> None:
    old, new = pair(lambda raw: raw["model_list"][0]["litellm_params"].update(rpm=10))
    assert graph_changes(old, new) == [
        "rpm/tpm limits introduced (the replicas were built without a deployment limiter)"]


def test_secrets_are_never_printed() -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["model_list"][0]["litellm_params"]["api_key"] = "sk-new-secret"
        raw["general_settings"]["master_key"] = "sk-another-master"
        raw["environment_variables"] = {"SOME_TOKEN": "value-123"}

    old, new = pair(edit)
    text = "\n".join(diff_configs(old, new))
    assert "sk-new-secret" not in text and "sk-another-master" not in text and "value-123" not in text
    assert f"~ model {CHEAP}: litellm_params.api_key (secret) -> (secret)" in text
    assert "+ environment variable SOME_TOKEN" in text
