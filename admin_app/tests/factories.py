"""Small factories for the admin app's tests."""

from __future__ import annotations

import itertools

from auth_app.models import User
from auth_app.services import token_pair_issue

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_user(*, staff: bool = False, **extra) -> User:
    return User.objects.create_user(f"admin-test-{next(_seq)}@example.com", PASSWORD, is_staff=staff, **extra)


def make_token(user: User) -> str:
    return token_pair_issue(user=user).access_token
