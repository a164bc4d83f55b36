"""The journal's rows in SQL: written with the write, read by what has committed, pushed on commit.

PostgreSQL: every row carries its transaction's id (``xid``, migration techbirdsfly 0003). A read
returns the rows committed since the previous read's snapshot (``pg_visible_in_snapshot``) together
with the new snapshot, in one statement and so one snapshot: a row is read once its transaction
commits, however long it ran and however many larger ids were read before it. A first read returns
one row per scope (its newest) within the window. Each write also sends a ``NOTIFY`` carrying its
rows, delivered by PostgreSQL when (and only if) the transaction commits: the follower notes them at
once, and the next read, the guarantee, reads them again.

SQLite: writes take the database lock in turn, so ids commit in order and ``id >`` the largest id
read is exact; there is no push, only reads.
"""

from __future__ import annotations

import hashlib
import time
import uuid
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import psycopg
from django.db import transaction
from django.db.models.functions import Now
from psycopg import pq

# The ``app`` of the rows that name the database's history: never an app's name, never pruned, and
# their removal (a truncation, ``flush``) is itself a new history. Spelled out in the SQL below.
HISTORY_APP = "*history"
# The NOTIFY channel; a payload is "<app>\t<label>\t<id> <scope>\t...", or "<app>\t<label>" alone
# when the rows would not fit in one (then it only says: read now).
CHANNEL = "techbirdsfly_cache_journal"
_PAYLOAD_MAX = 7900  # PostgreSQL's limit is 8000 bytes
# A lock of the journal's own, so that two processes that find no history do not both start one.
_HISTORY_LOCK = 0x74626668  # "tbfh"

# Both reads: first a header row (kind 0: the snapshot, the database's clock, the server and the
# history rows), then the rows (kind 1). The first read groups by scope; later ones take what
# committed since the previous snapshot.
_HEADER = """
WITH s AS MATERIALIZED (
  SELECT pg_current_snapshot() AS snap,
         extract(epoch FROM clock_timestamp())::float8 AS now,
         concat_ws('/', (SELECT system_identifier FROM pg_control_system()),
                   CASE WHEN pg_is_in_recovery() THEN ''
                        ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END,
                   (SELECT oid FROM pg_database WHERE datname = current_database())) AS server,
         (SELECT string_agg(h.id || ' ' || h.scope, ',' ORDER BY h.id)
            FROM techbirdsfly_cachejournal h WHERE h.app = '*history') AS history
)
SELECT 0, s.snap::text, s.now, s.server, s.history, NULL::bigint, NULL::text, NULL::text FROM s
UNION ALL
"""
_FIRST_READ = (
    _HEADER
    + """
SELECT 1, NULL, NULL, NULL, NULL, max(j.id), j.app, j.scope FROM s, techbirdsfly_cachejournal j
WHERE j.app <> '*history' AND j.created_at >= to_timestamp(s.now - %(window)s)
GROUP BY j.app, j.scope
"""
)
_NEXT_READ = (
    _HEADER
    + """
SELECT 1, NULL, NULL, NULL, NULL, j.id, j.app, j.scope FROM techbirdsfly_cachejournal j
WHERE j.app <> '*history' AND j.xid >= pg_snapshot_xmin(%(after)s::pg_snapshot)::text::bigint
  AND NOT pg_visible_in_snapshot(j.xid::text::xid8, %(after)s::pg_snapshot)
"""
)
# The rows' ids and the history they were written in, and their push, in the statement that writes them.
_RECORD = """
WITH rows AS (
  INSERT INTO techbirdsfly_cachejournal (app, scope) SELECT %(app)s, unnest(%(scopes)s::text[]) RETURNING id, scope
), h AS (
  SELECT coalesce(string_agg(id || ' ' || scope, ',' ORDER BY id), '') AS history
  FROM techbirdsfly_cachejournal WHERE app = '*history'
), p AS (
  SELECT %(app)s || E'\t' || h.label AS head,
         %(app)s || E'\t' || h.label || E'\t' || string_agg(rows.id || ' ' || rows.scope, E'\t') AS payload
  FROM rows, (SELECT CASE WHEN history = '' THEN '' ELSE left(md5(history), 12) END AS label FROM h) h
  GROUP BY h.label
), pushed AS (
  SELECT pg_notify(%(channel)s, CASE WHEN octet_length(payload) <= %(max)s THEN payload ELSE head END) FROM p
)
SELECT rows.id, rows.scope, h.history, (SELECT count(*) FROM pushed) FROM rows, h
"""


# The follower's poll (``_poll``): its name on the session, its SQL with libpq's placeholder, and the
# sessions it is prepared on.
_POLL_NAME = b"techbirdsfly_journal_poll"
_POLL_SQL = _NEXT_READ.replace("%(after)s", "$1").encode()
_prepared: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


class Read(NamedTuple):
    rows: list[tuple[int, str, str]]  # id, app, scope
    position: Any  # what the next read continues from: a snapshot, or the largest id read
    now: float  # the database's clock
    server: str  # the database server this history belongs to
    history: str  # the history rows, as one string ('' when there are none)


def read(connection: Any, after: Any, window: int, *, session: Any = None) -> Read:
    """Rows committed since ``after`` (None: the newest row of every scope within ``window`` seconds).

    ``session``: a psycopg connection of the caller's own, outside the pool and PgBouncer (the
    follower's), on which a later read is a prepared statement.
    """
    if connection.vendor != "postgresql":
        return _read_sqlite(after, window)
    header: tuple[Any, ...] = ()
    rows: list[tuple[int, str, str]] = []
    for row in _rows(connection, after, window, session=session):
        if row[0] == 0:
            header = row
        else:
            rows.append((row[5], row[6], row[7]))
    return Read(rows, header[1], header[2], header[3], header[4] or "")


def _rows(connection: Any, after: Any, window: int, *, session: Any) -> Iterator[tuple[Any, ...]]:
    if after is None:
        # A server-side cursor: a first read of a million scopes streams instead of arriving at once.
        with transaction.atomic(using=connection.alias), connection.chunked_cursor() as cursor:
            cursor.execute(_FIRST_READ, {"window": window})
            while chunk := cursor.fetchmany(10_000):
                yield from chunk
        return
    if session is not None:
        yield from _poll(session, after)
        return
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_READ, {"after": after, "window": window})
        yield from cursor.fetchall()


def _poll(session: psycopg.Connection[Any], after: Any) -> Iterator[tuple[Any, ...]]:
    """The follower's read, again and again on a session of its own: a statement prepared once.

    Server-side binding (Django's cursors bind on the client, which cannot prepare, and a prepared
    statement does not survive PgBouncer's transaction mode), run through libpq's ``exec_prepared``
    rather than a psycopg cursor: on an idle process this read is most of the follower's cost, and
    the cursor's type machinery costs more CPU than the query. The rows come back as text.
    Sessions are the follower's own, used by its one thread (psycopg's lock is not taken).
    """
    pgconn = session.pgconn
    if session not in _prepared:
        _answer(pgconn, pgconn.prepare(_POLL_NAME, _POLL_SQL))
        _prepared.add(session)
    result = _answer(pgconn, pgconn.exec_prepared(_POLL_NAME, [str(after).encode()]))
    value = result.get_value
    for row in range(result.ntuples):
        if value(row, 0) == b"0":  # the header: snapshot, clock, server, history rows (NULL: none)
            history = value(row, 4)
            yield 0, value(row, 1).decode(), float(value(row, 2)), value(row, 3).decode(), history and history.decode()
        else:  # a row: id, app, scope
            yield 1, None, None, None, None, int(value(row, 5)), value(row, 6).decode(), value(row, 7).decode()


def _answer(pgconn: pq.abc.PGconn, result: Any) -> Any:
    """libpq's ``result`` unless it is an error (then psycopg's error, as a cursor would raise).

    Notifications that arrived with it are off the socket, where no wait would see them: they go to
    psycopg as its own reads would hand them, so the follower's next ``notifies()`` yields them.
    """
    while (notice := pgconn.notifies()) is not None:
        if pgconn.notify_handler:
            pgconn.notify_handler(notice)
    if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        raise psycopg.DatabaseError(result.error_message.decode(errors="replace").strip())
    return result


def _read_sqlite(after: Any, window: int) -> Read:
    from techbirdsfly.models import CacheJournal

    now = time.time()  # SQLite is a file on this machine: its clock is this one
    rows = CacheJournal.objects.exclude(app=HISTORY_APP)
    if after is None:
        rows = rows.filter(created_at__gte=datetime.fromtimestamp(now - window, tz=UTC))
    else:
        rows = rows.filter(id__gt=after)
    found = list(rows.order_by("id").values_list("id", "app", "scope"))
    position = max((row[0] for row in found), default=after or 0)
    return Read(found, position, now, "sqlite", history_rows())


def record(connection: Any, app: str, scopes: list[str]) -> tuple[list[int], str]:
    """One row per scope in the current transaction: their ids, in order, and the history rows."""
    if connection.vendor == "postgresql":
        params = {"app": app, "scopes": scopes, "channel": CHANNEL, "max": _PAYLOAD_MAX}
        with connection.cursor() as cursor:
            cursor.execute(_RECORD, params)
            returned = cursor.fetchall()
        ids = {scope: row_id for row_id, scope, _, _ in returned}
        return [ids[scope] for scope in scopes], returned[0][2]
    from techbirdsfly.models import CacheJournal

    rows = CacheJournal.objects.bulk_create([CacheJournal(app=app, scope=scope) for scope in scopes])
    return [row.pk for row in rows], history_rows()


def label(history: str) -> str:
    """The short name of a history that generations carry (the SQL of ``_RECORD`` computes the same)."""
    return hashlib.md5(history.encode(), usedforsecurity=False).hexdigest()[:12] if history else ""


def history_rows() -> str:
    from techbirdsfly.models import CacheJournal

    rows = CacheJournal.objects.filter(app=HISTORY_APP).order_by("id").values_list("id", "scope")
    return ",".join(f"{row_id} {scope}" for row_id, scope in rows)


def names_server(history: str, server: str) -> bool:
    """Do the history rows name ``server`` (not a copy's, not gone)?"""
    return any(row.split(" ", 2)[-1] == server for row in history.split(",") if row)


def begin_history(connection: Any, server: str) -> bool:
    """Start a new history for ``server``, unless another process just did; True when this one did."""
    from techbirdsfly.models import CacheJournal

    with transaction.atomic(using=connection.alias):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_HISTORY_LOCK])
        if names_server(history_rows(), server):
            return False
        CacheJournal.objects.filter(app=HISTORY_APP).delete()
        CacheJournal.objects.create(app=HISTORY_APP, scope=f"{uuid.uuid4().hex} {server}")
    return True


def oldest_id_within(window: int) -> int | None:
    """The smallest id of the rows written within ``window`` seconds (None: there are none)."""
    from django.db.models import Min

    from techbirdsfly.models import CacheJournal

    rows = CacheJournal.objects.exclude(app=HISTORY_APP).filter(created_at__gte=Now() - timedelta(seconds=window))
    return rows.aggregate(oldest=Min("id"))["oldest"]


def prune(window: int) -> int:
    """Delete rows older than ``window`` seconds, by the database's clock."""
    from techbirdsfly.models import CacheJournal

    old = CacheJournal.objects.exclude(app=HISTORY_APP).filter(created_at__lt=Now() - timedelta(seconds=window))
    deleted, _ = old.delete()
    return deleted


def parse_push(payload: str) -> tuple[str, str, list[tuple[int, str]]] | None:
    """(app, history label, [(id, scope)]) of a NOTIFY payload; None if it is not one of ours."""
    parts = payload.split("\t")
    if len(parts) < 2:
        return None
    rows = []
    for part in parts[2:]:
        number, _, scope = part.partition(" ")
        if not number.isdigit() or not scope:
            return None
        rows.append((int(number), scope))
    return parts[0], parts[1], rows
