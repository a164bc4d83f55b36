"""The image app's cache keys and invalidation (alias ``image``, prefix ``ImageService``).

An image's metadata is its own scope: every status change (the PATCH endpoint, the generator,
the Django admin, a bulk ``update``) makes it stale once the change commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from techbirdsfly.cache import Entry, invalidate

from .models import Image

APP = "image"
METADATA = "image.metadata"


def metadata_key(image_id: int) -> str:
    return f"image:metadata:{image_id}"


def image_scope(image_id: int) -> str:
    return f"image:image:{image_id}"


def metadata_entry(image_id: int) -> Entry:
    return Entry(METADATA, metadata_key(image_id), image_scope(image_id))


def invalidate_images(image_ids: Iterable[int]) -> None:
    invalidate(APP, *(image_scope(image_id) for image_id in image_ids))


@receiver(post_save, sender=Image)
@receiver(post_delete, sender=Image)
def _image_changed(sender, instance: Image, **kwargs) -> None:
    invalidate_images([instance.pk])
