"""Writes of the image app: create an image, change its status, and the generator's queue.

``image_update`` is the one code path for every status change, whether it comes from staff
through PATCH or from the generator; saving the row makes its cached metadata stale after commit
(the post_save receiver in cache.py). Completing an image with an account records its usage in
the same transaction, once (billing's ``usage_record_once``); failing one deletes its file.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.http import Http404
from django.utils import timezone
from rest_framework.exceptions import APIException, Throttled

from billing_app.selectors import Viewer, account_get
from billing_app.services import usage_record_once

from . import conf, files
from .models import Image, QueueTurn

Status = Image.Status
UNFINISHED = (Status.QUEUED, Status.RUNNING)
# The price-list metric one completed image is billed as (one unit per image).
USAGE_METRIC = "image.generate"
# A render takes well under a second, so a slot usually frees within seconds.
QUEUE_RETRY_AFTER_SECONDS = 5

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


class ImageRunning(APIException):
    status_code = 409
    default_detail = "This image is being rendered; delete it once it has finished."
    default_code = "image_running"


class QueueFull(Throttled):
    default_code = "image_queue_full"

    def __init__(self, limit: int) -> None:
        detail = f"You already have {limit} images queued or running; wait until one of them finishes."
        super().__init__(wait=QUEUE_RETRY_AFTER_SECONDS, detail=detail)


def image_usage_source(image_id: int) -> str:
    """The image's key on its usage record: one record per image, enforced by the database."""
    return f"image:{image_id}"


def image_create(
    *, owner: Viewer, prompt: str, width: int, height: int, style: str = "", account_id: int | None = None
) -> Image:
    """Queue an image for ``owner``, billed to ``account_id`` if given (an account the owner may see,
    else Http404); QueueFull when the owner already has ``conf.queue_limit()`` images unfinished."""
    if account_id is not None:
        account_get(account_id=account_id, viewer=owner)
    with transaction.atomic():
        # The owner's row lock makes their concurrent creations take turns, so two cannot both pass
        # the count at limit - 1. (NO KEY: rows that merely reference the user are not held up.)
        get_user_model().objects.select_for_update(no_key=True).filter(pk=owner.pk).first()
        limit = conf.queue_limit()
        if Image.objects.filter(owner_id=owner.pk, status__in=UNFINISHED).count() >= limit:
            raise QueueFull(limit)
        return Image.objects.create(
            owner_id=owner.pk, account_id=account_id, prompt=prompt, width=width, height=height, style=style
        )


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
    keep their value. Entering ``running`` takes a lease for ``lease_owner`` and the owner's turn in
    the queue (``QueueTurn``).
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
            _note_served(current.owner_id, now)
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
        if status == Status.COMPLETED and current.account_id is not None:
            # In this transaction: the image is completed and billed together, or neither is.
            usage_record_once(
                account_id=current.account_id, metric=USAGE_METRIC, units=1, source=image_usage_source(current.pk)
            )
        if status == Status.FAILED:
            # What a worker wrote before it died, or a result that could not be recorded.
            files.result_delete(*files.image_files(current))
    return current


# --- the generator's queue --------------------------------------------------------------------


def _claimable(now) -> Q:
    # Queued jobs, and running jobs whose lease ran out (their worker died) or that never had
    # one (a status set by hand in the admin): nothing stays running forever.
    lease_gone = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    return Q(status=Status.QUEUED) | (Q(status=Status.RUNNING) & lease_gone)


def _note_served(owner_id: int, now) -> None:
    """The owner's turn is taken: their next job waits behind every owner served less recently."""
    QueueTurn.objects.bulk_create(
        [QueueTurn(owner_id=owner_id, served_at=now)],
        update_conflicts=True,
        unique_fields=["owner"],
        update_fields=["served_at"],
    )


def _last_served() -> Subquery:
    return Subquery(QueueTurn.objects.filter(owner_id=OuterRef("owner_id")).values("served_at")[:1])


def image_claim_next(*, worker: str) -> Image | None:
    """Lease the next claimable job to ``worker``, or return None when there is none.

    Owners take turns: the owner served least recently (``QueueTurn``; never served comes first) has
    their oldest job claimed, so one owner's backlog never holds up another's image by more than the
    job being rendered. A job whose worker died is its owner's oldest, and is taken again at the
    owner's next turn. ``FOR UPDATE SKIP LOCKED``:
    concurrent workers each lock a different row and never wait on one another. (SQLite has no
    row locks; there, run one worker.)
    """
    while True:
        with transaction.atomic():
            job = (
                Image.objects.select_for_update(skip_locked=True)
                .filter(_claimable(timezone.now()))
                .annotate(served_at=_last_served())
                .order_by(F("served_at").asc(nulls_first=True), "created_at", "id")
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


def image_delete(*, image_id: int, viewer: Viewer) -> None:
    """Delete an image ``viewer`` may see (its owner or staff; Http404 otherwise) with its file.

    ImageRunning while it is ``running``: a generator holds it. The row lock keeps a generator from
    claiming it meanwhile (its claim skips locked rows). Usage recorded for it stays billed: a usage
    record names its image by ``source`` only. The file and the cache go by the post_delete receivers
    (files.py, cache.py), once the deletion commits.
    """
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None or not (viewer.is_staff or image.owner_id == viewer.pk):
            raise Http404("Image not found.")
        if image.status == Status.RUNNING:
            raise ImageRunning()
        image.delete()


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
