"""Small factories for auth tests and for other apps' tests."""

from __future__ import annotations

import itertools

from auth_app.models import User
from auth_app.services import token_pair_issue

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_user(*, email: str | None = None, staff: bool = False, **extra) -> User:
    email = email or f"user{next(_seq)}@example.com"
    return User.objects.create_user(email, PASSWORD, is_staff=staff, **extra)


def make_token(user: User) -> str:
    return token_pair_issue(user=user).access_token
