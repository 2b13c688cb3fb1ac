"""``routeiq publish / versions / promote / rollback`` against a real S3-compatible server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import build_cli
from devtools.s3_server import S3Server
from tests.registry_support import make_artifact

Run = Callable[..., tuple[int, str, str]]
"""``run(*args)`` → exit code, stdout, stderr of ``routeiq *args --endpoint-url <moto>``."""


@pytest.fixture
def run(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("ROUTEIQ_ROUTER_SIGNING_KEY", raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(build_cli(), [*args, "--endpoint-url", s3_server.url])
        return result.exit_code, result.stdout, result.stderr

    return invoke


def test_publish_versions_promote_rollback(run: Run, s3_server: S3Server, tmp_path: Path) -> None:
    url = f"s3://{s3_server.new_bucket()}/routers/prod"
    for name, lam in (("a", 0.1), ("b", 0.3)):
        code, out, err = run("publish", "--router-dir", str(make_artifact(tmp_path / name, lam)), "--to", url)
        assert code == 0, err
    assert out.strip() == "v2"
    assert run("promote", "--registry", url, "--router", "auto", "--version", "v1")[1].strip() == \
        "auto: v1 (previous -)"
    assert run("promote", "--registry", url, "--router", "auto", "--version", "v2")[0] == 0
    code, table, _ = run("versions", "--registry", url)
    lines = table.splitlines()
    assert code == 0 and lines[0].split() == ["VERSION", "CREATED", "SHA256", "SIGNED", "EVAL", "CURRENT"]
    assert lines[1].split()[0] == "v1" and lines[1].split()[-1] == "-"
    assert lines[2].split()[0] == "v2" and lines[2].split()[-1] == "auto" and "unsigned" in lines[2]
    assert "q=0.5" in lines[2]
    assert run("rollback", "--registry", url, "--router", "auto")[1].strip() == "auto: v1 (previous v2)"


@pytest.mark.parametrize(("args", "message"), [
    (("promote", "--registry", "s3://{bucket}/p", "--router", "auto", "--version", "v9"), "no version v9"),
    (("rollback", "--registry", "s3://{bucket}/p", "--router", "auto"), "no previous version"),
    (("versions", "--registry", "http://not-s3"), "a registry is s3://bucket/prefix"),
    (("publish", "--router-dir", "/nonexistent", "--to", "s3://{bucket}/p"), "cannot read"),
    (("versions", "--registry", "s3://no-such-bucket-routeiq/p"), "NoSuchBucket"),
])
def test_errors_are_one_line_without_a_traceback(run: Run, s3_server: S3Server, args: tuple[str, ...],
                                                 message: str) -> None:
    bucket = s3_server.new_bucket()
    code, out, err = run(*(a.format(bucket=bucket) for a in args))
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
