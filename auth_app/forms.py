"""The Django admin's login and password-change forms, refused by the same throttle as the API login."""

from __future__ import annotations

import contextvars

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm

from .services import user_authenticate
from .throttle import LoginRefused

# The client address of the request whose form is being checked (set by auth_app.admin's view):
# Django's PasswordChangeView hands its form the user, not the request.
request_address: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_address", default=None)


def _throttled_error(exc: LoginRefused) -> forms.ValidationError:
    return forms.ValidationError(
        "%(detail)s (retry in %(seconds)s s)",
        code="throttled",
        params={"detail": exc.detail, "seconds": exc.retry_after},
    )


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """AdminAuthenticationForm that answers a throttled try with a form error instead of a 500."""

    refused: LoginRefused | None = None

    def clean(self):
        try:
            return super().clean()
        except LoginRefused as exc:
            self.refused = exc  # auth_app.admin answers the form with 429 and Retry-After
            raise _throttled_error(exc) from None


class ThrottledAdminPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's own password change: the old password is a password guess, checked and counted
    like a login (services.user_authenticate: the per-email and per-address limits, the bounded pool)."""

    refused: LoginRefused | None = None

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        try:
            checked = user_authenticate(email=self.user.email, password=old_password, address=request_address.get())
        except LoginRefused as exc:
            self.refused = exc
            raise _throttled_error(exc) from None
        if checked is None or checked.pk != self.user.pk:
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password
