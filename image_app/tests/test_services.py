"""The status service and the generator's queue, in process against the real database."""

from __future__ import annotations

import threading
import unittest
from datetime import timedelta

from django.db import connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

from auth_app.tests.factories import make_user
from image_app import services
from image_app.models import Image
from image_app.tests.factories import make_image
from techbirdsfly.testing import CacheTestCase, LiveTestCase

Status = Image.Status


class ImageUpdateTests(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.image = make_image(owner=make_user())

    def test_transitions_follow_the_table(self):
        allowed = {(a, b) for a, targets in services.TRANSITIONS.items() for b in targets}
        for start in Status.values:
            for target in Status.values:
                image = make_image(owner=self.image.owner, status=start)
                if (start, target) in allowed:
                    self.assertEqual(services.image_update(image=image, status=target).status, target)
                else:
                    with self.assertRaises(services.InvalidTransition):
                        services.image_update(image=image, status=target)
                    image.refresh_from_db()
                    self.assertEqual(image.status, start)
        self.assertEqual(services.TRANSITIONS[Status.COMPLETED], frozenset())

    def test_running_takes_a_lease_and_finishing_drops_it(self):
        before = timezone.now()
        with override_settings(GENERATOR_LEASE_SECONDS=30):
            image = services.image_update(image=self.image, status=Status.RUNNING, lease_owner="w1")
        self.assertEqual((image.lease_owner, image.attempts), ("w1", 1))
        self.assertGreaterEqual(image.lease_expires_at, before + timedelta(seconds=30))
        image = services.image_complete(
            image=image, worker="w1", result_url="/r", result_file="f.png", result_bytes=3, checksum="c" * 64
        )
        self.assertEqual((image.lease_owner, image.lease_expires_at), ("", None))
        self.assertIsNotNone(image.completed_at)

    def test_a_worker_that_lost_its_lease_cannot_finish_the_job(self):
        image = services.image_update(image=self.image, status=Status.RUNNING, lease_owner="slow")
        Image.objects.filter(pk=image.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        taken = services.image_claim_next(worker="fast")
        self.assertEqual((taken.pk, taken.lease_owner, taken.attempts), (image.pk, "fast", 2))
        for finish in (
            lambda: services.image_complete(
                image=image, worker="slow", result_url="/r", result_file="f", result_bytes=1, checksum="c" * 64
            ),
            lambda: services.image_fail(image=image, worker="slow", reason="x"),
            lambda: services.image_release(image=image, worker="slow"),
        ):
            with self.assertRaises(services.LeaseLost):
                finish()
        image.refresh_from_db()
        self.assertEqual((image.status, image.lease_owner), ("running", "fast"))

    def test_every_change_invalidates_after_commit(self):
        key = f"ImageService_image:image:{self.image.pk}:gen"
        with self.captureOnCommitCallbacks(execute=True):
            services.image_update(image=self.image, status=Status.RUNNING, lease_owner="w")
        first = self.redis.get(key)
        self.assertIsNotNone(first)
        with self.captureOnCommitCallbacks(execute=False) as callbacks:
            services.image_release(image=self.image, worker="w")
        # Before the commit the scope is only marked as being written (reads bypass the cache)...
        self.assertTrue(self.redis.get(key).startswith(b"w:"))  # being written
        for callback in callbacks:
            callback()
        # ...and after it, a new generation.
        self.assertFalse(self.redis.get(key).startswith(b"w:"))
        self.assertNotEqual(self.redis.get(key), first)


class ClaimTests(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner = make_user()

    def test_claims_oldest_first_and_none_when_empty(self):
        now = timezone.now()
        newer = make_image(owner=self.owner, created_at=now)
        older = make_image(owner=self.owner, created_at=now - timedelta(minutes=1))
        make_image(owner=self.owner, status=Status.COMPLETED)
        make_image(owner=self.owner, status=Status.FAILED)
        self.assertEqual(services.image_claim_next(worker="w").pk, older.pk)
        self.assertEqual(services.image_claim_next(worker="w").pk, newer.pk)
        self.assertIsNone(services.image_claim_next(worker="w"))  # both hold live leases now

    def test_a_running_job_without_a_lease_is_claimed(self):
        image = make_image(owner=self.owner, status=Status.RUNNING)  # e.g. set by hand in the admin
        self.assertEqual(services.image_claim_next(worker="w").pk, image.pk)

    def test_a_job_that_keeps_losing_its_worker_is_failed_not_retried_forever(self):
        expired = timezone.now() - timedelta(seconds=1)
        with override_settings(GENERATOR_MAX_ATTEMPTS=3):
            image = make_image(owner=self.owner, status=Status.RUNNING, attempts=3, lease_expires_at=expired)
            healthy = make_image(owner=self.owner)
            self.assertEqual(services.image_claim_next(worker="w").pk, healthy.pk)
        image.refresh_from_db()
        self.assertEqual(image.status, Status.FAILED)
        self.assertIn("3 attempts", image.failure_reason)
        self.assertIsNotNone(image.completed_at)

    def test_release_hands_the_job_back_without_counting_the_attempt(self):
        image = make_image(owner=self.owner)
        claimed = services.image_claim_next(worker="w")
        released = services.image_release(image=claimed, worker="w")
        self.assertEqual((released.status, released.attempts, released.lease_owner), ("queued", 0, ""))
        self.assertEqual(services.image_claim_next(worker="v").pk, image.pk)


class FairClaimTests(CacheTestCase):
    """Owners take turns: one owner's backlog does not hold up another owner's first image."""

    def setUp(self) -> None:
        super().setUp()
        self.a, self.b = make_user(), make_user()
        start = timezone.now() - timedelta(minutes=5)
        self.backlog = [make_image(owner=self.a, created_at=start + timedelta(seconds=i)) for i in range(10)]
        self.late = make_image(owner=self.b, created_at=start + timedelta(minutes=1))

    def claims(self, count: int) -> list[int]:
        return [services.image_claim_next(worker="w").pk for _ in range(count)]

    def test_a_later_owner_is_among_the_first_two_claims(self):
        first_two = self.claims(2)
        self.assertEqual(first_two, [self.backlog[0].pk, self.late.pk])
        self.assertEqual(self.claims(9), [image.pk for image in self.backlog[1:]])  # then the backlog, in order
        self.assertIsNone(services.image_claim_next(worker="w"))

    def test_an_owner_already_being_served_waits_behind_one_who_is_not(self):
        services.image_update(image=self.backlog[0], status=Status.RUNNING, lease_owner="elsewhere")
        self.assertEqual(self.claims(1), [self.late.pk])

    def test_a_job_whose_lease_ran_out_keeps_its_place(self):
        taken = services.image_claim_next(worker="dead")
        Image.objects.filter(pk=taken.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        # Its owner was served (by the worker that died), so the owner not yet served goes first; then
        # the orphan, ahead of the rest of its owner's backlog.
        self.assertEqual(self.claims(3), [self.late.pk, taken.pk, self.backlog[1].pk])


@unittest.skipUnless(connection.vendor == "postgresql", "needs PostgreSQL's row locks")
class QueueLimitRaceTests(LiveTestCase):
    def test_two_creations_at_the_limit_minus_one_cannot_both_pass(self):
        owner = make_user()
        for _ in range(9):
            make_image(owner=owner)
        holding, release = threading.Event(), threading.Event()
        outcomes: dict[str, object] = {}

        def create(name: str, *, hold: bool) -> None:
            try:
                with transaction.atomic():
                    image = services.image_create(owner=owner, prompt=name, width=64, height=64)
                    if hold:  # the first has counted and inserted, and has not committed yet
                        holding.set()
                        release.wait(10)
                outcomes[name] = image.pk
            except services.QueueFull as exc:
                outcomes[name] = exc
            finally:
                connections.close_all()

        with override_settings(IMAGE_QUEUE_LIMIT=10):
            first = threading.Thread(target=create, args=("first",), kwargs={"hold": True})
            first.start()
            self.assertTrue(holding.wait(10))
            second = threading.Thread(target=create, args=("second",), kwargs={"hold": False})
            second.start()
            second.join(0.5)
            self.assertTrue(second.is_alive(), "the second creation should wait for the first to commit")
            release.set()
            first.join(10)
            second.join(10)
        self.assertIsInstance(outcomes["first"], int)
        self.assertIsInstance(outcomes["second"], services.QueueFull)
        self.assertEqual(Image.objects.filter(owner=owner).count(), 10)
