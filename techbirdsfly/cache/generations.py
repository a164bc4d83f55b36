"""Generations: what makes an entry stale, and ``invalidate``, which makes them so.

Entries that writes can make stale belong to a *scope* (an account, a user, a token). The scope's
generation key, ``{scope}:gen``, holds ``"<number>.<history>.<random>"``: the number is the id of the
scope's latest journal row (journal.py; 0 when none within the window), the history is the label of
the database history that number belongs to (journal.py: a restore or a truncation rewinds the ids
and starts a new one), the random part tells apart two generations of one number. An entry is stored
with the generation it was computed under and is a hit only while that generation is the key's
current one, of the current history, *and* its number is not below the newest journal row this
process knows for the scope.

Readers take the generation *before* they read the database, so a read racing a write stores its
(possibly pre-write) result under the old generation, where nobody will accept it. A reader that found
no generation, or one older than the journal, creates the next one only after it has computed a value
worth caching, and only if the key still holds what it read (``_CLAIM``): a lookup of something that
does not exist leaves no generation key behind (API.md: nothing of it outlives 60 s).

Values are signed (serializers.py), so nobody without SECRET_KEY can write a generation; within a
history numbers only grow (``_BUMP``), so an invalidation applied late never undoes a newer one.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from . import journal
from .calls import CacheUnavailable, cache_for, call, client_for, refused_write
from .policy import GENERATION_TTL

logger = logging.getLogger("techbirdsfly.cache")

# A generation starting with WRITING marks a scope whose transaction has not committed yet (see
# ``invalidate``); the mark outlives any sane transaction and expires after a rollback.
WRITING = "w:"
WRITING_TTL = 30

# Set KEYS[1] to ARGV[1] (signed "<n>.<history>.<random>", n = ARGV[2], history = ARGV[4]) unless it
# holds a number >= n of the same history already. Anything but a string there is junk, replaced.
# A signed value is ``<hex tag>."<json string>"`` (serializers.py); a WRITING mark has no number.
_BUMP = """
if redis.call('type', KEYS[1]).ok == 'string' then
  local n, history = string.match(redis.call('get', KEYS[1]), '^%x+%."(%d+)%.(%w*)%.')
  if n and history == ARGV[4] and tonumber(n) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""

# Set KEYS[1] to ARGV[2] only if it still holds ARGV[1] ('' for: it does not exist). Anything but a
# string there is junk (MGET read it as nothing): it is replaced, so caching resumes by itself.
_CLAIM = """
local current = ''
if redis.call('type', KEYS[1]).ok == 'string' then current = redis.call('get', KEYS[1]) end
if current ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


def generation_key(scope: str) -> str:
    return f"{scope}:gen"


_ENTRY_KEYS: dict[tuple[str, Any, str, str | None], tuple[str, ...]] = {}
_ENTRY_KEYS_MAX = 10_000  # then it starts again


def entry_keys(cache: Any, key: str, scope: str | None) -> tuple[str, ...]:
    """The Redis keys of an entry: its own, then its scope's generation key if it has a scope.

    Remembered by alias prefix and version: a warm hit asks for them twice (the read-ahead, then the
    read), each time through Django's ``make_key``.
    """
    memo = (cache.key_prefix, cache.version, key, scope)
    keys = _ENTRY_KEYS.get(memo)
    if keys is None:
        keys = (cache.make_key(key), cache.make_key(generation_key(scope))) if scope else (cache.make_key(key),)
        if len(_ENTRY_KEYS) >= _ENTRY_KEYS_MAX:
            _ENTRY_KEYS.clear()
        _ENTRY_KEYS[memo] = keys
    return keys


def new_generation(number: int, history: str) -> str:
    return f"{number}.{history}.{secrets.token_hex(6)}"


def is_current(generation: Any, floor: int, history: str) -> bool:
    """Is ``generation`` of this history, and not older than the journal's newest number ``floor``?"""
    if not isinstance(generation, str):
        return False
    parts = generation.split(".")
    return len(parts) == 3 and parts[0].isdigit() and int(parts[0]) >= floor and parts[1] == history


def claim(app: str, gen_key: str, read: bytes | None, number: int, history: str) -> str | None:
    """Replace the generation ``read`` (raw, None: absent) by a new one numbered ``number`` in ``history``.

    Returns the new generation, or None when the key changed since it was read (a write came in
    between, so what the caller computed may be stale) or Redis is unavailable.
    """
    cache = cache_for(app)
    generation = new_generation(number, history)
    signed = cache.client._serializer.dumps(generation)
    try:
        done = call(app, lambda: client_for(app).eval(_CLAIM, 1, gen_key, read or b"", signed, GENERATION_TTL))
    except CacheUnavailable:
        return None
    return generation if done else None


def invalidate(app: str, *scopes: str, covered: Iterable[str] = ()) -> None:
    """Make every entry of ``scopes`` stale, once the current transaction commits (now if none).

    The journal rows are written first, in the transaction: the invalidation is durable exactly when
    the write is. Inside a transaction the scopes are also marked *being written*: until the new
    generation is written after the commit, reads of those scopes go to the database and store
    nothing. So no read that starts after the commit is served pre-write data, not even in the
    instant between the commit and the invalidation (a logout, say, is final the moment it commits).
    If the transaction rolls back, the rows go with it and the mark expires within WRITING_TTL.

    ``covered``: scopes whose entries check one of ``scopes`` in the journal themselves (a token
    record checks its user's, auth_app.selectors): made stale in Redis like the others, with no
    journal row of their own, so a write costs one row per scope it changes, however many entries
    hang off it.
    """
    if not scopes:
        return
    cache_for(app)  # fail fast on an unknown app
    scopes = list(dict.fromkeys(scopes))
    covered = [scope for scope in dict.fromkeys(covered) if scope not in scopes]
    ids, history = journal.record(app, scopes)
    if _in_transaction():
        with contextlib.suppress(CacheUnavailable):
            _mark_being_written(app, [*scopes, *covered])
    transaction.on_commit(lambda: _apply(app, scopes, ids, history, covered), robust=True)


def _in_transaction() -> bool:
    """Inside a transaction that will commit later: an atomic block other than a TestCase's own.

    A durable block opens only where nothing encloses it, or only a TestCase's own blocks (Django
    documents TestCase as exempt from the durability check); anywhere else it raises RuntimeError
    before any SQL. So a write made directly in a test body behaves as in autocommit, as in
    production outside ``atomic``.
    """
    if not transaction.get_connection().in_atomic_block:
        return False
    try:
        with transaction.atomic(durable=True):
            return False
    except RuntimeError:
        return True


def _mark_being_written(app: str, scopes: Iterable[str]) -> None:
    cache = cache_for(app)
    marks = {generation_key(scope): WRITING + secrets.token_hex(6) for scope in scopes}
    call(app, cache.set_many, marks, timeout=WRITING_TTL)


def _apply(app: str, scopes: list[str], ids: list[int], history: str, covered: list[str]) -> None:
    """After the commit: this process knows the rows at once, and Redis gets the new generations."""
    journal.note_committed(app, scopes, ids, history)
    history = history or journal.history()  # the database had none yet: the one just begun
    numbered = [*zip(scopes, ids, strict=True), *((scope, max(ids)) for scope in covered)]
    try:
        bump(app, numbered, history)
    except CacheUnavailable as exc:
        # Nothing is lost: the rows are in the journal, which every process checks entries against
        # (journal.py). Redis is only the fast path that makes the change visible at once.
        logger.info("Redis unavailable: %d invalidation(s) of %s reach other processes by the journal", len(ids), app)
        if refused_write(exc):
            # Redis answers but refuses writes (OOM at maxmemory under noeviction): DEL needs no
            # memory, and a scope without a generation has no valid entry, in every process at once.
            cache = cache_for(app)
            with contextlib.suppress(CacheUnavailable):
                call(app, cache.delete_many, [generation_key(scope) for scope, _ in numbered], force=True)


def bump(app: str, numbered: Iterable[tuple[str, int]], history: str) -> None:
    """Write new generations (never lowering a number of one history), one pipelined script per key.

    Tried even while this process's breaker is open: Redis may be back for the other processes.
    """
    cache = cache_for(app)
    dumps = cache.client._serializer.dumps

    def run() -> None:
        # The client inside the call: on Redis Cluster, getting it connects, and may fail.
        pipe = client_for(app).pipeline(transaction=False)
        for scope, number in numbered:
            key = cache.make_key(generation_key(scope))
            pipe.eval(_BUMP, 1, key, dumps(new_generation(number, history)), number, GENERATION_TTL, history)
        pipe.execute()

    call(app, run, force=True)
