import functools
from collections.abc import Callable

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest, HttpResponse

from techbirdsfly.client import client_address

from .forms import ThrottledAdminAuthenticationForm, ThrottledAdminPasswordChangeForm, request_address
from .models import AuthToken, LegacyTokenBound, LoginFailure, Registration, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "name")
    fieldsets = (
        (None, {"fields": ("email", "password", "name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "name", "password1", "password2")}),)


@admin.register(AuthToken)
class AuthTokenAdmin(admin.ModelAdmin):
    list_display = ("kind", "user", "created_at", "expires_at", "used_at", "revoked_at")
    list_filter = ("kind",)
    search_fields = ("user__email",)
    readonly_fields = ("token_hash", "family", "pair")
    raw_id_fields = ("user",)


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    list_display = ("subject", "email_hash", "at")


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = ("address_hash", "at")


@admin.register(LegacyTokenBound)
class LegacyTokenBoundAdmin(admin.ModelAdmin):
    # Written by its migration and read once per process: a change here would reach no running server.
    list_display = ("live_until",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LegacyTokenBound | None = None) -> bool:
        return False


def _answering_429(admin_view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """An admin view with a password form, answering a throttled try as the API does: 429 with Retry-After.

    The form is shown again with its error; the form reads the client address from ``request_address``.
    """

    @functools.wraps(admin_view)
    def view(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        token = request_address.set(client_address(request))
        try:
            response = admin_view(request, extra_context)
        finally:
            request_address.reset(token)
        form = (getattr(response, "context_data", None) or {}).get("form")
        refused = getattr(form, "refused", None)
        if refused is not None:
            response.status_code = 429
            response["Retry-After"] = str(refused.retry_after)
        return response

    return view


# Every door to a password is throttled alike (API.md): the admin's login form counts against the
# same limits as the API, through the same backend (auth_app.backends).
admin.site.login_form = ThrottledAdminAuthenticationForm
admin.site.login = _answering_429(admin.site.login)
admin.site.password_change_form = ThrottledAdminPasswordChangeForm
admin.site.password_change = _answering_429(admin.site.password_change)
