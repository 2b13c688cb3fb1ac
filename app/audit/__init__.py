"""Audit export: the audit log (``routeiq_audit_log``) copied to S3, and its retention.

The database is the audit log's first home (``app.access.store.AccessStore.audit``); this
package copies it out, continuously, as gzip JSONL objects partitioned by date
(``<prefix>/dt=YYYY-MM-DD/<first_id>-<last_id>.jsonl.gz``), and deletes the database copy
of exported rows after ``general_settings.audit.retention_days``.

- ``ledger``: the batches, planned in the database before their object is written (what
  makes a re-export after a crash produce the same object, not a duplicate);
- ``objects``: object names and their deterministic bytes;
- ``spool``: the local directory a batch is written to before it is uploaded;
- ``sink``: the S3 client, rebuilt when mounted credentials rotate;
- ``lease``: one exporter across replicas (a Redis lease);
- ``exporter``: the loop that ties them together, and what readiness/metrics read;
- ``denials``: refused requests, aggregated per key and reason into audit rows;
- ``cli``: ``routeiq audit export`` (backfills).

Must not import ray; boto3 is imported only where an upload happens.
"""
