"""The S3 client of the registry, and the one place botocore's errors become ``RegistryError``.

Credentials and region come from boto3's standard chain (``AWS_*`` environment variables,
``AWS_SHARED_CREDENTIALS_FILE``/``AWS_CONFIG_FILE`` pointing at a mounted Secret, a web
identity token of a Kubernetes service account, an instance role); ``endpoint_url`` is
the one explicit setting, for S3-compatible stores (MinIO, Ceph, moto in tests), which
also get path-style addressing. Timeouts are short and retries few: a replica polling a
store that is down must fail its check quickly and keep serving, not hang.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from router_models.registry.errors import RegistryError


def build_s3_client(endpoint_url: str | None = None, region: str | None = None, *,
                    timeout_s: float = 10.0, max_attempts: int = 2) -> Any:
    """A boto3 S3 client (boto3 is imported here: only registry users pay for it)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout_s, read_timeout=timeout_s,
                    retries={"max_attempts": max_attempts, "mode": "standard"},
                    s3={"addressing_style": "path"} if endpoint_url else None)
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, region_name=region or None,
                                          config=config)


def is_missing(err: BaseException) -> bool:
    """A ``ClientError`` saying the object (or key) does not exist."""
    code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


@contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """botocore's exceptions around ``what`` as one-line ``RegistryError``s."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as err:
        info = err.response.get("Error", {})
        raise RegistryError(f"{what}: {info.get('Code', 'error')} {info.get('Message', '')}".strip()) from None
    except BotoCoreError as err:
        raise RegistryError(f"{what}: {err}") from None
