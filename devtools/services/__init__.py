"""Private Redis and Postgres servers for tests and benchmarks, and a guard for the machine's own.

Tests start their own servers on free loopback ports, in temporary directories, and
stop them at the end; they never use (start, stop, flush or write to) the Redis and
Postgres a developer's machine already runs on 6379 and 5432. ``machine`` only reads
those servers' identity, so a session can prove it left them alone.
"""

from devtools.services.common import ServiceBinaryMissingError, ServiceStartError
from devtools.services.machine import MachineServices, machine_services
from devtools.services.postgres_server import PostgresServer
from devtools.services.redis_server import RedisServer
from devtools.services.redis_topologies import RedisClusterServer, RedisSentinelServer

__all__ = ["MachineServices", "PostgresServer", "RedisClusterServer", "RedisSentinelServer", "RedisServer",
           "ServiceBinaryMissingError", "ServiceStartError", "machine_services"]
