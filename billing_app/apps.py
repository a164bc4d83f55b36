from django.apps import AppConfig


class BillingAppConfig(AppConfig):
    name = "billing_app"
    verbose_name = "Billing service"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import cache  # noqa: F401  (connects the invalidation signals)
