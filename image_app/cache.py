"""The image app's cache keys and invalidation (alias ``image``, prefix ``ImageService``).

An image's metadata is its own scope: every status change (the PATCH endpoint, the generator,
the Django admin, a bulk ``update``) makes it stale once the change commits. The first pages of an
owner's image list (one per status filter) share the owner's scope, which the same changes, and
every new or deleted image of the owner, make stale: a list shows each image's status.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from techbirdsfly.cache import EntryRef, invalidate

from .models import Image

APP = "image"
METADATA = "image.metadata"
LIST = "image.list"


def metadata_key(image_id: int) -> str:
    return f"image:metadata:{image_id}"


def list_key(owner_id: int, status: str | None) -> str:
    return f"image:list:{owner_id}:{status or 'all'}"


def image_scope(image_id: int) -> str:
    return f"image:image:{image_id}"


def owner_scope(owner_id: int) -> str:
    return f"image:owner:{owner_id}"


def metadata_entry(image_id: int) -> EntryRef:
    return EntryRef(METADATA, metadata_key(image_id), image_scope(image_id))


def list_entry(owner_id: int, status: str | None) -> EntryRef:
    return EntryRef(LIST, list_key(owner_id, status), owner_scope(owner_id))


def invalidate_images(image_ids: Iterable[int], owner_ids: Iterable[int | None] = ()) -> None:
    """Make these images' metadata, and these owners' image lists, stale once the transaction commits."""
    owners = sorted({owner_id for owner_id in owner_ids if owner_id is not None})
    invalidate(APP, *(image_scope(image_id) for image_id in image_ids), *(owner_scope(o) for o in owners))


@receiver(post_save, sender=Image)
@receiver(post_delete, sender=Image)
def _image_changed(sender, instance: Image, **kwargs) -> None:
    # An image moved to another owner (the admin) leaves one owner's lists and joins the other's.
    invalidate_images([instance.pk], [instance.owner_id, getattr(instance, "loaded_owner_id", None)])
