"""CPU per request in this process: the layer's warm hits against plain django-redis.

Each variant is a request handed straight to Django's WSGI handler, as gunicorn hands it (no HTTP,
no test client), against the cached server's Redis and database. Variants run in short interleaved
rounds, timed with ``time.process_time``, so that other load on the machine falls on all of them
alike; a ratio is one variant's total CPU over the other's for the same number of requests.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    path: str
    query: str = ""
    token: str = ""


@dataclass
class CpuFigure:
    name: str
    label: str
    path: str
    us: float  # CPU µs per request over the whole run
    rounds_us: list[float]
    body_bytes: int


def _environ(variant: Variant) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": variant.path,
        "QUERY_STRING": variant.query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if variant.token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {variant.token}"
    return environ


def requester(variant: Variant) -> Callable[[], tuple[str, bytes]]:
    """A function that sends ``variant``'s request once and returns (status, body)."""
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    base = _environ(variant)
    status: list[str] = []

    def start_response(line: str, headers: list, exc_info: Any = None) -> None:
        status[:] = [line]

    def send() -> tuple[str, bytes]:
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(b"")
        result = handler(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            result.close()  # request_finished, as under gunicorn
        return status[0], body

    return send


def answer(variant: Variant) -> tuple[str, bytes]:
    return requester(variant)()


def measure(variants: list[Variant], *, requests: int, rounds: int, groups: int = 8) -> dict[str, CpuFigure]:
    """CPU µs per request of each variant: ``rounds`` rounds of ``requests`` each, variants interleaved.

    Rounds are short, and each starts with the next variant in turn, so that the machine's other load
    falls on every variant alike however quickly it changes. The figure is total CPU over total
    requests; ``rounds_us`` splits the run into ``groups`` consecutive parts, to show its spread.
    """
    senders = {v.name: requester(v) for v in variants}
    bodies = {}
    for name, send in senders.items():  # warm: imports, connections, the journal's catch-up
        for _ in range(20):
            status, body = send()
        if not status.startswith("200"):
            raise RuntimeError(f"{name} answered {status}: {body[:300]!r}")
        bodies[name] = body
    names = list(senders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(rounds):
        for name in names[round_no % len(names) :] + names[: round_no % len(names)]:
            send = senders[name]
            began = time.process_time()
            for _ in range(requests):
                send()
            samples[name].append(time.process_time() - began)
    groups = max(1, min(groups, rounds))
    per_group = [(g * rounds // groups, (g + 1) * rounds // groups) for g in range(groups)]
    return {
        v.name: CpuFigure(
            name=v.name,
            label=v.label,
            path=v.path + (f"?{v.query}" if v.query else ""),
            us=sum(samples[v.name]) / (rounds * requests) * 1e6,
            rounds_us=[round(sum(samples[v.name][a:b]) / ((b - a) * requests) * 1e6, 1) for a, b in per_group],
            body_bytes=len(bodies[v.name]),
        )
        for v in variants
    }


def round_ratios(figures: dict[str, CpuFigure], layer: str, plain: str) -> list[float]:
    """layer / plain within each part of the run (both measured in the same rounds)."""
    return [a / b for a, b in zip(figures[layer].rounds_us, figures[plain].rounds_us, strict=True) if b]


def plain_twins(fx: Any) -> dict[str, tuple[str, str]]:
    """Path and query of the plain django-redis views (bench/views.py) that answer what ``/me`` and the
    largest account's summary answer; the network scenario (bench/run.py) measures them too."""
    return {
        "me": ("/bench/plain/me", f"uid={fx.user_id}"),
        "summary": (f"/bench/plain/billing/summary/{fx.largest_account}", ""),
    }


def variants_for(fx: Any) -> list[Variant]:
    """The floor, ``/me`` and the largest account's summary, each real endpoint beside its plain twin."""
    twins, token, summary = plain_twins(fx), fx.token, f"/api/billing/summary/{fx.largest_account}"
    return [
        Variant("floor", "floor (`/bench/floor`)", "/bench/floor"),
        Variant("me", "`GET /api/auth/me`, warm", "/api/auth/me", token=token),
        Variant("plain_me", "plain django-redis, same bytes as `/me`", *twins["me"], token),
        Variant("summary", "billing summary (largest account), warm", summary, token=token),
        Variant("plain_summary", "plain django-redis, same bytes as the summary", *twins["summary"], token),
    ]


PAIRS = {"me": "plain_me", "summary": "plain_summary"}


def run(fx: Any, *, requests: int, rounds: int) -> dict[str, Any]:
    """The figures for RESULTS.md: CPU per variant, round-by-round ratios, same bytes, round trips."""
    from .probes import count_round_trips

    variants = variants_for(fx)
    figures = measure(variants, requests=requests, rounds=rounds)
    by_name = {v.name: v for v in variants}
    pairs = {}
    for layer, plain in PAIRS.items():
        ratios = round_ratios(figures, layer, plain)
        pairs[layer] = {
            "plain": plain,
            "ratio": figures[layer].us / figures[plain].us,
            "round_ratios": [round(r, 3) for r in ratios],
            "same_bytes": answer(by_name[layer])[1] == answer(by_name[plain])[1],
        }
    trips = {}
    for variant in variants:
        send = requester(variant)
        send()
        with count_round_trips() as counter:
            for _ in range(10):
                send()
        trips[variant.name] = counter[0] / 10
    return {
        "requests": requests,
        "rounds": rounds,
        "figures": {name: vars(figure) | {"round_trips": trips[name]} for name, figure in figures.items()},
        "pairs": pairs,
    }


def summary(figures: dict[str, Any]) -> str:
    cpu = ", ".join(f"{name} {f['us']:.0f} µs" for name, f in figures["figures"].items())
    ratios = ", ".join(f"{layer}/plain {pair['ratio']:.2f}x" for layer, pair in figures["pairs"].items())
    return f"{cpu}; {ratios}"
