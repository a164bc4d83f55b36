from django.apps import AppConfig


class AdminAppConfig(AppConfig):
    name = "admin_app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from techbirdsfly.cache import APPS
        from techbirdsfly.cache.stats import COMPUTES, ERRORS, HITS, MISSES

        # Every app's counters exist from the start at 0, so /metrics always lists them and a
        # scraper's rate() sees the first increment (Prometheus: "avoid missing metrics").
        for counter in (HITS, MISSES, ERRORS, COMPUTES):
            for app in APPS:
                counter.labels(app)
