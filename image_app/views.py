from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from techbirdsfly.cache import EntryRef
from techbirdsfly.responses import cached_response

from . import cache, serializers, services
from .models import Image
from .selectors import image_data, image_list, image_metadata, image_result, image_visible

RETRY_AFTER = OpenApiParameter(
    "Retry-After", int, OpenApiParameter.HEADER, description="Seconds to wait before trying again.", response=[429]
)


class ImageListView(APIView):
    @extend_schema(
        operation_id="images_list",  # drf-spectacular names both GETs under /api/images "images_retrieve"
        parameters=[serializers.ImageListQuerySerializer],
        responses={
            200: serializers.CachedImagePageSerializer,
            400: OpenApiResponse(description="Invalid limit, status or cursor; the answer names it."),
            401: OpenApiResponse(),
        },
    )
    def get(self, request: Request) -> Response:
        query = serializers.ImageListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return cached_response(image_list(viewer=request.user, **query.validated_data))

    @extend_schema(
        request=serializers.ImageCreateSerializer,
        responses={
            201: serializers.ImageSerializer,
            400: OpenApiResponse(),
            401: OpenApiResponse(),
            404: OpenApiResponse(description="accountId names an account the caller may not see."),
            429: OpenApiResponse(description="The caller already has IMAGE_QUEUE_LIMIT images queued or running."),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: Request) -> Response:
        body = serializers.ImageCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        image = services.image_create(owner=request.user, **body.validated_data)
        return Response(image_data(image), status=status.HTTP_201_CREATED)


class ImageDetailView(APIView):
    @staticmethod
    def cache_entries(image_id: int) -> list[EntryRef]:
        return [cache.metadata_entry(image_id)]

    @extend_schema(responses={200: serializers.CachedImageSerializer, 401: OpenApiResponse(), 404: OpenApiResponse()})
    def get(self, request: Request, image_id: int) -> Response:
        result = image_metadata(image_id=image_id)
        if result.value is None or not image_visible(owner_id=result.value["ownerId"], user=request.user):
            raise NotFound
        return cached_response(result)

    @extend_schema(
        request=None,
        responses={
            204: None,
            401: OpenApiResponse(),
            404: OpenApiResponse(),
            409: OpenApiResponse(description="The image is running; delete it once it has finished."),
        },
    )
    def delete(self, request: Request, image_id: int) -> Response:
        services.image_delete(image_id=image_id, viewer=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=serializers.ImageUpdateSerializer,
        responses={200: serializers.ImageSerializer, **dict.fromkeys((400, 401, 403, 404, 409), OpenApiResponse())},
    )
    def patch(self, request: Request, image_id: int) -> Response:
        if not request.user.is_staff:
            raise PermissionDenied
        body = serializers.ImageUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        image = Image.objects.filter(pk=image_id).first()
        if image is None:
            raise NotFound
        fields = body.validated_data
        try:
            image = services.image_update(
                image=image,
                status=fields["status"],
                result_url=fields.get("resultUrl"),
                result_bytes=fields.get("bytes"),
                checksum=fields.get("checksum"),
                failure_reason=fields.get("failureReason"),
                lease_owner=f"api:user:{request.user.pk}",
            )
        except Image.DoesNotExist:  # deleted since the lookup
            raise NotFound from None
        except services.InvalidTransition as exc:
            return Response({"status": [str(exc)]}, status=status.HTTP_409_CONFLICT)
        return Response(image_data(image))


class ImageResultView(APIView):
    """The rendered PNG, to the owner or staff (Bearer auth like every endpoint)."""

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY, 401: OpenApiResponse(), 404: OpenApiResponse()})
    def get(self, request: Request, image_id: int) -> FileResponse:
        image = image_result(image_id=image_id, user=request.user)
        if image is None:
            raise NotFound
        try:
            file = default_storage.open(image.result_file, "rb")
        except FileNotFoundError:
            raise NotFound("The result file is missing.") from None
        return FileResponse(file, content_type="image/png")

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # The PNG is not rendered by DRF, and errors are JSON whatever the client accepts.
        return super().perform_content_negotiation(request, force=True)
