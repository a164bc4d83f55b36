from __future__ import annotations

import uuid

from asgiref.sync import sync_to_async
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.hashers import acheck_password, check_password
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from techbirdsfly.db import SavedWithItsInvalidation, one_transaction

from .emails import email_problem, normalize_email


class UserQuerySet(models.QuerySet):
    @one_transaction
    def update(self, **kwargs):
        # QuerySet.update sends no signals; cached profiles and token records must still go stale.
        # The users' rows are updated (so locked) before their tokens are listed and revoked: the
        # lock order of every path that takes both (services.token_pair_issue), and no token can be
        # issued between the listing and the commit.
        from .cache import invalidate_users

        ids = list(self.values_list("pk", flat=True))
        updated = super().update(**kwargs)
        if "password" in kwargs:
            # A password set in bulk is still a password change: the old tokens must die.
            from .services import user_tokens_revoke

            for user_id in ids:
                user_tokens_revoke(user_id=user_id)
        invalidate_users(ids)
        return updated

    def password_rehash(self, *, verified: str, rehashed: str) -> bool:
        """Replace the hash ``verified`` by ``rehashed`` unless the password changed since (compare-and-set).

        Not a password change: nothing is revoked, so it must never write over a newer password.
        """
        return models.QuerySet.update(self.filter(password=verified), password=rehashed) == 1

    def bulk_create(self, objs, *args, **kwargs):
        # bulk_create skips save(), which is where the normalized email is filled (seed_demo uses it).
        objs = list(objs)
        for user in objs:
            user.email_normalized = normalize_email(user.email)
        return super().bulk_create(objs, *args, **kwargs)


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def get_by_natural_key(self, email: str) -> User:
        return self.get(email_normalized=normalize_email(email))

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("an email is required")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(SavedWithItsInvalidation, AbstractBaseUser, PermissionsMixin):
    """A person who logs in with an email address."""

    email = models.EmailField(max_length=254, unique=True)
    # emails.normalize_email(email), filled by save(): the column uniqueness and every lookup use.
    # Longer than email because case folding can lengthen a string (ß → ss).
    email_normalized = models.CharField(max_length=512, unique=True, editable=False)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        # Django's own code and any ``User._base_manager.update(...)`` go through UserQuerySet too, so
        # no write path skips the revocation and invalidation in UserQuerySet.update.
        base_manager_name = "objects"

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        # ModelForms (the admin's add and change forms) check uniqueness only on their own fields;
        # without this a look-alike of an existing email would reach the database and answer 500.
        if problem := email_problem(self.email):  # NFKC can lengthen it past what the columns hold
            raise ValidationError({"email": problem})
        normalized = normalize_email(self.email)
        if User._base_manager.filter(email_normalized=normalized).exclude(pk=self.pk).exists():
            raise ValidationError({"email": "A user with this email already exists."})

    def check_password(self, raw_password: str) -> bool:
        # Same as Django's, except that the rehash on a hasher upgrade is a compare-and-set on the hash
        # just verified: a password set meanwhile (a reset beside this login) is never overwritten by
        # a new hash of the old one, and the rehash revokes nothing, as it changes no password.
        verified = self.password

        def setter(raw: str) -> None:
            self.set_password(raw)
            self._password = None
            if not User._base_manager.filter(pk=self.pk).password_rehash(verified=verified, rehashed=self.password):
                self.password = verified  # what was checked; token_pair_issue refuses it as stale

        return check_password(raw_password, self.password, setter)

    async def acheck_password(self, raw_password: str) -> bool:
        verified = self.password

        async def setter(raw: str) -> None:
            self.set_password(raw)
            self._password = None
            rows = User._base_manager.filter(pk=self.pk)
            if not await sync_to_async(rows.password_rehash)(verified=verified, rehashed=self.password):
                self.password = verified

        return await acheck_password(raw_password, self.password, setter)

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        self.email_normalized = normalize_email(self.email)
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_normalized"}
        if self._state.adding or (update_fields is not None and "password" not in update_fields):
            super().save(*args, **kwargs)
            return
        # One transaction: the new hash and the revocation commit together, so there is no moment
        # where the new password is live and a token issued under the old one still is too.
        with transaction.atomic(using=kwargs.get("using") or self._state.db):
            changed = self._password is not None or self._stored_password(lock=True) != self.password
            super().save(*args, **kwargs)
            if changed:
                from .services import user_tokens_revoke

                user_tokens_revoke(user_id=self.pk)

    def _stored_password(self, *, lock: bool) -> str | None:
        """The hash in the database now; locking the row orders two concurrent password changes."""
        rows = User._base_manager.filter(pk=self.pk)
        if lock:
            rows = rows.select_for_update(of=("self",))
        return rows.values_list("password", flat=True).first()


class AuthToken(SavedWithItsInvalidation, models.Model):
    """An issued access or refresh token. Only the SHA-256 of the token is stored."""

    class Kind(models.TextChoices):
        ACCESS = "access"
        REFRESH = "refresh"

    kind = models.CharField(max_length=7, choices=Kind.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    # Every token of one login, through all its refreshes: revoked together on refresh reuse.
    family = models.UUIDField(db_index=True)
    # The access and refresh token issued together: revoked together on logout.
    pair = models.UUIDField(default=uuid.uuid4, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Revoked(models.TextChoices):
        LOGOUT = "logout", "logged out"
        PASSWORD = "password", "the password was changed"
        REUSE = "reuse", "a spent refresh token of this login was presented again"

    # Why: a refresh with a revoked token says what happened.
    revoked_reason = models.CharField(max_length=8, choices=Revoked.choices, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["user", "kind", "expires_at"], name="token_user_live_idx")]

    def __str__(self) -> str:
        return f"{self.kind} token of {self.user_id} ({self.token_hash[:8]}…)"


class LoginFailure(models.Model):
    """A failed login counted while Redis was unavailable (the throttle's fallback, auth_app/throttle.py)."""

    class Subject(models.TextChoices):
        EMAIL = "email"
        ADDRESS = "address"

    subject = models.CharField(max_length=7, choices=Subject.choices, default=Subject.EMAIL)
    # SHA-256 of the normalized email, or of the client address when subject is "address".
    email_hash = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["email_hash", "at"], name="login_failure_window_idx")]

    def __str__(self) -> str:
        return f"{self.email_hash[:8]}… at {self.at:%Y-%m-%d %H:%M:%S}"


class Registration(models.Model):
    """An account created from a client address: what the per-address limit on new accounts counts."""

    # SHA-256 of techbirdsfly.client.limit_key(address): an IPv4 address or an IPv6 /64, never stored as such.
    address_hash = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["address_hash", "at"], name="registration_window_idx")]

    def __str__(self) -> str:
        return f"{self.address_hash[:8]}… at {self.at:%Y-%m-%d %H:%M:%S}"


class LegacyTokenBound(models.Model):
    """When the last token issued without a MAC (auth_app/tokens.py) expires; no row: none was live."""

    live_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"tokens without a MAC live until {self.live_until:%Y-%m-%d %H:%M:%S}"
