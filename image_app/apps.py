from django.apps import AppConfig


class ImageAppConfig(AppConfig):
    name = "image_app"
    verbose_name = "Image service"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from techbirdsfly import seeding

        from . import cache, files  # noqa: F401  (connect the invalidation and file-deletion signals)
        from .seeding import STAGES

        seeding.register(*STAGES)  # manage.py seed_demo's stages, in INSTALLED_APPS order
