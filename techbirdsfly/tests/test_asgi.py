"""Served through ASGI with an async middleware in the chain, concurrent requests keep their own reads.

Under ASGI, Django runs sync middleware and views on one shared thread, and an async middleware
lets another request in between two sync steps of this one: state kept per thread would be shared
by requests that meet there. Each request's read is kept on its own scope (techbirdsfly/cache/scope.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings
from django.utils.decorators import async_only_middleware

from auth_app.services import token_pair_issue
from auth_app.tests.factories import make_user
from techbirdsfly.testing import LiveTestCase

USERS = 6
# Rounds of concurrent requests: Django gives each ASGI request a thread of its own for its sync code,
# so each holds a database connection (the test process has no pool) while it is in flight.
ROUNDS, REQUESTS_EACH = 8, 4


@async_only_middleware
def yielding_middleware(get_response: Any) -> Any:
    """Lets other requests run between the request's scope opening and its authentication."""

    async def middleware(request: Any) -> Any:
        await asyncio.sleep(0)
        return await get_response(request)

    return middleware


def chain_with_an_async_step() -> list[str]:
    middleware = list(settings.MIDDLEWARE)
    at = middleware.index("techbirdsfly.cache.middleware.RequestCacheMiddleware") + 1
    return [*middleware[:at], f"{__name__}.yielding_middleware", *middleware[at:]]


async def get(app: Any, path: str, token: str) -> tuple[int, bytes]:
    """One GET through the ASGI application, as a server would hand it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("localhost", 80),
    }
    delivered = False
    status: list[int] = []
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return status[0], b"".join(body)


class ConcurrentUsersThroughAsgiTests(LiveTestCase):
    def test_each_answer_is_the_callers_own(self):
        users = [make_user(email=f"asgi{n}@example.com") for n in range(USERS)]
        tokens = {token_pair_issue(user=user).access_token: user.email for user in users}
        with override_settings(MIDDLEWARE=chain_with_an_async_step()):
            # What techbirdsfly/asgi.py serves (get_asgi_application, less django.setup()), with this chain.
            app = ASGIHandler()

            async def everyone() -> list[tuple[str, int, bytes]]:
                for token in tokens:  # warm: the next reads are hits, read ahead in one MGET
                    await get(app, "/api/auth/me", token)
                results = []
                for _ in range(ROUNDS):
                    order = [token for token in tokens for _ in range(REQUESTS_EACH)]
                    answers = await asyncio.gather(*(get(app, "/api/auth/me", token) for token in order))
                    results += [(token, *answer) for token, answer in zip(order, answers, strict=True)]
                return results

            results = asyncio.run(everyone())
        wrong = []
        for token, status, body in results:
            answer = json.loads(body)
            if status != 200 or answer["data"]["email"] != tokens[token]:
                wrong.append((tokens[token], status, answer))
        self.assertEqual(wrong, [])
        self.assertTrue(any(json.loads(body)["fromCache"] for _, _, body in results))


class ScopesOnOneThreadTests(LiveTestCase):
    """Two requests interleaved on one thread, as ASGI may interleave them: each takes its own read."""

    def test_each_request_takes_the_answers_of_its_own_read(self):
        from contextvars import copy_context

        from auth_app.cache import token_entry
        from auth_app.tokens import token_hash
        from techbirdsfly.cache import readahead
        from techbirdsfly.cache.scope import request_scope

        users = [make_user(email=f"thread{n}@example.com") for n in range(2)]
        digests = [token_hash(token_pair_issue(user=user).access_token) for user in users]
        for user, digest in zip(users, digests, strict=True):
            self.redis.set(f"AuthService_auth:token:{digest}", f"record of {user.email}")
        contexts = [copy_context(), copy_context()]
        managers = [request_scope(), request_scope()]  # one request each, opened in its own context
        for context, manager in zip(contexts, managers, strict=True):
            context.run(manager.__enter__)

        for context, digest in zip(contexts, digests, strict=True):  # both send, A then B
            context.run(readahead.send_ahead, [], user_from=token_entry(digest))
        taken = [
            context.run(readahead.take, [f"AuthService_auth:token:{digest}"])
            for context, digest in zip(contexts, digests, strict=True)
        ]
        for context, manager in zip(contexts, managers, strict=True):
            context.run(manager.__exit__, None, None, None)
        self.assertEqual([answers[0][0] for answers in taken], [f"record of {u.email}".encode() for u in users])
