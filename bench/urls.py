"""The app's URLs plus the floor and the plain django-redis views; served only by the benchmark's servers."""

from django.urls import include, path

from techbirdsfly.urls import handler400, handler403, handler404, handler500
from techbirdsfly.urls import urlpatterns as app_urlpatterns

from .views import FloorView, PlainMeView, PlainSummaryView

# Behind one include with the app's own id converter, as the real endpoints are (api/<app>/...).
plain = [
    path("me", PlainMeView.as_view(), name="bench-plain-me"),
    path("billing/summary/<id:account_id>", PlainSummaryView.as_view(), name="bench-plain-summary"),
]

urlpatterns = [
    path("bench/floor", FloorView.as_view(), name="bench-floor"),
    path("bench/plain/", include(plain)),
    *app_urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
