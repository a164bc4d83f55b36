"""One generator per SQLite file: SQLite has no row locks, so two generators could take one job.

On PostgreSQL any number of generators share the queue (``SELECT ... FOR UPDATE SKIP LOCKED``). On
SQLite a generator holds an exclusive ``flock`` on a file beside the database for as long as it runs;
a second one (a second ``make run`` on another port, say) finds it held and refuses to start. The
kernel releases the lock when the process ends, however it ends, so a killed generator leaves none.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from django.db import connection


def lock_path(database: str | Path) -> Path:
    return Path(f"{database}.generator-lock")


def acquire(database: str | Path) -> IO[bytes] | None:
    """The open, locked lock file of ``database`` (keep it open to hold it); None if another holds it."""
    handle = open(lock_path(database), "ab")  # noqa: SIM115 (held open for the process's life)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def sqlite_database() -> str | None:
    """The default database's file when it is SQLite (not in memory); None otherwise."""
    if connection.vendor != "sqlite":
        return None
    name = str(connection.settings_dict["NAME"])
    return None if name == ":memory:" or name.startswith("file:") else name


def refusal(database: str) -> str:
    return (
        f"another generator is already running on the SQLite database {database} (is another `make run` up?). "
        "SQLite has no row locks, so two generators could take the same job: stop the other one, or run "
        "both on PostgreSQL (DATABASE_URL=postgres://...)."
    )
