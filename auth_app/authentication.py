"""``Authorization: Bearer <accessToken>`` for every app's views."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from techbirdsfly.cache import EntryRef, read_ahead, remember_user

from . import cache
from .selectors import TokenRecord, token_validate
from .token_user import TokenUser
from .tokens import checked_hash


@dataclass(frozen=True)
class AccessToken:
    """``request.auth``: the validated token's record, and whether it came from Redis."""

    record: TokenRecord
    from_cache: bool

    @property
    def pair(self) -> uuid.UUID:
        return uuid.UUID(self.record["pair"])


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, None without one; another scheme or malformed → 401."""
    parts = get_authorization_header(request).split()
    if not parts:
        return None
    if parts[0].lower() != b"bearer":
        # Said plainly: DRF's "credentials were not provided" sends a client with `Token x` looking elsewhere.
        raise AuthenticationFailed("Unsupported Authorization scheme: send 'Authorization: Bearer <accessToken>'.")
    if len(parts) != 2:
        raise AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationFailed("Invalid token.") from None


class BearerTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    @staticmethod
    def read_ahead_entry(request: HttpRequest) -> EntryRef | None:
        """The token's record, for the read the request's cache scope sends as it arrives
        (techbirdsfly.cache.middleware); None when there is no token to read, or it fails its check."""
        try:
            raw = bearer_token(request)  # reads only request.META, as on DRF's Request
        except AuthenticationFailed:
            return None  # the authentication answers 401
        if raw is None:
            return None
        digest = checked_hash(raw)
        request.bearer_checked = (raw, digest)  # the authentication takes it from here: one check a request
        return cache.token_entry(digest) if digest is not None else None

    def authenticate(self, request: Request) -> tuple[TokenUser, AccessToken] | None:
        # The header as ``read_ahead_entry`` parsed and checked it, when the request's read was sent
        # as it arrived; otherwise parsed here.
        checked = getattr(getattr(request, "_request", request), "bearer_checked", None)
        if checked is not None:
            raw, digest = checked
        else:
            raw = bearer_token(request)
            if raw is None:
                return None
            digest = checked_hash(raw)
        if digest is None:  # made up or mistyped: refused before any Redis command or SQL query
            raise AuthenticationFailed("Invalid, expired or revoked token.")
        _read_ahead(request, digest)
        record, from_cache = token_validate(raw_token=raw, digest=digest)
        if record is None:
            raise AuthenticationFailed("Invalid, expired or revoked token.")
        remember_user(cache.token_entry(digest), record["userId"])
        return TokenUser.from_record(record), AccessToken(record, from_cache)

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


def _read_ahead(request: Request, digest: str) -> None:
    """One round trip for a cached GET: the token's record with the entries the view will read,
    sent as the request arrived (techbirdsfly.cache.middleware) or now."""
    if request.method not in ("GET", "HEAD"):
        return
    context = request.parser_context or {}
    entries = getattr(context.get("view"), "cache_entries", None)
    if entries is not None:
        read_ahead(entries(**context.get("kwargs", {})), user_from=cache.token_entry(digest))


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
