"""What a database failure means: an outage (retry later) or a refused value (never retry it).

The access store and the decision store call the database through ``translated``, the
one place where the drivers' errors (asyncpg, aiosqlite/sqlite3, SQLAlchemy, sockets)
become RouteIQ's:

    StoreUnavailableError (503, OverloadedError)   the database is unreachable or timed out:
                                                    callers retry, buffers keep their rows
    StoreDataError        (400, InvalidRequestError) the database refused a value (SQLSTATE
                                                    class 22 data exception or 23 integrity
                                                    violation, or the driver could not encode
                                                    a parameter): the same rows fail again,
                                                    so a buffer isolates and drops them

A write refused by a read-only server (SQLSTATE 25006, ``read_only_sql_transaction``: an
old primary after a failover) is an outage too: the breaker opens, the buffers keep
their rows and replay them once the new primary answers (``app.access.db`` also drops
the pool then, so the next connections find it).

Telling the two apart matters twice: a refused value must not trip the store's breaker
(one bad request would put every replica in degraded mode), and a buffer must not keep
retrying a batch that can never be written (one bad row would stop every write after
it). Anything not recognised as a data error is treated as an outage: the safe side.
Must not: put a value or SQL text in a message (they can carry request data).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from app.errors import InvalidRequestError, OverloadedError

DATA_SQLSTATES = ("22", "23")
"""SQLSTATE classes of a refused value: data exception, integrity constraint violation."""
READ_ONLY_SQLSTATE = "25006"
"""``read_only_sql_transaction``: the server is (now) a standby or was made read-only."""
DRIVER_DATA_ERRORS = (UnicodeError, OverflowError, TypeError, ValueError)
"""What drivers raise, unwrapped, for a parameter they cannot encode (sqlite3, asyncpg's codecs)."""


class StoreUnavailableError(OverloadedError):
    """The database could not be reached in time (503; callers may retry)."""


class StoreDataError(InvalidRequestError):
    """The database refused a value (400): retrying the same statement fails again."""

    default_code = "invalid_value"


def is_data_error(err: BaseException) -> bool:
    """True when ``err`` is the database (or its driver) refusing a value, not an outage."""
    if isinstance(err, (DataError, IntegrityError)):
        return True
    if isinstance(err, DBAPIError):
        return sqlstate(err).startswith(DATA_SQLSTATES)  # never 25006 (read-only): an outage
    if isinstance(err, StatementError):  # raised while binding parameters, before the database saw them
        return err.orig is not None and isinstance(err.orig, DRIVER_DATA_ERRORS)
    return isinstance(err, DRIVER_DATA_ERRORS) and not isinstance(err, (OSError, asyncio.TimeoutError))


def sqlstate(err: BaseException) -> str:
    """The SQLSTATE of a driver error, under SQLAlchemy's wrapper or not ('' when none)."""
    orig = getattr(err, "orig", None) or err
    return str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


def is_read_only(err: BaseException) -> bool:
    """True when a write was refused because the server is read-only (a demoted primary)."""
    return sqlstate(err) == READ_ONLY_SQLSTATE


def describe(err: BaseException) -> str:
    """The driver's error class (and SQLSTATE): enough to act on, nothing of the data."""
    orig = getattr(err, "orig", None) or err
    inner = orig.__cause__ if isinstance(orig.__cause__, Exception) else orig  # asyncpg's, under SQLAlchemy's
    state = getattr(orig, "sqlstate", None)
    return f"{type(inner).__name__}{f' {state}' if state else ''}"


@asynccontextmanager
async def translated(what: str, on_outage: Callable[[BaseException], None] | None = None) -> AsyncIterator[None]:
    """Run database calls; their failures leave as ``StoreDataError`` or ``StoreUnavailableError``.

    ``on_outage`` is told of outages only (the access store's breaker)."""
    try:
        yield
    except (StoreDataError, StoreUnavailableError):
        raise
    except (SQLAlchemyError, OSError, TimeoutError, *DRIVER_DATA_ERRORS) as err:
        if is_data_error(err):
            raise StoreDataError(f"the {what} refused a value ({describe(err)})") from err
        if on_outage is not None:
            on_outage(err)
        raise StoreUnavailableError(f"{what} unavailable ({type(err).__name__})", retry_after=1) from err
