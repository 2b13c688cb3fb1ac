"""Which of a router's candidates its artifact can score: the cold start, said out loud.

A learned router predicts quality only for the models it was trained on. A candidate
outside that set is skipped by ``decide``; when every candidate is, each ``auto`` request
falls back. An operator whose ``model_list`` holds their own models must learn that at
start-up, not from a warning per request. ``coverage`` is that check, shared by the
scorer replica (which logs it once per loaded artifact) and the ingress (``/router/info``
and readiness detail), so both say the same thing.

A candidate counts as scored when the artifact knows its name, or knows the model its
``router_profile`` names (a stand-in until the router is trained on real data). A profile
naming a model the artifact does not know is reported as such, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Coverage:
    scored: tuple[str, ...] = ()
    """Candidates the artifact knows by name."""
    via_profile: dict[str, str] = field(default_factory=dict)
    """Candidate → the known model whose predictions stand in for it."""
    unknown: tuple[str, ...] = ()
    """Candidates the router cannot score: never picked by it."""
    bad_profile: dict[str, str] = field(default_factory=dict)
    """Candidate → a ``router_profile`` the artifact does not know either."""

    @property
    def complete(self) -> bool:
        return not self.unknown

    def as_dict(self) -> dict[str, Any]:
        return {"scored": list(self.scored), "via_profile": dict(self.via_profile), "unknown": list(self.unknown),
                "bad_profile": dict(self.bad_profile)}

    def summary(self, router: str) -> str | None:
        """One log line naming what the router cannot score, or ``None`` when it scores all."""
        if self.complete:
            return None
        parts = [f"router {router!r} cannot score {len(self.unknown)} of its candidates: "
                 f"{', '.join(self.unknown)} (its artifact does not know them; it never picks them"]
        parts.append("; with none scorable every request falls back)" if not (self.scored or self.via_profile)
                     else ")")
        if self.bad_profile:
            parts.append("; unknown router_profile: " + ", ".join(f"{k} -> {v}" for k, v in self.bad_profile.items()))
        parts.append("; give each a model_info.router_profile naming a model the artifact knows, "
                     "or train the router on them (docs/routing.md, cold start)")
        return "".join(parts)


def coverage(candidates: Iterable[tuple[str, str | None]], known: Collection[str]) -> Coverage:
    """Split ``(name, profile)`` candidates by whether the artifact's ``known`` models cover them."""
    scored: list[str] = []
    via: dict[str, str] = {}
    unknown: list[str] = []
    bad: dict[str, str] = {}
    for name, profile in candidates:
        if name in known:
            scored.append(name)
        elif profile is not None and profile in known:
            via[name] = profile
        else:
            unknown.append(name)
            if profile is not None:
                bad[name] = profile
    return Coverage(tuple(scored), via, tuple(unknown), bad)
