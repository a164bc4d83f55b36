"""Every row of API.md's image table, against the real Redis and database."""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile

from django.test import override_settings
from PIL import Image as PILImage

from auth_app.tests.factories import make_token, make_user
from image_app.generator import Generator
from image_app.models import Image
from image_app.tests.factories import make_image
from techbirdsfly.testing import CacheTestCase

CHECKSUM = "ab" * 32


class ImageAPITestCase(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner = make_user()
        self.other = make_user()
        self.staff = make_user(staff=True)

    def as_user(self, user):
        return self.api.bearer(make_token(user) if user else None)

    def ttl(self, key: str) -> int:
        return self.redis.ttl(f"ImageService_{key}")


class CreateTests(ImageAPITestCase):
    def test_anonymous_is_401(self):
        response = self.api.post("/api/images", {"prompt": "x", "width": 64, "height": 64})
        self.assertEqual(response.status_code, 401)
        self.assertFalse(Image.objects.exists())

    def test_creates_a_queued_image_owned_by_the_caller(self):
        response = self.as_user(self.owner).post(
            "/api/images", {"prompt": "a kingfisher", "width": 512, "height": 256, "style": "orbs"}
        )
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        for field, value in {"status": "queued", "prompt": "a kingfisher", "width": 512, "height": 256}.items():
            self.assertEqual(body[field], value)
        self.assertEqual(body["style"], "orbs")
        self.assertTrue(body["createdAt"].endswith("+00:00"))
        image = Image.objects.get(pk=body["id"])
        self.assertEqual((image.owner_id, image.status), (self.owner.pk, "queued"))

    def test_style_is_optional(self):
        response = self.as_user(self.owner).post("/api/images", {"prompt": "p", "width": 64, "height": 2048})
        self.assertEqual(response.status_code, 201)
        self.assertIsNone(response.json()["style"])

    def test_bad_input_is_400_naming_the_field(self):
        good = {"prompt": "p", "width": 64, "height": 64}
        cases = [
            ({"prompt": ""}, "prompt"),
            ({"prompt": "   "}, "prompt"),
            ({"prompt": "x" * 2001}, "prompt"),
            ({"prompt": 123}, "prompt"),
            ({"prompt": "a\x00b"}, "prompt"),
            ({"width": 63}, "width"),
            ({"width": 2049}, "width"),
            ({"height": 0}, "height"),
            ({"height": "512"}, "height"),
            ({"width": 512.0}, "width"),
            ({"width": True}, "width"),
            ({"width": None}, "width"),
            ({"style": "s" * 65}, "style"),
            ({"style": 7}, "style"),
        ]
        client = self.as_user(self.owner)
        for change, field in cases:
            response = client.post("/api/images", {**good, **change})
            self.assertEqual(response.status_code, 400, change)
            self.assertIn(field, response.json(), change)
        for missing in ("prompt", "width", "height"):
            body = {k: v for k, v in good.items() if k != missing}
            response = client.post("/api/images", body)
            self.assertEqual(response.status_code, 400, missing)
            self.assertIn(missing, response.json())
        self.assertFalse(Image.objects.exists())

    def test_longest_prompt_and_extreme_sizes_are_accepted(self):
        response = self.as_user(self.owner).post("/api/images", {"prompt": "x" * 2000, "width": 2048, "height": 64})
        self.assertEqual(response.status_code, 201, response.content)

    def test_malformed_json_is_400(self):
        client = self.as_user(self.owner)
        for raw in ("{bad json", "[1, 2]", '"a string"', ""):
            response = client.generic("POST", "/api/images", raw, content_type="application/json")
            self.assertEqual(response.status_code, 400, raw)
            self.assertEqual(response["Content-Type"], "application/json", raw)


class ReadTests(ImageAPITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.image = make_image(owner=self.owner)
        self.url = f"/api/images/{self.image.pk}"

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.get(self.url).status_code, 401)

    def test_owner_reads_from_the_database_then_from_redis(self):
        client = self.as_user(self.owner)
        first = client.get(self.url)
        self.assertEqual(first.status_code, 200)
        self.assertFalse(first.json()["fromCache"])
        with self.assertNumQueries(0):  # token record and metadata both come out of Redis
            second = client.get(self.url)
        self.assertTrue(second.json()["fromCache"])
        self.assertEqual(first.json()["data"], second.json()["data"])
        data = second.json()["data"]
        expected = {"id", "status", "prompt", "width", "height", "style", "resultUrl", "bytes", "checksum"}
        self.assertLessEqual(expected | {"createdAt", "completedAt"}, set(data))
        self.assertEqual((data["id"], data["status"], data["width"], data["height"]), (self.image.pk, "queued", 96, 64))
        self.assertIsNone(data["resultUrl"])

    def test_keys_have_the_prefix_and_a_ttl(self):
        self.as_user(self.owner).get(self.url)
        keys = [k for k in self.redis_keys() if not k.startswith("AuthService_")]
        self.assertIn(f"ImageService_image:metadata:{self.image.pk}", keys)
        self.assertIn(f"ImageService_image:image:{self.image.pk}:gen", keys)
        for key in keys:
            self.assertTrue(key.startswith("ImageService_image:"), key)
            self.assertGreater(self.redis.ttl(key), 0, key)
        self.assertLessEqual(self.ttl(f"image:metadata:{self.image.pk}"), 3600)

    def test_staff_may_read_anyones_image(self):
        response = self.as_user(self.staff).get(self.url)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["data"]["id"], self.image.pk)

    def test_another_user_gets_404_even_from_a_warm_cache(self):
        self.as_user(self.owner).get(self.url)
        response = self.as_user(self.other).get(self.url)
        self.assertEqual(response.status_code, 404)
        self.assertNotIn("prompt", response.content.decode())

    def test_unknown_and_malformed_ids_are_404(self):
        client = self.as_user(self.owner)
        for path in ("/api/images/999999", "/api/images/abc", "/api/images/99999999999999999999", "/api/images/-1"):
            response = client.get(path)
            self.assertEqual(response.status_code, 404, path)
            self.assertEqual(response["Content-Type"], "application/json", path)

    def test_an_unknown_id_is_not_cached(self):
        client = self.as_user(self.owner)
        client.get("/api/images/999999")
        self.assertNotIn("ImageService_image:metadata:999999", self.redis_keys())

    def test_orm_and_admin_changes_invalidate(self):
        client = self.as_user(self.owner)
        client.get(self.url)
        with self.captureOnCommitCallbacks(execute=True):
            self.image.status = Image.Status.FAILED
            self.image.save()
        response = client.get(self.url)
        self.assertEqual((response.json()["fromCache"], response.json()["data"]["status"]), (False, "failed"))
        client.get(self.url)
        with self.captureOnCommitCallbacks(execute=True):
            Image.objects.filter(pk=self.image.pk).update(prompt="changed in bulk")
        response = client.get(self.url)
        self.assertEqual((response.json()["fromCache"], response.json()["data"]["prompt"]), (False, "changed in bulk"))
        with self.captureOnCommitCallbacks(execute=True):
            self.image.delete()
        self.assertEqual(client.get(self.url).status_code, 404)

    def test_admin_page_change_invalidates(self):
        client = self.as_user(self.owner)
        client.get(self.url)
        superuser = make_user(staff=True, is_superuser=True)
        self.client.force_login(superuser)
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                f"/admin/image_app/image/{self.image.pk}/change/",
                {
                    "owner": self.owner.pk,
                    "prompt": "edited in the admin",
                    "width": 96,
                    "height": 64,
                    "style": "",
                    "status": "queued",
                    "result_url": "",
                    "failure_reason": "",
                    "created_at_0": "2026-01-01",
                    "created_at_1": "00:00:00",
                },
            )
        self.assertEqual(response.status_code, 302, response.content[:2000])
        response = client.get(self.url)
        self.assertEqual(response.json()["data"]["prompt"], "edited in the admin")
        self.assertFalse(response.json()["fromCache"])


class PatchTests(ImageAPITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.image = make_image(owner=self.owner)
        self.url = f"/api/images/{self.image.pk}"

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.patch(self.url, {"status": "running"}).status_code, 401)

    def test_non_staff_is_403_before_any_lookup(self):
        for path in (self.url, "/api/images/999999"):
            response = self.as_user(self.owner).patch(path, {"status": "running"})
            self.assertEqual(response.status_code, 403, path)
        self.image.refresh_from_db()
        self.assertEqual(self.image.status, "queued")

    def test_unknown_id_is_404_for_staff(self):
        self.assertEqual(self.as_user(self.staff).patch("/api/images/999999", {"status": "running"}).status_code, 404)

    def test_bad_input_is_400_naming_the_field(self):
        cases = [
            ({}, "status"),
            ({"status": "queued"}, "status"),
            ({"status": "done"}, "status"),
            ({"status": 1}, "status"),
            ({"status": "completed", "bytes": -1}, "bytes"),
            ({"status": "completed", "bytes": "12"}, "bytes"),
            ({"status": "completed", "checksum": "xyz"}, "checksum"),
            ({"status": "completed", "checksum": "g" * 64}, "checksum"),
            ({"status": "completed", "resultUrl": "javascript:alert(1)"}, "resultUrl"),
            ({"status": "completed", "resultUrl": "//evil.example/x.png"}, "resultUrl"),
            ({"status": "failed", "failureReason": "r" * 1001}, "failureReason"),
        ]
        client = self.as_user(self.staff)
        for body, field in cases:
            response = client.patch(self.url, body)
            self.assertEqual(response.status_code, 400, body)
            self.assertIn(field, response.json(), body)
        response = client.generic("PATCH", self.url, "{nope", content_type="application/json")
        self.assertEqual(response.status_code, 400)
        self.image.refresh_from_db()
        self.assertEqual(self.image.status, "queued")

    def test_staff_moves_an_image_through_its_states_and_each_change_invalidates(self):
        reader = self.as_user(self.owner)
        reader.get(self.url)
        self.assertTrue(reader.get(self.url).json()["fromCache"])
        staff_token = make_token(self.staff)
        owner_token = make_token(self.owner)

        response = self.api.bearer(staff_token).patch(self.url, {"status": "running"})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["status"], "running")
        read = self.api.bearer(owner_token).get(self.url).json()
        self.assertEqual((read["fromCache"], read["data"]["status"]), (False, "running"))
        self.image.refresh_from_db()
        self.assertIsNotNone(self.image.lease_expires_at)  # a generator that vanishes cannot keep it forever

        body = {"status": "completed", "resultUrl": "https://cdn.example.com/17.png", "bytes": 1234}
        response = self.api.bearer(staff_token).patch(self.url, {**body, "checksum": CHECKSUM.upper()})
        self.assertEqual(response.status_code, 200, response.content)
        read = self.api.bearer(owner_token).get(self.url).json()
        self.assertFalse(read["fromCache"])
        data = read["data"]
        self.assertEqual(
            (data["status"], data["resultUrl"], data["bytes"], data["checksum"]),
            ("completed", body["resultUrl"], 1234, CHECKSUM),
        )
        self.assertIsNotNone(data["completedAt"])

    def test_an_impossible_transition_is_409_and_changes_nothing(self):
        client = self.as_user(self.staff)
        self.assertEqual(client.patch(self.url, {"status": "failed", "failureReason": "bad prompt"}).status_code, 200)
        for status in ("running", "completed", "failed"):
            response = client.patch(self.url, {"status": status})
            self.assertEqual(response.status_code, 409, status)
            self.assertIn("status", response.json())
        self.image.refresh_from_db()
        self.assertEqual((self.image.status, self.image.failure_reason), ("failed", "bad prompt"))


class ResultTests(ImageAPITestCase):
    def setUp(self) -> None:
        super().setUp()
        media = tempfile.mkdtemp(prefix="tbf-media-")
        self.addCleanup(shutil.rmtree, media, ignore_errors=True)
        settings_override = override_settings(MEDIA_ROOT=media)
        settings_override.enable()
        self.addCleanup(settings_override.disable)
        self.image = make_image(owner=self.owner, width=200, height=120, style="rays")
        self.url = f"/api/images/{self.image.pk}/result"

    def render(self) -> dict:
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(Generator().run(once=True), 1)
        return self.as_user(self.owner).get(f"/api/images/{self.image.pk}").json()["data"]

    def test_not_rendered_yet_is_404(self):
        self.assertEqual(self.as_user(self.owner).get(self.url).status_code, 404)

    def test_owner_and_staff_download_the_png_that_matches_the_metadata(self):
        data = self.render()
        self.assertEqual(data["resultUrl"], self.url)
        for user in (self.owner, self.staff):
            response = self.as_user(user).get(data["resultUrl"], HTTP_ACCEPT="image/png")
            self.assertEqual(response.status_code, 200)
            self.assertEqual(response["Content-Type"], "image/png")
            png = b"".join(response.streaming_content)
            self.assertEqual(len(png), data["bytes"])
            self.assertEqual(hashlib.sha256(png).hexdigest(), data["checksum"])
            self.assertEqual(PILImage.open(io.BytesIO(png)).size, (200, 120))

    def test_others_get_404_and_anonymous_401(self):
        self.render()
        response = self.as_user(self.other).get(self.url, HTTP_ACCEPT="image/png")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(self.api.bearer(None).get(self.url).status_code, 401)
        self.assertEqual(self.as_user(self.owner).get("/api/images/999999/result").status_code, 404)
