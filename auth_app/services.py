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


class CredentialsChanged(AuthenticationFailed):
    """The password was changed, or the user deactivated, between the check and the issue."""

    default_detail = "Invalid email or password."


def token_pair_issue(*, user: User, family: uuid.UUID | None = None, password_hash: str | None = None) -> TokenPair:
    """Issue an access and a refresh token, under the user's row lock.

    Every path that changes a user updates its row first, which holds the same lock until it commits,
    and lists the user's tokens afterwards (User.save, UserQuerySet.update). So a token is issued
    either before a change takes the lock (and the change revokes or invalidates it) or after the
    change committed, against the row as it is then: ``password_hash``, the hash the caller verified,
    must still be the stored one, and the user still active. Raises CredentialsChanged otherwise.
    The user row, then its tokens: the one lock order of every path that takes both.
    """
    with transaction.atomic():
        stored = (
            User._base_manager.select_for_update(of=("self",))
            .filter(pk=user.pk)
            .values_list("password", "is_active")
            .first()
        )
        if stored is None or not stored[1] or (password_hash is not None and stored[0] != password_hash):
            raise CredentialsChanged
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
    # The hash just verified: a password changed since is refused, not issued tokens for.
    return token_pair_issue(user=user, password_hash=user.password)


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
        if checked._stored_password(lock=True) != checked.password:  # changed since it was checked
            raise ValidationError({"currentPassword": ["The current password is not correct."]})
        checked.set_password(new_password)
        checked.save()  # User.save revokes every earlier token in this transaction
        return token_pair_issue(user=checked, password_hash=checked.password)


# --- refresh, logout, revocation -------------------------------------------------------------


def _revoke(tokens, reason: str) -> list[str]:
    """Revoke the given AuthToken queryset; the hashes of its access tokens that were still live."""
    now = timezone.now()
    live = tokens.filter(revoked_at__isnull=True)
    access = list(live.filter(kind=AuthToken.Kind.ACCESS, expires_at__gt=now).values_list("token_hash", flat=True))
    live.update(revoked_at=now, revoked_reason=reason)
    return access


def token_family_revoke(*, family: uuid.UUID) -> None:
    with transaction.atomic():  # the revocation and its journal rows commit together
        cache.invalidate_tokens(_revoke(AuthToken.objects.filter(family=family), AuthToken.Revoked.REUSE))


def user_tokens_revoke(*, user_id: int) -> None:
    """Revoke every live token of the user, all login families: what a password change does (User.save).

    Their cached records are made stale by the change itself (auth_app.cache.invalidate_users, one
    journal row for the user), which every caller makes in the same transaction.
    """
    _revoke(AuthToken.objects.filter(user_id=user_id, expires_at__gt=timezone.now()), AuthToken.Revoked.PASSWORD)


def token_refresh(*, refresh_token: str) -> TokenPair:
    """Spend a refresh token for a new pair. A spent one revokes its whole family (reuse detection).

    The user row is locked before the token row, the lock order of a password change (User.save), so
    a refresh beside one waits for it instead of deadlocking it, and then finds its token revoked.
    """
    digest = token_hash(refresh_token)
    tokens = AuthToken.objects.filter(token_hash=digest, kind=AuthToken.Kind.REFRESH)
    with transaction.atomic():
        user_id = tokens.values_list("user_id", flat=True).first()
        user = User._base_manager.select_for_update(of=("self",)).filter(pk=user_id).first() if user_id else None
        token = tokens.select_for_update(of=("self",)).first() if user else None
        if token is None:
            raise AuthenticationFailed("Invalid refresh token.")
        # Presenting a spent or revoked refresh token revokes its whole family either way; the
        # message only tells which it was, so that a user logged out elsewhere is not told "already used".
        refused = None
        if token.used_at:
            refused = "Refresh token already used; this login has been revoked."
        elif token.revoked_at:
            why = AuthToken.Revoked(token.revoked_reason).label if token.revoked_reason else "revoked"
            refused = f"This refresh token no longer works: {why}. Log in again."
        if refused:
            token_family_revoke(family=token.family)
        else:
            if token.expires_at <= timezone.now() or not user.is_active:
                raise AuthenticationFailed("Refresh token expired.")
            token.used_at = timezone.now()
            token.save(update_fields=["used_at"])
            pair = token_pair_issue(user=user, family=token.family)
    if refused:  # raised outside the block so that the revocation commits
        raise AuthenticationFailed(refused)
    return pair


def token_logout(*, pair: uuid.UUID) -> None:
    """Kill the access token presented and the refresh token issued with it."""
    with transaction.atomic():
        cache.invalidate_tokens(_revoke(AuthToken.objects.filter(pair=pair), AuthToken.Revoked.LOGOUT))
