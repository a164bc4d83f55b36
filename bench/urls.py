"""The app's URLs plus the floor endpoint; served only by the benchmark's servers (bench.settings)."""

from django.urls import path

from techbirdsfly.urls import handler400, handler403, handler404, handler500
from techbirdsfly.urls import urlpatterns as app_urlpatterns

from .views import FloorView

urlpatterns = [path("bench/floor", FloorView.as_view(), name="bench-floor"), *app_urlpatterns]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
