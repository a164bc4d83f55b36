"""Sends a cached GET's one Redis read as the request arrives (techbirdsfly/cache/readahead.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from rest_framework.exceptions import AuthenticationFailed

from techbirdsfly.cache import readahead

from . import cache
from .authentication import bearer_token
from .tokens import checked_hash


class ReadAheadMiddleware:
    """For an authenticated GET of a view with ``cache_entries``: its read-ahead, sent now.

    The authentication (authentication.py) reads the answer. Between the two, Redis answers while the
    other middleware, the URL resolution and DRF prepare the request: CPU time that would otherwise
    come off the wait of every cached GET when Redis is across a network, and which on loopback mean
    the answer is there when it is read. The request's only round trip is still the read-ahead.

    Second in MIDDLEWARE, after the latency metric only. What the request never read (an error before
    the authentication) is read at its end, so the connection returns to the pool ready for reuse.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD") or "HTTP_AUTHORIZATION" not in request.META:
            return self.get_response(request)
        _send_ahead(request)
        try:
            return self.get_response(request)
        finally:
            readahead.discard()


def _send_ahead(request: HttpRequest) -> None:
    found = view_entries(settings.ROOT_URLCONF, request.path_info)
    if found is None:
        return
    try:
        raw = bearer_token(request)  # reads only request.META, as on DRF's Request
    except AuthenticationFailed:
        return  # the authentication answers 401
    if raw is None:
        return
    digest = checked_hash(raw)
    request.bearer_checked = (raw, digest)  # the authentication takes it from here: one check a request
    if digest is not None:  # a token that fails the check is refused by the authentication, unsent
        entries, kwargs = found
        readahead.send_ahead(entries(**kwargs), user_from=cache.token_entry(digest))


@functools.lru_cache(maxsize=1024)
def view_entries(urlconf: str, path: str) -> tuple[Callable[..., Any], dict[str, Any]] | None:
    """The ``cache_entries`` of the view ``path`` resolves to, with the URL's arguments; None: none.

    Remembered by path (URLs of other ids are other paths): Django resolves the URL again for the
    view, and this resolution would otherwise cost as much again on every request.
    """
    try:
        match = resolve(path, urlconf)
    except Resolver404:
        return None
    entries = getattr(getattr(match.func, "cls", None), "cache_entries", None)  # DRF's as_view sets cls
    return (entries, match.kwargs) if entries is not None and not match.args else None
