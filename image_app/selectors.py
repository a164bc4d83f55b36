"""Reads of the image app; an image's metadata and its owner's lists are cached in the ``image`` alias."""

from __future__ import annotations

from typing import TypedDict

from billing_app.selectors import Viewer
from techbirdsfly.cache import KINDS, Cached, get_or_compute
from techbirdsfly.paging import Listing, Page, owner_page

from . import cache
from .models import Image


class ImageData(TypedDict):
    id: int
    ownerId: int
    accountId: int | None
    status: str
    prompt: str
    width: int
    height: int
    style: str | None
    resultUrl: str | None
    bytes: int | None
    checksum: str | None
    failureReason: str | None
    createdAt: str
    completedAt: str | None


def image_data(image: Image) -> ImageData:
    """The API's (and the cache's) JSON-ready form of an image."""
    return ImageData(
        id=image.pk,
        ownerId=image.owner_id,
        accountId=image.account_id,
        status=image.status,
        prompt=image.prompt,
        width=image.width,
        height=image.height,
        style=image.style or None,
        resultUrl=image.result_url or None,
        bytes=image.bytes,
        checksum=image.checksum or None,
        failureReason=image.failure_reason or None,
        createdAt=image.created_at.isoformat(),
        completedAt=image.completed_at.isoformat() if image.completed_at else None,
    )


def _cache_ttl(data: ImageData | None) -> int:
    # An unknown id is not cached: the image may be created a moment later.
    return KINDS[cache.METADATA].ttl if data is not None else 0


def image_metadata(*, image_id: int) -> Cached[ImageData | None]:
    """The image's metadata, or None for an unknown id. A hit costs one Redis round trip and no SQL."""

    def compute() -> ImageData | None:
        image = Image.objects.filter(pk=image_id).first()
        return image_data(image) if image else None

    return get_or_compute(
        cache.METADATA, cache.metadata_key(image_id), compute, scope=cache.image_scope(image_id), ttl_of=_cache_ttl
    )


def image_list(*, viewer: Viewer, limit: int, status: str | None = None, cursor: str | None = None) -> Cached[Page]:
    """The viewer's own images, newest first, optionally of one status, one page (techbirdsfly/paging.py)."""
    rows = Image.objects.filter(owner_id=viewer.pk)
    if status:
        rows = rows.filter(status=status)
    return owner_page(
        entry=cache.list_entry(viewer.pk, status),
        listing=Listing(cache.LIST, viewer.pk, status or ""),
        rows=rows,
        data=image_data,
        limit=limit,
        cursor=cursor,
    )


def image_visible(*, owner_id: int, user) -> bool:
    """API.md: the owner or staff may see an image; to anyone else it does not exist."""
    return user.is_staff or owner_id == user.pk


def image_result(*, image_id: int, user) -> Image | None:
    """The image whose rendered file ``user`` may download, or None (unknown, foreign or not rendered)."""
    image = Image.objects.filter(pk=image_id).exclude(result_file="").first()
    if image is None or not image_visible(owner_id=image.owner_id, user=user):
        return None
    return image
