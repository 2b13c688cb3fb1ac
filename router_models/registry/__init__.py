"""Router registry on S3: immutable published versions, one pointer per router, and the
replica-side cache and sync that serve the pointer's current version.

``store`` (publish, list, promote, rollback, fetch), ``cache`` (local copies keyed by
sha256), ``sync`` (a replica's poll-verify-load-swap loop). Must not import ``app`` or
ray: the Redis lock and the replica-state store are injected by the scorer deployment.
"""

from router_models.registry.errors import RegistryError
from router_models.registry.location import RegistryLocation, is_registry_url, parse_registry_url

__all__ = ["RegistryError", "RegistryLocation", "is_registry_url", "parse_registry_url"]
