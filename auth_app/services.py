"""Writes of the auth app: registration, login, refresh rotation, logout, revocation."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed, Throttled

from techbirdsfly.cache import window_decrement, window_increment, window_read

from . import cache
from .models import AuthToken, LoginFailure, User
from .tokens import email_hash, new_token, token_hash


class EmailTaken(Exception):
    pass


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def user_register(*, email: str, password: str, name: str = "") -> User:
    """Create a user; raise ValidationError for a weak password, EmailTaken for a used email."""
    email = User.objects.normalize_email(email.strip())
    validate_password(password, user=User(email=email, name=name))
    if User.objects.filter(email__iexact=email).exists():
        raise EmailTaken(email)
    try:
        with transaction.atomic():
            return User.objects.create_user(email, password, name=name)
    except IntegrityError:  # a concurrent registration won the race
        raise EmailTaken(email) from None


def token_pair_issue(*, user: User, family: uuid.UUID | None = None) -> TokenPair:
    now = timezone.now()
    family = family or uuid.uuid4()
    pair = uuid.uuid4()
    access, refresh = new_token(), new_token()
    issued = {
        AuthToken.Kind.ACCESS: (access, settings.ACCESS_TOKEN_TTL),
        AuthToken.Kind.REFRESH: (refresh, settings.REFRESH_TOKEN_TTL),
    }
    AuthToken.objects.bulk_create(
        AuthToken(
            kind=kind,
            token_hash=token_hash(raw),
            user=user,
            family=family,
            pair=pair,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime),
        )
        for kind, (raw, lifetime) in issued.items()
    )
    return TokenPair(access, refresh, settings.ACCESS_TOKEN_TTL)


# --- login throttle ----------------------------------------------------------------------------
# Failures are counted in Redis while it is up and in the database while it is not; a check adds
# both, so an outage neither opens the door nor forgets the failures made before it.


def _login_failures(digest: str) -> tuple[int, int]:
    """Failures for this email in the current window, and seconds until the window ends."""
    window = cache.LOGIN_FAILURES_WINDOW
    since = timezone.now() - timedelta(seconds=window)
    stored = list(LoginFailure.objects.filter(email_hash=digest, at__gt=since).values_list("at", flat=True))
    count, retry_after = len(stored), 0
    if stored:
        retry_after = math.ceil((min(stored) - since).total_seconds())
    in_redis = window_read(cache.LOGIN_FAILURES, cache.login_failures_key(digest))
    if in_redis is not None:
        count += in_redis[0]
        retry_after = max(retry_after, in_redis[1])
    return count, max(retry_after, 1)


def _reserve_login_try(digest: str) -> int | None:
    """Count this try as a failure before the password is checked; the LoginFailure id when counted in the database.

    Reserving first means concurrent tries see each other: checked after the password, a burst of
    tries all passed the check before any was counted, and a burst of 40 tried 17 passwords
    (faults/tests/test_login_throttle.py). A try that turns out not to be a failure is released.
    """
    if window_increment(cache.LOGIN_FAILURES, cache.login_failures_key(digest)) is not None:
        return None
    LoginFailure.objects.filter(at__lt=timezone.now() - timedelta(hours=1)).delete()
    return LoginFailure.objects.create(email_hash=digest).pk


def _release_login_try(digest: str, reservation: int | None) -> None:
    if reservation is None:
        window_decrement(cache.LOGIN_FAILURES, cache.login_failures_key(digest))
    else:
        LoginFailure.objects.filter(pk=reservation).delete()


def user_login(*, email: str, password: str) -> TokenPair:
    digest = email_hash(email)
    reservation = _reserve_login_try(digest)
    failures, retry_after = _login_failures(digest)  # this try included
    if failures > settings.LOGIN_FAILURE_LIMIT:
        _release_login_try(digest, reservation)  # a refused try is not a failed one
        raise Throttled(wait=retry_after, detail="Too many failed logins for this email; try again later.")
    # authenticate() hashes the password even for an unknown email, so both fail alike in time.
    user = authenticate(email=email.strip(), password=password)
    if user is None:
        raise AuthenticationFailed("Invalid email or password.")  # the reservation stays: a failure
    _release_login_try(digest, reservation)
    return token_pair_issue(user=user)


# --- refresh, logout, revocation -------------------------------------------------------------


def _revoke(tokens) -> None:
    """Revoke the given AuthToken queryset and make their cached records stale."""
    now = timezone.now()
    access = list(tokens.filter(kind=AuthToken.Kind.ACCESS).values_list("token_hash", flat=True))
    tokens.filter(revoked_at__isnull=True).update(revoked_at=now)
    cache.invalidate_tokens(access)


def token_family_revoke(*, family: uuid.UUID) -> None:
    _revoke(AuthToken.objects.filter(family=family))


def token_refresh(*, refresh_token: str) -> TokenPair:
    """Spend a refresh token for a new pair. A spent one revokes its whole family (reuse detection)."""
    with transaction.atomic():
        token = (
            AuthToken.objects.select_for_update()
            .select_related("user")
            .filter(token_hash=token_hash(refresh_token), kind=AuthToken.Kind.REFRESH)
            .first()
        )
        if token is None:
            raise AuthenticationFailed("Invalid refresh token.")
        # Presenting a spent or revoked refresh token revokes its whole family either way; the
        # message only tells which it was (issue 16: logout's victims were told "already used").
        refused = None
        if token.used_at:
            refused = "Refresh token already used; this login has been revoked."
        elif token.revoked_at:
            refused = "This refresh token was revoked (logged out, password changed or login revoked); log in again."
        if refused:
            token_family_revoke(family=token.family)
        else:
            if token.expires_at <= timezone.now() or not token.user.is_active:
                raise AuthenticationFailed("Refresh token expired.")
            token.used_at = timezone.now()
            token.save(update_fields=["used_at"])
            pair = token_pair_issue(user=token.user, family=token.family)
    if refused:  # raised outside the block so that the revocation commits
        raise AuthenticationFailed(refused)
    return pair


def token_logout(*, pair: uuid.UUID) -> None:
    """Kill the access token presented and the refresh token issued with it."""
    with transaction.atomic():
        _revoke(AuthToken.objects.filter(pair=pair))
