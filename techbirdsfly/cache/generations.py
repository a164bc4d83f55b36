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
worth caching, and only if the key still holds what it read (``stamps.CLAIM``): a lookup of something that
does not exist leaves no generation key behind (API.md: nothing of it outlives 60 s).

Generations are signed by this layer in a form of its own (stamps.py), so nobody without SECRET_KEY
can write one; within a history numbers only grow (``stamps.BUMP``), so an invalidation applied late
never undoes a newer one.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from . import cluster, hot, journal, stamps, stats
from .calls import CacheUnavailable, cache_for, client_for, redis_call, refused_write
from .policy import GENERATION_TTL
from .retries import Retries

logger = logging.getLogger("techbirdsfly.cache")

# A generation starting with WRITING marks a scope whose transaction has not committed yet (see
# ``invalidate``); the mark outlives any sane transaction and expires after a rollback.
WRITING = "w:"
WRITING_TTL = 30


def generation_key(scope: str) -> str:
    return f"{scope}:gen"


def in_scope(cache: Any, name: str, scope: str | None) -> str:
    """``name`` (a key before the app prefix) as stored for an entry of ``scope``.

    On Redis Cluster the scope is appended as a hash tag, ``billing:summary:42{billing:account:42}``,
    so an entry, its fill lock and its scope's generation key share one slot: a read of all of them is
    one command to one shard, and a bump is atomic with respect to it. The app prefix stays first and
    the name unchanged before the tag, so ``--scan --pattern 'BillingService_billing:summary:*'`` finds
    them on a cluster too. A single Redis has no slots, and its names stay exactly as API.md shows.
    """
    if scope is None or not cluster.on_cluster(cache):
        return name
    return f"{name}{{{scope}}}"


def scope_generation_key(cache: Any, scope: str) -> str:
    """The name (before the app prefix) of ``scope``'s generation key in ``cache``'s Redis."""
    return in_scope(cache, generation_key(scope), scope)


_ENTRY_KEYS: dict[tuple[str, Any, bool, str, str | None], tuple[str, ...]] = {}
_ENTRY_KEYS_MAX = 10_000  # then it starts again


def entry_keys(cache: Any, key: str, scope: str | None) -> tuple[str, ...]:
    """The Redis keys of an entry: its own, then its scope's generation key if it has a scope.

    Remembered by alias prefix, version and kind of server: a warm hit asks for them twice (the
    read-ahead, then the read), each time through Django's ``make_key``.
    """
    memo = (cache.key_prefix, cache.version, cluster.on_cluster(cache), key, scope)
    keys = _ENTRY_KEYS.get(memo)
    if keys is None:
        own = cache.make_key(in_scope(cache, key, scope))
        keys = (own, cache.make_key(scope_generation_key(cache, scope))) if scope else (own,)
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
    parsed = _parsed.get(generation)
    if parsed is None:
        parsed = _parse(generation)
    return parsed[0] >= floor and parsed[1] == history


def _parse(generation: str) -> tuple[int, str | None]:
    """(number, history) of a generation; (-1, None), never current, for anything malformed."""
    parts = generation.split(".")
    parsed = (int(parts[0]), parts[1]) if len(parts) == 3 and parts[0].isdigit() else (-1, None)
    if len(_parsed) >= _PARSED_MAX:
        _parsed.clear()
    _parsed[generation] = parsed
    return parsed


# Generations as parsed: a warm hit checks the same few again and again.
_parsed: dict[str, tuple[int, str | None]] = {}
_PARSED_MAX = 10_000  # then it starts again


def claim(app: str, gen_key: str, read: bytes | None, number: int, history: str) -> str | None:
    """Replace the generation ``read`` (raw, None: absent) by a new one numbered ``number`` in ``history``.

    Returns the new generation, or None when the key changed since it was read (a write came in
    between, so what the caller computed may be stale) or Redis is unavailable.
    """
    generation = new_generation(number, history)
    stored = stamps.encode(generation)
    try:
        done = redis_call(
            app, lambda: client_for(app).eval(stamps.CLAIM, 1, gen_key, read or b"", stored, GENERATION_TTL)
        )
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
    hot.forget(app, [*scopes, *covered])
    ids, history = journal.record(app, scopes)
    if in_transaction():
        with contextlib.suppress(CacheUnavailable):
            _mark_being_written(app, [*scopes, *covered])
    transaction.on_commit(lambda: _apply(app, scopes, ids, history, covered), robust=True)


def in_transaction() -> bool:
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
    redis_call(app, _marks, app, scopes)


def _marks(app: str, scopes: Iterable[str]) -> None:
    cache = cache_for(app)
    pipe = client_for(app).pipeline(transaction=False)
    for scope in scopes:
        mark = stamps.encode(WRITING + secrets.token_hex(6))
        pipe.set(cache.make_key(scope_generation_key(cache, scope)), mark, ex=WRITING_TTL)
    pipe.execute()


def _apply(app: str, scopes: list[str], ids: list[int], history: str, covered: list[str]) -> None:
    """After the commit: this process knows the rows at once, and Redis gets the new generations."""
    journal.note_committed(app, scopes, ids, history)
    history = history or journal.history()  # the database had none yet: the one just begun
    numbered = [*zip(scopes, ids, strict=True), *((scope, max(ids)) for scope in covered)]
    try:
        bump(app, numbered, history)
    except Exception as exc:  # on_commit(robust=True) would log it and go on: never silently
        _bump_failed(app, numbered, history, exc)
    else:
        retries.landed(app)


def bump(app: str, numbered: Iterable[tuple[str, int]], history: str) -> None:
    """Write new generations (never lowering a number of one history): one script per key, pipelined.

    On Redis Cluster the pipeline sends each key's script to the shard that owns the key (a
    ClusterPipeline has no ``eval``; ``execute_command`` routes EVAL by its first key), one round trip
    per shard. Tried even while this process's breaker is open: Redis may be back for the others.
    """
    # The client inside the call: on Redis Cluster, getting it connects, and may fail.
    redis_call(app, _bump, app, list(numbered), history, force=True)


def _bump(app: str, numbered: list[tuple[str, int]], history: str) -> None:
    cache = cache_for(app)
    pipe = client_for(app).pipeline(transaction=False)
    for scope, number in numbered:
        key = cache.make_key(scope_generation_key(cache, scope))
        generation = stamps.encode(new_generation(number, history))
        pipe.execute_command("EVAL", stamps.BUMP, 1, key, generation, number, GENERATION_TTL, history)
    pipe.execute()


# --- an invalidation that did not reach Redis: counted, logged, marked and retried (retries.py) ----


def _bump_failed(app: str, numbered: list[tuple[str, int]], history: str, exc: BaseException) -> None:
    stats.invalidation_error(app).inc()
    retries.log_once(app, exc)
    if isinstance(exc, CacheUnavailable) and refused_write(exc):
        # Redis answers but refuses writes (OOM at maxmemory under noeviction): DEL needs no memory,
        # and a scope without a generation has no valid entry, in every process at once.
        cache = cache_for(app)
        keys = [scope_generation_key(cache, scope) for scope, _ in numbered]
        with contextlib.suppress(CacheUnavailable):
            redis_call(app, cache.delete_many, keys, force=True)
            return
    with contextlib.suppress(Exception):
        _mark_being_written(app, [scope for scope, _ in numbered])
    retries.add(app, numbered, history)


retries = Retries(bump=_bump, mark=_marks)
