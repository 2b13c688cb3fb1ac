"""The console's session and CSRF tokens, without a browser or a gateway."""

from __future__ import annotations

from app.console.session import SessionCodec

NOW = 1_800_000_000.0


def test_a_token_round_trips_and_names_the_key_not_the_secret() -> None:
    codec = SessionCodec("sk-master-1")
    token = codec.issue("key-abc", "0123456789abcdef", now=NOW)
    session = codec.read(token, now=NOW + 60)
    assert session is not None and (session.key_id, session.fingerprint) == ("key-abc", "0123456789abcdef")
    assert "sk-master-1" not in token


def test_expired_tampered_foreign_and_garbage_tokens_are_refused() -> None:
    codec = SessionCodec("sk-master-1", ttl_s=100)
    token = codec.issue("master", "master", now=NOW)
    assert codec.read(token, now=NOW + 101) is None  # expired
    body, mac = token.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB")
    assert codec.read(f"{forged}.{mac}", now=NOW) is None
    assert SessionCodec("sk-master-2").read(token, now=NOW) is None  # master key rotated: every session ends
    for junk in (None, "", ".", "a.b.c", "x" * 5000, "not-a-token", f"{body}."):
        assert codec.read(junk, now=NOW) is None


def test_each_sign_in_gets_its_own_token() -> None:
    codec = SessionCodec("sk-master-1")
    assert codec.issue("master", "master", now=NOW) != codec.issue("master", "master", now=NOW)


def test_the_csrf_token_belongs_to_its_session() -> None:
    codec = SessionCodec("sk-master-1")
    one, two = codec.issue("master", "master"), codec.issue("master", "master")
    assert codec.csrf_ok(one, codec.csrf(one))
    assert not codec.csrf_ok(one, codec.csrf(two))  # another session's token
    assert not codec.csrf_ok(one, None) and not codec.csrf_ok(one, "")
    assert not codec.csrf_ok(None, codec.csrf(one))
    assert not SessionCodec("sk-other").csrf_ok(one, codec.csrf(one))
