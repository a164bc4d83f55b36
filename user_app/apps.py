from django.apps import AppConfig


class UserAppConfig(AppConfig):
    name = "user_app"
    verbose_name = "User service"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import cache  # noqa: F401  (connects the invalidation signals)
