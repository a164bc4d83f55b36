"""Concurrent API clients for the fault tests: a mix of reads and writes over every app, with a ledger.

Each ``Actor`` is one user with a token, a billing account and an image, driven by one thread. Every
request's status, JSON body, content type and latency is recorded; every write the server
acknowledged (2xx) goes into the actor's ledger, so that a test can check afterwards that the
database holds it (``lost_writes``) and that reads are not stale (``stale_reads``).

Only the standard library: one new HTTP/1.1 connection per request (``Connection: close``), so a
request never rides on a kept-alive connection the server has just dropped, and a failed write is
never silently retried.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_THEMES = ("light", "dark", "system")


@dataclass
class Reply:
    method: str
    path: str
    status: int | None  # None: no HTTP answer at all (connection refused, reset, timeout)
    body: Any
    content_type: str
    latency: float
    started: float
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_json(self) -> bool:
        return self.content_type.split(";")[0].strip() == "application/json"


def request(
    base: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> Reply:
    """One request on a new connection; never raises for a network error (status None instead)."""
    url = urlsplit(base)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = {"Connection": "close", "Accept": "application/json"}
    if data is not None:
        sent["Content-Type"] = "application/json"
    if token:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    started = time.monotonic()
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        # A server that answers before it has read the whole body (a refused upload) and closes the
        # connection makes the send fail; its answer is still on the socket. Read it, as urllib3 does.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        payload = response.read()
        status, content_type = response.status, response.getheader("Content-Type", "")
        received = {name.lower(): value for name, value in response.getheaders()}
    except (OSError, http.client.HTTPException) as exc:
        return Reply(method, path, None, None, "", time.monotonic() - started, started, f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    latency = time.monotonic() - started
    try:
        decoded = json.loads(payload) if payload else None
    except ValueError:
        decoded = payload[:200].decode(errors="replace")
    return Reply(method, path, status, decoded, content_type, latency, started, headers=received)


# --- actors and their ledgers --------------------------------------------------------------------


@dataclass
class Actor:
    user_id: int
    token: str
    account_id: int
    image_id: int
    seed: int
    usage_acked: dict[int, int] = field(default_factory=dict)  # usage record id -> units
    images_acked: dict[int, str] = field(default_factory=dict)  # image id -> prompt
    # Preference writes: the language of the last acknowledged one, and those sent after it whose
    # answer was lost (they may or may not have landed).
    language_acked: str | None = None
    language_unknown: list[str] = field(default_factory=list)
    _writes: int = 0

    def next_language(self) -> str:
        self._writes += 1
        return f"en-{self._writes:x}"


@dataclass(frozen=True)
class Op:
    name: str
    weight: int
    run: Callable[[str, Actor, random.Random], Reply]
    cached: bool = False  # answers {"fromCache", "data"}


def _validate(base: str, actor: Actor, rng: random.Random) -> Reply:
    return request(base, "POST", "/api/auth/validate-token", token=actor.token)


def _me(base: str, actor: Actor, rng: random.Random) -> Reply:
    return request(base, "GET", "/api/auth/me", token=actor.token)


def _summary(base: str, actor: Actor, rng: random.Random) -> Reply:
    return request(base, "GET", f"/api/billing/summary/{actor.account_id}", token=actor.token)


def _usage_post(base: str, actor: Actor, rng: random.Random) -> Reply:
    units = rng.randint(1, 50)
    reply = request(
        base,
        "POST",
        "/api/billing/usage",
        token=actor.token,
        body={"accountId": actor.account_id, "metric": "api.call", "units": units},
    )
    if reply.status == 201:
        actor.usage_acked[reply.body["id"]] = units
    return reply


def _preferences_get(base: str, actor: Actor, rng: random.Random) -> Reply:
    return request(base, "GET", f"/api/users/{actor.user_id}/preferences", token=actor.token)


def _preferences_patch(base: str, actor: Actor, rng: random.Random) -> Reply:
    language = actor.next_language()
    reply = request(
        base,
        "PATCH",
        f"/api/users/{actor.user_id}/preferences",
        token=actor.token,
        body={"language": language, "theme": rng.choice(_THEMES)},
    )
    if reply.status == 200:
        actor.language_acked, actor.language_unknown = language, []
    elif reply.status is None or reply.status >= 500:
        actor.language_unknown.append(language)  # it may have committed before the answer was lost
    return reply


def _image_get(base: str, actor: Actor, rng: random.Random) -> Reply:
    return request(base, "GET", f"/api/images/{actor.image_id}", token=actor.token)


def _image_post(base: str, actor: Actor, rng: random.Random) -> Reply:
    prompt = f"fault test {actor.user_id} {rng.random():.6f}"
    reply = request(
        base, "POST", "/api/images", token=actor.token, body={"prompt": prompt, "width": 256, "height": 256}
    )
    if reply.status == 201:
        actor.images_acked[reply.body["id"]] = prompt
    return reply


# Reads dominate, as in production; every app is in the mix.
MIX: tuple[Op, ...] = (
    Op("auth.validate", 3, _validate),
    Op("auth.me", 3, _me, cached=True),
    Op("billing.summary", 3, _summary, cached=True),
    Op("billing.usage.post", 2, _usage_post),
    Op("user.preferences.get", 3, _preferences_get, cached=True),
    Op("user.preferences.patch", 1, _preferences_patch),
    Op("image.get", 3, _image_get, cached=True),
    Op("image.post", 1, _image_post),
)
CACHED_READS = tuple(op for op in MIX if op.cached)


# --- running the load ----------------------------------------------------------------------------


@dataclass
class Load:
    replies: list[tuple[str, Reply]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: str, reply: Reply) -> None:
        with self.lock:
            self.replies.append((op, reply))

    def between(self, start: float, end: float) -> list[Reply]:
        return [reply for _, reply in self.replies if start <= reply.started <= end]

    @property
    def all(self) -> list[Reply]:
        return [reply for _, reply in self.replies]


def run_load(
    base: str,
    actors: Iterable[Actor],
    *,
    duration: float,
    max_requests: int,
    pause: float = 0.05,
    mix: tuple[Op, ...] = MIX,
    load: Load | None = None,
    stop: threading.Event | None = None,
) -> Load:
    """One thread per actor sends ``mix`` requests, pausing about ``pause`` seconds between two.

    Bounded three ways: ``duration`` seconds, ``max_requests`` requests in all, and ``stop`` once set.
    """
    load = load or Load()
    actors = list(actors)
    stop = stop or threading.Event()
    deadline = time.monotonic() + duration
    budget = iter(range(max_requests))
    budget_lock = threading.Lock()
    weights = [op.weight for op in mix]

    def take() -> bool:
        with budget_lock:
            return next(budget, None) is not None

    def drive(actor: Actor) -> None:
        rng = random.Random(actor.seed)
        while time.monotonic() < deadline and not stop.is_set() and take():
            op = rng.choices(mix, weights)[0]
            load.add(op.name, op.run(base, actor, rng))
            time.sleep(pause * rng.random() * 2)

    threads = [threading.Thread(target=drive, args=(actor,), daemon=True) for actor in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 60)
    return load


# --- figures -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def server_errors(replies: Iterable[Reply]) -> list[Reply]:
    """Answers of 500 and above, and requests that got no HTTP answer at all."""
    return [reply for reply in replies if reply.status is None or reply.status >= 500]


def statuses(replies: Iterable[Reply]) -> Counter:
    return Counter(reply.status for reply in replies)


def describe(replies: Iterable[Reply], limit: int = 5) -> str:
    lines = []
    for reply in list(replies)[:limit]:
        answer = f"{reply.status} in {reply.latency:.3f}s {reply.error} {str(reply.body)[:200]}"
        lines.append(f"{reply.method} {reply.path} -> {answer}")
    return "\n".join(lines)
