"""Request-level read-ahead: every entry a request will read, token included, in one Redis round trip.

Without it a warm authenticated GET would send two commands: one MGET for the token's record, then
one for the data. The view knows from its URL which entries it will read (``cache_entries`` on the view), and the
authentication knows the token's; ``read_ahead`` fetches them all at once, and each later read of
one of those entries in the same request (``Slot.read``) takes its answer from here instead of
asking Redis again. An entry whose key depends on the token's user (``/me``: the profile of
``{uid}``) is resolved inside Redis by ``_SCRIPT``, from the token record it has just read, so that
too is one round trip. On Redis Cluster the keys of one request may live on several shards: one
command goes to each (cluster.mget), all sent before any answer is read, and entries of the token's
user are read later, by their own ``Slot.read``. Entries this process serves from its own copy
(hot.py) are not read ahead.

What comes back is only prefetched bytes: every check (signature, key, expiry, generation, journal)
is the reader's, as for any read. Each answer is used once, so a reader that polls (single flight)
asks Redis again.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.conf import settings
from django.core.signals import request_finished, request_started
from redis.exceptions import NoScriptError

from . import cluster, hot, replies
from .calls import CacheUnavailable, cache_for, call, kind_of
from .generations import entry_keys
from .identity import ConnectEpoch
from .rawio import Sent, read, send
from .rawio import receive as receive_answer

USER = "{uid}"  # in an Entry's key or scope: the id of the user whose token record is read ahead


class Entry(NamedTuple):
    """One entry a request will read: its kind (so its app), its key and its scope."""

    kind: str
    key: str
    scope: str | None = None


# MGET KEYS; then, if ARGV[1] > 0, read the user id from the signed token record at KEYS[ARGV[1]]
# (``<32 hex tag>.<json entry>``; its value's ``userId``) and MGET ARGV[2..] with {uid} replaced.
# Returns {values of KEYS, keys read for the user, their values}. Nothing here is trusted: the
# reader checks every value it takes, the token record first.
_SCRIPT = """
local values = redis.call('MGET', unpack(KEYS))
local at = tonumber(ARGV[1])
local keys, more = {}, {}
if at > 0 and #ARGV > 1 and values[at] then
  local ok, entry = pcall(cjson.decode, string.sub(values[at], 34))
  if ok and type(entry) == 'table' and type(entry.v) == 'table' and tonumber(entry.v.userId) then
    local uid = string.format('%d', tonumber(entry.v.userId))
    for i = 2, #ARGV do
      keys[#keys + 1] = (string.gsub(ARGV[i], '{uid}', uid))
    end
    more = redis.call('MGET', unpack(keys))
  end
end
return {values, keys, more}
"""

# Sent by its SHA1 rather than as a kilobyte of text in every /me request (the CPU this saves was
# within the noise of bench/hitcpu.py here; the bytes on a network between app and Redis are not).
_SCRIPT_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA1)

_request = threading.local()


class _Sent:
    """``send_ahead``'s command, whose answer is still in flight."""

    __slots__ = ("app", "client", "fixed", "read", "sent", "start", "templated")

    def __init__(self, app: str, client: Any, sent: Sent, fixed: list[str], templated: list[str], start: int) -> None:
        self.app, self.client, self.sent, self.start = app, client, sent, start
        self.fixed, self.templated = fixed, templated
        self.read = False  # its answer has been read (or tried): the connection is back in the pool

    def drop(self) -> None:
        """Its answer will never be read: close the connection (whatever comes on it is lost) and return it."""
        self.sent.connection.disconnect()
        self.sent.pool.release(self.sent.connection)


UNAVAILABLE = "unavailable"  # send_ahead found Redis unavailable: the request's reads find out alone


def _reset(**kwargs: Any) -> None:
    _request.answers = None
    stale = getattr(_request, "sent", None)
    _request.sent = None
    if isinstance(stale, _Sent):  # never received nor discarded: its connection may hold an answer
        stale.drop()


request_started.connect(_reset, dispatch_uid="techbirdsfly.cache.readahead.start")
request_finished.connect(_reset, dispatch_uid="techbirdsfly.cache.readahead.end")


def _keys(entry: Entry) -> tuple[str, ...]:
    return entry_keys(cache_for(kind_of(entry.kind).app), entry.key, entry.scope)


def _plan(entries: Sequence[Entry], user_from: Entry | None) -> tuple[str, list[str], list[str], int] | None:
    """The app whose Redis is read, the keys to read, the keys to read for the token's user, and the
    connect count before reading (journal.trusted)."""
    first = user_from or (entries[0] if entries else None)
    if first is None:
        return None
    app = kind_of(first.kind).app
    caches = settings.CACHES
    location = caches[app]["LOCATION"]
    fixed: list[str] = list(_keys(user_from)) if user_from else []
    templated: list[str] = []
    for entry in entries:
        entry_app = kind_of(entry.kind).app
        if caches[entry_app]["LOCATION"] != location or hot.get(entry_app, entry.key, entry.scope) is not None:
            continue  # another Redis's, or served from this process's copy (hot.py): read by its own read
        keys = _keys(entry)
        if USER in entry.key or (entry.scope and USER in entry.scope):
            templated += keys
        else:
            fixed += keys
    return app, fixed, templated if user_from else [], ConnectEpoch.servers_seen


def read_ahead(entries: Sequence[Entry], *, user_from: Entry | None = None) -> None:
    """Read ``entries`` (and ``user_from``, the token record naming the user) in one round trip.

    Entries whose key or scope holds ``USER`` are read for the user ``user_from``'s record names.
    Entries of an app whose Redis is not ``user_from``'s (or the first entry's) are left to their reads.
    Redis unavailable: nothing is read ahead, and the reads themselves find out.
    """
    _request.answers = None
    plan = _plan(entries, user_from)
    if plan is None:
        return
    app, fixed, templated, start = plan
    try:
        answers = call(app, _read, cache_for(app), fixed, templated)
    except CacheUnavailable:
        return
    _request.answers = answers
    _request.start = start


def _read(cache: Any, fixed: list[str], templated: list[str]) -> dict[str, bytes | None]:
    client = cache.client.get_client(write=False)  # inside the call: on a cluster it connects
    if not templated or cluster.is_cluster(client):  # a cluster reads the user's entries later, alone
        return _answers(fixed, [], cluster.mget(client, fixed))
    try:
        reply = read(client, *_command(fixed, templated))
    except NoScriptError:  # a Redis that has not seen it yet (a restart, a failover): EVAL loads it
        reply = read(client, *_command(fixed, templated, by_sha=False))
    return _answers(fixed, templated, reply)


def _command(fixed: list[str], templated: list[str], *, by_sha: bool = True) -> tuple[Any, ...]:
    """MGET of ``fixed``; with ``templated``, the script that also reads those for the token's user."""
    if not templated:
        return ("MGET", *fixed)
    script = ("EVALSHA", _SCRIPT_SHA) if by_sha else ("EVAL", _SCRIPT)
    return (*script, len(fixed), *fixed, 1, *templated)


def _answers(fixed: list[str], templated: list[str], reply: Any) -> dict[str, bytes | None]:
    """Key -> value, from the answer to ``_command(fixed, templated)``; MalformedReply if it has another shape."""
    if not templated:
        return dict(zip(fixed, replies.values(reply, len(fixed)), strict=True))
    values, user_keys, user_values = replies.array(reply, 3)
    answers = dict(zip(fixed, replies.values(values, len(fixed)), strict=True))
    if user_keys:  # the script found the token's user: one key read per template
        names = replies.values(user_keys, len(templated))
        if None in names:
            raise replies.MalformedReply("the script read a key it did not name")
        try:
            answers.update(zip((name.decode() for name in names), replies.values(user_values, len(names)), strict=True))
        except UnicodeDecodeError as exc:
            raise replies.MalformedReply("a key the script read is not text") from exc
    return answers


# --- sent early, read late -------------------------------------------------------------------
# A request's read-ahead can be sent as the request arrives (auth_app.middleware.ReadAheadMiddleware)
# and its answer read when the authentication needs it: Redis answers while the rest of the
# middleware, the URL resolution and DRF prepare the request, instead of after. Across a network
# that work comes off each cached GET's wait (bench/RESULTS.md, "Redis across a network"); on
# loopback the answer is usually there when it is read, and the thread does not sleep for it.


def send_ahead(entries: Sequence[Entry], *, user_from: Entry) -> None:
    """Send what ``read_ahead(entries, user_from=...)`` would read, without waiting for the answer.

    ``receive`` reads it; ``discard`` (at the latest, the end of the request) reads one never received,
    so the connection goes back to the pool ready for its next command. On a Redis Cluster, or through
    a single-connection client, nothing is sent: the authentication reads ahead as usual.
    """
    discard()
    _request.answers = None
    plan = _plan(entries, user_from)
    if plan is None:
        return
    app, fixed, templated, start = plan
    try:
        client, sent = call(app, _send, cache_for(app), fixed, templated)
    except CacheUnavailable:
        _request.sent = UNAVAILABLE
        return
    if sent is not None:
        _request.sent = _Sent(app, client, sent, fixed, templated, start)


def _send(cache: Any, fixed: list[str], templated: list[str]) -> tuple[Any, Sent | None]:
    client = cache.client.get_client(write=False)
    if cluster.is_cluster(client):
        return client, None
    return client, send(client, *_command(fixed, templated))


def receive() -> bool:
    """Take the answer of this request's ``send_ahead``; False when nothing was sent (read ahead now)."""
    sent = getattr(_request, "sent", None)
    if sent is None:
        return False
    _request.sent = None
    if sent is UNAVAILABLE:
        return True
    try:
        answers = call(sent.app, _receive, sent)
    except CacheUnavailable:
        if not sent.read:  # skipped before reading (the breaker opened, the budget ran out meanwhile)
            sent.drop()
        return True
    _request.answers = answers
    _request.start = sent.start
    return True


def _receive(sent: _Sent) -> dict[str, bytes | None]:
    sent.read = True  # from here on, receive_answer returns the connection to the pool, or drops it
    try:
        reply = receive_answer(sent.sent)
    except NoScriptError:  # EVALSHA on a Redis that has not seen the script yet: EVAL loads it
        reply = read(sent.client, *_command(sent.fixed, sent.templated, by_sha=False))
    return _answers(sent.fixed, sent.templated, reply)


def discard() -> None:
    """Read the answer of a ``send_ahead`` that was never received, and forget it."""
    if isinstance(getattr(_request, "sent", None), _Sent):
        receive()
        _request.answers = None
    _request.sent = None


def take(keys: Sequence[str]) -> tuple[list[bytes | None], int] | None:
    """The read-ahead answers for ``keys`` (each used once) and the connect count they were read at."""
    answers = getattr(_request, "answers", None)
    if not answers:
        return None
    for key in keys:
        if key not in answers:
            return None
    return [answers.pop(key) for key in keys], _request.start
