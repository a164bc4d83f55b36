"""A rendered image's PNG in Django's default storage: written whole or not at all, gone with the image.

Each image has one result name, ``images/{id}.png``, the same for every attempt: a render is
deterministic, so a worker that takes over a job after another died simply replaces what the dead
one may have left, and nothing is orphaned under a second name. The file is written under a
temporary name and renamed into place, so the result name never holds half a PNG.

The file goes when the image fails (``services.image_update``) and when the image is deleted,
however it is deleted: one by one, in bulk from the admin, or with its owner. Cascades and bulk
deletes reach no service, only the ``post_delete`` signal, hence the receiver below. Deletion waits
for the commit, so a rolled-back delete keeps its file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Image


def result_path(image_id: int) -> str:
    return f"images/{image_id}.png"


def result_save(*, image_id: int, png: bytes) -> str:
    """Store ``png`` as the image's result, replacing any earlier attempt's; return its storage name."""
    name = result_path(image_id)
    try:
        final = Path(default_storage.path(name))
    except NotImplementedError:  # object storage: an upload is whole or absent already
        default_storage.delete(name)
        return default_storage.save(name, ContentFile(png))
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=final.parent, prefix=f".{image_id}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(png)
        os.chmod(temporary, getattr(default_storage, "file_permissions_mode", None) or 0o644)
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return name


def result_delete(*names: str) -> None:
    """Delete these stored files once the current transaction commits (now if none); missing ones are fine."""
    names = tuple(sorted({name for name in names if name}))

    def delete() -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # nothing there
                default_storage.delete(name)

    if names:
        transaction.on_commit(delete, robust=True)


def image_files(image: Image) -> tuple[str, ...]:
    """Every file the image may have: its recorded result, and our generator's name for it (a worker that
    died after writing leaves that one unrecorded). Only images a generator ever claimed have the latter."""
    return (image.result_file, result_path(image.pk) if image.attempts else "")


@receiver(post_delete, sender=Image)
def _image_deleted(sender, instance: Image, **kwargs) -> None:
    result_delete(*image_files(instance))
