"""Progress reporting for long training steps, decoupled from rich.

Trainers take a ``Progress``-like object with ``task(description, total)`` returning an
``advance(n)`` callable; the CLI passes a rich-backed one, tests pass ``NullProgress``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

Advance = Callable[[int], None]


class ProgressSink(Protocol):
    def task(self, description: str, total: int) -> Advance: ...


class NullProgress:
    def task(self, description: str, total: int) -> Advance:
        return lambda n=1: None


class RichProgress:
    """One rich progress bar per task, on stderr so ``--json`` output stays clean."""

    def __init__(self, progress: object) -> None:
        self._progress = progress

    def task(self, description: str, total: int) -> Advance:
        task_id = self._progress.add_task(description, total=total)  # type: ignore[attr-defined]
        return lambda n=1: self._progress.advance(task_id, n)  # type: ignore[attr-defined]


@contextmanager
def rich_progress() -> Iterator[RichProgress]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        yield RichProgress(progress)
