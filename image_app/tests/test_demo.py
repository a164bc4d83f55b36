from __future__ import annotations

import random

from auth_app.tests.factories import make_user
from image_app.demo import seed_images
from image_app.models import Image
from image_app.serializers import ImageCreateSerializer
from techbirdsfly.testing import CacheTestCase


class SeedImagesTests(CacheTestCase):
    def test_creates_valid_queued_and_failed_images_of_the_given_users(self):
        users = [make_user() for _ in range(3)]
        self.assertEqual(seed_images(users=users, rng=random.Random(7), count=200), 200)
        images = list(Image.objects.all())
        self.assertEqual(len(images), 200)
        self.assertEqual({i.status for i in images}, {"queued", "failed"})
        self.assertLessEqual({i.owner_id for i in images}, {u.pk for u in users})
        for image in images:
            body = {"prompt": image.prompt, "width": image.width, "height": image.height, "style": image.style}
            self.assertTrue(ImageCreateSerializer(data=body).is_valid(), body)
            self.assertEqual(image.status == "failed", bool(image.failure_reason and image.completed_at))

    def test_nothing_to_do(self):
        self.assertEqual(seed_images(users=[], rng=random.Random(1), count=5), 0)
        self.assertFalse(Image.objects.exists())
