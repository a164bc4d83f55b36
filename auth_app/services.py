"""Writes of the auth app: registration, login, refresh rotation, logout, revocation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import check_password_with_timing_attack_mitigation
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed, Throttled, ValidationError

from . import cache, registrations, throttle
from .emails import normalize_email
from .models import AuthToken, User
from .tokens import new_token, token_hash


class EmailTaken(Exception):
    pass


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def user_register(*, email: str, password: str, name: str = "", address: str | None = None) -> User:
    """Create a user; raise ValidationError for a weak password, EmailTaken for a used email.

    Raises RegistrationThrottled when ``address`` (the client's) created its allowance of accounts
    this hour, and throttle.LoginBusy when the pool of password checks stays full: the new password
    is hashed in the same bounded pool as a login's, so a registration flood cannot starve the server.
    """
    email = User.objects.normalize_email(email.strip())
    validate_password(password, user=User(email=email, name=name))
    if User.objects.filter(email_normalized=normalize_email(email)).exists():
        raise EmailTaken(email)
    if address:
        registrations.registration_allowed(address=address)
    user = User(email=email, name=name)
    with throttle.password_check_slot():
        user.set_password(password)
    try:
        with transaction.atomic():
            if address:
                registrations.registration_allowed(address=address, lock=True)
            user.save()
            if address:
                registrations.registration_record(address=address)
            return user
    except IntegrityError:  # a concurrent registration of the same normalized email won the race
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


# --- login: every door to a password goes through user_authenticate --------------------------


def user_authenticate(*, email: str, password: str, address: str | None) -> User | None:
    """The user whose password this is, or None; raise LoginRefused when throttled or busy.

    The API login, the password change and the Django admin (auth_app.backends) all come here, so
    one throttle counts them all. An unknown email costs one run of the hasher like a wrong password
    (Django's timing mitigation), so the answer time does not tell which emails have accounts.
    """
    with throttle.login_try(email=email, address=address) as attempt:
        with throttle.password_check_slot():
            user = User.objects.filter(email_normalized=normalize_email(email)).first()
            if not check_password_with_timing_attack_mitigation(user, password) or not user.is_active:
                return None  # the try stays counted: a failure
        attempt.succeeded()
        return user


def _throttled(exc: throttle.LoginRefused) -> Throttled:
    return Throttled(wait=exc.retry_after, detail=exc.detail)


def user_login(*, email: str, password: str, address: str | None) -> TokenPair:
    try:
        user = user_authenticate(email=email, password=password, address=address)
    except throttle.LoginRefused as exc:
        raise _throttled(exc) from None
    if user is None:
        raise AuthenticationFailed("Invalid email or password.")
    return token_pair_issue(user=user)


def password_change(*, user_id: int, current_password: str, new_password: str, address: str | None) -> TokenPair:
    """Set a new password after checking the current one; every earlier token dies, a new pair is issued.

    A wrong current password is a failed login for the user's email (it is a password guess all the
    same), so it is throttled and counted like one.
    """
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:  # deleted or deactivated since its token was cached
        raise AuthenticationFailed("Invalid, expired or revoked token.")
    try:
        checked = user_authenticate(email=user.email, password=current_password, address=address)
    except throttle.LoginRefused as exc:
        raise _throttled(exc) from None
    if checked is None or checked.pk != user.pk:
        raise ValidationError({"currentPassword": ["The current password is not correct."]})
    try:
        validate_password(new_password, user=checked)
    except DjangoValidationError as exc:
        raise ValidationError({"newPassword": list(exc.messages)}) from None
    with transaction.atomic():
        checked.set_password(new_password)
        checked.save()  # User.save revokes every earlier token in this transaction
        return token_pair_issue(user=checked)


# --- refresh, logout, revocation -------------------------------------------------------------


def _revoke(tokens, reason: str) -> None:
    """Revoke the given AuthToken queryset and make their cached records stale."""
    now = timezone.now()
    access = list(tokens.filter(kind=AuthToken.Kind.ACCESS).values_list("token_hash", flat=True))
    tokens.filter(revoked_at__isnull=True).update(revoked_at=now, revoked_reason=reason)
    cache.invalidate_tokens(access)


def token_family_revoke(*, family: uuid.UUID) -> None:
    _revoke(AuthToken.objects.filter(family=family), AuthToken.Revoked.REUSE)


def user_tokens_revoke(*, user_id: int) -> None:
    """Revoke every live token of the user, all login families: what a password change does (User.save)."""
    live = AuthToken.objects.filter(user_id=user_id, revoked_at__isnull=True, expires_at__gt=timezone.now())
    _revoke(live, AuthToken.Revoked.PASSWORD)


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
            why = AuthToken.Revoked(token.revoked_reason).label if token.revoked_reason else "revoked"
            refused = f"This refresh token no longer works: {why}. Log in again."
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
        _revoke(AuthToken.objects.filter(pair=pair), AuthToken.Revoked.LOGOUT)
