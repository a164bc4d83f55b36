from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from techbirdsfly.db import SavedWithItsInvalidation, one_transaction


class ImageQuerySet(models.QuerySet):
    """Bulk writes send no signals; cached metadata and the owners' image lists must still go stale."""

    @one_transaction
    def update(self, **kwargs):
        from .cache import invalidate_images

        rows = list(self.order_by().values_list("pk", "owner_id"))
        owners = {owner_id for _, owner_id in rows}
        moved_to = getattr(kwargs.get("owner"), "pk", kwargs.get("owner_id"))  # an update may move them
        if isinstance(moved_to, int):
            owners.add(moved_to)
        updated = super().update(**kwargs)
        invalidate_images([pk for pk, _ in rows], owners)
        return updated

    @one_transaction
    def bulk_create(self, objs, *args, **kwargs):
        from .cache import invalidate_images

        objs = super().bulk_create(objs, *args, **kwargs)
        invalidate_images([], [obj.owner_id for obj in objs])
        return objs


class Image(SavedWithItsInvalidation, models.Model):
    """A generation request and, once the generator has run, its result.

    The generator claims a job by taking a lease (``lease_owner`` until ``lease_expires_at``); a
    job whose lease has run out while ``running`` is claimed again, so a dead worker cannot
    leave it stuck.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="images")
    # The billing account a completed render is recorded on (one ``image.generate`` unit); optional.
    # A deleted account leaves its images, unbilled from then on.
    account = models.ForeignKey(
        "billing_app.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="images"
    )
    prompt = models.TextField(max_length=2000)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    style = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    # Where the result can be fetched; for our own renders, the /api/images/{id}/result endpoint.
    result_url = models.CharField(max_length=2000, blank=True)
    # The name of our rendered PNG in Django's default storage (empty for results made elsewhere).
    result_file = models.CharField(max_length=255, blank=True)
    bytes = models.PositiveBigIntegerField(null=True, blank=True)
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the result, hex")
    failure_reason = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The generator's lease on a running job; `attempts` counts claims, so a job that keeps
    # killing its workers is failed rather than retried forever.
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    objects = ImageQuerySet.as_manager()

    class Meta:
        indexes = [
            # The generator's queue: only the few unfinished jobs, oldest first.
            models.Index(
                fields=["created_at", "id"],
                name="image_queue_idx",
                condition=Q(status__in=["queued", "running"]),
            ),
            models.Index(fields=["owner", "created_at"], name="image_owner_idx"),
            # One owner's unfinished jobs: the queue limit's count.
            models.Index(
                fields=["owner", "created_at", "id"],
                name="image_owner_queue_idx",
                condition=Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"image {self.pk} ({self.status})"

    @classmethod
    def from_db(cls, db, field_names, values):
        # Remembers the owner it was loaded with, so moving it to another owner makes both lists stale.
        instance = super().from_db(db, field_names, values)
        instance.loaded_owner_id = instance.__dict__.get("owner_id")
        return instance


class QueueTurn(models.Model):
    """When a generator last began a job of this owner: the queue serves whoever waited longest.

    A row per owner rather than a count of their unfinished jobs: it outlives the jobs, so an owner
    whose last job has just completed is still known to have been served, and goes behind the others.
    """

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="image_queue_turn"
    )
    served_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"user {self.owner_id} served at {self.served_at}"
