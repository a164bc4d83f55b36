"""Views only the benchmark's servers route (bench/urls.py): the floor and the plain django-redis hits.

The floor is what any request costs in this stack. The plain views are what a cache hit costs with
django-redis alone: each answers the same bytes as a warm hit of the real endpoint, in one MGET
(``plain_get_many``: ``cache.get_many`` less its generation keys' decoding, which goes through the form
the layer stores generations in) through the same aliases and the same signed serializer, reading the
same Redis keys the layer reads for that hit -- the token's record and its generation, the entry and
its scope's generation -- so Redis sends back the same bytes too. What they leave out is the layer's
own work: DRF authentication and the ``User`` built from the record, the read-ahead, the checks of
each entry (its key, signed expiry, generation, journal floor), the request budget, the breaker,
single flight, early refresh and the hit counters. A miss answers 404: they never compute.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import caches
from django_redis.util import CacheKey
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app import cache as auth_cache
from auth_app.tokens import token_hash
from billing_app import cache as billing_cache
from techbirdsfly.cache import stamps


class FloorView(APIView):
    """The floor: a DRF view behind the same middleware that touches neither Redis nor the database.

    Cached endpoints are compared with it, so the comparison measures what the cache read costs
    on top of what any request costs in this stack.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"fromCache": False, "data": {"status": "ok"}})


def _token_keys(request: Request) -> list[str] | None:
    """The token record's key and its generation's, as the ``auth`` alias names them; None: no token."""
    parts = request.headers.get("Authorization", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    key = auth_cache.token_key(token_hash(parts[1]))
    # django-redis's CacheKey: get_many on another alias keeps it as it is, prefix included.
    auth = caches[auth_cache.APP].client
    return [auth.make_key(key), auth.make_key(f"{key}:gen")]


def plain_get_many(alias: str, keys: list[str], generations: list[str]) -> dict[str, Any]:
    """What ``cache.get_many(keys + generations)`` was: one MGET, each entry through the alias's signed
    serializer and each generation key through the form the layer stores it in (stamps.py), not the
    serializer's. Keys already made (CacheKey) are kept as they are, as django-redis does."""
    cache = caches[alias]
    names = [*keys, *generations]
    full = [name if isinstance(name, CacheKey) else cache.make_key(name) for name in names]
    values = cache.client.get_client(write=False).mget(full)
    found: dict[str, Any] = {}
    for name, value in zip(names, values, strict=True):
        if value is not None:
            found[name] = stamps.decode(value) if name in generations else cache.client.decode(value)
    return found


def _live_record(entry: Any) -> dict[str, Any] | None:
    """The token's record if it was found and has not expired: the plain equivalent of authenticating."""
    record = entry.get("v") if isinstance(entry, dict) else None
    return record if isinstance(record, dict) and record.get("exp", 0) > time.time() else None


class PlainMeView(APIView):
    """``/bench/plain/me?uid=<id>``: ``/api/auth/me``'s warm answer, plain django-redis.

    The user id comes from the query string (the layer reads it from the token record inside Redis),
    and the view answers only when the token's record names that user.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        token_keys = _token_keys(request)
        if token_keys is None:
            return Response(status=401)
        uid = int(request.query_params["uid"])
        profile_key = auth_cache.profile_key(uid)
        found = plain_get_many(
            auth_cache.APP, [token_keys[0], profile_key], [token_keys[1], f"{auth_cache.user_scope(uid)}:gen"]
        )
        record = _live_record(found.get(token_keys[0]))
        if record is None or record.get("userId") != uid:
            return Response(status=401)
        entry = found.get(profile_key)
        if not isinstance(entry, dict):
            return Response(status=404)
        return Response({"fromCache": True, "data": entry["v"]})


class PlainSummaryView(APIView):
    """``/bench/plain/billing/summary/<id>``: the billing summary's warm answer, plain django-redis.

    Checks, like the real view, that the token's user owns the account or is staff.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request, account_id: int) -> Response:
        token_keys = _token_keys(request)
        if token_keys is None:
            return Response(status=401)
        summary_key = billing_cache.summary_key(account_id)
        # One MGET over both aliases (one Redis): the token's keys carry the auth alias's prefix.
        found = plain_get_many(
            billing_cache.APP,
            [token_keys[0], summary_key],
            [token_keys[1], f"{billing_cache.account_scope(account_id)}:gen"],
        )
        record = _live_record(found.get(token_keys[0]))
        if record is None:
            return Response(status=401)
        entry = found.get(summary_key)
        if not isinstance(entry, dict):
            return Response(status=404)
        envelope = entry["v"]
        if envelope["ownerId"] != record["userId"] and not record["isStaff"]:
            return Response(status=404)
        return Response({"fromCache": True, "data": envelope["data"]})
