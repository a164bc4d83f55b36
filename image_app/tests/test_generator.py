"""The generator in process (one worker); tests/test_worker_processes.py runs real worker processes."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from decimal import Decimal
from unittest import mock

from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from PIL import Image as PILImage

from auth_app.tests.factories import make_user
from billing_app.models import UsageRecord
from billing_app.tests.factories import make_account
from image_app import services
from image_app.generator import Generator
from image_app.models import Image
from image_app.services import image_claim_next
from image_app.tests.factories import make_image
from techbirdsfly.testing import CacheTestCase, private_media_root


class MediaTestCase(CacheTestCase):
    """A private MEDIA_ROOT and an owner."""

    def setUp(self) -> None:
        super().setUp()
        self.media = private_media_root(self)
        self.owner = make_user()

    def run_once(self) -> int:
        with self.captureOnCommitCallbacks(execute=True):
            return Generator().run(once=True)


class GeneratorTests(MediaTestCase):
    def test_drains_the_queue_and_stores_files_that_match_the_metadata(self):
        images = [make_image(owner=self.owner, width=64 + 10 * i, height=200 - 9 * i, style="blocks") for i in range(4)]
        make_image(owner=self.owner, status=Image.Status.FAILED)
        self.assertEqual(self.run_once(), 4)
        for image in images:
            image.refresh_from_db()
            self.assertEqual(image.status, "completed")
            self.assertEqual(image.attempts, 1)
            self.assertEqual(image.result_url, f"/api/images/{image.pk}/result")
            stored = (self.media / image.result_file).read_bytes()
            self.assertEqual(len(stored), image.bytes)
            self.assertEqual(hashlib.sha256(stored).hexdigest(), image.checksum)
            self.assertEqual(PILImage.open(io.BytesIO(stored)).size, (image.width, image.height))
        self.assertEqual(len(list((self.media / "images").iterdir())), 4)

    def test_a_job_that_cannot_be_stored_fails_with_a_reason_and_the_worker_goes_on(self):
        image = make_image(owner=self.owner)
        blocker = self.media / "not-a-directory"
        blocker.write_text("a file where the storage wants a directory")
        with override_settings(MEDIA_ROOT=blocker):
            self.assertEqual(self.run_once(), 1)
        image.refresh_from_db()
        self.assertEqual(image.status, "failed")
        self.assertIn("Rendering failed", image.failure_reason)
        self.assertEqual((image.lease_owner, image.result_file), ("", ""))
        self.assertIsNotNone(image.completed_at)

    def test_an_image_deleted_while_rendering_is_skipped_and_leaves_no_file(self):
        image = make_image(owner=self.owner)
        generator = Generator()
        with self.captureOnCommitCallbacks(execute=True):
            job = image_claim_next(worker=generator.worker)
            image.delete()
            generator.process(job)  # must not raise
        self.assertFalse(Image.objects.exists())
        self.assertEqual(list((self.media / "images").iterdir()) if (self.media / "images").exists() else [], [])

    def test_the_command_with_once_exits_when_the_queue_is_empty(self):
        make_image(owner=self.owner)
        out = io.StringIO()
        with self.captureOnCommitCallbacks(execute=True):
            call_command("run_generator", "--once", stdout=out)
        self.assertIn("Generated 1 image(s).", out.getvalue())
        self.assertFalse(Image.objects.exclude(status="completed").exists())


class BilledGeneratorTests(MediaTestCase):
    """Exactly one usage record per completed image, whatever the workers go through; no file left behind."""

    def setUp(self) -> None:
        super().setUp()
        self.account = make_account(self.owner)
        self.image = make_image(owner=self.owner, account=self.account, width=120, height=80)

    def die_after_rendering(self, worker: str) -> Image:
        """A worker that renders and stores the result, then dies before it can record the completion."""
        with (
            mock.patch("image_app.services.image_complete", side_effect=KeyboardInterrupt),
            self.assertRaises(KeyboardInterrupt),
        ):
            Generator(worker=worker).run(once=True)
        self.image.refresh_from_db()
        self.assertEqual((self.image.status, self.image.lease_owner), ("running", worker))
        Image.objects.filter(pk=self.image.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        return self.image

    def stored_files(self) -> list[str]:
        folder = self.media / "images"
        return sorted(path.name for path in folder.iterdir()) if folder.exists() else []

    def test_a_render_completes_and_records_one_unit(self):
        self.assertEqual(self.run_once(), 1)
        [record] = UsageRecord.objects.all()
        self.assertEqual((record.account_id, record.metric_id, record.units), (self.account.pk, "image.generate", 1))
        self.assertEqual(record.amount, Decimal("0.0400"))

    def test_a_worker_killed_after_rendering_is_taken_over_and_billed_once(self):
        doomed = self.die_after_rendering("doomed")
        self.assertFalse(UsageRecord.objects.exists())
        self.assertEqual(self.run_once(), 1)  # the rescuer, once the lease ran out
        self.image.refresh_from_db()
        self.assertEqual((self.image.status, self.image.attempts), ("completed", 2))
        # The dead worker's process comes back and reports its result: not its job any more.
        with self.assertRaises(services.LeaseLost):
            services.image_complete(
                image=doomed, worker="doomed", result_url="/r", result_file="x", result_bytes=1, checksum="c" * 64
            )
        self.assertEqual(UsageRecord.objects.filter(account=self.account).count(), 1)
        # One file, the recorded one, complete: the dead worker's copy was replaced, not duplicated.
        self.assertEqual(self.stored_files(), [f"{self.image.pk}.png"])
        stored = (self.media / self.image.result_file).read_bytes()
        self.assertEqual(hashlib.sha256(stored).hexdigest(), self.image.checksum)

    def test_a_job_given_up_after_its_workers_died_leaves_no_file(self):
        self.die_after_rendering("doomed")
        Image.objects.filter(pk=self.image.pk).update(attempts=3)
        with override_settings(GENERATOR_MAX_ATTEMPTS=3):
            self.assertEqual(self.run_once(), 0)
        self.image.refresh_from_db()
        self.assertEqual(self.image.status, "failed")
        self.assertEqual(self.stored_files(), [])
        self.assertFalse(UsageRecord.objects.exists())

    def test_a_failed_store_leaves_no_file(self):
        with mock.patch("image_app.files.os.replace", side_effect=OSError("disk full")):
            self.assertEqual(self.run_once(), 1)
        self.image.refresh_from_db()
        self.assertEqual((self.image.status, self.image.result_file), ("failed", ""))
        self.assertEqual(self.stored_files(), [])  # neither the result nor a partial temporary file
        self.assertFalse(UsageRecord.objects.exists())


class FileDeletionTests(MediaTestCase):
    """An image's file goes with the image, however the image goes."""

    def rendered(self, count: int = 1) -> list[Image]:
        images = [make_image(owner=self.owner) for _ in range(count)]
        self.assertEqual(self.run_once(), count)
        for image in images:
            image.refresh_from_db()
            self.assertTrue((self.media / image.result_file).exists())
        return images

    def test_deleting_an_image_deletes_its_file(self):
        [image] = self.rendered()
        with self.captureOnCommitCallbacks(execute=True):
            image.delete()
        self.assertFalse((self.media / image.result_file).exists())

    def test_a_bulk_delete_in_the_admin_deletes_the_files(self):
        images = self.rendered(2)
        self.client.force_login(make_user(staff=True, is_superuser=True))
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                "/admin/image_app/image/",
                {"action": "delete_selected", "_selected_action": [i.pk for i in images], "post": "yes"},
            )
        self.assertEqual(response.status_code, 302)
        self.assertFalse(Image.objects.exists())
        for image in images:
            self.assertFalse((self.media / image.result_file).exists())

    def test_deleting_the_owner_deletes_the_files(self):
        [image] = self.rendered()
        with self.captureOnCommitCallbacks(execute=True):
            self.owner.delete()
        self.assertFalse((self.media / image.result_file).exists())

    def test_a_rolled_back_delete_keeps_the_file(self):
        [image] = self.rendered()
        with self.captureOnCommitCallbacks(execute=True), self.assertRaises(RuntimeError), transaction.atomic():
            image.delete()
            raise RuntimeError("rolled back")
        self.assertTrue((self.media / image.result_file).exists())
