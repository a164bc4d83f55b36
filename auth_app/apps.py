from django.apps import AppConfig


class AuthAppConfig(AppConfig):
    name = "auth_app"
    verbose_name = "Auth service"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import cache  # noqa: F401  (connects the invalidation signals)
