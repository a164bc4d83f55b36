"""What a made-up bearer token costs: ``python -m bench.tokencpu``.

Prints, measured side by side in one run against a private redis-server and PostgreSQL
(BENCH_DATABASE_URL, default database tbf_tokencpu_bench, migrated here), the CPU per request of
``/me``, a billing summary and validate-token (body ``{token}``) answered 401:

- with no token at all, the cheapest refusal there is;
- with a made-up token of the new shape (a wrong MAC), of the old shape (43 random characters, once
  no token without a MAC can be live) and garbage: a fresh token each request, as an attacker sends;
- with a made-up token of the old shape while such tokens can still be live: the lookup every
  made-up token cost before tokens carried a MAC (the Redis read, single flight and a SQL query);

and, beside them, a warm authenticated ``/me``. Each request is handed straight to Django's WSGI
handler (bench/hitcpu.py); the variants run in short interleaved rounds, CPU from
``time.process_time``. The Redis commands and SQL queries of each variant are counted too.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import logging
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789"  # noqa: S105 (loopback benchmark)


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    method: str
    path: str
    tokens: Callable[[], Iterator[str | None]]  # the token of each request, None: no Authorization
    in_body: bool = False  # validate-token: the token in the JSON body, not the header
    legacy_live: bool = False  # as while a token without a MAC can still be live
    status: str = "401"


def _made_up_new() -> Iterator[str]:
    from auth_app.tokens import new_token

    while True:
        token = new_token()
        yield token[:-1] + ("A" if token[-1] != "A" else "B")


def _made_up_old() -> Iterator[str]:
    while True:
        yield secrets.token_urlsafe(32)


def _garbage() -> Iterator[str]:
    while True:
        yield secrets.token_hex(12)


def _none() -> Iterator[None]:
    return itertools.repeat(None)


def requester(variant: Variant, count: int) -> Callable[[], tuple[str, bytes]]:
    """Sends ``variant``'s request, each time with the next of ``count`` tokens made beforehand (then again)."""
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    # Made before the clock starts: what is measured is the refusal, not the making of a token.
    tokens = itertools.cycle(list(itertools.islice(variant.tokens(), count)))
    status: list[str] = []

    def start_response(line: str, headers: list, exc_info: Any = None) -> None:
        status[:] = [line]

    def send() -> tuple[str, bytes]:
        token = next(tokens)
        body = json.dumps({"token": token} if token else {}).encode() if variant.in_body else b""
        environ = {
            "REQUEST_METHOD": variant.method,
            "PATH_INFO": variant.path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if token and not variant.in_body:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        result = handler(environ, start_response)
        try:
            answer = b"".join(result)
        finally:
            result.close()  # request_finished, as under gunicorn
        return status[0], answer

    return send


class _LegacyLive:
    """The process's bound on tokens without a MAC, set as if one could still be live."""

    def __init__(self, live: bool) -> None:
        self.live = live

    def __enter__(self) -> None:
        from auth_app import tokens

        self.saved = tokens._legacy_until
        if self.live:
            tokens._legacy_until = time.time() + 3600

    def __exit__(self, *exc: object) -> None:
        from auth_app import tokens

        tokens._legacy_until = self.saved


def variants_for(token: str, account: int) -> list[Variant]:
    summary = f"/api/billing/summary/{account}"

    def valid() -> Iterator[str]:
        return itertools.repeat(token)

    return [
        Variant("me_none", "`/me`, no token", "GET", "/api/auth/me", _none),
        Variant("me_new", "`/me`, made up, new shape (wrong MAC)", "GET", "/api/auth/me", _made_up_new),
        Variant("me_old", "`/me`, made up, old shape, past the bound", "GET", "/api/auth/me", _made_up_old),
        Variant("me_garbage", "`/me`, garbage", "GET", "/api/auth/me", _garbage),
        Variant(
            "me_lookup", "`/me`, made up, looked up (as before)", "GET", "/api/auth/me", _made_up_old, legacy_live=True
        ),
        Variant("summary_none", "summary, no token", "GET", summary, _none),
        Variant("summary_new", "summary, made up, new shape", "GET", summary, _made_up_new),
        Variant("validate_none", "validate-token, no token", "POST", "/api/auth/validate-token", _none, True),
        Variant(
            "validate_new", "validate-token `{token}`, made up", "POST", "/api/auth/validate-token", _made_up_new, True
        ),
        Variant("me_valid", "`/me`, a real token, warm", "GET", "/api/auth/me", valid, status="200"),
    ]


# (made up, the refusal with no token it is compared with)
PAIRS = {
    "me_new": "me_none",
    "me_old": "me_none",
    "me_garbage": "me_none",
    "me_lookup": "me_none",
    "summary_new": "summary_none",
    "validate_new": "validate_none",
}


def measure(variants: list[Variant], *, requests: int, rounds: int) -> dict[str, list[float]]:
    """CPU seconds of each round of ``requests`` requests, variants interleaved, each round starting with the next."""
    senders = {v.name: requester(v, 20 + rounds * requests) for v in variants}
    by_name = {v.name: v for v in variants}
    for name, send in senders.items():  # warm: imports, connections, the journal's catch-up
        with _LegacyLive(by_name[name].legacy_live):
            for _ in range(20):
                status, body = send()
        if not status.startswith(by_name[name].status):
            raise RuntimeError(f"{name} answered {status}: {body[:300]!r}")
    names = list(senders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(rounds):
        for name in names[round_no % len(names) :] + names[: round_no % len(names)]:
            send = senders[name]
            with _LegacyLive(by_name[name].legacy_live):
                began = time.process_time()
                for _ in range(requests):
                    send()
                samples[name].append(time.process_time() - began)
    return samples


def io_per_request(variant: Variant, redis: Any, n: int = 20) -> tuple[float, float]:
    """Redis commands (INFO commandstats, less our INFO) and SQL queries per request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def commands() -> int:
        stats = redis.info("commandstats")
        return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")

    send = requester(variant, n + 1)
    with _LegacyLive(variant.legacy_live):
        send()
        before = commands()
        with CaptureQueriesContext(connection) as queries:
            for _ in range(n):
                send()
        return (commands() - before) / n, len(queries) / n


def fixtures() -> tuple[str, int]:
    from auth_app.models import User
    from auth_app.services import token_pair_issue
    from billing_app.models import Account

    user, _ = User.objects.get_or_create(email="tokencpu-bench@example.com", defaults={"name": "bench"})
    account = Account.objects.filter(owner=user).first() or Account.objects.create(owner=user, name="bench")
    return token_pair_issue(user=user).access_token, account.pk


def run(redis: Any, *, requests: int, rounds: int, groups: int = 8) -> dict[str, Any]:
    from auth_app.tokens import legacy_tokens_live

    token, account = fixtures()
    legacy_tokens_live()  # read the bound once, as a process does at its first token of the old shape
    variants = variants_for(token, account)
    samples = measure(variants, requests=requests, rounds=rounds)
    groups = max(1, min(groups, rounds))
    per_group = [(g * rounds // groups, (g + 1) * rounds // groups) for g in range(groups)]
    figures = {}
    for v in variants:
        commands, queries = io_per_request(v, redis)
        figures[v.name] = {
            "label": v.label,
            "us": sum(samples[v.name]) / (rounds * requests) * 1e6,
            "parts_us": [round(sum(samples[v.name][a:b]) / ((b - a) * requests) * 1e6, 1) for a, b in per_group],
            "redis_commands": commands,
            "sql_queries": queries,
        }
    ratios = {made_up: figures[made_up]["us"] / figures[none]["us"] for made_up, none in PAIRS.items()}
    part_ratios = {
        made_up: [round(a / b, 2) for a, b in zip(figures[made_up]["parts_us"], figures[none]["parts_us"], strict=True)]
        for made_up, none in PAIRS.items()
    }
    return {"requests": requests, "rounds": rounds, "figures": figures, "ratios": ratios, "part_ratios": part_ratios}


def render(result: dict[str, Any]) -> str:
    lines = [
        f"{result['rounds']} interleaved rounds of {result['requests']} requests per variant",
        "",
        "| variant | CPU µs per request | parts (µs) | x no token | per part | Redis commands | SQL queries |",
        "|---|---:|---|---:|---|---:|---:|",
    ]
    for name, f in result["figures"].items():
        ratio, parts = result["ratios"].get(name), result["part_ratios"].get(name, [])
        lines.append(
            f"| {f['label']} | {f['us']:.0f} | {', '.join(f'{p:.0f}' for p in f['parts_us'])} | "
            f"{f'{ratio:.2f}x' if ratio else ''} | {', '.join(f'{r:.2f}' for r in parts)} | "
            f"{f['redis_commands']:g} | {f['sql_queries']:g} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args(argv)

    from .data import ensure_database
    from .servers import own_environment

    database, port = own_environment(
        "tbf_tokencpu_bench",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_LOG_LEVEL="WARNING",
    )

    from techbirdsfly.testing import RedisServer  # once the settings module is named

    redis_server = RedisServer(port).start()
    try:
        ensure_database(database)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        # Every refusal logs the same warning: without it the ratios to "no token" are the stricter.
        logging.getLogger("django.request").setLevel(logging.ERROR)
        print("made-up bearer tokens (issue 21)", flush=True)
        result = run(redis_server.client(), requests=args.requests, rounds=args.rounds)
        print(render(result), flush=True)
    finally:
        redis_server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
