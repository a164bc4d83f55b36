"""The request's cache scope, opened around the whole request, and its one read sent as it arrives."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from . import readahead
from .scope import request_scope


class RequestCacheMiddleware:
    """Opens the request's scope (scope.py: its Redis budget, its read) and closes it when it ends.

    For a GET of a view with ``cache_entries``, whose authentication names the entry that says who
    the user is (``read_ahead_entry(request)`` on an authentication class), the request's read is
    sent now and read when the authentication needs it: Redis answers while the other middleware, the
    URL resolution and DRF prepare the request. The request's only round trip is still that read.

    Early in MIDDLEWARE, after the latency metric only, so the scope covers everything the request
    does. Without it no request has a budget or a read-ahead: a system check says so (checks.py).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_scope():
            # Under ASGI a request's sync steps may wait for the event loop between them (an async
            # middleware), with as many requests in flight as clients: a read sent now would hold a
            # pooled connection all that time. It is made when the authentication needs it.
            early = not isinstance(request, ASGIRequest)
            if early and request.method in ("GET", "HEAD") and "HTTP_AUTHORIZATION" in request.META:
                _send_early(request)
            return self.get_response(request)


def _send_early(request: HttpRequest) -> None:
    found = view_entries(settings.ROOT_URLCONF, request.path_info)
    if found is None:
        return
    view, kwargs = found
    for authentication in getattr(view, "authentication_classes", ()):
        entry_of = getattr(authentication, "read_ahead_entry", None)
        user_from = entry_of(request) if entry_of is not None else None
        if user_from is not None:
            readahead.send_ahead(view.cache_entries(**kwargs), user_from=user_from)
            return


@functools.lru_cache(maxsize=1024)
def view_entries(urlconf: str, path: str) -> tuple[Any, dict[str, Any]] | None:
    """The view class ``path`` resolves to if it has ``cache_entries``, with the URL's arguments.

    Remembered by path (URLs of other ids are other paths): Django resolves the URL again for the
    view, and this resolution would otherwise cost as much again on every request.
    """
    try:
        match = resolve(path, urlconf)
    except Resolver404:
        return None
    view = getattr(match.func, "cls", None)  # DRF's as_view sets cls
    if getattr(view, "cache_entries", None) is None or match.args:
        return None
    return view, match.kwargs
