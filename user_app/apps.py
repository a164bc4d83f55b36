from django.apps import AppConfig


class UserAppConfig(AppConfig):
    name = "user_app"
    default_auto_field = "django.db.models.BigAutoField"
