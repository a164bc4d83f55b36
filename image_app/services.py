"""Writes of the image app: create an image, change its status, and the generator's queue.

``image_update`` is the one code path for every status change, whether it comes from staff
through PATCH or from the generator; saving the row makes its cached metadata stale after commit
(the post_save receiver in cache.py).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import conf
from .models import Image

Status = Image.Status

# Which status may follow which. running → running is a claim of a job whose lease ran out;
# running → queued is a worker handing its job back (SIGTERM).
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.COMPLETED, Status.FAILED}),
    Status.RUNNING: frozenset({Status.RUNNING, Status.QUEUED, Status.COMPLETED, Status.FAILED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
}


class InvalidTransition(Exception):
    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"Cannot change status from {current} to {wanted}.")
        self.current, self.wanted = current, wanted


class LeaseLost(Exception):
    """The worker no longer holds the job: its lease ran out and someone else took it over."""


def image_create(*, owner_id: int, prompt: str, width: int, height: int, style: str = "") -> Image:
    return Image.objects.create(owner_id=owner_id, prompt=prompt, width=width, height=height, style=style)


def image_update(
    *,
    image: Image,
    status: str,
    result_url: str | None = None,
    result_file: str | None = None,
    result_bytes: int | None = None,
    checksum: str | None = None,
    failure_reason: str | None = None,
    lease_owner: str = "",
    expect_lease: str | None = None,
) -> Image:
    """Move ``image`` to ``status`` and return the updated row.

    Raises InvalidTransition when ``status`` may not follow the current one, LeaseLost when
    ``expect_lease`` is given and that worker no longer holds the job, Image.DoesNotExist when the
    image is gone. Result fields left None
    keep their value. Entering ``running`` takes a lease for ``lease_owner``.
    """
    with transaction.atomic():
        current = Image.objects.select_for_update().filter(pk=image.pk).first()
        if current is None:
            # Deleted (with its owner, say) meanwhile: for a worker that is a job it no longer holds.
            raise LeaseLost(f"image {image.pk} was deleted") if expect_lease is not None else Image.DoesNotExist()
        if expect_lease is not None and (current.status != Status.RUNNING or current.lease_owner != expect_lease):
            raise LeaseLost(f"image {current.pk} is no longer leased to {expect_lease}")
        if status not in TRANSITIONS[current.status]:
            raise InvalidTransition(current.status, status)
        now = timezone.now()
        previous, current.status = current.status, status
        if status == Status.RUNNING:
            current.lease_owner = lease_owner
            current.lease_expires_at = now + timedelta(seconds=conf.lease_seconds())
            current.attempts += 1
        else:
            current.lease_owner, current.lease_expires_at = "", None
        if status == Status.QUEUED and previous == Status.RUNNING:
            # Handed back unfinished: that claim does not count against the job.
            current.attempts = max(current.attempts - 1, 0)
        if status in (Status.COMPLETED, Status.FAILED):
            current.completed_at = now
        for field, value in (
            ("result_url", result_url),
            ("result_file", result_file),
            ("bytes", result_bytes),
            ("checksum", checksum),
            ("failure_reason", failure_reason),
        ):
            if value is not None:
                setattr(current, field, value)
        current.save()
    return current


# --- the generator's queue --------------------------------------------------------------------


def _claimable(now) -> Q:
    # Queued jobs, and running jobs whose lease ran out (their worker died) or that never had
    # one (a status set by hand in the admin): nothing stays running forever.
    lease_gone = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    return Q(status=Status.QUEUED) | (Q(status=Status.RUNNING) & lease_gone)


def image_claim_next(*, worker: str) -> Image | None:
    """Lease the oldest claimable job to ``worker``, or return None when there is none.

    ``FOR UPDATE SKIP LOCKED``: concurrent workers each lock a different row and never wait on
    one another. (SQLite has no row locks; there, run one worker.)
    """
    while True:
        with transaction.atomic():
            job = (
                Image.objects.select_for_update(skip_locked=True)
                .filter(_claimable(timezone.now()))
                .order_by("created_at", "id")
                .first()
            )
            if job is None:
                return None
            if job.status == Status.RUNNING and job.attempts >= conf.max_attempts():
                image_update(
                    image=job,
                    status=Status.FAILED,
                    failure_reason=f"Gave up after {job.attempts} attempts: the generator stopped each time.",
                )
                continue
            return image_update(image=job, status=Status.RUNNING, lease_owner=worker)


def image_complete(
    *, image: Image, worker: str, result_url: str, result_file: str, result_bytes: int, checksum: str
) -> Image:
    return image_update(
        image=image,
        status=Status.COMPLETED,
        expect_lease=worker,
        result_url=result_url,
        result_file=result_file,
        result_bytes=result_bytes,
        checksum=checksum,
    )


def image_fail(*, image: Image, worker: str, reason: str) -> Image:
    return image_update(image=image, status=Status.FAILED, expect_lease=worker, failure_reason=reason[:1000])


def image_release(*, image: Image, worker: str) -> Image:
    return image_update(image=image, status=Status.QUEUED, expect_lease=worker)
