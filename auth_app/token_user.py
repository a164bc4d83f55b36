"""``request.user`` for Bearer requests: a stateless user built from the token's record, never saved.

The pattern of SimpleJWT's ``TokenUser``. A warm request authenticates from Redis alone, so the user
it gets holds only what the token's record carries: id, email, name and staff status. A ``User``
model instance built from that record would look complete but hold defaults for the rest (an empty
password, a made-up join date), and ``save()`` would write them to the database. This one cannot be
saved, deleted or given a password: code that changes a user loads it (``User.objects.get(pk=...)``)
inside the service that changes it.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.contrib.auth.models import Group, Permission
from django.db.models.manager import EmptyManager

from .models import User
from .selectors import TokenRecord

_NOT_A_MODEL = "request.user is built from the access token and has no database row: load the User to change it."


class TokenUser:
    """The authenticated user as the token's record describes it, with no database row to write."""

    __slots__ = ("email", "id", "is_staff", "name")

    # Only active users' tokens validate (selectors._token_record); permissions are not in the
    # record, so a token user has none beyond staff status, which is all the API checks.
    is_active = True
    is_superuser = False
    is_authenticated = True
    is_anonymous = False
    _groups = EmptyManager(Group)
    _user_permissions = EmptyManager(Permission)

    def __init__(self, *, id: int, email: str, name: str, is_staff: bool) -> None:
        self.id = id
        self.email = email
        self.name = name
        self.is_staff = is_staff

    @classmethod
    def from_record(cls, record: TokenRecord) -> TokenUser:
        return cls(id=record["userId"], email=record["email"], name=record["name"], is_staff=record["isStaff"])

    @property
    def pk(self) -> int:
        return self.id

    def __str__(self) -> str:
        return self.email

    def __repr__(self) -> str:
        return f"<TokenUser {self.id}>"

    def __eq__(self, other: object) -> bool:
        # Equal to the User it stands for, as two instances of one model row are.
        if isinstance(other, (TokenUser, User)):
            return self.pk == other.pk
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def get_username(self) -> str:
        return self.email

    @property
    def groups(self) -> EmptyManager:
        return self._groups

    @property
    def user_permissions(self) -> EmptyManager:
        return self._user_permissions

    def get_user_permissions(self, obj: Any = None) -> set[str]:
        return set()

    def get_group_permissions(self, obj: Any = None) -> set[str]:
        return set()

    def get_all_permissions(self, obj: Any = None) -> set[str]:
        return set()

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perm_list: Any, obj: Any = None) -> bool:
        return False

    def has_module_perms(self, module: str) -> bool:
        return False

    def save(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(_NOT_A_MODEL)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(_NOT_A_MODEL)

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(_NOT_A_MODEL)

    def set_password(self, raw_password: str | None) -> NoReturn:
        raise NotImplementedError(_NOT_A_MODEL)

    def set_unusable_password(self) -> NoReturn:
        raise NotImplementedError(_NOT_A_MODEL)

    def check_password(self, raw_password: str) -> NoReturn:
        # Not False: a caller that meant to check a password must load the user, not be told "wrong".
        raise NotImplementedError(_NOT_A_MODEL)
