from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from admin_app import views as admin_views

from .converters import IdConverter
from .views import HealthView, landing

register_converter(IdConverter, "id")

urlpatterns = [
    path("", landing, name="landing"),
    path("api/health", HealthView.as_view(), name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/auth/", include("auth_app.urls")),
    path("api/billing/", include("billing_app.urls")),
    path("api/admin/", include("admin_app.urls")),
    path("api/images", include("image_app.urls")),
    path("api/users/", include("user_app.urls")),
    path("metrics", admin_views.metrics, name="metrics"),
    path("favicon.ico", admin_views.favicon, name="favicon"),
    path("dashboard/", include("admin_app.dashboard_urls")),
    path("admin/", admin.site.urls),
]

handler400 = "techbirdsfly.exceptions.bad_request"
handler403 = "techbirdsfly.exceptions.permission_denied"
handler404 = "techbirdsfly.exceptions.not_found"
handler500 = "techbirdsfly.exceptions.server_error"
