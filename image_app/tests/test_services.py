"""The status service and the generator's queue, in process against the real database."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from auth_app.tests.factories import make_user
from image_app import services
from image_app.models import Image
from image_app.tests.factories import make_image
from techbirdsfly.testing import CacheTestCase

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
        self.assertIn(b'"w:', self.redis.get(key))
        for callback in callbacks:
            callback()
        # ...and after it, a new generation.
        self.assertNotIn(b'"w:', self.redis.get(key))
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
