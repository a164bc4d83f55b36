from django.apps import AppConfig


class BillingAppConfig(AppConfig):
    name = "billing_app"
    verbose_name = "Billing service"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from techbirdsfly import seeding

        from . import cache  # noqa: F401  (connects the invalidation signals)
        from .seeding import STAGES

        seeding.register(*STAGES)  # manage.py seed_demo's stages, in INSTALLED_APPS order
