from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserQuerySet(models.QuerySet):
    def update(self, **kwargs):
        # QuerySet.update sends no signals; cached profiles and token records must still go stale.
        from .cache import invalidate_users

        ids = list(self.values_list("pk", flat=True))
        updated = super().update(**kwargs)
        invalidate_users(ids)
        return updated


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def get_by_natural_key(self, email: str) -> User:
        return self.get(email__iexact=email)

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


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with an email address."""

    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


class AuthToken(models.Model):
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

    class Meta:
        indexes = [models.Index(fields=["user", "kind", "expires_at"], name="token_user_live_idx")]

    def __str__(self) -> str:
        return f"{self.kind} token of {self.user_id} ({self.token_hash[:8]}…)"


class LoginFailure(models.Model):
    """A failed login counted while Redis was unavailable (the throttle's fallback)."""

    email_hash = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["email_hash", "at"], name="login_failure_window_idx")]

    def __str__(self) -> str:
        return f"{self.email_hash[:8]}… at {self.at:%Y-%m-%d %H:%M:%S}"
