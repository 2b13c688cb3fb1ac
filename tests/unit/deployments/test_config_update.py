"""What a config-sync Serve update keeps of the running application's deployment options."""

from __future__ import annotations

from deployments.config_update import carried_options


def test_running_options_are_carried_and_the_runtime_env_rebuilt() -> None:
    details = {"route_prefix": "/x", "deployments": {
        "Ingress": {"deployment_config": {
            "num_replicas": 2, "max_ongoing_requests": 1024, "graceful_shutdown_timeout_s": 60,
            "ray_actor_options": {"num_cpus": 0.05, "runtime_env": {"env_vars": {"OLD": "1"}}},
            "user_config": None}},
        "Provider-a": {"deployment_config": {
            "num_replicas": 1, "autoscaling_config": {"min_replicas": 1, "max_replicas": 4},
            "ray_actor_options": {"num_cpus": 0.25}}},
    }}
    assert carried_options(details) == {
        "Ingress": {"num_replicas": 2, "max_ongoing_requests": 1024, "graceful_shutdown_timeout_s": 60,
                    "ray_actor_options": {"num_cpus": 0.05}},
        "Provider-a": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 4},
                       "ray_actor_options": {"num_cpus": 0.25}},
    }
