"""The guard's comparison: a server that was up and checked must keep its identity."""

from __future__ import annotations

from devtools.services import MachineServices


def test_same_identity_is_no_change() -> None:
    assert MachineServices("r1", "t1").changes(MachineServices("r1", "t1")) == []


def test_restart_or_stop_is_reported() -> None:
    changes = MachineServices("r1", "t1").changes(MachineServices("r2", None))
    assert len(changes) == 2 and "redis" in changes[0] and "postgres" in changes[1]


def test_absent_or_unchecked_servers_are_not_compared() -> None:
    assert MachineServices(None, None).changes(MachineServices("r", "t")) == []
    before = MachineServices("r1", "unknown", {"postgres": "password required"})
    assert before.changes(MachineServices("r1", "unknown")) == []
