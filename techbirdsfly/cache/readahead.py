"""A request's one Redis read: every entry it will read, token included, in one round trip.

Without it a warm authenticated GET would send two commands: one MGET for the token's record, then
one for the data. The view knows from its URL which entries it will read (``cache_entries`` on the
view), and the authentication which entry names the user (the token's record). ``RequestRead``
sends one MGET of them all, as the request arrives (``RequestCacheMiddleware``, middleware.py) or
when the authentication asks, and each later read of one of those entries in the same request
(``EntryRead.read``) takes its answer from it instead of asking Redis again. It lives on the request's
scope (scope.py) from its send to its release: ``close``, when the scope closes, is the one place
that gives back a connection whose answer was never read.

Entries whose key holds ``USER`` (``/me``: the profile of ``{uid}``) are read for the user the token
names, when this process has met the token before (``remember_user``; a token names one user for
ever); otherwise by their own read. On Redis Cluster one command goes to each shard involved
(cluster.mget), all sent before any answer is read. Entries this process serves from its own copy
(hot.py) are not read ahead.

What comes back is only prefetched bytes: every check (signature, key, expiry, generation, journal)
is the reader's, as for any read. Each answer is used once, so a reader that polls (single flight)
asks Redis again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from django.conf import settings
from redis.exceptions import MaxConnectionsError

from . import cluster, hot, replies
from .calls import CacheUnavailable, cache_for, kind_of, redis_call
from .generations import entry_keys
from .identity import ConnectEpoch
from .rawio import Sent, send
from .rawio import receive as receive_answer
from .scope import current

USER = "{uid}"  # in an EntryRef's key or scope: the id of the user the token's record names


class EntryRef(NamedTuple):
    """One entry a request will read: its kind (so its app), its key and its scope."""

    kind: str
    key: str
    scope: str | None = None


# The user each token record this process has read names, by the record's key (which holds the
# token's hash): a token never changes hands, so this only says which keys to read ahead; the reader
# still checks what it reads.
_users: dict[str, int] = {}
_USERS_MAX = 10_000  # then it starts again


def remember_user(user_from: EntryRef, user_id: int) -> None:
    """``user_from`` (a token's record) names ``user_id``: its ``USER`` entries can be read ahead."""
    if _users.get(user_from.key) != user_id:
        if len(_users) >= _USERS_MAX:
            _users.clear()
        _users[user_from.key] = user_id


class RequestRead:
    """The one Redis read of a request: sent, answered once, and closed once.

    States: *sent* (``sent``: the command is on a pooled connection whose answer has not been read),
    *answered* (``answers``: key -> raw value, each taken once), or neither (Redis was unavailable:
    the request's reads find out by themselves).
    """

    __slots__ = ("answers", "app", "client", "keys", "reading", "sent", "start")

    def __init__(self, app: str, keys: list[str], start: int) -> None:
        self.app, self.keys, self.start = app, keys, start
        self.client: Any = None
        self.sent: Sent | None = None
        self.reading = False  # the answer is being read: the connection is rawio.receive's to release
        self.answers: dict[str, bytes | None] | None = None

    @classmethod
    def open(cls, entries: Sequence[EntryRef], user_from: EntryRef | None, *, early: bool) -> RequestRead | None:
        """Read ``entries`` and ``user_from`` (None when there is nothing to read).

        ``early``: send the command now and read its answer when it is needed (``receive``); None when
        it is not sent (Redis Cluster, a single-connection client, no free connection): the
        authentication then reads when it needs the answer.
        """
        planned = _plan(entries, user_from)
        if planned is None:
            return None
        read = cls(*planned)
        try:
            if early:
                read.client, read.sent = redis_call(read.app, _send, cache_for(read.app), read.keys)
                if read.sent is None:
                    return None  # not sent: read when the authentication asks (``read_ahead``)
            else:
                read.answers = redis_call(read.app, _read, cache_for(read.app), read.keys)
        except CacheUnavailable:
            read.sent = None
        return read

    def receive(self) -> None:
        """Read the answer of a command sent early (no-op otherwise)."""
        sent, self.sent = self.sent, None
        if sent is None:
            return
        try:
            self.answers = redis_call(self.app, self._answer, sent)
        except CacheUnavailable:
            if not self.reading:  # skipped before reading (the breaker opened, the budget ran out)
                _drop(sent)

    def _answer(self, sent: Sent) -> dict[str, bytes | None]:
        self.reading = True
        return dict(zip(self.keys, replies.values(receive_answer(sent), len(self.keys)), strict=True))

    def take(self, keys: Sequence[str]) -> tuple[list[bytes | None], int] | None:
        """The answers for ``keys`` (each used once) and the servers-seen count they were read at."""
        self.receive()
        answers = self.answers
        if not answers:
            return None
        for key in keys:
            if key not in answers:
                return None
        return [answers.pop(key) for key in keys], self.start

    def close(self) -> None:
        """Read an answer nobody took, so the connection goes back to the pool ready for its next command."""
        self.receive()
        self.answers = None


def send_ahead(entries: Sequence[EntryRef], *, user_from: EntryRef) -> None:
    """Send the request's read now and read its answer when it is needed (outside a request: nothing)."""
    scope = current()
    if scope is not None:
        scope.close()
        scope.read = RequestRead.open(entries, user_from, early=True)


def read_ahead(entries: Sequence[EntryRef], *, user_from: EntryRef | None = None) -> None:
    """Make sure the request's read is made: the one sent early, or this one now."""
    scope = current()
    if scope is None:
        return
    if scope.read is not None:
        scope.read.receive()
        return
    scope.read = RequestRead.open(entries, user_from, early=False)


def take(keys: Sequence[str]) -> tuple[list[bytes | None], int] | None:
    """The request's read-ahead answers for ``keys``, each used once; None when they were not read ahead."""
    scope = current()
    read = scope.read if scope is not None else None
    return read.take(keys) if read is not None else None


def _keys(entry: EntryRef) -> tuple[str, ...]:
    return entry_keys(cache_for(kind_of(entry.kind).app), entry.key, entry.scope)


def _plan(entries: Sequence[EntryRef], user_from: EntryRef | None) -> tuple[str, list[str], int] | None:
    """The app whose Redis is read, the keys to read, and the servers-seen count (journal.trusted)."""
    first = user_from or (entries[0] if entries else None)
    if first is None:
        return None
    app = kind_of(first.kind).app
    location = settings.CACHES[app]["LOCATION"]
    keys: list[str] = list(_keys(user_from)) if user_from else []
    user = _users.get(user_from.key) if user_from else None
    for entry in entries:
        entry_app = kind_of(entry.kind).app
        if settings.CACHES[entry_app]["LOCATION"] != location:
            continue  # another Redis's: read by its own read
        if USER in entry.key or (entry.scope and USER in entry.scope):
            if user is None:
                continue  # a token this process has not met: read once the record names its user
            uid = str(user)
            entry = entry._replace(
                key=entry.key.replace(USER, uid), scope=entry.scope and entry.scope.replace(USER, uid)
            )
        if hot.get(entry_app, entry.key, entry.scope) is not None:
            continue  # served from this process's copy (hot.py)
        keys += _keys(entry)
    return app, keys, ConnectEpoch.servers_seen


def _read(cache: Any, keys: list[str]) -> dict[str, bytes | None]:
    client = cache.client.get_client(write=False)  # inside the call: on a cluster it connects
    return dict(zip(keys, replies.values(cluster.mget(client, keys), len(keys)), strict=True))


def _send(cache: Any, keys: list[str]) -> tuple[Any, Sent | None]:
    client = cache.client.get_client(write=False)
    if cluster.is_cluster(client):
        return client, None
    try:
        return client, send(client, "MGET", *keys)
    except MaxConnectionsError:
        # Every pooled connection is taken (many requests in flight, as under ASGI): an early send
        # would hold one more across the request's preparation. The read is made when it is needed.
        return client, None


def _drop(sent: Sent) -> None:
    """An answer that will never be read: close its connection (whatever comes on it is lost) and return it."""
    sent.connection.disconnect()
    sent.pool.release(sent.connection)
