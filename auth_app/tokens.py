"""Opaque tokens: random strings handed to the client, stored and cached only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from .emails import normalize_email


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def email_hash(email: str) -> str:
    """The throttle's key for an email: every spelling that normalizes alike shares it."""
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()
