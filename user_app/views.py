from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from techbirdsfly.cache import EntryRef
from techbirdsfly.responses import cached_response

from . import cache, serializers, services
from .selectors import preferences_data, preferences_visible, user_preferences

_ERRORS = dict.fromkeys((400, 401, 403, 404), OpenApiResponse())
_READ = {200: serializers.CachedPreferencesSerializer, 401: OpenApiResponse(), 404: OpenApiResponse()}
_WRITE = {
    "request": serializers.PreferencesSerializer,
    "responses": {200: serializers.PreferencesAnswerSerializer, **_ERRORS},
}


class PreferencesView(APIView):
    @staticmethod
    def cache_entries(user_id: int) -> list[EntryRef]:
        return [cache.preferences_entry(user_id)]

    @extend_schema(responses=_READ)
    def get(self, request: Request, user_id: int) -> Response:
        if not preferences_visible(user_id=user_id, user=request.user):
            raise NotFound
        result = user_preferences(user_id=user_id)
        if result.value is None:
            raise NotFound
        return cached_response(result)

    @extend_schema(
        request=serializers.PreferencesSerializer, responses={200: serializers.PreferencesAnswerSerializer, **_ERRORS}
    )
    def put(self, request: Request, user_id: int) -> Response:
        return self._write(request, user_id, partial=False)

    @extend_schema(
        request=serializers.PreferencesSerializer, responses={200: serializers.PreferencesAnswerSerializer, **_ERRORS}
    )
    def patch(self, request: Request, user_id: int) -> Response:
        return self._write(request, user_id, partial=True)

    def _write(self, request: Request, user_id: int, *, partial: bool) -> Response:
        # API.md: only the user may write; staff, who can see the record, get 403, others 404.
        if user_id != request.user.pk:
            raise PermissionDenied if request.user.is_staff else NotFound
        body = serializers.PreferencesSerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        prefs = services.preferences_update(user_id=user_id, **body.changes())
        return Response({"data": preferences_data(prefs)})
