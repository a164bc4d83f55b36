"""The generator in process (one worker); tests/test_worker_processes.py runs real worker processes."""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
from pathlib import Path

from django.core.management import call_command
from django.test import override_settings
from PIL import Image as PILImage

from auth_app.tests.factories import make_user
from image_app.generator import Generator
from image_app.models import Image
from image_app.services import image_claim_next
from image_app.tests.factories import make_image
from techbirdsfly.testing import CacheTestCase


class GeneratorTests(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.media = Path(tempfile.mkdtemp(prefix="tbf-media-"))
        self.addCleanup(shutil.rmtree, self.media, ignore_errors=True)
        media = override_settings(MEDIA_ROOT=self.media)
        media.enable()
        self.addCleanup(media.disable)
        self.owner = make_user()

    def run_once(self) -> int:
        with self.captureOnCommitCallbacks(execute=True):
            return Generator().run(once=True)

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
