from django.apps import AppConfig


class BillingAppConfig(AppConfig):
    name = "billing_app"
    default_auto_field = "django.db.models.BigAutoField"
