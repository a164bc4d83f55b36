"""The Django admin's login form, refused by the same throttle as the API login."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from .throttle import LoginRefused


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """AdminAuthenticationForm that answers a throttled try with a form error instead of a 500."""

    refused: LoginRefused | None = None

    def clean(self):
        try:
            return super().clean()
        except LoginRefused as exc:
            self.refused = exc  # auth_app.admin answers the form with 429 and Retry-After
            raise forms.ValidationError(
                "%(detail)s (retry in %(seconds)s s)",
                code="throttled",
                params={"detail": exc.detail, "seconds": exc.retry_after},
            ) from None
