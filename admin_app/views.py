from __future__ import annotations

from pathlib import Path

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from techbirdsfly.cache import APPS, EntryRef
from techbirdsfly.cache.calls import CacheUnavailable
from techbirdsfly.cache.stats import registry
from techbirdsfly.exceptions import json_error
from techbirdsfly.responses import cached_response

from . import cache, selectors, serializers, services
from .exceptions import CacheOffline

ERRORS = {401: OpenApiResponse(description="no or invalid token"), 403: OpenApiResponse(description="not staff")}
DASHBOARD_REFRESH_SECONDS = 5
# The dashboard loads its script, style, icon and data from this origin only and has no inline
# script or style, so nothing else may run on a page that shows staff data, whatever gets injected.
DASHBOARD_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

APP_PARAMETER = OpenApiParameter("app", str, OpenApiParameter.PATH, enum=list(APPS))
APP_ERRORS = {**ERRORS, 404: OpenApiResponse(description="unknown app"), 503: OpenApiResponse(description="Redis down")}


def known_app(app: str) -> str:
    if app not in APPS:
        raise NotFound(f"Unknown cache app {app!r}; the apps are {', '.join(APPS)}.")
    return app


class StaffAPIView(APIView):
    # IsAdminUser answers 401 to a request without a valid token and 403 to a non-staff user.
    permission_classes = [IsAdminUser]


class DashboardAnalyticsView(StaffAPIView):
    @staticmethod
    def cache_entries() -> list[EntryRef]:
        return [cache.dashboard_entry()]

    @extend_schema(responses={200: serializers.CachedDashboardSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        return cached_response(selectors.dashboard_analytics())


class CacheStatsView(StaffAPIView):
    @extend_schema(responses={200: serializers.CacheStatsSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        return Response(selectors.cache_stats())


class CacheKeysView(StaffAPIView):
    @extend_schema(
        parameters=[APP_PARAMETER, serializers.KeysQuerySerializer],
        responses={200: serializers.KeysPageSerializer, 400: OpenApiResponse(), **APP_ERRORS},
    )
    def get(self, request: Request, app: str) -> Response:
        known_app(app)
        query = serializers.KeysQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            return Response(selectors.cache_keys_page(app=app, **query.validated_data))
        except CacheUnavailable:
            raise CacheOffline() from None


class CacheClearView(StaffAPIView):
    @extend_schema(
        parameters=[APP_PARAMETER], request=None, responses={200: serializers.ClearedSerializer, **APP_ERRORS}
    )
    def delete(self, request: Request, app: str) -> Response:
        known_app(app)
        try:
            deleted = services.cache_app_clear(app=app, actor=request.user.email)
        except CacheUnavailable:
            raise CacheOffline() from None
        return Response({"app": app, "deleted": deleted})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, summed over every worker process (see techbirdsfly/cache/stats.py)."""
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


FAVICON = Path(__file__).resolve().parent / "static" / "admin_app" / "favicon.svg"


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on any page: the dashboard's icon (SVG, whatever the name says)."""
    response = HttpResponse(FAVICON.read_bytes(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response


@never_cache
@staff_member_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    # ?refresh=<seconds> (1..300) sets how often the page polls.
    try:
        refresh = min(max(int(request.GET.get("refresh", DASHBOARD_REFRESH_SECONDS)), 1), 300)
    except ValueError:
        refresh = DASHBOARD_REFRESH_SECONDS
    response = render(request, "admin_app/dashboard.html", {"refresh_seconds": refresh})
    response["Content-Security-Policy"] = DASHBOARD_CSP
    return response


@never_cache
@require_GET
def dashboard_data(request: HttpRequest) -> JsonResponse:
    # The page's own JSON, for the logged-in session (the API under /api/admin/ takes Bearer tokens).
    if not request.user.is_authenticated:
        return json_error(401, "Log in at /admin/login/ to see the dashboard.")
    if not request.user.is_staff:
        return json_error(403, "You do not have permission to perform this action.")
    return JsonResponse(selectors.dashboard_snapshot())
