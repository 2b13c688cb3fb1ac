"""The audit bucket's S3 client: ``put`` an object, with credentials that may rotate.

Credentials are boto3's standard chain (a service account's web identity, ``AWS_*``) unless
``general_settings.audit`` names ``access_key_id``/``secret_access_key`` references
(``file:/path`` of a mounted Secret, or ``os.environ/NAME``). Those are re-read before each
upload: a changed pair gets a new client, which is kept only if its upload succeeds; if
S3 refuses the new pair (unknown key, bad signature, access denied) the upload goes out
with the old client and the refusal is reported (``CredentialReport``, name
``audit_s3``), as for the database and Redis (``app.credentials``). botocore's errors
leave as one-line ``AuditSinkError``s.
"""

from __future__ import annotations

from typing import Any

from app.config import AuditSettings, resolve_secret
from app.credentials import CredentialReport

AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}


class AuditSinkError(Exception):
    """An upload that did not happen; one line, no secret."""


def build_client(settings: AuditSettings, creds: tuple[str, str] | None) -> Any:
    import boto3
    from botocore.config import Config

    endpoint = settings.endpoint_url
    config = Config(connect_timeout=settings.timeout_s, read_timeout=settings.timeout_s,
                    retries={"max_attempts": 2, "mode": "standard"},
                    s3={"addressing_style": "path"} if endpoint else None)
    keys = {"aws_access_key_id": creds[0], "aws_secret_access_key": creds[1]} if creds else {}
    return boto3.session.Session(**keys).client("s3", endpoint_url=endpoint or None,
                                                region_name=settings.region or None, config=config)


def _code(err: BaseException) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))


class S3Sink:
    """Puts export objects into one bucket."""

    def __init__(self, settings: AuditSettings, report: CredentialReport | None = None) -> None:
        self._settings = settings
        self._report = report or CredentialReport()
        self._creds = self._read_creds()
        self._client: Any = None
        self._refused: tuple[str, str] | None = None
        if settings.access_key_id:
            self._report.watching("audit_s3")

    def _read_creds(self) -> tuple[str, str] | None:
        s = self._settings
        if not (s.access_key_id and s.secret_access_key):
            return None
        key_id, secret = resolve_secret(s.access_key_id), resolve_secret(s.secret_access_key)
        return (key_id, secret) if key_id and secret else None

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Upload (blocking: run it in a thread); ``AuditSinkError`` if S3 did not take it."""
        new = self._read_creds()
        if self._client is None:
            self._client = build_client(self._settings, self._creds)
        if new not in (self._creds, self._refused):
            candidate = build_client(self._settings, new)
            try:
                self._put(candidate, bucket, key, data)
            except AuditSinkError as err:
                if str(err).split(" ", 1)[0] not in AUTH_CODES:
                    raise  # S3 is down, not the new keys: try them again next time
                self._refused = new
                self._report.refused("audit_s3", str(err).split(" ", 1)[0])
            else:
                self._client, self._creds, self._refused = candidate, new, None
                self._report.rotated("audit_s3")
                return
        self._put(self._client, bucket, key, data)

    @staticmethod
    def _put(client: Any, bucket: str, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/x-ndjson",
                              ContentEncoding="gzip")
        except ClientError as err:
            info = err.response.get("Error", {})
            raise AuditSinkError(f"{_code(err) or 'error'} {info.get('Message', '')}".strip()) from None
        except BotoCoreError as err:
            raise AuditSinkError(f"{type(err).__name__}: {err}") from None
