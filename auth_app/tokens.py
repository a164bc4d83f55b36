"""Opaque tokens: random strings handed to the client, stored and cached only as SHA-256 hashes.

A made-up token is the cheapest attack on the API, and a fresh one each time defeats any negative
cache. So every token carries a MAC that only this server can compute (``tbf_`` + 43 random
characters + 22 of MAC, the way GitHub's tokens carry a checksum): ``token_checked`` refuses one
that does not verify from CPU alone, before any Redis command or SQL query. The MAC key comes from
SECRET_KEY through ``salted_hmac`` and is never stored; a token MACed under one of
SECRET_KEY_FALLBACKS still verifies, so keys can be rotated without logging everyone out.

Tokens issued before they carried a MAC (43 random characters) are looked up as before while one of
them can still be live: until ``LegacyTokenBound.live_until``, written by the migration that brought
this format, once per process. After it, or on a database that never had one, nothing of that shape
is looked up either.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time

from django.conf import settings
from django.db import DatabaseError
from django.utils.crypto import constant_time_compare, salted_hmac

from .emails import normalize_email

PREFIX = "tbf_"
_RANDOM = 43  # secrets.token_urlsafe(32)
_MAC = 22  # 16 bytes of HMAC-SHA256, base64url without padding
_LENGTH = len(PREFIX) + _RANDOM + _MAC
_SALT = "auth_app.tokens.mac"
_LEGACY = re.compile(rf"[A-Za-z0-9_-]{{{_RANDOM}}}")


def new_token() -> str:
    random = secrets.token_urlsafe(32)
    return f"{PREFIX}{random}{_mac(random, settings.SECRET_KEY)}"


def _mac(random: str, secret: str) -> str:
    digest = salted_hmac(_SALT, random, secret=secret, algorithm="sha256").digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_checked(raw: str) -> bool:
    """Whether ``raw`` may be a token this server issued, worth a lookup; False costs no I/O."""
    if len(raw) == _LENGTH and raw.startswith(PREFIX):
        random, mac = raw[len(PREFIX) : -_MAC], raw[-_MAC:]
        return any(
            constant_time_compare(mac, _mac(random, secret))
            for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
        )
    return len(raw) == _RANDOM and legacy_tokens_live() and _LEGACY.fullmatch(raw) is not None


def checked_hash(raw: str) -> str | None:
    """The hash to look ``raw`` up by, or None for a token that fails ``token_checked``.

    A client sends the same token on every request, and its MAC is the costliest step of a warm
    hit's authentication: the hashes of tokens whose MAC verified are remembered, per set of keys (a
    change to SECRET_KEY or its fallbacks starts afresh), so a token's next request costs a set
    lookup. Only hashes are kept, as Redis's keys hold them; tokens without a MAC are checked each
    time, as whether they may be live depends on the time.
    """
    digest = token_hash(raw)
    keys = (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    verified = _verified.get(keys)
    if verified is None:
        _verified.clear()
        verified = _verified[keys] = set()
    if digest in verified:
        return digest
    if not token_checked(raw):
        return None
    if len(raw) == _LENGTH:  # a MAC'd token (a legacy one is shorter)
        if len(verified) >= _VERIFIED_MAX:
            verified.clear()
        verified.add(digest)
    return digest


# checked_hash's memory: the keys it was verified with -> hashes of tokens whose MAC verified.
_verified: dict[tuple[str, ...], set[str]] = {}
_VERIFIED_MAX = 10_000  # then it starts again


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# --- tokens without a MAC ----------------------------------------------------------------------
# The bound is written once, by a migration, and never changes: each process reads it once.

_UNREAD = -1.0
_legacy_until = _UNREAD  # epoch seconds; 0: no such token can be live
_legacy_lock = threading.Lock()


def legacy_tokens_live() -> bool:
    """Whether a token issued before tokens carried a MAC can still be live (one query per process)."""
    until = _legacy_until
    if until == _UNREAD:
        until = _read_legacy_bound()
    return until > time.time()


def _read_legacy_bound() -> float:
    global _legacy_until
    from .models import LegacyTokenBound

    with _legacy_lock:
        if _legacy_until == _UNREAD:
            try:
                row = LegacyTokenBound.objects.order_by("-live_until").first()
            except DatabaseError:
                return float("inf")  # unknown for now: such a token is looked up, and its lookup decides
            _legacy_until = row.live_until.timestamp() if row else 0.0
        return _legacy_until


def legacy_bound_forget() -> None:
    """Read the bound again on next use: for tests, which write it themselves."""
    global _legacy_until
    _legacy_until = _UNREAD


def email_hash(email: str) -> str:
    """The throttle's key for an email: every spelling that normalizes alike shares it."""
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()
