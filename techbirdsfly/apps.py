from django.apps import AppConfig


class TechBirdsFlyConfig(AppConfig):
    name = "techbirdsfly"
    verbose_name = "TechBirdsFly core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers them)
