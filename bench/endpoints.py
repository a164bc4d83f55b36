"""The endpoints the benchmark drives, and the check that each answers as it should."""

from __future__ import annotations

import json
from typing import Any

from .load import Endpoint
from .servers import BenchServer

APP_OF = {"auth": "auth", "billing": "billing", "admin": "admin", "images": "image", "users": "user"}


def endpoints(fx: Any) -> list[Endpoint]:
    return [
        Endpoint("validate", "token validation", "/api/auth/validate-token", "POST", fx.token),
        Endpoint("me", "me", "/api/auth/me", token=fx.token),
        Endpoint(
            "summary_typical",
            f"billing summary, typical account ({fx.typical_records:,} records)",
            f"/api/billing/summary/{fx.typical_account}",
            token=fx.typical_token,
        ),
        Endpoint(
            "summary_largest",
            f"billing summary, largest account ({fx.largest_records:,} records)",
            f"/api/billing/summary/{fx.largest_account}",
            token=fx.token,
        ),
        Endpoint(
            "usage", "current usage (largest account)", f"/api/billing/usage/{fx.largest_account}", token=fx.token
        ),
        Endpoint(
            "invoices", "invoices (largest account)", f"/api/billing/invoices/{fx.largest_account}", token=fx.token
        ),
        Endpoint("dashboard", "admin dashboard", "/api/admin/analytics/dashboard", token=fx.staff_token),
        Endpoint("image", "image metadata", f"/api/images/{fx.image_id}", token=fx.token),
        Endpoint("preferences", "preferences", f"/api/users/{fx.user_id}/preferences", token=fx.token),
    ]


FLOOR = Endpoint("floor", "floor (DRF view, no Redis, no SQL)", "/bench/floor")


def request_once(server: BenchServer, endpoint: Endpoint) -> tuple[int, Any]:
    from techbirdsfly.testing import http_json

    body = json.loads(endpoint.body) if endpoint.body else ({} if endpoint.method == "POST" else None)
    return http_json(server.url, endpoint.method, endpoint.path, token=endpoint.token or None, body=body, timeout=120)


def _from_cache(answer: Any) -> bool | None:
    return answer.get("fromCache") if isinstance(answer, dict) else None


def check_endpoint(cached: BenchServer, bypass: BenchServer, endpoint: Endpoint) -> None:
    """Each endpoint answers 200 on both servers; a hit on the cached one, a miss on the other."""
    for server, want, tries in ((bypass, False, 1), (cached, True, 50)):
        # A worker distrusts reads over a Redis connection it has just made (pending invalidations
        # are replayed first), so the first requests to a fresh server can be misses.
        for _ in range(tries):
            status, answer = request_once(server, endpoint)
            if status != 200:
                raise RuntimeError(f"{endpoint.path} answered {status} on the {server.name} server: {answer!r:.500}")
            if _from_cache(answer) is want:
                break
        else:
            raise RuntimeError(f"{endpoint.path} on the {server.name} server: fromCache is not {want}: {answer!r:.300}")


def plain_endpoints(fx: Any) -> dict[str, Endpoint]:
    """The plain django-redis twins (bench/views.py) of the endpoints the network scenario measures."""
    from .hitcpu import plain_twins

    def endpoint(name: str, twin: str) -> Endpoint:
        path, query = plain_twins(fx)[twin]
        return Endpoint(name, f"plain django-redis, as {twin}", path + (f"?{query}" if query else ""), token=fx.token)

    return {"me": endpoint("plain_me", "me"), "summary_largest": endpoint("plain_summary", "summary")}
