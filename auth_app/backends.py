"""The authentication backend of Django's own login forms (the admin): the API's throttle, not a second one."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from techbirdsfly.client import client_address

from .models import User
from .services import user_authenticate


class ThrottledEmailBackend(ModelBackend):
    """ModelBackend whose password check is services.user_authenticate: normalized email, both limits.

    Raises throttle.LoginRefused when a limit or the concurrency cap refuses the try; the admin's
    login form (auth_app.forms) turns that into a form error. Anything else calling
    django.contrib.auth.authenticate() must do the same.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs
    ) -> User | None:
        email = username if username is not None else kwargs.get(User.USERNAME_FIELD)
        if email is None or password is None:
            return None
        address = client_address(request) if request is not None else None
        return user_authenticate(email=email, password=password, address=address)
