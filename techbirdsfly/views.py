from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .cache import ping
from .exceptions import DATABASE_ERRORS


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "Health",
            {"status": serializers.CharField(), "database": serializers.CharField(), "cache": serializers.CharField()},
        )
    )
    def get(self, request: Request) -> Response:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            database = "up"
        except DATABASE_ERRORS:
            database = "down"
        cache = "up" if ping() else "down"
        if database == "down":
            return Response({"status": "down", "database": database, "cache": cache}, status=503)
        status = "ok" if cache == "up" else "degraded"
        return Response({"status": status, "database": database, "cache": cache})


@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    """``/``: where a newcomer (or the admin's "View site") finds the docs, the dashboard and the health check."""
    return render(request, "techbirdsfly/landing.html")
