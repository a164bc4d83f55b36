from django.apps import AppConfig


class ImageAppConfig(AppConfig):
    name = "image_app"
    default_auto_field = "django.db.models.BigAutoField"
