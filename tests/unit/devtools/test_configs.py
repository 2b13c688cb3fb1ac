"""The config builders refuse the machine's own Redis and Postgres; other URLs pass."""

from __future__ import annotations

import pytest

from devtools.configs import MachineServiceError, gateway_config, refuse_machine_services


@pytest.mark.parametrize("general", [
    {"redis_url": "redis://127.0.0.1:6379/0"},
    {"redis_url": "redis://localhost/9"},  # no port: the default one
    {"redis_url": "rediss://:pw@127.0.0.1:6379/0"},
    {"database_url": "postgresql://postgres@127.0.0.1:5432/test"},
    {"database_url": "postgresql+asyncpg://postgres@localhost/test"},
    {"database_url": "postgres://u@[::1]/db"},
])
def test_default_ports_on_this_machine_are_refused(general: dict[str, str]) -> None:
    with pytest.raises(MachineServiceError, match="this machine's own server"):
        gateway_config("http://127.0.0.1:9/v1", **general)


@pytest.mark.parametrize("general", [
    {"redis_url": "redis://127.0.0.1:41234/0", "database_url": "postgresql://postgres@127.0.0.1:41235/t"},
    {"database_url": "postgresql://app:pw@db:5432/routeiq"},  # another host: only parsed, never reached here
    {"redis_url": "file:/run/secrets/routeiq/redis-url"},
    {},
])
def test_private_servers_and_remote_hosts_pass(general: dict[str, str]) -> None:
    refuse_machine_services(general)
    assert gateway_config("http://127.0.0.1:9/v1", **general)["general_settings"].items() >= general.items()
