"""``write_isolating``: a batch refused on data is halved until the bad rows are alone."""

from __future__ import annotations

import pytest

from app.access.dberrors import StoreDataError, StoreUnavailableError
from app.access.flusher import write_isolating


class FakeTable:
    """A 'database' that refuses any transaction holding a bad row, and may go down."""

    def __init__(self, bad: set[int], down_after: int | None = None) -> None:
        self.bad, self.down_after = bad, down_after
        self.rows: list[int] = []
        self.transactions = 0

    async def write(self, batch: list[int]) -> int:
        self.transactions += 1
        if self.down_after is not None and self.transactions > self.down_after:
            raise StoreUnavailableError("down")
        if self.bad & set(batch):
            raise StoreDataError("refused")
        self.rows += batch
        return len(batch)


async def test_every_good_row_lands_and_each_bad_one_is_dead_lettered() -> None:
    table, dead = FakeTable(bad={7, 500, 999}), []
    out = await write_isolating(list(range(1000)), table.write, lambda row, err: dead.append(row))
    assert dead == [7, 500, 999] and out.dead_lettered == 3 and out.error is None and out.unwritten == []
    assert table.rows == [r for r in range(1000) if r not in {7, 500, 999}] and out.written == 997
    assert table.transactions <= 3 * 2 * 10 + 1  # about 2·log2(n) per bad row


async def test_a_clean_batch_is_one_transaction() -> None:
    table = FakeTable(bad=set())
    out = await write_isolating(list(range(100)), table.write, lambda row, err: None)
    assert (out.written, table.transactions) == (100, 1)


@pytest.mark.parametrize("down_after", [0, 1, 5])
async def test_an_outage_hands_back_the_unwritten_tail_in_order(down_after: int) -> None:
    table, dead = FakeTable(bad={3}, down_after=down_after), []
    rows = list(range(16))
    out = await write_isolating(rows, table.write, lambda row, err: dead.append(row))
    assert isinstance(out.error, StoreUnavailableError)
    assert sorted(table.rows + dead + out.unwritten) == rows  # nothing lost, nothing twice
    assert out.unwritten == rows[len(rows) - len(out.unwritten):]  # a suffix: what is done is a prefix
    assert not set(out.unwritten) & set(table.rows + dead)
