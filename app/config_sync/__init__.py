"""Live config changes: a watched source, complete validation, in-place apply or a Serve update.

``source`` (S3 object or file), ``validate`` (everything checked before anything changes;
also ``routeiq config validate``), ``diff`` (readable differences; ``routeiq config diff``),
``changes`` (in place or graph update), ``record`` (the Redis-held applied version replicas
agree on), ``watcher`` (one replica's poll-validate-apply loop). docs/operations.md.
"""

from app.config_sync.record import SyncRecord
from app.config_sync.source import ConfigSource, Fetched, SourceError, open_source
from app.config_sync.watcher import ConfigSync, GraphUpdater, config_hash

__all__ = ["ConfigSource", "ConfigSync", "Fetched", "GraphUpdater", "SourceError", "SyncRecord", "config_hash",
           "open_source"]
